package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careteam/careteam/internal/dbgen"
	"github.com/careteam/careteam/internal/store"
)

// TestHistoryKeepsEndedAssignments ends and replaces members in every way
// the store can and expects every assignment still to be there.
func TestHistoryKeepsEndedAssignments(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient(t)
	p := f.providers(t, 4)

	first := f.addMember(t, patient.ID, p[0].ID, store.RolePrimary)
	specialist := f.addMember(t, patient.ID, p[1].ID, store.RoleSpecialist)
	consultant := f.addMember(t, patient.ID, p[2].ID, store.RoleConsultant)
	if _, err := f.store.EndMember(f.ctx, patient.ID, consultant.ID, ptr("no longer needed")); err != nil {
		t.Fatalf("end consultant: %v", err)
	}
	promoted, err := f.store.ReassignPrimary(f.ctx, patient.ID, p[1].ID, nil)
	if err != nil {
		t.Fatalf("promote specialist: %v", err)
	}
	last, err := f.store.ReassignPrimary(f.ctx, patient.ID, p[3].ID, ptr("handed over"))
	if err != nil {
		t.Fatalf("reassign: %v", err)
	}

	history, err := f.store.CareTeamHistory(f.ctx, patient.ID)
	if err != nil {
		t.Fatalf("care team history: %v", err)
	}
	want := []uuid.UUID{first.ID, specialist.ID, consultant.ID, promoted.Assignment.ID, last.Assignment.ID}
	if len(history) != len(want) {
		t.Fatalf("history has %d rows, want %d", len(history), len(want))
	}
	byID := map[uuid.UUID]store.Assignment{}
	for _, a := range history {
		byID[a.ID] = a
	}
	for _, id := range want {
		if _, ok := byID[id]; !ok {
			t.Fatalf("assignment %s is missing from the history", id)
		}
	}

	checkEnded(t, ptr(byID[first.ID]), first.ID, store.DefaultReassignReason)
	checkEnded(t, ptr(byID[specialist.ID]), specialist.ID, "promoted to PRIMARY")
	checkEnded(t, ptr(byID[consultant.ID]), consultant.ID, "no longer needed")
	checkEnded(t, ptr(byID[promoted.Assignment.ID]), promoted.Assignment.ID, "handed over")
	checkActivePrimary(t, byID[last.Assignment.ID], patient.ID, p[3].ID)

	for i := 1; i < len(history); i++ {
		if history[i].AssignedAt.After(history[i-1].AssignedAt) {
			t.Fatalf("history is not newest first: %v after %v",
				history[i].AssignedAt, history[i-1].AssignedAt)
		}
	}
	if n := f.assignmentCount(t, patient.ID); n != len(want) {
		t.Fatalf("table holds %d assignments, want %d", n, len(want))
	}
}

// TestEndMemberRefusesWhatItCannotEnd expects ErrAssignmentNotFound or
// ErrPatientNotFound, and no change, for every assignment EndMember must not
// end.
func TestEndMemberRefusesWhatItCannotEnd(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, other := f.patient(t), f.patient(t)
	ended := f.addMember(t, patient.ID, f.provider(t).ID, store.RoleSpecialist)
	if _, err := f.store.EndMember(f.ctx, patient.ID, ended.ID, ptr("first end")); err != nil {
		t.Fatalf("end: %v", err)
	}
	othersPrimary := f.addMember(t, other.ID, f.provider(t).ID, store.RolePrimary)

	for _, tc := range []struct {
		name         string
		patientID    uuid.UUID
		assignmentID uuid.UUID
		want         error
	}{
		{"already ended", patient.ID, ended.ID, store.ErrAssignmentNotFound},
		{"another patient's", patient.ID, othersPrimary.ID, store.ErrAssignmentNotFound},
		{"unknown assignment", patient.ID, uuid.New(), store.ErrAssignmentNotFound},
		{"unknown patient", uuid.New(), othersPrimary.ID, store.ErrPatientNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			_, err := f.store.EndMember(f.ctx, tc.patientID, tc.assignmentID, ptr("second end"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if f.snapshot(t) != before {
				t.Fatal("a refused EndMember changed the tables")
			}
		})
	}

	checkEnded(t, f.assignment(t, patient.ID, ended.ID), ended.ID, "first end")
	if got := f.activePrimaries(t, other.ID); len(got) != 1 || got[0] != othersPrimary.ID {
		t.Fatalf("the other patient's primaries = %v, want %s still active", got, othersPrimary.ID)
	}
}

// TestAssignmentsCannotBeDeletedOrRewritten goes around the store with plain
// SQL and expects the guard trigger to refuse to lose history.
func TestAssignmentsCannotBeDeletedOrRewritten(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient(t)
	active := f.addMember(t, patient.ID, f.provider(t).ID, store.RolePrimary)
	ended := f.addMember(t, patient.ID, f.provider(t).ID, store.RoleSpecialist)
	if _, err := f.store.EndMember(f.ctx, patient.ID, ended.ID, ptr("done")); err != nil {
		t.Fatalf("end: %v", err)
	}
	before := f.snapshot(t)

	for _, tc := range []struct {
		name string
		sql  string
		id   uuid.UUID
	}{
		{"delete active", "DELETE FROM care_team_assignments WHERE id = $1", active.ID},
		{"delete ended", "DELETE FROM care_team_assignments WHERE id = $1", ended.ID},
		{"change role", "UPDATE care_team_assignments SET role = 'CONSULTANT' WHERE id = $1", active.ID},
		{"move start", "UPDATE care_team_assignments SET assigned_at = assigned_at - interval '1 day' WHERE id = $1", active.ID},
		{"reopen ended", "UPDATE care_team_assignments SET removed_at = NULL, removal_reason = NULL WHERE id = $1", ended.ID},
		{"rewrite reason", "UPDATE care_team_assignments SET removal_reason = 'other' WHERE id = $1", ended.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.pool.Exec(f.ctx, tc.sql, tc.id)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23001" {
				t.Fatalf("err = %v, want restrict_violation (23001) from the guard trigger", err)
			}
		})
	}
	if f.snapshot(t) != before {
		t.Fatal("the refused statements changed the tables")
	}
}

