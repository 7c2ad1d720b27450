package fhirimport

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/careteam/careteam/internal/dbgen"
)

// attributionYears is the length of the window of encounters that decides
// an attributed PRIMARY.
const attributionYears = 3

// visit is one encounter of a patient, reduced to what attribution needs.
type visit struct {
	at   time.Time
	amb  bool
	npi  string // "" when no practitioner with a valid NPI performed it
	file *sourceFile
}

// attributionInput is one patient's visits, for attributePrimary.
type attributionInput struct {
	visits []visit
}

// attributePrimary applies the attribution rule (see the package
// documentation) to one patient's visits. It returns the winning NPI, the
// start of the assignment (the winner's first ambulatory visit in the
// window) and the file of the winner's latest visit, which is where the
// assignment is written; ok is false when no ambulatory visit qualifies.
func attributePrimary(visits []visit) (npi string, start time.Time, file *sourceFile,
	ok bool) {
	var latest time.Time
	for _, v := range visits {
		if v.at.After(latest) {
			latest = v.at
		}
	}
	from := latest.AddDate(-attributionYears, 0, 0)

	type tally struct {
		count       int
		first, last time.Time
		lastFile    *sourceFile
	}
	byNPI := map[string]*tally{}
	for _, v := range visits {
		if !v.amb || v.npi == "" || v.at.Before(from) || v.at.After(latest) {
			continue
		}
		t := byNPI[v.npi]
		if t == nil {
			t = &tally{first: v.at, last: v.at, lastFile: v.file}
			byNPI[v.npi] = t
		}
		t.count++
		if v.at.Before(t.first) {
			t.first = v.at
		}
		if !v.at.Before(t.last) {
			t.last, t.lastFile = v.at, v.file
		}
	}

	npis := make([]string, 0, len(byNPI))
	for n := range byNPI {
		npis = append(npis, n)
	}
	// Most visits first; on a tie the most recent visit; then the NPI, so
	// that the result never depends on map order.
	sort.Slice(npis, func(i, j int) bool {
		a, b := byNPI[npis[i]], byNPI[npis[j]]
		if a.count != b.count {
			return a.count > b.count
		}
		if !a.last.Equal(b.last) {
			return a.last.After(b.last)
		}
		return npis[i] < npis[j]
	})
	if len(npis) == 0 {
		return "", time.Time{}, nil, false
	}
	win := byNPI[npis[0]]
	return npis[0], win.first, win.lastFile, true
}

// attribute makes a PRIMARY claim from encounters for every patient whose
// care teams name no primary-care role.
func (p *planner) attribute(files []*sourceFile) {
	byPatient := map[string]*attributionInput{}
	var order []string

	each(files, "Encounter", func(r *resource) {
		e := r.encounter
		key, reason := p.subjectKey(e.Subject, r)
		if reason != "" || key == "" {
			return
		}
		at, ok := encounterTime(e)
		if !ok {
			return
		}
		in := byPatient[key]
		if in == nil {
			in = &attributionInput{}
			byPatient[key] = in
			order = append(order, key)
		}
		in.visits = append(in.visits, visit{at: at, amb: isAmbulatory(e.Class),
			npi: p.performer(e, r), file: r.file})
	})

	for _, key := range order {
		if p.explicitPrimary[key] {
			continue
		}
		in := byPatient[key]
		c := &claim{kind: KindAttribution, patientKey: key, role: dbgen.CareTeamRolePRIMARY,
			seq: len(p.plan.claims)}
		p.plan.claims = append(p.plan.claims, c)

		npi, start, file, ok := attributePrimary(in.visits)
		if !ok {
			// The skip is counted with the patient's first visit's file.
			c.file = in.visits[0].file
			c.out, c.reason = outSkipped, reasonNoAttribution
			continue
		}
		c.npi, c.start, c.file = npi, start, file
	}
}

func encounterTime(e *encounterJSON) (time.Time, bool) {
	if e.Period == nil {
		return time.Time{}, false
	}
	if t, ok := parseFHIRTime(e.Period.Start); ok {
		return t, true
	}
	return parseFHIRTime(e.Period.End)
}

// isAmbulatory reports whether an Encounter.class (a Coding in R4) is AMB.
func isAmbulatory(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	var c coding
	if err := json.Unmarshal(raw, &c); err != nil {
		return false
	}
	return c.Code == "AMB"
}

// performer returns the NPI of the encounter's primary performer: the
// participants typed PPRF, or, when none is typed PPRF, those without a
// type; the first that resolves to a practitioner with a valid NPI.
func (p *planner) performer(e *encounterJSON, r *resource) string {
	var typed, untyped []*reference
	for i := range e.Participant {
		part := &e.Participant[i]
		if part.Individual == nil {
			continue
		}
		isPPRF := false
		for _, t := range part.Type {
			if t.hasCode("", "PPRF") {
				isPPRF = true
			}
		}
		switch {
		case isPPRF:
			typed = append(typed, part.Individual)
		case len(part.Type) == 0:
			untyped = append(untyped, part.Individual)
		}
	}
	candidates := typed
	if len(candidates) == 0 {
		candidates = untyped
	}
	for _, ref := range candidates {
		if npi, reason, ok := p.memberNPI(ref, r); ok && reason == "" {
			return npi
		}
	}
	return ""
}
