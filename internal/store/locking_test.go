package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
)

// pauseTracer holds back the first query whose SQL contains match, once
// armed, until release is closed. It also counts the deadlocks any query
// met, which the store's retries would otherwise hide.
type pauseTracer struct {
	match     string
	armed     atomic.Bool
	once      sync.Once
	reached   chan struct{}
	release   chan struct{}
	deadlocks atomic.Int64
}

func newPauseTracer(match string) *pauseTracer {
	return &pauseTracer{match: match, reached: make(chan struct{}), release: make(chan struct{})}
}

func (p *pauseTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if p.armed.Load() && strings.Contains(data.SQL, p.match) {
		p.once.Do(func() {
			close(p.reached)
			<-p.release
		})
	}
	return ctx
}

func (p *pauseTracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	var pgErr *pgconn.PgError
	if errors.As(data.Err, &pgErr) && pgErr.Code == "40P01" {
		p.deadlocks.Add(1)
	}
}

// TestAddMemberAndReassignPrimaryDoNotDeadlock holds a reassignment, with
// the patient locked, just before it inserts the new PRIMARY, and meanwhile
// sends an AddMember PRIMARY for the same patient. The two must wait for
// each other in one order; a deadlock, even one a retry absorbs, means they
// take their locks in opposite orders.
func TestAddMemberAndReassignPrimaryDoNotDeadlock(t *testing.T) {
	t.Parallel()
	tracer := newPauseTracer("name: InsertPrimary")
	f := setupWithConfig(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = tracer })
	patient, reassigned, added := f.patient(t), f.provider(t), f.provider(t)

	tracer.armed.Store(true)
	reassignErr := make(chan error, 1)
	go func() {
		_, err := f.store.ReassignPrimary(f.ctx, patient.ID, reassigned.ID, nil)
		reassignErr <- err
	}()
	<-tracer.reached

	addErr := make(chan error, 1)
	go func() {
		_, err := f.store.AddMember(f.ctx, patient.ID, added.ID, store.RolePrimary)
		addErr <- err
	}()
	f.waitForLockWait(t)
	close(tracer.release)

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
