package httpapi

import (
	"context"
	"sync"
	"testing"
)

// raceSize is how many requests each race sends at once.
const raceSize = 50

// race sends n requests at once, made by req(i), and returns the answers.
func (f *fixture) race(n int, req func(i int) response) []response {
	f.t.Helper()
	start := make(chan struct{})
	answers := make([]response, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = req(i)
		}()
	}
	close(start)
	wg.Wait()
	return answers
}

func TestRaceConcurrentPrimaries(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient()
	providers := make([]string, raceSize)
	for i := range providers {
		providers[i] = f.provider()
	}

	answers := f.race(raceSize, func(i int) response {
		return f.assign(patient, providers[i], "PRIMARY")
	})

	var winner string
	statuses := map[int]int{}
	for _, a := range answers {
		statuses[a.status]++
		if a.status == 201 {
			winner = a.json(t)["id"].(string)
		}
	}
	if statuses[201] != 1 || statuses[409] != raceSize-1 {
		t.Fatalf("statuses = %v, want one 201 and %d 409", statuses, raceSize-1)
	}
	for _, a := range answers {
		if a.status == 409 {
			p := expect(t, a, 409, CodePrimaryAlreadyAssigned)
			if p["existing_assignment_id"] != winner {
				t.Errorf("existing_assignment_id = %v, want the winner %s", p["existing_assignment_id"], winner)
			}
		}
	}
	if got := f.activePrimaries(patient); len(got) != 1 || got[0] != winner {
		t.Errorf("active primaries = %v, want only %s", got, winner)
	}
}

func TestRaceConcurrentReassignments(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient()
	providers := make([]string, raceSize)
	for i := range providers {
		providers[i] = f.provider()
	}
	expect(t, f.assign(patient, providers[0], "PRIMARY"), 201, "")

	answers := f.race(raceSize, func(i int) response {
		return f.send("PUT", "/v1/patients/"+patient+"/care-team/primary",
			map[string]any{"provider_id": providers[i]})
	})
	for _, a := range answers {
		expect(t, a, 200, "")
	}

	active := f.activePrimaries(patient)
	if len(active) != 1 {
		t.Fatalf("active primaries = %v, want exactly one", active)
	}

	// The PRIMARY left standing is the last to commit: the newest start.
	var newest string
	err := f.pool.QueryRow(context.Background(), `
		SELECT id::text FROM care_team_assignments
		WHERE patient_id = $1 AND role = 'PRIMARY'
		ORDER BY assigned_at DESC LIMIT 1`, patient).Scan(&newest)
	if err != nil {
		t.Fatal(err)
	}
	if active[0] != newest {
		t.Errorf("active PRIMARY %s is not the last to begin (%s)", active[0], newest)
	}

	var endedWithoutReason int
	err = f.pool.QueryRow(context.Background(), `
		SELECT count(*) FROM care_team_assignments
		WHERE patient_id = $1 AND removed_at IS NOT NULL AND removal_reason IS NULL`,
		patient).Scan(&endedWithoutReason)
	if err != nil || endedWithoutReason != 0 {
		t.Errorf("%d ended rows without a reason (%v)", endedWithoutReason, err)
	}
}

// TestRaceMixedWrites races additions and reassignments of one patient; the
// rule holds and nothing answers 500.
func TestRaceMixedWrites(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient()
	providers := make([]string, raceSize)
	for i := range providers {
		providers[i] = f.provider()
	}

	answers := f.race(raceSize, func(i int) response {
		if i%2 == 0 {
			return f.assign(patient, providers[i], "PRIMARY")
		}
		return f.send("PUT", "/v1/patients/"+patient+"/care-team/primary",
			map[string]any{"provider_id": providers[i]})
	})
	for _, a := range answers {
		switch a.status {
		case 200, 201:
		case 409:
			expect(t, a, 409, CodePrimaryAlreadyAssigned)
		default:
			t.Errorf("unexpected answer %d: %s", a.status, a.body)
		}
	}
	if got := f.activePrimaries(patient); len(got) != 1 {
		t.Errorf("active primaries = %v, want exactly one", got)
	}
}
