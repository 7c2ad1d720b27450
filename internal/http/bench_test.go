package httpapi

// Benchmarks of request decoding, validation and answer encoding, alone
// and through the whole handler (gin engine, middleware, store):
//
//	go test -run '^$' -bench . -count 10 ./internal/http > new.txt
//	benchstat old.txt new.txt
//
// The Handler benchmarks run the real Server on httptest recorders over a
// database of their own, with an API key; the others need no database.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/store"
	"github.com/careteam/careteam/internal/testdb"
)

// benchEnv is the service's handler over a new database: the store runs
// as the service's role, under row-level security, and requests carry an
// API key of the default organization, where the seeding SQL writes.
type benchEnv struct {
	srv  *Server
	pool *pgxpool.Pool // the superuser's, for seeding
	key  string
	ctx  context.Context
}

// benchServer returns a benchEnv, logging JSON lines to nowhere as the
// service logs them to standard output.
func benchServer(b *testing.B) *benchEnv {
	b.Helper()
	dsn := testdb.New(b)
	ctx := context.Background()
	open := func(app bool) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns = 20
		if app {
			store.ConfigurePool(cfg)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		return pool
	}
	pool, appPool := open(false), open(true)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	made, err := apikey.Create(ctx, conn, "default", "bench", []string{"read", "write"})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{
		srv:  New(store.New(appPool), Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}),
		pool: pool,
		key:  made.Key,
		ctx:  store.WithTenant(ctx, store.Tenant{OrganizationID: made.OrganizationID, RequestID: "bench"}),
	}
}

// benchIDs inserts n rows with SQL and returns their ids as strings.
func benchIDs(b *testing.B, pool *pgxpool.Pool, sql string, args ...any) []string {
	b.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return ids
}

func benchPatients(b *testing.B, pool *pgxpool.Pool, n int) []string {
	return benchIDs(b, pool, `INSERT INTO patients (given_name, family_name)
		SELECT 'Bench', 'Patient ' || i FROM generate_series(1, $1::int) AS i RETURNING id`, n)
}

func benchProviders(b *testing.B, pool *pgxpool.Pool, n int) []string {
	npis := make([]string, n)
	for i := range npis {
		npis[i] = newNPI()
	}
	return benchIDs(b, pool, `INSERT INTO providers (npi, given_name, family_name)
		SELECT npi, 'Bench', 'Provider' FROM unnest($1::text[]) AS npi RETURNING id`, npis)
}

// serve runs one request, with the environment's key, through the handler
// and fails the benchmark unless it answers want.
func (e *benchEnv) serve(b *testing.B, req *http.Request, want int) {
	req.Header.Set("Authorization", "Bearer "+e.key)
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
	}
}

