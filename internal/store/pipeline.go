package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/dbgen"
)

// single runs one generated query for the context's tenant in one round
// trip: the tenant's settings and the statement go to PostgreSQL together
// as a pipeline ending in a single Sync, which PostgreSQL runs as one
// implicit transaction. The settings, made with set_config(..., true),
// last exactly as long as the statement's transaction, as they do in inTx,
// at a third of its round trips. A statement that fails rolls everything
// back. Use it only for operations of one statement; inTx runs the rest.
// Like inTx, it runs the statement again after a deadlock or serialization
// failure, at most maxAttempts times in all.
func (s *Store) single(ctx context.Context, fn func(q *dbgen.Queries) error) error {
	if !scoped(ctx) {
		return errNoTenant
	}
	// A deadlock or serialization failure rolled the whole implicit
	// transaction back, so the statement can run again, as inTx does.
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = fn(dbgen.New(pipelined{pool: s.pool}))
		if !isRetryable(err) {
			return err
		}
	}
	return fmt.Errorf("%w: gave up after %d attempts: %w", ErrUnavailable, maxAttempts, err)
}

// pipelined is a dbgen.DBTX that sends the tenant's settings ahead of each
// statement, in the same batch.
type pipelined struct {
	pool *pgxpool.Pool
}

// batchFor returns a batch holding the tenant's settings, then sql.
func batchFor(ctx context.Context, sql string, args []any) (*pgx.Batch, error) {
	b := &pgx.Batch{}
	if err := setTenant(ctx, dbgen.New(queueing{b})); err != nil {
		return nil, err
	}
	b.Queue(sql, args...)
	return b, nil
}

// send sends the tenant's settings and sql as one batch, and reads the
// settings' result, so that the batch's next result is the statement's.
func (p pipelined) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b, err := batchFor(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	br := p.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, fmt.Errorf("set tenant: %w", err)
	}
	tenantSet(ctx)
	return br, nil
}

func (p pipelined) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	br, err := p.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	return tag, err
}

func (p pipelined) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br, err := p.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (p pipelined) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return batchRow{rows.(*batchRows)}
}

// batchRows are the rows of a pipeline's statement; closing them ends the
// batch and gives the connection back.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() { _ = r.finish() }

// Next moves to the next row. After the last one it ends the batch, so
// that Err reports the implicit transaction's commit: generated :many
// queries read Err before their deferred Close, and an error at commit (a
// deferred constraint, a serialization failure, a lost connection) must
// not pass as success.
func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	_ = r.finish()
	return false
}

// Err reports the rows' error, or else the end of the batch's: the
// implicit transaction's commit.
func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	if r.closed {
		return r.err
	}
	return nil
}

// finish closes the rows and the batch, and returns the first error.
func (r *batchRows) finish() error {
	if !r.closed {
		r.closed = true
		r.Rows.Close()
		r.err = r.br.Close()
	}
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow reads the first row of batchRows, as pgx.Row does.
type batchRow struct{ rows *batchRows }

func (r batchRow) Scan(dest ...any) error {
	if !r.rows.Next() {
		if err := r.rows.finish(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		_ = r.rows.finish()
		return err
	}
	return r.rows.finish()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queueing is a dbgen.DBTX that queues statements into a batch instead of
// sending them. Only Exec is used, for the tenant's settings.
type queueing struct{ b *pgx.Batch }

func (q queueing) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (q queueing) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, fmt.Errorf("store: a queueing DBTX only queues Exec")
}

func (q queueing) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{fmt.Errorf("store: a queueing DBTX only queues Exec")}
}
