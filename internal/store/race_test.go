package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careteam/careteam/internal/store"
)

// racers is how many requests each race runs at once.
const racers = 50

// race runs fn for each of n goroutines, releasing them together, and
// returns when all have finished.
func race(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// primaryRow is one PRIMARY assignment as the table holds it.
type primaryRow struct {
	ID            uuid.UUID
	ProviderID    uuid.UUID
	AssignedAt    time.Time
	RemovedAt     *time.Time
	RemovalReason *string
}

// primaryHistory returns every PRIMARY assignment of the patient, oldest
// first, read straight from the table.
func (f *fixtures) primaryHistory(t *testing.T, patientID uuid.UUID) []primaryRow {
	t.Helper()
	rows, err := f.pool.Query(f.ctx, `
		SELECT id, provider_id, assigned_at, removed_at, removal_reason
		FROM care_team_assignments
		WHERE patient_id = $1 AND role = 'PRIMARY'
		ORDER BY assigned_at, id`, patientID)
	if err != nil {
		t.Fatalf("list primaries: %v", err)
	}
	defer rows.Close()

	var out []primaryRow
	for rows.Next() {
		var r primaryRow
		if err := rows.Scan(&r.ID, &r.ProviderID, &r.AssignedAt, &r.RemovedAt, &r.RemovalReason); err != nil {
			t.Fatalf("scan primary: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list primaries: %v", err)
	}
	return out
}

// TestAddMemberPrimaryRace sends fifty PRIMARY requests for one patient at
// once and expects one to win and every other to name the winner.
func TestAddMemberPrimaryRace(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient(t)
	providers := f.providers(t, racers)
	f.warm(t, racers)

	created := make([]store.Assignment, racers)
	errs := make([]error, racers)
	race(racers, func(i int) {
		created[i], errs[i] = f.store.AddMember(f.ctx, patient.ID, providers[i].ID, store.RolePrimary)
	})

	var winner store.Assignment
	wins := 0
	for i, err := range errs {
		if err == nil {
			winner = created[i]
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d requests won, want exactly 1", wins)
	}

	conflicts, nilIDs := 0, 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		var conflict *store.PrimaryConflictError
		if !errors.As(err, &conflict) {
			t.Errorf("request %d: err = %v, want *store.PrimaryConflictError", i, err)
			continue
		}
		conflicts++
		switch conflict.ExistingAssignmentID {
		case winner.ID:
		case uuid.Nil:
			nilIDs++
		default:
			t.Errorf("request %d: conflict names %s, want the winner %s",
				i, conflict.ExistingAssignmentID, winner.ID)
		}
	}
	if conflicts != racers-1 {
		t.Errorf("%d conflicts, want %d", conflicts, racers-1)
	}
	// uuid.Nil is documented for a PRIMARY that ended before it could be
	// read; nothing ends one here, so it must not happen.
	if nilIDs > 0 {
		t.Errorf("%d conflicts named no PRIMARY, want every one to name the winner", nilIDs)
	}

	if got := f.activePrimaries(t, patient.ID); len(got) != 1 || got[0] != winner.ID {
		t.Fatalf("active primaries = %v, want only the winner %s", got, winner.ID)
	}
	if n := f.assignmentCount(t, patient.ID); n != 1 {
		t.Fatalf("assignments = %d, want 1", n)
	}
}

// TestReassignPrimaryRace sends fifty reassignments of one patient at once.
// They must run one after another: each succeeds, the last to commit is the
// PRIMARY, and every other PRIMARY ended before the next began.
func TestReassignPrimaryRace(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient(t)
	providers := f.providers(t, racers)
	f.warm(t, racers)

	results := make([]store.Reassignment, racers)
	errs := make([]error, racers)
	race(racers, func(i int) {
		results[i], errs[i] = f.store.ReassignPrimary(f.ctx, patient.ID, providers[i].ID, nil)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("reassignment %d: %v", i, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	history := f.primaryHistory(t, patient.ID)
	if len(history) != racers {
		t.Fatalf("%d PRIMARY rows, want %d", len(history), racers)
	}
	checkPrimaryHistory(t, history)

	// Every result but the first replaced exactly one earlier PRIMARY, and no
	// PRIMARY was replaced twice.
	replaced := map[uuid.UUID]bool{}
	firsts := 0
	for _, r := range results {
		if r.Previous == nil {
			firsts++
			continue
		}
		if replaced[r.Previous.ID] {
			t.Errorf("PRIMARY %s was replaced twice", r.Previous.ID)
		}
		replaced[r.Previous.ID] = true
	}
	if firsts != 1 {
		t.Errorf("%d reassignments replaced nobody, want 1", firsts)
	}
	last := history[len(history)-1]
	if replaced[last.ID] {
		t.Errorf("the active PRIMARY %s is reported as replaced", last.ID)
	}
	if len(replaced) != racers-1 {
		t.Errorf("%d PRIMARYs replaced, want %d", len(replaced), racers-1)
	}
}

// TestAddMemberAndReassignPrimaryRace mixes AddMember PRIMARY requests and
// reassignments of one patient and expects one active PRIMARY at the end,
// with every request either done or refused as a PRIMARY conflict.
func TestAddMemberAndReassignPrimaryRace(t *testing.T) {
	t.Parallel()

	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			f := setup(t)
			patient := f.patient(t)
			providers := f.providers(t, racers)
			f.warm(t, racers)

			errs := make([]error, racers)
			race(racers, func(i int) {
				if i%2 == 0 {
					_, errs[i] = f.store.AddMember(f.ctx, patient.ID, providers[i].ID, store.RolePrimary)
					return
				}
				_, errs[i] = f.store.ReassignPrimary(f.ctx, patient.ID, providers[i].ID, nil)
			})

			loggedDetail := false
			for i, err := range errs {
				var conflict *store.PrimaryConflictError
				switch {
				case err == nil:
				case i%2 == 0 && errors.As(err, &conflict):
				case i%2 == 0:
					t.Errorf("AddMember %d: err = %v, want nil or *store.PrimaryConflictError", i, err)
				default:
					t.Errorf("ReassignPrimary %d: err = %v, want nil", i, err)
				}
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Detail != "" && !loggedDetail {
					t.Logf("first failure in detail: %s", pgErr.Detail)
					loggedDetail = true
				}
			}

			history := f.primaryHistory(t, patient.ID)
			checkPrimaryHistory(t, history)
			t.Logf("%d PRIMARY rows; %s", len(history), f.deadlocks(t))
		})
	}
}

// checkPrimaryHistory fails the test unless history, oldest first, has
// exactly one active PRIMARY, the newest, and every other ended with a
// reason before the next one began.
func checkPrimaryHistory(t *testing.T, history []primaryRow) {
	t.Helper()
	if len(history) == 0 {
		t.Fatal("no PRIMARY at all")
	}

	active := 0
	for _, r := range history {
		if r.RemovedAt == nil {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d active PRIMARY rows, want exactly 1", active)
	}

	last := history[len(history)-1]
	if last.RemovedAt != nil {
		t.Fatalf("the active PRIMARY is not the one with the greatest assigned_at (%v)", last.AssignedAt)
	}
	for i, r := range history[:len(history)-1] {
		next := history[i+1]
		if r.RemovalReason == nil || *r.RemovalReason == "" {
			t.Errorf("ended PRIMARY %s has no removal reason", r.ID)
		}
		if r.RemovedAt.Before(r.AssignedAt) {
			t.Errorf("PRIMARY %s removed at %v, before it was assigned at %v",
				r.ID, *r.RemovedAt, r.AssignedAt)
		}
		if next.AssignedAt.Before(*r.RemovedAt) {
			t.Errorf("PRIMARY %s began at %v, before PRIMARY %s ended at %v: they overlap",
				next.ID, next.AssignedAt, r.ID, *r.RemovedAt)
		}
	}
}

// deadlocks says how many deadlocks PostgreSQL has counted in the test's
// database so far. The count may lag by up to a second; it is for the log.
func (f *fixtures) deadlocks(t *testing.T) string {
	t.Helper()
	var n int64
	err := f.pool.QueryRow(f.ctx,
		"SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&n)
	if err != nil {
		return fmt.Sprintf("deadlocks unknown: %v", err)
	}
	return fmt.Sprintf("%d deadlocks counted", n)
}