// BenchmarkHandlerAddMember is POST /v1/patients/{id}/care-team through the
// whole handler: decode, validate, the store's transaction, encode, log.
func BenchmarkHandlerAddMember(b *testing.B) {
	env := benchServer(b)
	providers := benchProviders(b, env.pool, 200)
	patients := benchPatients(b, env.pool, b.N/len(providers)+1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		body := `{"provider_id":"` + providers[i%len(providers)] + `","role":"SPECIALIST"}`
		req := httptest.NewRequest(http.MethodPost, "/v1/patients/"+patients[i/len(providers)]+"/care-team",
			bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		env.serve(b, req, http.StatusCreated)
	}
}

// BenchmarkHandlerGetCareTeam is GET /v1/patients/{id}/care-team of teams
// of four through the whole handler.
func BenchmarkHandlerGetCareTeam(b *testing.B) {
	env := benchServer(b)
	providers := benchProviders(b, env.pool, 50)
	patients := benchPatients(b, env.pool, 100)
	st := store.New(env.pool)
	for i, p := range patients {
		for k := range 4 {
			role := store.RoleConsultant
			if k == 0 {
				role = store.RolePrimary
			}
			if _, err := st.AddMember(env.ctx, uuid.MustParse(p),
				uuid.MustParse(providers[(i+k)%len(providers)]), role); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodGet, "/v1/patients/"+patients[i%len(patients)]+"/care-team", nil)
		env.serve(b, req, http.StatusOK)
	}
}

// BenchmarkHandlerRejectRole is a POST care-team with a role that is not
// one, through the whole handler: decode, validate, the key's check (one
// query: a refusal is written only to a valid key), the 422 problem,
// middleware, log, metrics.
func BenchmarkHandlerRejectRole(b *testing.B) {
	env := benchServer(b)
	path := "/v1/patients/" + uuid.NewString() + "/care-team"
	body := []byte(`{"provider_id":"` + uuid.NewString() + `","role":"surgeon"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		env.serve(b, req, http.StatusUnprocessableEntity)
	}
}

// benchContext is a gin context on a recorder, reused by the decode and
// encode benchmarks so that they measure those and not the context.
func benchContext() (*gin.Context, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	return c, rec
}

// BenchmarkDecodeAssignmentRequest reads and validates the body of a POST
// care-team: decodeBody, then the provider id and role checks.
func BenchmarkDecodeAssignmentRequest(b *testing.B) {
	c, _ := benchContext()
	payload := []byte(`{"provider_id":"` + uuid.NewString() + `","role":"CONSULTANT"}`)
	body := bytes.NewReader(payload)
	req := httptest.NewRequest(http.MethodPost, "/v1/patients/x/care-team", body)
	req.Header.Set("Content-Type", "application/json")
	c.Request = req
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		body.Reset(payload)
		req.Body = io.NopCloser(body)
		fields, ok := decodeBody(c, "provider_id", "role")
		if !ok {
			b.Fatal("decodeBody refused a valid body")
		}
		v := validator{fields: fields}
		_ = v.id("provider_id")
		_ = v.role("role")
		if len(v.errs) > 0 {
			b.Fatalf("validation failed: %v", v.errs)
		}
	}
}

func benchAssignment(role store.Role, at time.Time) store.Assignment {
	return store.Assignment{ID: uuid.New(), PatientID: uuid.New(), ProviderID: uuid.New(),
		Role: role, AssignedAt: at}
}

// BenchmarkEncodeAssignment writes the 201 answer of a POST care-team.
func BenchmarkEncodeAssignment(b *testing.B) {
	c, rec := benchContext()
	a := benchAssignment(store.RoleSpecialist, time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec.Body.Reset()
		created(c, "/v1/patients/"+a.PatientID.String()+"/care-team/"+a.ID.String(), toAssignmentJSON(a))
	}
	b.SetBytes(int64(rec.Body.Len()))
}

// BenchmarkEncodeCareTeam writes the 200 answer of a GET care-team with
// five members.
func BenchmarkEncodeCareTeam(b *testing.B) {
	c, rec := benchContext()
	now := time.Now()
	team := []store.Assignment{benchAssignment(store.RolePrimary, now)}
	for k := range 4 {
		team = append(team, benchAssignment(store.RoleConsultant, now.Add(time.Duration(k)*time.Hour)))
	}
	patient := team[0].PatientID
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec.Body.Reset()
		writeJSON(c, http.StatusOK, "", toCareTeamJSON(patient, team))
	}
	b.SetBytes(int64(rec.Body.Len()))
}

// BenchmarkEncodeProblem writes a 409 primary_already_assigned answer.
func BenchmarkEncodeProblem(b *testing.B) {
	c, rec := benchContext()
	existing := uuid.New()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec.Body.Reset()
		writeProblemBody(c, Problem{Status: http.StatusConflict, Code: CodePrimaryAlreadyAssigned,
			Detail: "Patient already has an active PRIMARY provider.", ExistingAssignmentID: &existing})
	}
	b.SetBytes(int64(rec.Body.Len()))
}
