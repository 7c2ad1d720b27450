package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careteam/careteam/internal/apikey"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient()

	// Health, readiness and metrics need no key.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := f.as("").do("GET", path, "", nil); r.status != 200 {
			t.Errorf("GET %s without a key: %d", path, r.status)
		}
	}

	revoked := f.newKey(f.org, "read,write")
	conn, err := pgx.Connect(context.Background(), f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var revokedID string
	err = conn.QueryRow(context.Background(), "SELECT id::text FROM api_keys WHERE key_hash = $1",
		apikey.Hash(revoked)).Scan(&revokedID)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.as(revoked).send("GET", "/v1/patients/"+patient, nil); r.status != 200 {
		t.Fatalf("the key before it is revoked: %d", r.status)
	}
	if err := apikey.Revoke(context.Background(), conn, mustUUID(t, revokedID)); err != nil {
		t.Fatal(err)
	}

	var bodies []string
	for name, key := range map[string]string{
		"no key":       "",
		"not a key":    "hello",
		"unknown key":  apikey.Generate(),
		"revoked key":  revoked,
		"other scheme": "Basic " + f.key,
	} {
		g := f.as(key)
		if name == "other scheme" {
			g = f.as("")
		}
		req := g.do("GET", "/v1/patients/"+patient, "", nil)
		if name == "other scheme" {
			req = rawAuth(t, f, "GET", "/v1/patients/"+patient, key)
		}
		expect(t, req, 401, CodeUnauthenticated)
		if req.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
		bodies = append(bodies, string(req.body))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 answers differ, hinting at which keys exist:\n%s\n%s", bodies[0], b)
		}
	}

	// A read-only key reads, and may not write.
	reader := f.as(f.readKey)
	expect(t, reader.send("GET", "/v1/patients/"+patient, nil), 200, "")
	before := f.counts()
	expect(t, reader.send("POST", "/v1/patients", map[string]any{"given_name": "A", "family_name": "B"}),
		403, CodeForbidden)
	expect(t, reader.assign(patient, f.provider(), "SPECIALIST"), 403, CodeForbidden)
	if after := f.counts(); after[0] != before[0] || after[2] != before[2] {
		t.Errorf("a refused write wrote: %v then %v", before, after)
	}
}

func rawAuth(t *testing.T, f *fixture, method, path, header string) response {
	t.Helper()
	req, err := newRequest(method, f.http.URL+path, header)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readResponse(t, res)
}

// TestTenantIsolation tries every endpoint with organization A's key on
// organization B's ids: each answers as if they did not exist.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.as(b.newKey("organization-a", "read,write"))

	patient, provider := b.patient(), b.provider()
	assignment := expect(t, b.assign(patient, provider, "PRIMARY"), 201, "")["id"].(string)
	mine := a.patient()
	before := b.counts()

	cases := []struct {
		method, path string
		body         any
		code         string
	}{
		{"GET", "/v1/patients/" + patient, nil, CodePatientNotFound},
		{"GET", "/v1/patients/" + patient + "/care-team", nil, CodePatientNotFound},
		{"GET", "/v1/patients/" + patient + "/care-team/history", nil, CodePatientNotFound},
		{"GET", "/v1/patients/" + patient + "/audit", nil, CodePatientNotFound},
		{"POST", "/v1/patients/" + patient + "/care-team",
			map[string]any{"provider_id": a.provider(), "role": "SPECIALIST"}, CodePatientNotFound},
		{"PUT", "/v1/patients/" + patient + "/care-team/primary",
			map[string]any{"provider_id": provider}, CodePatientNotFound},
		{"DELETE", "/v1/patients/" + patient + "/care-team/" + assignment, nil, CodePatientNotFound},
		// B's assignment through A's own patient.
		{"DELETE", "/v1/patients/" + mine + "/care-team/" + assignment, nil, CodeAssignmentNotFound},
	}
	for _, tc := range cases {
		r := a.send(tc.method, tc.path, tc.body)
		expect(t, r, 404, tc.code)
	}

	// What A may see: the shared provider directory.
	expect(t, a.send("GET", "/v1/providers/"+provider, nil), 200, "")
	// B's MRN does not collide with A's, nor does it show.
	expect(t, b.send("POST", "/v1/patients", map[string]any{"given_name": "X", "family_name": "Y",
		"mrn": "SAME-1"}), 201, "")
	expect(t, a.send("POST", "/v1/patients", map[string]any{"given_name": "X", "family_name": "Y",
		"mrn": "SAME-1"}), 201, "")

	after := b.counts()
	if after[2] != before[2] {
		t.Errorf("assignments %d then %d: a cross-tenant request wrote", before[2], after[2])
	}
	team := expect(t, b.send("GET", "/v1/patients/"+patient+"/care-team", nil), 200, "")
	if n := len(team["assignments"].([]any)); n != 1 {
		t.Errorf("B's team has %d members after A's attempts, want 1", n)
	}
}