// TestRemovedAtIsNeverBeforeAssignedAt checks the rows the store ends and
// the check constraint that backs them.
func TestRemovedAtIsNeverBeforeAssignedAt(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient(t)

	for range 5 {
		a := f.addMember(t, patient.ID, f.provider(t).ID, store.RoleConsultant)
		ended, err := f.store.EndMember(f.ctx, patient.ID, a.ID, nil)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if ended.RemovedAt == nil || ended.RemovedAt.Before(ended.AssignedAt) {
			t.Fatalf("ended = %+v, want removed_at >= assigned_at", ended)
		}
		if ended.RemovalReason != nil {
			t.Fatalf("removal reason = %q, want nil when none was given", *ended.RemovalReason)
		}
	}

	var bad int
	err := f.pool.QueryRow(f.ctx, `
		SELECT count(*) FROM care_team_assignments
		WHERE removed_at IS NULL OR removed_at < assigned_at`).Scan(&bad)
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	if bad != 0 {
		t.Fatalf("%d rows are active or ended before they began, want 0", bad)
	}

	open := f.addMember(t, patient.ID, f.provider(t).ID, store.RoleSpecialist)
	_, err = f.pool.Exec(f.ctx, `
		UPDATE care_team_assignments SET removed_at = assigned_at - interval '1 second'
		WHERE id = $1`, open.ID)
	checkViolation(t, err, "23514", "ck_care_team_assignments_removed_after_assigned")
}

// TestTimestampsAreInstants compares the times the store returns with the
// test's clock and with epochs computed in the database, whose TimeZone
// differs from the process's: the instant must survive, the zone does not
// matter.
func TestTimestampsAreInstants(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const window = 5 * time.Second

	before := time.Now()
	patient := f.patient(t)
	added := f.addMember(t, patient.ID, f.provider(t).ID, store.RolePrimary)
	ended, err := f.store.EndMember(f.ctx, patient.ID, added.ID, nil)
	if err != nil {
		t.Fatalf("end: %v", err)
	}
	reassigned, err := f.store.ReassignPrimary(f.ctx, patient.ID, f.provider(t).ID, nil)
	if err != nil {
		t.Fatalf("reassign: %v", err)
	}
	after := time.Now()

	times := map[string]time.Time{
		"patient created_at":          patient.CreatedAt,
		"added assigned_at":           added.AssignedAt,
		"ended removed_at":            *ended.RemovedAt,
		"reassigned assigned_at":      reassigned.Assignment.AssignedAt,
		"history's first assigned_at": f.assignment(t, patient.ID, added.ID).AssignedAt,
	}
	for name, got := range times {
		if got.Before(before.Add(-window)) || got.After(after.Add(window)) {
			t.Errorf("%s = %v, want between %v and %v", name, got, before, after)
		}
	}

	for _, a := range []store.Assignment{ended, reassigned.Assignment} {
		var assignedMicros int64
		err := f.pool.QueryRow(f.ctx, `
			SELECT (extract(epoch FROM assigned_at) * 1000000)::bigint
			FROM care_team_assignments WHERE id = $1`, a.ID).Scan(&assignedMicros)
		if err != nil {
			t.Fatalf("epoch: %v", err)
		}
		if a.AssignedAt.UnixMicro() != assignedMicros {
			t.Errorf("assignment %s: assigned_at = %v (%d µs), database says %d µs",
				a.ID, a.AssignedAt, a.AssignedAt.UnixMicro(), assignedMicros)
		}
	}

	birth := time.Date(1980, time.February, 29, 0, 0, 0, 0, time.Local)
	born, err := f.store.CreatePatient(f.ctx, store.CreatePatientParams{
		GivenName: "Leap", FamilyName: "Day", BirthDate: &birth,
	})
	if err != nil {
		t.Fatalf("create patient: %v", err)
	}
	y, m, d := born.BirthDate.Date()
	if y != 1980 || m != time.February || d != 29 {
		t.Errorf("birth date = %v, want 1980-02-29", *born.BirthDate)
	}
}

// TestAddMemberStampsTheInsertNotTheTransaction checks that an assignment
// starts when it is inserted, not when its transaction began: otherwise a
// transaction that began before the old PRIMARY ended could record its new
// PRIMARY as starting before the old one ended, and the history would show
// two PRIMARYs at once. It runs CreateAssignment, the query AddMember
// runs, late in a transaction that began earlier.
func TestAddMemberStampsTheInsertNotTheTransaction(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, provider := f.patient(t), f.provider(t)

	tx, err := f.pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	var began time.Time
	if err := tx.QueryRow(f.ctx, "SELECT now() FROM pg_sleep(0.05)").Scan(&began); err != nil {
		t.Fatal(err)
	}
	row, err := dbgen.New(tx).CreateAssignment(f.ctx, dbgen.CreateAssignmentParams{
		PatientID: patient.ID, ProviderID: provider.ID, Role: store.RolePrimary,
	})
	if err != nil || row.AssignedAt == nil {
		t.Fatalf("insert: %+v, %v", row, err)
	}
	if gap := row.AssignedAt.Sub(began); gap < 40*time.Millisecond {
		t.Fatalf("assigned_at is %v after the transaction began, want the time of the insert (>= 50ms)", gap)
	}
}
