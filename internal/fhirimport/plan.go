package fhirimport

import (
	"sort"
	"strings"
	"time"

	"github.com/careteam/careteam/internal/dbgen"
	"github.com/careteam/careteam/internal/npi"
)

// Reasons a record is skipped while planning. They appear in the report.
const (
	reasonNoNPI            = "no NPI"
	reasonNUL              = "text holds a NUL character, which PostgreSQL cannot store"
	reasonInvalidNPI       = "invalid NPI"
	reasonNPIConflict      = "NPI already read from another practitioner record (first wins)"
	reasonPatientConflict  = "patient already read from another record with other details (first wins)"
	reasonEnteredInError   = "care team entered in error"
	reasonProposed         = "care team only proposed"
	reasonNoSubject        = "care team subject: "
	reasonSubjectNotPat    = "care team subject is not a Patient"
	reasonPatientUnusable  = "patient record was skipped"
	reasonMemberPrefix     = "member: "
	reasonNoEndDate        = "ended care team has no end date"
	reasonDuplicate        = "duplicate care team entry"
	reasonProviderActive   = "provider already active on the patient's care team"
	reasonLaterPrimary     = "another active PRIMARY starts later (latest start wins)"
	reasonNoAttribution    = "no ambulatory encounter by a practitioner with a valid NPI in the window"
	reasonRoleNotPractitnr = "PractitionerRole has no practitioner"
	removalReasonEnded     = "care team ended in source"
)

// patientRec is a Patient as it will be written.
type patientRec struct {
	file                 *sourceFile
	key                  string // external_ref
	mrn                  string
	given, family, birth string
	out                  outcome
	reason               string
	mrnCandidate         string
}

// providerRec is a Practitioner as it will be written.
type providerRec struct {
	file                     *sourceFile
	npi, given, family, spec string
	out                      outcome
	reason                   string
}

// claim is one assignment the source asks for: a CareTeam participant or
// an attribution from encounters.
type claim struct {
	file       *sourceFile
	kind       string
	patientKey string
	npi        string
	role       dbgen.CareTeamRole
	start      time.Time
	ended      bool
	end        time.Time
	seq        int // order read, for "first seen" ties
	out        outcome
	reason     string
}

// plan is everything the importer will try to write, per file, with the
// records already known to be unusable marked skipped.
type plan struct {
	patients  []*patientRec
	providers []*providerRec
	claims    []*claim
}

type planner struct {
	ix  *index
	now time.Time

	plan plan

	patientKeyOf    map[*resource]string
	skippedPatients map[*resource]bool
	specialtyOf     map[*resource]string
	specialtyOfNPI  map[string]string
	explicitPrimary map[string]bool
}

// buildPlan reads the files, in load order, into records and claims.
func buildPlan(files []*sourceFile, now time.Time) *plan {
	p := &planner{
		ix:              newIndex(),
		now:             now,
		patientKeyOf:    map[*resource]string{},
		skippedPatients: map[*resource]bool{},
		specialtyOf:     map[*resource]string{},
		specialtyOfNPI:  map[string]string{},
		explicitPrimary: map[string]bool{},
	}
	for _, f := range files {
		for _, r := range f.resources {
			p.ix.add(r)
			for _, c := range r.contained {
				c.file = f
			}
		}
	}

	p.specialties(files)
	p.patients(files)
	p.providers(files)
	p.careTeams(files)
	p.attribute(files)
	resolveConflicts(p.plan.claims)
	return &p.plan
}

// each calls fn for every resource of type typ, contained ones included, in
// load order.
func each(files []*sourceFile, typ string, fn func(*resource)) {
	for _, f := range files {
		for _, r := range f.resources {
			if r.typ == typ {
				fn(r)
			}
			for _, c := range sortedContained(r) {
				if c.typ == typ {
					fn(c)
				}
			}
		}
	}
}

