package httpapi

import (
	"regexp"
	"testing"
	"time"
)

// The five scenarios of the original remediation, through HTTP.

func TestOnePrimaryPerPatient(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, first, second := f.patient(), f.provider(), f.provider()

	won := expect(t, f.assign(patient, first, "PRIMARY"), 201, "")
	before := f.counts()
	lost := expect(t, f.assign(patient, second, "PRIMARY"), 409, CodePrimaryAlreadyAssigned)

	if lost["existing_assignment_id"] != won["id"] {
		t.Errorf("existing_assignment_id = %v, want %v", lost["existing_assignment_id"], won["id"])
	}
	if f.counts() != before {
		t.Error("the refused PRIMARY wrote something")
	}
	if got := f.activePrimaries(patient); len(got) != 1 || got[0] != won["id"] {
		t.Errorf("active primaries = %v, want only %v", got, won["id"])
	}
}

func TestSeveralSpecialistsAndConsultants(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"SPECIALIST", "CONSULTANT"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			patient := f.patient()
			for i := 0; i < 3; i++ {
				a := expect(t, f.assign(patient, f.provider(), role), 201, "")
				if a["role"] != role || a["removed_at"] != nil || a["patient_id"] != patient {
					t.Fatalf("assignment %d = %v", i, a)
				}
			}
			team := expect(t, f.send("GET", "/v1/patients/"+patient+"/care-team", nil), 200, "")
			if n := len(team["assignments"].([]any)); n != 3 {
				t.Fatalf("team has %d members, want 3", n)
			}
		})
	}
}

func TestRemovedPrimaryAllowsANewOne(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, first, second := f.patient(), f.provider(), f.provider()

	old := expect(t, f.assign(patient, first, "PRIMARY"), 201, "")
	r := f.send("DELETE", "/v1/patients/"+patient+"/care-team/"+old["id"].(string)+"?reason=moved+away", nil)
	expect(t, r, 204, "")
	if len(r.body) != 0 {
		t.Errorf("204 with a body: %s", r.body)
	}

	expect(t, f.assign(patient, second, "PRIMARY"), 201, "")
	// The same provider can come back once the old assignment has ended.
	expect(t, f.assign(patient, first, "SPECIALIST"), 201, "")

	history := expect(t, f.send("GET", "/v1/patients/"+patient+"/care-team/history", nil), 200, "")
	rows := history["assignments"].([]any)
	if len(rows) != 3 {
		t.Fatalf("history has %d rows, want 3", len(rows))
	}
	ended := rows[len(rows)-1].(map[string]any)
	if ended["id"] != old["id"] || ended["removal_reason"] != "moved away" || ended["removed_at"] == nil {
		t.Errorf("oldest history row = %v, want the ended PRIMARY with its reason", ended)
	}

	// Removing it again is a 404: it is no longer active.
	expect(t, f.send("DELETE", "/v1/patients/"+patient+"/care-team/"+old["id"].(string), nil),
		404, CodeAssignmentNotFound)
}

func TestReassignmentWorkflow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, a, b, c := f.patient(), f.provider(), f.provider(), f.provider()
	path := "/v1/patients/" + patient + "/care-team/primary"

	// No PRIMARY yet: the new one begins, previous is null.
	first := expect(t, f.send("PUT", path, map[string]any{"provider_id": a}), 200, "")
	if first["previous"] != nil || first["assignment"].(map[string]any)["role"] != "PRIMARY" {
		t.Fatalf("first reassignment = %v", first)
	}
	firstID := first["assignment"].(map[string]any)["id"]

	// Already the PRIMARY: nothing changes.
	same := expect(t, f.send("PUT", path, map[string]any{"provider_id": a}), 200, "")
	if same["previous"] != nil || same["assignment"].(map[string]any)["id"] != firstID {
		t.Fatalf("same-provider reassignment = %v", same)
	}

	// A replaces by B: A's assignment ends with the given reason, and B's
	// begins at that instant: no gap, no overlap.
	second := expect(t, f.send("PUT", path, map[string]any{"provider_id": b, "reason": "retired"}), 200, "")
	prev := second["previous"].(map[string]any)
	if prev["id"] != firstID || prev["removal_reason"] != "retired" || prev["removed_at"] == nil {
		t.Fatalf("previous = %v", prev)
	}
	if began := second["assignment"].(map[string]any)["assigned_at"]; began != prev["removed_at"] {
		t.Errorf("the new PRIMARY began at %v, the old one ended at %v", began, prev["removed_at"])
	}

	// C is a SPECIALIST: promoted, the SPECIALIST row ends as promoted.
	spec := expect(t, f.assign(patient, c, "SPECIALIST"), 201, "")
	third := expect(t, f.send("PUT", path, map[string]any{"provider_id": c}), 200, "")
	if third["previous"].(map[string]any)["removal_reason"] != "reassigned" {
		t.Errorf("default reason = %v, want reassigned", third["previous"])
	}

	history := expect(t, f.send("GET", "/v1/patients/"+patient+"/care-team/history", nil), 200, "")
	var promoted map[string]any
	for _, row := range history["assignments"].([]any) {
		if row.(map[string]any)["id"] == spec["id"] {
			promoted = row.(map[string]any)
		}
	}
	if promoted == nil || promoted["removal_reason"] != "promoted to PRIMARY" {
		t.Errorf("the SPECIALIST row = %v, want ended as promoted to PRIMARY", promoted)
	}

	team := expect(t, f.send("GET", "/v1/patients/"+patient+"/care-team", nil), 200, "")
	members := team["assignments"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["provider_id"] != c {
		t.Errorf("team = %v, want C alone as PRIMARY", members)
	}
}

var instantFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// TestInstantsAreUTC checks the wire format in a process and database that
// both run in other zones.
func TestInstantsAreUTC(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, provider := f.patient(), f.provider()
	a := expect(t, f.assign(patient, provider, "PRIMARY"), 201, "")

	s, _ := a["assigned_at"].(string)
	if !instantFormat.MatchString(s) {
		t.Fatalf("assigned_at = %q, want RFC 3339 UTC with Z", s)
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(at); d < -time.Minute || d > time.Minute {
		t.Errorf("assigned_at %s is %s away from now: a zone was lost", s, d)
	}

	p := expect(t, f.send("GET", "/v1/patients/"+patient, nil), 200, "")
	if !instantFormat.MatchString(p["created_at"].(string)) || p["birth_date"] != nil || p["mrn"] != nil {
		t.Errorf("patient = %v", p)
	}
}
