package fhirimport

import (
	"encoding/json"
	"strings"
	"time"
)

// The FHIR R4 elements the importer reads. Everything else in a resource is
// skipped by the decoder. Elements whose JSON shape differs between resource
// types (name, class, identifier) are decoded per type.

type identifier struct {
	System string           `json:"system"`
	Value  string           `json:"value"`
	Type   *codeableConcept `json:"type"`
}

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text"`
}

// hasCode reports whether the concept carries code in system, or in any
// system when system is empty.
func (c codeableConcept) hasCode(system, code string) bool {
	for _, cd := range c.Coding {
		if cd.Code == code && (system == "" || cd.System == system) {
			return true
		}
	}
	return false
}

// label is the concept's text, or the display of its first coding.
func (c codeableConcept) label() string {
	if t := strings.TrimSpace(c.Text); t != "" {
		return t
	}
	for _, cd := range c.Coding {
		if d := strings.TrimSpace(cd.Display); d != "" {
			return d
		}
	}
	return ""
}

type reference struct {
	Reference  string      `json:"reference"`
	Type       string      `json:"type"`
	Identifier *identifier `json:"identifier"`
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type humanName struct {
	Use    string   `json:"use"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

type meta struct {
	LastUpdated string `json:"lastUpdated"`
}

// head is what every resource is first decoded into.
type head struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
}

type patientJSON struct {
	Identifier []identifier `json:"identifier"`
	Name       []humanName  `json:"name"`
	BirthDate  string       `json:"birthDate"`
}

type practitionerJSON struct {
	Identifier []identifier `json:"identifier"`
	Name       []humanName  `json:"name"`
}

type practitionerRoleJSON struct {
	Practitioner *reference        `json:"practitioner"`
	Code         []codeableConcept `json:"code"`
	Specialty    []codeableConcept `json:"specialty"`
}

type careTeamParticipantJSON struct {
	Role   []codeableConcept `json:"role"`
	Member *reference        `json:"member"`
	Period *period           `json:"period"`
}

type careTeamJSON struct {
	Status      string                    `json:"status"`
	Period      *period                   `json:"period"`
	Subject     *reference                `json:"subject"`
	Participant []careTeamParticipantJSON `json:"participant"`
	Contained   []json.RawMessage         `json:"contained"`
	Meta        meta                      `json:"meta"`
}

type encounterParticipantJSON struct {
	Type       []codeableConcept `json:"type"`
	Individual *reference        `json:"individual"`
}

type encounterJSON struct {
	Class       json.RawMessage            `json:"class"`
	Subject     *reference                 `json:"subject"`
	Participant []encounterParticipantJSON `json:"participant"`
	Period      *period                    `json:"period"`
}

// identifierJSON decodes only identifiers, for the index of the resource
// types whose data the importer does not otherwise use.
type identifierJSON struct {
	Identifier []identifier `json:"identifier"`
}

const (
	systemNPI        = "http://hl7.org/fhir/sid/us-npi"
	systemSNOMED     = "http://snomed.info/sct"
	systemV2Type     = "http://terminology.hl7.org/CodeSystem/v2-0203"
	systemV3PartType = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	systemV3PartFunc = "http://terminology.hl7.org/CodeSystem/v3-ParticipationFunction"
)

// parseFHIRTime reads a FHIR dateTime or date. A value without a time (a date,
// a year and month, or a year) is taken as midnight UTC of its first day: the
// source gives no zone, and UTC keeps the result the same on every machine.
func parseFHIRTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02",
		"2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			// PostgreSQL keeps microseconds; rounding here keeps the values
			// the importer compares equal to those it reads back.
			return t.Truncate(time.Microsecond), true
		}
	}
	return time.Time{}, false
}

// parseFHIRDate reads a FHIR date for a birth_date column: only a full date
// is kept, since a year alone is not a birth date the schema can hold
// faithfully.
func parseFHIRDate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 10 {
		if _, err := time.Parse("2006-01-02", s[:10]); err == nil {
			return s[:10]
		}
	}
	return ""
}

// pickName returns the first official or usual name, else the first name
// without a use, else the first name at all.
func pickName(names []humanName) (given, family string) {
	choose := func(ok func(humanName) bool) (humanName, bool) {
		for _, n := range names {
			if ok(n) {
				return n, true
			}
		}
		return humanName{}, false
	}

	n, ok := choose(func(n humanName) bool { return n.Use == "official" || n.Use == "usual" })
	if !ok {
		n, ok = choose(func(n humanName) bool { return n.Use == "" })
	}
	if !ok && len(names) > 0 {
		n = names[0]
	}
	if len(n.Given) > 0 {
		given = strings.TrimSpace(n.Given[0])
	}
	return given, strings.TrimSpace(n.Family)
}

// nameProblem says why given and family cannot be stored, or "".
func nameProblem(given, family string) string {
	switch {
	case given == "" && family == "":
		return "no name"
	case given == "":
		return "no given name"
	case family == "":
		return "no family name"
	case len([]rune(given)) > 200 || len([]rune(family)) > 200:
		return "name longer than 200 characters"
	case strings.ContainsRune(given+family, 0):
		return "name holds a NUL character, which PostgreSQL cannot store"
	}
	return ""
}