// asService runs fn on a connection acting as the service's role.
func asService(t *testing.T, f *fixture, fn func(ctx context.Context, tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE careteam_app"); err != nil {
		t.Fatal(err)
	}
	fn(ctx, tx)
}

func TestServiceRoleWithoutTenantSeesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.assign(f.patient(), f.provider(), "PRIMARY")

	asService(t, f, func(ctx context.Context, tx pgx.Tx) {
		for _, table := range []string{"patients", "care_team_assignments", "audit_log"} {
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			if n != 0 {
				t.Errorf("the service's role without an organization sees %d rows of %s", n, table)
			}
		}
		// And it cannot read keys at all.
		_, err := tx.Exec(ctx, "SELECT count(*) FROM api_keys")
		if code := pgCode(err); code != "42501" {
			t.Errorf("reading api_keys: %v, want insufficient_privilege", err)
		}
	})
}

func TestServiceRoleCannotAlterTheAuditLog(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.patient()
	var org string
	if err := f.pool.QueryRow(context.Background(),
		"SELECT id::text FROM organizations WHERE name = $1", f.org).Scan(&org); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"UPDATE audit_log SET action = 'INSERT'",
		"DELETE FROM audit_log",
		"TRUNCATE audit_log",
		"INSERT INTO audit_log (table_name, row_id, action, changes) VALUES ('x', gen_random_uuid(), 'INSERT', '{}')",
	} {
		asService(t, f, func(ctx context.Context, tx pgx.Tx) {
			if _, err := tx.Exec(ctx, "SELECT set_config('careteam.organization_id', $1, true)", org); err != nil {
				t.Fatal(err)
			}
			var visible int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM audit_log").Scan(&visible); err != nil || visible == 0 {
				t.Fatalf("the service's role sees %d of its own audit rows (%v)", visible, err)
			}
			_, err := tx.Exec(ctx, stmt)
			if code := pgCode(err); code != "42501" {
				t.Errorf("%s: %v, want insufficient_privilege", stmt, err)
			}
		})
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_log").Scan(&n); err != nil || n == 0 {
		t.Errorf("audit rows after the attempts: %d (%v)", n, err)
	}
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if ok := errorsAs(err, &pgErr); ok {
		return pgErr.Code
	}
	return ""
}

// auditRow is an audit entry as the tests compare them.
type auditRow struct {
	table, action string
	changes       map[string]map[string]any
}

