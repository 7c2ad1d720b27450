package fhirimport

import (
	"sort"

	"github.com/careteam/careteam/internal/dbgen"
)

// resolveConflicts marks skipped the claims that would break an invariant
// together with others of the same import: exact duplicates, a provider
// active twice on one patient's team, and two active PRIMARYs of one
// patient. See the package documentation for which one is kept.
func resolveConflicts(claims []*claim) {
	byPatient := map[string][]*claim{}
	for _, c := range claims {
		if c.out == outPending {
			byPatient[c.patientKey] = append(byPatient[c.patientKey], c)
		}
	}
	for _, cs := range byPatient {
		resolvePatient(cs)
	}
}

type claimIdentity struct {
	npi   string
	role  dbgen.CareTeamRole
	start int64
	ended bool
	end   int64
}

func resolvePatient(cs []*claim) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].seq < cs[j].seq })

	// Synthea repeats the same care team in several resources; one row
	// stands for them all.
	seen := map[claimIdentity]bool{}
	for _, c := range cs {
		id := claimIdentity{npi: c.npi, role: c.role, start: c.start.UnixMicro(),
			ended: c.ended}
		if c.ended {
			id.end = c.end.UnixMicro()
		}
		if seen[id] {
			c.out, c.reason = outSkipped, reasonDuplicate
			continue
		}
		seen[id] = true
	}

	// One active assignment per provider: a PRIMARY claim over any other,
	// then the latest start, then the first read.
	bestByNPI := map[string]*claim{}
	for _, c := range cs {
		if c.out != outPending || c.ended {
			continue
		}
		best := bestByNPI[c.npi]
		if best == nil || betterActive(c, best) {
			bestByNPI[c.npi] = c
		}
	}
	for _, c := range cs {
		if c.out == outPending && !c.ended && bestByNPI[c.npi] != c {
			c.out, c.reason = outSkipped, reasonProviderActive
		}
	}

	// One active PRIMARY per patient: the latest start, then the first read.
	var primary *claim
	for _, c := range cs {
		if c.out != outPending || c.ended || c.role != dbgen.CareTeamRolePRIMARY {
			continue
		}
		if primary == nil || c.start.After(primary.start) {
			primary = c
		}
	}
	for _, c := range cs {
		if c.out == outPending && !c.ended && c.role == dbgen.CareTeamRolePRIMARY &&
			c != primary {
			c.out, c.reason = outSkipped, reasonLaterPrimary
		}
	}
}

// betterActive reports whether active claim a should be kept over b for
// the same provider. Claims come in read order, so a tie keeps b.
func betterActive(a, b *claim) bool {
	ap, bp := a.role == dbgen.CareTeamRolePRIMARY, b.role == dbgen.CareTeamRolePRIMARY
	if ap != bp {
		return ap
	}
	return a.start.After(b.start)
}
