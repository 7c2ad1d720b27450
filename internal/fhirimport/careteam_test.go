package fhirimport

import (
	"context"
	"strings"
	"testing"

	"github.com/careteam/careteam/internal/testdb"
)

const practitioners = `{"resourceType":"Practitioner","id":"a","identifier":[{"system":` +
	`"http://hl7.org/fhir/sid/us-npi","value":"1245319599"}],"name":[{"given":["A"],"family":"Ay"}]}
{"resourceType":"Practitioner","id":"b","identifier":[{"system":` +
	`"http://hl7.org/fhir/sid/us-npi","value":"9941339100"}],"name":[{"given":["B"],"family":"Be"}]}
{"resourceType":"PractitionerRole","id":"rb","practitioner":{"reference":"Practitioner/b"}}
`

// careTeamBundle has two active PRIMARYs (the later one must win), a
// participant through a PractitionerRole in another file, a contained
// practitioner, and an ended team given as status.
func careTeamBundle(secondStatus string) string {
	return `{"resourceType":"Bundle","entry":[
 {"fullUrl":"urn:uuid:pat","resource":{"resourceType":"Patient","id":"pat",
  "identifier":[{"system":"urn:test","value":"p-1"}],
  "name":[{"use":"official","given":["P"],"family":"Pe"}]}},
 {"resource":{"resourceType":"CareTeam","id":"t1","status":"active",
  "period":{"start":"2020-01-01"},"subject":{"reference":"urn:uuid:pat"},
  "participant":[{"role":[{"coding":[{"system":"http://snomed.info/sct",
   "code":"453231000124104"}]}],
   "member":{"reference":"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1245319599"}}]}},
 {"resource":{"resourceType":"CareTeam","id":"t2","status":"active",
  "period":{"start":"2021-01-01T10:00:00+05:30"},"subject":{"reference":"Patient/pat"},
  "participant":[{"role":[{"coding":[{"system":"http://snomed.info/sct",
   "code":"453231000124104"}]}],"member":{"reference":"PractitionerRole/rb"}}]}},
 {"resource":{"resourceType":"CareTeam","id":"t3","status":"` + secondStatus + `",
  "period":{"start":"2019-01-01T00:00:00Z","end":"2019-06-01T00:00:00Z"},
  "subject":{"reference":"urn:uuid:pat"},
  "contained":[{"resourceType":"Practitioner","id":"pr1","identifier":[{"system":
   "http://hl7.org/fhir/sid/us-npi","value":"9999944819"}],"name":[{"given":["C"],
   "family":"Ce"}]}],
  "participant":[{"role":[{"coding":[{"system":
   "http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"CON"}]}],
   "member":{"reference":"#pr1"}},
   {"member":{"reference":"urn:uuid:pat"}}]}},
 {"resource":{"resourceType":"CareTeam","id":"t4","status":"entered-in-error",
  "subject":{"reference":"urn:uuid:pat"},
  "participant":[{"member":{"reference":"Practitioner/a"}}]}}]}`
}

func TestCareTeams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "Practitioner.ndjson", practitioners)
	bundle := write(t, dir, "team.json", careTeamBundle("active"))
	pool := testdb.Pool(t)
	ctx := context.Background()

	rep, err := Import(ctx, pool, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(rep.Kinds[KindCareTeam]); got != [4]int{2, 0, 0, 2} {
		t.Errorf("care team %v %v, want 2 loaded, 2 skipped", got,
			rep.Kinds[KindCareTeam].SkipReasons)
	}
	if r := rep.Kinds[KindCareTeam].SkipReasons; r[reasonLaterPrimary] != 1 ||
		r[reasonEnteredInError] != 1 {
		t.Errorf("reasons %v", r)
	}

	team := func() string {
		rows, err := pool.Query(ctx, `
			SELECT pr.npi || ' ' || a.role || ' ' || (a.removed_at IS NOT NULL)::text
			FROM care_team_assignments AS a JOIN providers AS pr ON pr.id = a.provider_id
			ORDER BY pr.npi, a.assigned_at`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return strings.Join(out, ", ")
	}
	// t3's period has ended, so its assignment is ended even with status
	// active; the later PRIMARY (b, through the PractitionerRole) wins.
	want := "9941339100 PRIMARY false, 9999944819 CONSULTANT true"
	if got := team(); got != want {
		t.Errorf("team %q, want %q", got, want)
	}

	again, err := Import(ctx, pool, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Total() != 0 {
		t.Errorf("second run wrote %d", again.Total())
	}

	// The source now says inactive: nothing changes, as the row is
	// already ended at the same time.
	write(t, dir, "team.json", careTeamBundle("inactive"))
	third, err := Import(ctx, pool, []string{bundle}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if third.Total() != 0 || team() != want {
		t.Errorf("third run wrote %d, team %q", third.Total(), team())
	}
}
