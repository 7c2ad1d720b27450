package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/testdb"
)

func TestMain(m *testing.M) {
	// A test that needs the real process, to signal it, starts this binary
	// again with runMainEnv set: it then is careteam, with the arguments
	// it was given.
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(testdb.Main(m))
}

// tablesVersion is the migration before the check and the PRIMARY index.
const tablesVersion = "20261204110000"

// careteam runs the binary's entry point with args against dsn and returns
// its exit code and output.
func careteam(t *testing.T, dsn string, args ...string) (int, string) {
	t.Helper()
	t.Setenv("DATABASE_URL", dsn)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
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

// seedPrimaries gives a new patient n active PRIMARY assignments with plain
// SQL, as a system without the index could hold, and returns its id.
func seedPrimaries(t *testing.T, conn *pgx.Conn, n int) string {
	t.Helper()
	ctx := context.Background()
	var patient string
	if err := conn.QueryRow(ctx, `INSERT INTO patients (given_name, family_name)
		VALUES ('Secret', 'Name') RETURNING id::text`).Scan(&patient); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		_, err := conn.Exec(ctx, `
			WITH nine AS (SELECT lpad((trunc(random() * 1e8))::bigint::text, 9, '1') AS v),
			     npi AS (SELECT v || d AS n FROM nine, generate_series(0, 9) AS d
			             WHERE npi_is_valid(v || d) LIMIT 1),
			     p AS (INSERT INTO providers (npi, given_name, family_name)
			           SELECT n, 'R', 'S' FROM npi RETURNING id)
			INSERT INTO care_team_assignments (patient_id, provider_id, role, assigned_at)
			SELECT $1, id, 'PRIMARY', now() - make_interval(days => $2) FROM p`, patient, n-i)
		if err != nil {
			t.Fatal(err)
		}
	}
	return patient
}