// auditSince returns the audit rows written after id, oldest first.
func (f *fixture) auditSince(id int64) ([]auditRow, int64) {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT id, table_name, action, changes
		FROM audit_log WHERE id > $1 ORDER BY id`, id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	last := id
	for rows.Next() {
		var r auditRow
		var raw []byte
		if err := rows.Scan(&last, &r.table, &r.action, &raw); err != nil {
			f.t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &r.changes); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out, last
}

func (f *fixture) lastAuditID() int64 {
	f.t.Helper()
	var id int64
	if err := f.pool.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) FROM audit_log").Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// TestEveryWriteIsAudited checks the audit rows of each write endpoint:
// which table, which action, which columns, and that personal details are
// redacted.
func TestEveryWriteIsAudited(t *testing.T) {
	t.Parallel()
	f := setup(t)
	mark := f.lastAuditID()

	step := func(name string, do func() response, status int, want ...string) {
		t.Helper()
		r := do()
		if r.status != status {
			t.Fatalf("%s: status %d, want %d: %s", name, r.status, status, r.body)
		}
		var got []auditRow
		got, mark = f.auditSince(mark)
		var kinds []string
		for _, g := range got {
			kinds = append(kinds, g.table+" "+g.action)
		}
		if strings.Join(kinds, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: audit rows %v, want %v", name, kinds, want)
		}
	}

	var patient, provider, other, assignment string
	step("create patient", func() response {
		r := f.send("POST", "/v1/patients", map[string]any{"given_name": "Ada", "family_name": "Lovelace",
			"birth_date": "1915-12-10", "mrn": "MRN-7"})
		patient, _ = r.json(t)["id"].(string)
		return r
	}, 201, "patients INSERT")
	step("create provider", func() response {
		r := f.send("POST", "/v1/providers", map[string]any{"npi": newNPI(), "given_name": "Grace",
			"family_name": "Hopper"})
		provider, _ = r.json(t)["id"].(string)
		return r
	}, 201, "providers INSERT")
	other = f.provider()
	mark = f.lastAuditID()
	step("add member", func() response {
		r := f.assign(patient, provider, "SPECIALIST")
		assignment, _ = r.json(t)["id"].(string)
		return r
	}, 201, "care_team_assignments INSERT")
	step("reassign primary, promoting the specialist", func() response {
		return f.send("PUT", "/v1/patients/"+patient+"/care-team/primary", map[string]any{"provider_id": provider})
	}, 200, "care_team_assignments SOFT_DELETE", "care_team_assignments INSERT")
	step("reassign to the same provider", func() response {
		return f.send("PUT", "/v1/patients/"+patient+"/care-team/primary", map[string]any{"provider_id": provider})
	}, 200)
	step("reassign to another", func() response {
		return f.send("PUT", "/v1/patients/"+patient+"/care-team/primary", map[string]any{"provider_id": other})
	}, 200, "care_team_assignments SOFT_DELETE", "care_team_assignments INSERT")
	step("refused write", func() response { return f.assign(patient, f.provider(), "PRIMARY") }, 409,
		"providers INSERT") // the provider made for the request; the refusal writes nothing
	team := expect(t, f.send("GET", "/v1/patients/"+patient+"/care-team", nil), 200, "")
	current := team["assignments"].([]any)[0].(map[string]any)["id"].(string)
	step("end member", func() response {
		return f.send("DELETE", "/v1/patients/"+patient+"/care-team/"+current+"?reason=moved", nil)
	}, 204, "care_team_assignments SOFT_DELETE")
	_ = assignment

	// The patient's audit, through the API: newest first, names redacted,
	// every entry attributed to the key and a request.
	events := expect(t, f.send("GET", "/v1/patients/"+patient+"/audit", nil), 200, "")
	items := events["items"].([]any)
	if len(items) != 7 {
		t.Fatalf("patient audit has %d events, want 7: %v", len(items), items)
	}
	first := items[len(items)-1].(map[string]any)
	if first["table"] != "patients" || first["action"] != "INSERT" || first["actor_id"] == nil ||
		first["request_id"] == nil {
		t.Errorf("oldest event = %v", first)
	}
	changes := first["changes"].(map[string]any)
	for _, col := range []string{"given_name", "family_name", "birth_date", "mrn"} {
		if c, _ := changes[col].(map[string]any); c["redacted"] != true {
			t.Errorf("%s is not redacted: %v", col, changes[col])
		}
	}
	// The event's own fields say where and when: the row's organization and
	// its timestamps are not repeated among the changes.
	for _, item := range items {
		for _, col := range []string{"organization_id", "created_at", "updated_at"} {
			if c, ok := item.(map[string]any)["changes"].(map[string]any)[col]; ok {
				t.Errorf("an audit event's changes hold %s: %v", col, c)
			}
		}
	}
	raw, _ := json.Marshal(items)
	for _, secret := range []string{"Ada", "Lovelace", "1915", "MRN-7"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
	ended := items[0].(map[string]any)
	if ended["action"] != "SOFT_DELETE" || ended["changes"].(map[string]any)["removal_reason"] == nil {
		t.Errorf("newest event = %v", ended)
	}
}

func TestAuditPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient()
	for i := 0; i < 4; i++ {
		expect(t, f.assign(patient, f.provider(), "CONSULTANT"), 201, "")
	}

	var ids []float64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		path := "/v1/patients/" + patient + "/audit?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page := expect(t, f.send("GET", path, nil), 200, "")
		for _, it := range page["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(float64))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(ids) != 5 {
		t.Fatalf("%d events over the pages, want 5", len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("events not newest first: %v", ids)
		}
	}
	expect(t, f.send("GET", "/v1/patients/"+patient+"/audit?cursor=nope", nil), 422, CodeValidationFailed)
	expect(t, f.send("GET", "/v1/patients/"+patient+"/audit?limit=0", nil), 422, CodeValidationFailed)
}
