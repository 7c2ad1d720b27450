package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/npi"
	"github.com/careteam/careteam/internal/store"
	"github.com/careteam/careteam/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// fixture is what most tests need: a server on loopback over a database of
// the test's own, the log it writes, and API keys of an organization.
type fixture struct {
	t *testing.T
	// dsn is the test database, as its superuser.
	dsn string
	// pool is the superuser's: it sees every organization. The server's
	// own pool runs as the service's role.
	pool *pgxpool.Pool
	srv  *Server
	http *httptest.Server
	logs *syncBuffer
	// key reads and writes for organization org; requests carry it unless
	// they say otherwise. readKey only reads.
	org     string
	key     string
	readKey string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	dsn := testdb.New(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 20
	store.ConfigurePool(cfg)
	appPool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(appPool.Close)

	logs := &syncBuffer{}
	srv := New(store.New(appPool), Options{Log: slog.New(slog.NewJSONHandler(logs, nil))})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	f := &fixture{t: t, dsn: dsn, pool: pool, srv: srv, http: ts, logs: logs, org: "test-org"}
	f.key = f.newKey(f.org, "read,write")
	f.readKey = f.newKey(f.org, "read")
	return f
}

// newKey makes an API key of organization org with the scopes.
func (f *fixture) newKey(org, scopes string) string {
	f.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	parsed, err := apikey.ParseScopes(scopes)
	if err != nil {
		f.t.Fatal(err)
	}
	made, err := apikey.Create(ctx, conn, org, "key "+scopes, parsed)
	if err != nil {
		f.t.Fatal(err)
	}
	return made.Key
}

// as returns a copy of the fixture whose requests carry key ("" for none).
func (f *fixture) as(key string) *fixture {
	c := *f
	c.key = key
	return &c
}

// syncBuffer is a log sink that handlers running in parallel can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// response is an answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request with a raw body and content type ("" for none).
func (f *fixture) do(method, path, contentType string, body []byte) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.http.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if f.key != "" {
		req.Header.Set("Authorization", "Bearer "+f.key)
	}
	res, err := f.http.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// send sends v as JSON (nil for no body).
func (f *fixture) send(method, path string, v any) response {
	f.t.Helper()
	if v == nil {
		return f.do(method, path, "", nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(method, path, "application/json", b)
}

// expect fails the test unless r has the status and, for errors, the code.
func expect(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	m := r.json(t)
	if code != "" {
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type = %q, want application/problem+json", ct)
		}
		if m["code"] != code {
			t.Fatalf("code = %v, want %s; body %s", m["code"], code, r.body)
		}
		if m["status"] != float64(status) || m["type"] != "about:blank" || m["title"] == "" {
			t.Errorf("problem fields wrong: %s", r.body)
		}
		assertNoLeak(t, r.body)
	}
	return m
}

// assertNoLeak fails when an error body shows database internals.
func assertNoLeak(t *testing.T, body []byte) {
	t.Helper()
	lower := strings.ToLower(string(body))
	for _, word := range []string{"sqlstate", "uq_", "ck_", "fk_", "care_team_assignments",
		"constraint", "pgx", "duplicate key", "violates"} {
		if strings.Contains(lower, word) {
			t.Errorf("error body shows %q: %s", word, body)
		}
	}
}

var npiCounter = rand.Uint32N(100_000_000)
var npiMu sync.Mutex

// newNPI returns a valid NPI not used before in this process.
func newNPI() string {
	npiMu.Lock()
	npiCounter++
	nine := fmt.Sprintf("1%08d", npiCounter%100_000_000)
	npiMu.Unlock()
	return nine + string('0'+npi.CheckDigit(nine))
}

func (f *fixture) patient() string {
	f.t.Helper()
	r := f.send("POST", "/v1/patients", map[string]any{"given_name": "Ada", "family_name": "Lovelace"})
	return expect(f.t, r, 201, "")["id"].(string)
}

func (f *fixture) provider() string {
	f.t.Helper()
	r := f.send("POST", "/v1/providers", map[string]any{
		"npi": newNPI(), "given_name": "Grace", "family_name": "Hopper"})
	return expect(f.t, r, 201, "")["id"].(string)
}

func (f *fixture) assign(patient, provider, role string) response {
	f.t.Helper()
	return f.send("POST", "/v1/patients/"+patient+"/care-team",
		map[string]any{"provider_id": provider, "role": role})
}

// counts returns the number of rows of each table, to show that a refused
// request wrote nothing.
func (f *fixture) counts() [3]int {
	f.t.Helper()
	var c [3]int
	err := f.pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM providers),
		       (SELECT count(*) FROM care_team_assignments)`).Scan(&c[0], &c[1], &c[2])
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// activePrimaries returns the ids of the patient's active PRIMARY rows.
func (f *fixture) activePrimaries(patient string) []string {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `
		SELECT id::text FROM care_team_assignments
		WHERE patient_id = $1 AND role = 'PRIMARY' AND removed_at IS NULL`, patient)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func newRequest(method, url, authorization string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", authorization)
	return req, nil
}

func readResponse(t *testing.T, res *http.Response) response {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
