package migrate_test

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/amacneil/dbmate/v2/pkg/dbmate"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"

	"github.com/careteam/careteam/db"
	"github.com/careteam/careteam/internal/dbcheck"
	"github.com/careteam/careteam/internal/migrate"
	"github.com/careteam/careteam/internal/testdb"
)

// tablesVersion is the migration that creates the tables, before the check
// and the PRIMARY index; indexVersion is the one that builds the index.
const (
	tablesVersion = "20261204110000"
	indexVersion  = "20261204110200"
)

// seedPrimaries gives a new patient n active PRIMARY assignments, with plain
// SQL as a system without the index could have, and returns its id.
func seedPrimaries(t *testing.T, conn *pgx.Conn, n int) string {
	t.Helper()
	ctx := context.Background()
	var patient string
	err := conn.QueryRow(ctx, `INSERT INTO patients (given_name, family_name)
		VALUES ('P', 'Q') RETURNING id::text`).Scan(&patient)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `
		WITH p AS (
			INSERT INTO providers (npi, given_name, family_name)
			SELECT n, 'R', 'S' FROM (
				SELECT lpad((trunc(random() * 1e8))::bigint::text, 9, '1') AS nine
				FROM generate_series(1, $2)) AS g,
			LATERAL (SELECT nine || d AS n FROM generate_series(0, 9) AS d
			         WHERE npi_is_valid(nine || d) LIMIT 1) AS v
			RETURNING id)
		INSERT INTO care_team_assignments (patient_id, provider_id, role)
		SELECT $1, id, 'PRIMARY' FROM p`, patient, n)
	if err != nil {
		t.Fatal(err)
	}
	return patient
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func count(t *testing.T, conn *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUpStopsOnDuplicatePrimariesAndNamesThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.Empty(t)
	m := migrate.New(dsn, nil)
	if err := m.Through(tablesVersion).Up(ctx); err != nil {
		t.Fatal(err)
	}

	conn := connect(t, dsn)
	two, three := seedPrimaries(t, conn, 2), seedPrimaries(t, conn, 3)
	clean := seedPrimaries(t, conn, 1)
	before := count(t, conn, "SELECT count(*) FROM care_team_assignments WHERE removed_at IS NULL")

	err := m.Up(ctx)
	if !errors.Is(err, migrate.ErrRejectedRows) {
		t.Fatalf("up on a database with duplicate primaries: %v, want ErrRejectedRows", err)
	}
	var rejected *migrate.RejectedRowsError
	if !errors.As(err, &rejected) {
		t.Fatalf("up on a database with duplicate primaries: %T, want *migrate.RejectedRowsError", err)
	}
	if !strings.Contains(err.Error(), migrate.RepairCommand) {
		t.Errorf("the error does not say which command repairs it: %v", err)
	}
	named := map[string]bool{}
	for _, p := range rejected.Patients {
		named[p.String()] = true
	}
	for _, id := range []string{two, three} {
		if !named[id] {
			t.Errorf("the error does not name patient %s: %v", id, rejected.Patients)
		}
	}
	if named[clean] {
		t.Errorf("the error names the clean patient %s", clean)
	}

	pending, perr := m.Pending()
	if perr != nil || len(pending) < 2 || pending[0] != "20261204110100" || pending[1] != indexVersion {
		t.Errorf("pending = %v (%v), want the check, the index and what follows still pending", pending, perr)
	}
	if after := count(t, conn, "SELECT count(*) FROM care_team_assignments WHERE removed_at IS NULL"); after != before {
		t.Errorf("active assignments %d, then %d: the failed migration changed data", before, after)
	}
	if n := count(t, conn, "SELECT count(*) FROM pg_class WHERE relname = $1", migrate.PrimaryIndex); n != 0 {
		t.Error("the index exists after the refused migration")
	}
}

func TestUpRebuildsAnInvalidPrimaryIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.Empty(t)
	// The index migration is the latest one of this database, so that
	// Down rolls it back.
	m := migrate.New(dsn, nil).Through(indexVersion)
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	// Take the index away as a rollback would, let bad data in, and let a
	// concurrent build fail on it: that leaves an INVALID index behind.
	if err := m.Down(); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	patient := seedPrimaries(t, conn, 2)
	if err := m.Up(ctx); !errors.Is(err, migrate.ErrRejectedRows) {
		t.Fatalf("up over duplicate primaries: %v, want ErrRejectedRows", err)
	}
	// The build as plain dbmate would run it, which nothing checked first.
	_, err := conn.Exec(ctx, `CREATE UNIQUE INDEX CONCURRENTLY uq_care_team_primary
		ON care_team_assignments (patient_id) WHERE role = 'PRIMARY' AND removed_at IS NULL`)
	if err == nil {
		t.Fatal("the index was built over duplicate primaries")
	}
	if valid := indexValid(t, conn); valid == nil || *valid {
		t.Fatalf("after the failed build the index is %v, want present and INVALID", valid)
	}
	problems, err := dbcheck.Verify(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(problems, "index "+migrate.PrimaryIndex+" is INVALID") {
		t.Fatalf("verify = %q, want a problem naming the INVALID index", problems)
	}

	// Repair the data, then migrate again: the leftover is dropped and the
	// index rebuilt, valid.
	_, err = conn.Exec(ctx, `
		UPDATE care_team_assignments SET removed_at = now(), removal_reason = 'test repair'
		WHERE id = (SELECT id FROM care_team_assignments WHERE patient_id = $1 LIMIT 1)`, patient)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.New(dsn, nil).Up(ctx); err != nil {
		t.Fatalf("up after repair: %v", err)
	}
	if valid := indexValid(t, conn); valid == nil || !*valid {
		t.Fatalf("after the rebuild the index is %v, want valid", valid)
	}
	if problems, err := dbcheck.Verify(ctx, conn); err != nil || len(problems) != 0 {
		t.Fatalf("verify after the rebuild = %q, %v; want nothing wrong", problems, err)
	}

	// And it holds the rule again.
	_, err = conn.Exec(ctx, `
		INSERT INTO care_team_assignments (patient_id, provider_id, role)
		SELECT patient_id, provider_id, 'PRIMARY' FROM care_team_assignments
		WHERE patient_id = $1 AND removed_at IS NOT NULL`, patient)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.ConstraintName != migrate.PrimaryIndex {
		t.Fatalf("second active PRIMARY: %v, want a unique violation of %s", err, migrate.PrimaryIndex)
	}
}

func TestDownAndUpOnPopulatedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.Empty(t)
	// The index migration is the latest one of this database, so that
	// Down rolls it back.
	m := migrate.New(dsn, nil).Through(indexVersion)
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	for i := 0; i < 20; i++ {
		seedPrimaries(t, conn, 1)
	}
	rows := count(t, conn, "SELECT count(*) FROM care_team_assignments")

	if err := m.Down(); err != nil {
		t.Fatal(err)
	}
	if valid := indexValid(t, conn); valid != nil {
		t.Fatal("down left the index")
	}
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if valid := indexValid(t, conn); valid == nil || !*valid {
		t.Fatal("up did not rebuild a valid index")
	}
	if got := count(t, conn, "SELECT count(*) FROM care_team_assignments"); got != rows {
		t.Errorf("rows %d, then %d", rows, got)
	}
}

// indexValid returns whether the PRIMARY index is valid and ready, or nil
// when there is none.
func indexValid(t *testing.T, conn *pgx.Conn) *bool {
	t.Helper()
	var valid bool
	err := conn.QueryRow(context.Background(), `
		SELECT i.indisvalid AND i.indisready FROM pg_index AS i
		JOIN pg_class AS c ON c.oid = i.indexrelid WHERE c.relname = $1`,
		migrate.PrimaryIndex).Scan(&valid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &valid
}

// TestPlainDbmateStopsAtTheCheck runs the migrations with dbmate alone, as
// "go tool dbmate up" does, without the binary's own check first: the
// migration before the index stops and names the patients.
func TestPlainDbmateStopsAtTheCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.Empty(t)
	if err := migrate.New(dsn, nil).Through(tablesVersion).Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	patient := seedPrimaries(t, conn, 2)

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	d := dbmate.New(u)
	d.FS = db.Migrations
	d.MigrationsDir = []string{db.MigrationsDir}
	d.AutoDumpSchema = false
	d.Log = io.Discard
	// dbmate talks to PostgreSQL through lib/pq and wraps the check's RAISE
	// in a *dbmate.QueryError (which does not unwrap) around a *pq.Error,
	// whose message names the offending patients.
	err = d.Migrate()
	var queryErr *dbmate.QueryError
	var pqErr *pq.Error
	if !errors.As(err, &queryErr) || !errors.As(queryErr.Err, &pqErr) ||
		pqErr.Code != codeRaiseException || !strings.Contains(pqErr.Message, patient) {
		t.Fatalf("dbmate up: %v, want the check to stop it naming %s", err, patient)
	}
	if n := count(t, conn, "SELECT count(*) FROM pg_class WHERE relname = $1", migrate.PrimaryIndex); n != 0 {
		t.Error("the index exists after the check stopped the migration")
	}
}

func containsLine(lines []string, part string) bool {
	for _, l := range lines {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}

// TestTenancyCarriesExistingRows migrates a database that holds patients
// and assignments from before organizations existed: they move to the
// default organization, unchanged otherwise.
func TestTenancyCarriesExistingRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.Empty(t)
	if err := migrate.New(dsn, nil).Through(indexVersion).Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	for i := 0; i < 3; i++ {
		seedPrimaries(t, conn, 1)
	}
	var before string
	if err := conn.QueryRow(ctx, `SELECT string_agg(id::text || updated_at::text, ',' ORDER BY id)
		FROM care_team_assignments`).Scan(&before); err != nil {
		t.Fatal(err)
	}

	if err := migrate.New(dsn, nil).Up(ctx); err != nil {
		t.Fatal(err)
	}
	var outside int
	if err := conn.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM patients WHERE organization_id <> '00000000-0000-0000-0000-000000000001')
		     + (SELECT count(*) FROM care_team_assignments
		        WHERE organization_id <> '00000000-0000-0000-0000-000000000001')`).Scan(&outside); err != nil {
		t.Fatal(err)
	}
	if outside != 0 {
		t.Errorf("%d rows outside the default organization", outside)
	}
	var after string
	if err := conn.QueryRow(ctx, `SELECT string_agg(id::text || updated_at::text, ',' ORDER BY id)
		FROM care_team_assignments`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Error("moving rows to the default organization changed their updated_at")
	}
}

// codeRaiseException is the SQLSTATE of a plain RAISE EXCEPTION, as the
// check migration raises it.
const codeRaiseException pq.ErrorCode = "P0001"
