package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
)

// deadlockTracer counts the deadlocks any query met, which the store's
// retries would otherwise hide.
type deadlockTracer struct {
	deadlocks atomic.Int64
}

func (p *deadlockTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (p *deadlockTracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	p.count(data.Err)
}

// The store sends most statements in pipelines, which pgx traces as
// batches: their errors count too.
func (p *deadlockTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (p *deadlockTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	p.count(data.Err)
}

func (p *deadlockTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (p *deadlockTracer) count(err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
		p.deadlocks.Add(1)
	}
}

// TestAddMemberAndReassignPrimaryDoNotDeadlock holds a reassignment, with
// the patient locked, just before it inserts the new PRIMARY, and meanwhile
// sends an AddMember PRIMARY for the same patient. The two must wait for
// each other in one order; a deadlock, even one a retry absorbs, means they
// take their locks in opposite orders.
//
// The reassignment is one statement, so it is held from outside: the
// provider it promotes is a SPECIALIST on the team, the reassignment ends
// that assignment before it inserts, and the audit row of that end waits
// on a lock the test holds on audit_log.
func TestAddMemberAndReassignPrimaryDoNotDeadlock(t *testing.T) {
	t.Parallel()
	tracer := &deadlockTracer{}
	f := setupWithConfig(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = tracer })
	patient, reassigned, added := f.patient(t), f.provider(t), f.provider(t)
	f.addMember(t, patient.ID, reassigned.ID, store.RoleSpecialist)

	hold, err := f.pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(f.ctx)
	if _, err := hold.Exec(f.ctx, "LOCK TABLE audit_log IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}

	reassignErr := make(chan error, 1)
	go func() {
		_, err := f.store.ReassignPrimary(f.ctx, patient.ID, reassigned.ID, nil)
		reassignErr <- err
	}()
	f.waitForLockWaits(t, 1)

	addErr := make(chan error, 1)
	go func() {
		_, err := f.store.AddMember(f.ctx, patient.ID, added.ID, store.RolePrimary)
		addErr <- err
	}()
	f.waitForLockWaits(t, 2)
	if err := hold.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}

	if err := <-reassignErr; err != nil {
		t.Errorf("ReassignPrimary: %v", err)
	}
	var conflict *store.PrimaryConflictError
	if err := <-addErr; err != nil && !errors.As(err, &conflict) {
		t.Errorf("AddMember: err = %v, want nil or *store.PrimaryConflictError", err)
	}
	if n := tracer.deadlocks.Load(); n > 0 {
		t.Errorf("%d deadlock(s) between AddMember and ReassignPrimary, want none", n)
	}
	if got := f.activePrimaries(t, patient.ID); len(got) != 1 {
		t.Errorf("active primaries = %v, want exactly 1", got)
	}
}

// TestErrorsAtCommitAreNotSuccess makes the implicit transaction of a
// pipelined write fail at its commit, with a deferred constraint trigger,
// and expects the store to report it and nothing to be kept. Queries that
// return many rows used to read their error before the commit's result
// came in, so ReassignPrimary answered with a reassignment that had been
// rolled back.
func TestErrorsAtCommitAreNotSuccess(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, first, second, third := f.patient(t), f.provider(t), f.provider(t), f.provider(t)
	old := f.addMember(t, patient.ID, first.ID, store.RolePrimary)

	// The trigger fails at commit, and only for this test's patient.
	for _, sql := range []string{
		`CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS
		 $$ BEGIN RAISE EXCEPTION 'failed at commit' USING ERRCODE = 'P0001'; END $$`,
		`CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER INSERT ON care_team_assignments
		 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
		 WHEN (NEW.patient_id = '` + patient.ID.String() + `')
		 EXECUTE FUNCTION test_fail_at_commit()`,
	} {
		if _, err := f.pool.Exec(f.ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	if r, err := f.store.ReassignPrimary(f.ctx, patient.ID, second.ID, nil); err == nil {
		t.Errorf("ReassignPrimary succeeded (%+v), want the commit's error", r)
	}
	if a, err := f.store.AddMember(f.ctx, patient.ID, third.ID, store.RoleSpecialist); err == nil {
		t.Errorf("AddMember succeeded (%+v), want the commit's error", a)
	}
	if got := f.activePrimaries(t, patient.ID); len(got) != 1 || got[0] != old.ID {
		t.Errorf("active primaries = %v, want only %s: the failed reassignment was kept", got, old.ID)
	}
}
