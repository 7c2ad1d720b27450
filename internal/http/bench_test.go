package httpapi

// Benchmarks of request decoding, validation and answer encoding, alone
// and through the whole handler (gin engine, middleware, store):
//
//	go test -run '^$' -bench . -count 10 ./internal/http > new.txt
//	benchstat old.txt new.txt
//
// The Handler benchmarks run the real Server on httptest recorders over a
// database of their own; the others need no database.

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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
	"github.com/careteam/careteam/internal/testdb"
)

// benchServer is the service's handler over a new database, logging JSON
// lines to nowhere as the service logs them to standard output.
func benchServer(b *testing.B) (*Server, *pgxpool.Pool) {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(testdb.New(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	srv := New(store.New(pool), Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	return srv, pool
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

// serve runs one request through the handler and fails the benchmark
// unless it answers want.
func serve(b *testing.B, srv *Server, req *http.Request, want int) {
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != want {
		if rec.Code == http.StatusUnauthorized {
			b.Fatalf("status 401: the handler now wants credentials; give the benchmark a key: %s", rec.Body)
		}
		b.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
	}
}

// BenchmarkHandlerAddMember is POST /v1/patients/{id}/care-team through the
// whole handler: decode, validate, the store's transaction, encode, log.
func BenchmarkHandlerAddMember(b *testing.B) {
	srv, pool := benchServer(b)
	providers := benchProviders(b, pool, 200)
	patients := benchPatients(b, pool, b.N/len(providers)+1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		body := `{"provider_id":"` + providers[i%len(providers)] + `","role":"SPECIALIST"}`
		req := httptest.NewRequest(http.MethodPost, "/v1/patients/"+patients[i/len(providers)]+"/care-team",
			bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		serve(b, srv, req, http.StatusCreated)
	}
}

// BenchmarkHandlerGetCareTeam is GET /v1/patients/{id}/care-team of teams
// of four through the whole handler.
func BenchmarkHandlerGetCareTeam(b *testing.B) {
	srv, pool := benchServer(b)
	providers := benchProviders(b, pool, 50)
	patients := benchPatients(b, pool, 100)
	st := store.New(pool)
	for i, p := range patients {
		for k := range 4 {
			role := store.RoleConsultant
			if k == 0 {
				role = store.RolePrimary
			}
			if _, err := st.AddMember(context.Background(), uuid.MustParse(p),
				uuid.MustParse(providers[(i+k)%len(providers)]), role); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodGet, "/v1/patients/"+patients[i%len(patients)]+"/care-team", nil)
		serve(b, srv, req, http.StatusOK)
	}
}

// BenchmarkHandlerRejectRole is a POST care-team with a role that is not
// one, through the whole handler: everything but the database (decode,
// validate, the 422 problem, middleware, log, metrics).
func BenchmarkHandlerRejectRole(b *testing.B) {
	srv := New(store.New(nil), Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	path := "/v1/patients/" + uuid.NewString() + "/care-team"
	body := []byte(`{"provider_id":"` + uuid.NewString() + `","role":"surgeon"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		serve(b, srv, req, http.StatusUnprocessableEntity)
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