func sortedContained(r *resource) []*resource {
	if len(r.contained) == 0 {
		return nil
	}
	out := make([]*resource, 0, len(r.contained))
	for _, c := range r.contained {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// specialties takes a practitioner's specialty from the first
// PractitionerRole that names it.
func (p *planner) specialties(files []*sourceFile) {
	each(files, "PractitionerRole", func(r *resource) {
		spec := ""
		for _, s := range r.role.Specialty {
			if spec = truncate(s.label(), 200); spec != "" {
				break
			}
		}
		if spec == "" || r.role.Practitioner == nil {
			return
		}
		t, reason := p.ix.resolve(r.role.Practitioner, r)
		switch {
		case reason != "":
		case t.res != nil:
			if _, ok := p.specialtyOf[t.res]; !ok {
				p.specialtyOf[t.res] = spec
			}
		case t.npi != "":
			if _, ok := p.specialtyOfNPI[t.npi]; !ok {
				p.specialtyOfNPI[t.npi] = spec
			}
		}
	})
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// patientKey is a patient's external_ref: its medical record number
// identifier, else its first identifier, as "system|value"; else
// "Patient/<id>". Identifiers come first because they survive a re-export
// under new resource ids.
func patientKey(r *resource) string {
	for _, id := range r.patient.Identifier {
		if isMRN(id) && id.Value != "" {
			return id.System + "|" + id.Value
		}
	}
	for _, id := range r.patient.Identifier {
		if id.System != "" && id.Value != "" {
			return id.System + "|" + id.Value
		}
	}
	if r.id != "" {
		return "Patient/" + r.id
	}
	return ""
}

func isMRN(id identifier) bool {
	return id.Type != nil && id.Type.hasCode(systemV2Type, "MR")
}

func (p *planner) patients(files []*sourceFile) {
	byKey := map[string]*patientRec{}
	mrnOwners := map[string]map[string]bool{}

	each(files, "Patient", func(r *resource) {
		rec := &patientRec{file: r.file, key: patientKey(r)}
		rec.given, rec.family = pickName(r.patient.Name)
		rec.birth = parseFHIRDate(r.patient.BirthDate)
		p.plan.patients = append(p.plan.patients, rec)

		if rec.key == "" {
			rec.out, rec.reason = outSkipped, "no identifier and no id"
			p.skippedPatients[r] = true
			return
		}
		if problem := nameProblem(rec.given, rec.family); problem != "" {
			rec.out, rec.reason = outSkipped, problem
			p.skippedPatients[r] = true
			return
		}
		if strings.ContainsRune(rec.key, 0) {
			rec.out, rec.reason = outSkipped, reasonNUL
			p.skippedPatients[r] = true
			return
		}
		rec.mrnCandidate = uniqueMRN(r.patient.Identifier)
		if strings.ContainsRune(rec.mrnCandidate, 0) {
			rec.mrnCandidate = ""
		}

		if first, ok := byKey[rec.key]; ok {
			p.patientKeyOf[r] = rec.key
			if first.given == rec.given && first.family == rec.family &&
				first.birth == rec.birth && first.mrnCandidate == rec.mrnCandidate {
				rec.out = outUnchanged
			} else {
				rec.out, rec.reason = outSkipped, reasonPatientConflict
			}
			return
		}
		byKey[rec.key] = rec
		p.patientKeyOf[r] = rec.key
		if rec.mrnCandidate != "" {
			if mrnOwners[rec.mrnCandidate] == nil {
				mrnOwners[rec.mrnCandidate] = map[string]bool{}
			}
			mrnOwners[rec.mrnCandidate][rec.key] = true
		}
	})

	// An MRN that two patients of this import claim belongs to neither.
	for _, rec := range p.plan.patients {
		if rec.out == outPending && len(mrnOwners[rec.mrnCandidate]) == 1 {
			rec.mrn = rec.mrnCandidate
		}
	}
}

// uniqueMRN returns the value of the patient's MR identifiers when they
// agree on one that fits the column, else "".
func uniqueMRN(ids []identifier) string {
	mrn := ""
	for _, id := range ids {
		if !isMRN(id) {
			continue
		}
		v := strings.TrimSpace(id.Value)
		if v == "" || (mrn != "" && v != mrn) {
			return ""
		}
		mrn = v
	}
	if len([]rune(mrn)) > 64 {
		return ""
	}
	return mrn
}

// practitionerNPI returns the NPI of a Practitioner resource, or why it has
// none that the importer can use.
func practitionerNPI(r *resource) (string, string) {
	found := false
	for _, id := range r.practitioner.Identifier {
		if id.System != systemNPI {
			continue
		}
		found = true
		if v := strings.TrimSpace(id.Value); npi.Valid(v) {
			return v, ""
		}
	}
	if found {
		return "", reasonInvalidNPI
	}
	return "", reasonNoNPI
}

func (p *planner) providers(files []*sourceFile) {
	byNPI := map[string]*providerRec{}
	each(files, "Practitioner", func(r *resource) {
		rec := &providerRec{file: r.file}
		p.plan.providers = append(p.plan.providers, rec)

		number, reason := practitionerNPI(r)
		if reason != "" {
			rec.out, rec.reason = outSkipped, reason
			return
		}
		rec.npi = number
		rec.given, rec.family = pickName(r.practitioner.Name)
		if problem := nameProblem(rec.given, rec.family); problem != "" {
			rec.out, rec.reason = outSkipped, problem
			return
		}
		rec.spec = p.specialtyOf[r]
		if rec.spec == "" {
			rec.spec = p.specialtyOfNPI[number]
		}
		if strings.ContainsRune(rec.spec, 0) {
			rec.spec = ""
		}

		if first, ok := byNPI[number]; ok {
			if first.given == rec.given && first.family == rec.family {
				rec.out = outUnchanged
			} else {
				rec.out, rec.reason = outSkipped, reasonNPIConflict
			}
			return
		}
		byNPI[number] = rec
	})
}

// memberNPI resolves a CareTeam member or an Encounter individual to the
// NPI of a practitioner. isPractitioner is false when the reference names
// something else (the patient, an organization), which is no assignment
// at all.
func (p *planner) memberNPI(ref *reference, from *resource) (number, reason string,
	isPractitioner bool) {
	t, reason := p.ix.resolve(ref, from)
	if reason != "" {
		switch t.typ {
		case "", "Practitioner", "PractitionerRole":
			return "", reasonMemberPrefix + reason, true
		}
		return "", "", false
	}
	if t.res != nil && t.res.typ == "PractitionerRole" {
		if t.res.role.Practitioner == nil {
			return "", reasonMemberPrefix + reasonRoleNotPractitnr, true
		}
		t, reason = p.ix.resolve(t.res.role.Practitioner, t.res)
		if reason != "" {
			return "", reasonMemberPrefix + reason, true
		}
	}
	switch {
	case t.res == nil && t.npi != "":
		if !npi.Valid(t.npi) {
			return "", reasonInvalidNPI, true
		}
		return t.npi, "", true
	case t.res != nil && t.res.typ == "Practitioner":
		npi, reason := practitionerNPI(t.res)
		return npi, reason, true
	}
	return "", "", false
}

// memberRole returns the PractitionerRole a member reference names, if any.
func (p *planner) memberRole(ref *reference, from *resource) *practitionerRoleJSON {
	t, reason := p.ix.resolve(ref, from)
	if reason == "" && t.res != nil && t.res.typ == "PractitionerRole" {
		return t.res.role
	}
	return nil
}

// subjectKey resolves a subject reference to a patient's external_ref.
func (p *planner) subjectKey(ref *reference, from *resource) (string, string) {
	t, reason := p.ix.resolve(ref, from)
	if reason != "" {
		return "", reasonNoSubject + reason
	}
	if t.res == nil || t.res.typ != "Patient" {
		return "", reasonSubjectNotPat
	}
	if p.skippedPatients[t.res] {
		return "", reasonPatientUnusable
	}
	return p.patientKeyOf[t.res], ""
}

func (p *planner) careTeams(files []*sourceFile) {
	each(files, "CareTeam", func(r *resource) {
		ct := r.careTeam
		teamReason := ""
		switch ct.Status {
		case "entered-in-error":
			teamReason = reasonEnteredInError
		case "proposed":
			teamReason = reasonProposed
		}
		patientKey := ""
		if teamReason == "" {
			patientKey, teamReason = p.subjectKey(ct.Subject, r)
		}

		for i := range ct.Participant {
			part := &ct.Participant[i]
			npi, reason, isPractitioner := p.memberNPI(part.Member, r)
			if !isPractitioner {
				continue
			}
			c := &claim{file: r.file, kind: KindCareTeam, patientKey: patientKey,
				npi: npi, seq: len(p.plan.claims)}
			p.plan.claims = append(p.plan.claims, c)
			if teamReason != "" {
				reason = teamReason
			}
			if reason != "" {
				c.out, c.reason = outSkipped, reason
				continue
			}
			c.role = roleFor(part.Role, p.memberRole(part.Member, r))
			if c.role == dbgen.CareTeamRolePRIMARY {
				p.explicitPrimary[patientKey] = true
			}
			if reason := p.claimTimes(c, ct, part); reason != "" {
				c.out, c.reason = outSkipped, reason
			}
		}
	})
}

// claimTimes sets the start and, for an ended team, the end of an
// assignment from the participant's period, else the team's. An active
// team without a start starts at the time of the import: the schema needs
// a start, and an active assignment is matched without it on a later run.
func (p *planner) claimTimes(c *claim, ct *careTeamJSON, part *careTeamParticipantJSON) string {
	var startS, endS string
	if part.Period != nil {
		startS, endS = part.Period.Start, part.Period.End
	}
	if ct.Period != nil {
		if startS == "" {
			startS = ct.Period.Start
		}
		if endS == "" {
			endS = ct.Period.End
		}
	}
	start, hasStart := parseFHIRTime(startS)
	end, hasEnd := parseFHIRTime(endS)
	if !hasEnd && ct.Status == "inactive" {
		end, hasEnd = parseFHIRTime(ct.Meta.LastUpdated)
	}

	// A team is over when the source says so or its end has passed; an
	// end still to come leaves it active for now.
	c.ended = ct.Status == "inactive" || (hasEnd && !end.After(p.now))
	switch {
	case c.ended && !hasEnd:
		return reasonNoEndDate
	case c.ended:
		if !hasStart {
			start = end
		}
		if end.Before(start) {
			end = start
		}
		c.start, c.end = start, end
	case hasStart:
		c.start = start
	default:
		c.start = p.now.Truncate(time.Microsecond)
	}
	return ""
}

// Role codes. See the package documentation for the rule.
func isPrimaryCode(c codeableConcept) bool {
	return c.hasCode(systemSNOMED, "453231000124104") || // Primary care provider
		c.hasCode(systemSNOMED, "446050000") || // Primary care physician
		c.hasCode(systemV3PartFunc, "PCP") ||
		c.hasCode(systemV3PartType, "PCP")
}

func isConsultantCode(c codeableConcept) bool {
	return c.hasCode(systemV3PartType, "CON") || c.hasCode(systemV3PartFunc, "CON")
}

// roleFor maps a participant's roles, else the codes of the
// PractitionerRole it names, to a care-team role.
func roleFor(roles []codeableConcept, pr *practitionerRoleJSON) dbgen.CareTeamRole {
	if r, ok := roleFromCodes(roles); ok {
		return r
	}
	if pr != nil {
		if r, ok := roleFromCodes(pr.Code); ok {
			return r
		}
	}
	return dbgen.CareTeamRoleSPECIALIST
}

func roleFromCodes(cs []codeableConcept) (dbgen.CareTeamRole, bool) {
	for _, c := range cs {
		if isPrimaryCode(c) {
			return dbgen.CareTeamRolePRIMARY, true
		}
	}
	for _, c := range cs {
		if isConsultantCode(c) {
			return dbgen.CareTeamRoleCONSULTANT, true
		}
	}
	return "", false
}
