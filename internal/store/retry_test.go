package store

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/dbgen"
	"github.com/careteam/careteam/internal/testdb"
)

// TestRetriesAreBounded runs work that always meets a deadlock or a
// serialization failure: it runs maxAttempts times, then gives up with
// ErrUnavailable, which the HTTP layer answers with 503.
func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := New(pool)
	ctx := WithTenant(context.Background(), Tenant{OrganizationID: DefaultOrganizationID})

	for _, code := range []string{codeDeadlockDetected, codeSerializationFailure} {
		for name, run := range map[string]func(func(*dbgen.Queries) error) error{
			"transaction": func(fn func(*dbgen.Queries) error) error { return s.inTx(ctx, fn) },
			"single":      func(fn func(*dbgen.Queries) error) error { return s.single(ctx, fn) },
		} {
			calls := 0
			err := run(func(*dbgen.Queries) error {
				calls++
				return &pgconn.PgError{Code: code}
			})
			if calls != maxAttempts || !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s, %s: %d calls, %v; want %d calls and ErrUnavailable", name, code, calls, err, maxAttempts)
			}

			calls = 0
			err = run(func(*dbgen.Queries) error {
				calls++
				if calls == 1 {
					return &pgconn.PgError{Code: code}
				}
				return nil
			})
			if calls != 2 || err != nil {
				t.Errorf("%s, %s, once: %d calls, %v; want a second attempt that succeeds", name, code, calls, err)
			}
		}
	}
}