func activePrimaries(t *testing.T, conn *pgx.Conn, patient string) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM care_team_assignments
		WHERE patient_id = $1 AND role = 'PRIMARY' AND removed_at IS NULL`, patient).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRepairThenMigrate walks an operator through a database that gained
// duplicate primaries before the index existed.
func TestRepairThenMigrate(t *testing.T) {
	dsn := testdb.Empty(t)
	code, out := careteam(t, dsn, "migrate", "up")
	if code != 0 {
		t.Fatalf("first up: %d %s", code, out)
	}
	// Back to before the index and the check, one migration at a time.
	conn := connect(t, dsn)
	for applied := true; applied; {
		if code, out := careteam(t, dsn, "migrate", "down"); code != 0 {
			t.Fatalf("down: %d %s", code, out)
		}
		err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM schema_migrations
			WHERE version >= '20261204110100')`).Scan(&applied)
		if err != nil {
			t.Fatal(err)
		}
	}
	two, three := seedPrimaries(t, conn, 2), seedPrimaries(t, conn, 3)

	code, out = careteam(t, dsn, "db", "check")
	if code != 1 || !strings.Contains(out, two) || !strings.Contains(out, three) {
		t.Fatalf("check: exit %d, want 1 naming both patients:\n%s", code, out)
	}
	if strings.Contains(out, "Secret") || strings.Contains(out, "Name") {
		t.Errorf("check prints names:\n%s", out)
	}
	code, out = careteam(t, dsn, "db", "check", "--format", "json")
	var report struct {
		Clean    bool
		Findings []struct {
			PatientID   string `json:"patient_id"`
			Assignments []struct{ ID string }
		}
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 1 || report.Clean ||
		len(report.Findings) != 2 {
		t.Fatalf("check --format json: exit %d, %v:\n%s", code, err, out)
	}

	code, out = careteam(t, dsn, "migrate", "up")
	if code == 0 || !strings.Contains(out, two) || !strings.Contains(out, "repair-primaries") {
		t.Fatalf("up over duplicates: exit %d, want a failure naming them and the repair:\n%s", code, out)
	}

	code, out = careteam(t, dsn, "db", "repair-primaries", "--keep", "newest", "--dry-run")
	if code != 0 || !strings.Contains(out, "would end") || activePrimaries(t, conn, three) != 3 {
		t.Fatalf("dry run: exit %d, changed data or said nothing:\n%s", code, out)
	}

	var newest string
	if err := conn.QueryRow(context.Background(), `SELECT id::text FROM care_team_assignments
		WHERE patient_id = $1 ORDER BY assigned_at DESC LIMIT 1`, three).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	code, out = careteam(t, dsn, "db", "repair-primaries", "--keep", "newest")
	if code != 0 {
		t.Fatalf("repair: exit %d:\n%s", code, out)
	}
	for _, p := range []string{two, three} {
		if n := activePrimaries(t, conn, p); n != 1 {
			t.Errorf("patient %s has %d active primaries after repair", p, n)
		}
	}
	var keptNewest bool
	var endedWithReason int
	err := conn.QueryRow(context.Background(), `
		SELECT bool_or(id::text = $2 AND removed_at IS NULL),
		       count(*) FILTER (WHERE removed_at IS NOT NULL AND removal_reason LIKE '%repair-primaries%')
		FROM care_team_assignments WHERE patient_id = $1`, three, newest).Scan(&keptNewest, &endedWithReason)
	if err != nil || !keptNewest || endedWithReason != 2 {
		t.Errorf("patient %s: kept newest %t, ended with reason %d (%v)", three, keptNewest, endedWithReason, err)
	}

	if code, out := careteam(t, dsn, "db", "repair-primaries", "--keep", "oldest"); code != 0 ||
		!strings.Contains(out, "nothing to repair") {
		t.Errorf("second repair: exit %d, want a no-op:\n%s", code, out)
	}
	if code, out := careteam(t, dsn, "migrate", "up"); code != 0 {
		t.Fatalf("up after repair: %d\n%s", code, out)
	}
	if code, out := careteam(t, dsn, "db", "verify"); code != 0 {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	if code, out := careteam(t, dsn, "db", "check"); code != 0 {
		t.Fatalf("check after repair: %d\n%s", code, out)
	}
}

func TestVerifyNamesAnInvalidIndex(t *testing.T) {
	dsn := testdb.New(t)
	conn := connect(t, dsn)
	ctx := context.Background()

	// Make the index INVALID as an interrupted concurrent build leaves it.
	if _, err := conn.Exec(ctx, `UPDATE pg_index SET indisvalid = false
		WHERE indexrelid = 'uq_care_team_primary'::regclass`); err != nil {
		t.Fatal(err)
	}
	code, out := careteam(t, dsn, "db", "verify")
	if code != 1 || !strings.Contains(out, "uq_care_team_primary") || !strings.Contains(out, "INVALID") {
		t.Fatalf("verify: exit %d, want 1 naming the INVALID index:\n%s", code, out)
	}

	// A missing constraint is named too.
	if _, err := conn.Exec(ctx, `ALTER TABLE providers DROP CONSTRAINT ck_providers_npi_valid`); err != nil {
		t.Fatal(err)
	}
	if code, out := careteam(t, dsn, "db", "verify"); code != 1 || !strings.Contains(out, "ck_providers_npi_valid") {
		t.Fatalf("verify: exit %d, want 1 naming the dropped check:\n%s", code, out)
	}
}

func TestExitCodeWhenTheDatabaseIsUnreachable(t *testing.T) {
	dsn := "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	for _, args := range [][]string{{"db", "check"}, {"db", "verify"}} {
		if code, out := careteam(t, dsn, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2:\n%s", args, code, out)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"migrate"}, {"migrate", "sideways"}} {
		if code, _ := careteam(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out := careteam(t, "", "db", "repair-primaries", "--keep", "middle"); code != 2 {
		t.Errorf("bad --keep: exit %d:\n%s", code, out)
	}
}

// TestVerifyRefusesATableWithoutSecurity adds tables as a careless
// migration would: one with tenant data and no row-level security, one
// without an audit trigger. verify names both.
func TestVerifyRefusesATableWithoutSecurity(t *testing.T) {
	dsn := testdb.New(t)
	if code, out := careteam(t, dsn, "db", "verify"); code != 0 {
		t.Fatalf("verify on a fresh database: exit %d\n%s", code, out)
	}
	conn := connect(t, dsn)
	_, err := conn.Exec(context.Background(), `
		CREATE TABLE notes (id uuid PRIMARY KEY, organization_id uuid NOT NULL, body text);
		GRANT SELECT ON notes TO careteam_app;
		CREATE TRIGGER trg_notes_audit AFTER INSERT OR UPDATE OR DELETE ON notes
			FOR EACH ROW EXECUTE FUNCTION careteam_audit();
		CREATE TABLE untracked (id uuid PRIMARY KEY);`)
	if err != nil {
		t.Fatal(err)
	}
	code, out := careteam(t, dsn, "db", "verify")
	if code != 1 || !strings.Contains(out, "table notes holds tenant data") ||
		!strings.Contains(out, "table untracked has no audit trigger") {
		t.Fatalf("verify: exit %d, want 1 naming both tables:\n%s", code, out)
	}
}

// TestAPIKeyCommands makes, lists and revokes a key as an operator would.
func TestAPIKeyCommands(t *testing.T) {
	dsn := testdb.New(t)
	code, out := careteam(t, dsn, "apikey", "create", "--org", "acme", "--name", "front end", "--scopes", "read,write")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]
	if code != 0 || !strings.HasPrefix(key, "ct_") || strings.Contains(key, " ") {
		t.Fatalf("create: exit %d, want the key alone on the last line:\n%s", code, out)
	}

	code, out = careteam(t, dsn, "apikey", "list", "--org", "acme")
	if code != 0 || !strings.Contains(out, "front end") || !strings.Contains(out, "active") ||
		strings.Contains(out, key) {
		t.Fatalf("list: exit %d, want the key's name and state but never the key:\n%s", code, out)
	}
	id := strings.Fields(out)[0]

	conn := connect(t, dsn)
	var stored string
	if err := conn.QueryRow(context.Background(), "SELECT key_hash FROM api_keys WHERE id = $1", id).
		Scan(&stored); err != nil || stored == key || len(stored) != 64 {
		t.Fatalf("stored %q (%v), want a hash and not the key", stored, err)
	}

	if code, out := careteam(t, dsn, "apikey", "revoke", id); code != 0 {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}
	if _, out := careteam(t, dsn, "apikey", "list"); !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke:\n%s", out)
	}
	if code, _ := careteam(t, dsn, "apikey", "revoke", id); code == 0 {
		t.Error("revoking a revoked key succeeded")
	}
	if code, _ := careteam(t, dsn, "apikey", "create", "--org", "acme", "--name", "x", "--scopes", "admin"); code == 0 {
		t.Error("a key with an unknown scope was made")
	}
}

// TestDevKey: what "make run" prints is a working read-write key of the
// development organization.
func TestDevKey(t *testing.T) {
	dsn := testdb.New(t)
	var out bytes.Buffer
	if err := printDevKey(context.Background(), config{DatabaseURL: dsn}, &out); err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(out.String(), "CARETEAM_KEY=")
	key := strings.Fields(rest)
	if !ok || len(key) == 0 {
		t.Fatalf("no key printed:\n%s", out.String())
	}
	conn := connect(t, dsn)
	var org string
	var scopes []string
	err := conn.QueryRow(context.Background(), `SELECT o.name, k.scopes FROM api_keys AS k
		JOIN organizations AS o ON o.id = k.organization_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, apikey.Hash(key[0])).Scan(&org, &scopes)
	if err != nil || org != devOrganization || len(scopes) != 2 {
		t.Fatalf("the printed key: organization %q, scopes %v (%v)", org, scopes, err)
	}
}
