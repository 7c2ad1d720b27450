package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestDeadlockIsRetried makes a reassignment the victim of a deadlock: the
// test holds the current PRIMARY's row, the request takes the patient's row
// and waits for it, and the test then asks for the patient's row. PostgreSQL
// aborts the request's transaction, which waited first; the store runs it
// again, it waits for the test, and answers 200 once the test lets go.
func TestDeadlockIsRetried(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := setup(t)
	patient, first, second := f.patient(), f.provider(), f.provider()
	primary := expect(t, f.assign(patient, first, "PRIMARY"), 201, "")["id"].(string)

	conn, err := pgx.Connect(ctx, f.pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT FROM care_team_assignments WHERE id = $1 FOR UPDATE`, primary); err != nil {
		t.Fatal(err)
	}
	pid := conn.PgConn().PID()

	answered := make(chan response, 1)
	go func() {
		answered <- f.send("PUT", "/v1/patients/"+patient+"/care-team/primary",
			map[string]any{"provider_id": second})
	}()
	waitFor(ctx, t, "the reassignment waits for the PRIMARY's row", func() bool {
		return f.sessionsWaitingOnLock(ctx, pid) == 1
	})

	// This closes the cycle; the request, which waited first, is the victim.
	_, err = tx.Exec(ctx, `SELECT FROM patients WHERE id = $1 FOR UPDATE`, patient)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
		t.Fatal("the test's transaction was the deadlock's victim, not the request's")
	} else if err != nil {
		t.Fatal(err)
	}
	retryCtx, cancelRetry := context.WithTimeout(ctx, 10*time.Second)
	defer cancelRetry()
	waitFor(retryCtx, t, "the retried reassignment waits for the patient's row", func() bool {
		return f.sessionsWaitingOnLock(ctx, pid) == 1
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	var r response
	select {
	case r = <-answered:
	case <-ctx.Done():
		t.Fatal("no answer")
	}
	body := expect(t, r, 200, "")
	previous, _ := body["previous"].(map[string]any)
	if previous["id"] != primary {
		t.Errorf("previous = %v, want %s", body["previous"], primary)
	}
	if got := f.activePrimaries(patient); len(got) != 1 || got[0] != body["assignment"].(map[string]any)["id"] {
		t.Errorf("active primaries %v after the retried reassignment", got)
	}
}
