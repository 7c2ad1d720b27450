package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/store"
)

// TestErrorCodes provokes every error code of the contract, checks the
// status, the problem body, and that nothing was written.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, provider := f.patient(), f.provider()
	existingNPI := expect(t, f.send("GET", "/v1/providers/"+provider, nil), 200, "")["npi"]
	expect(t, f.send("POST", "/v1/patients", map[string]any{
		"given_name": "A", "family_name": "B", "mrn": "MRN-1"}), 201, "")
	primary := expect(t, f.assign(patient, provider, "PRIMARY"), 201, "")
	missing := uuid.NewString()
	big := `{"given_name":"` + strings.Repeat("x", MaxBodyBytes) + `","family_name":"B"}`

	cases := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"not json", "POST", "/v1/patients", "application/json", `{"given_name":`, 400, CodeMalformedJSON},
		{"empty body", "POST", "/v1/patients", "application/json", ``, 400, CodeMalformedJSON},
		{"two values", "POST", "/v1/patients", "application/json",
			`{"given_name":"A","family_name":"B"} {}`, 400, CodeMalformedJSON},
		{"array", "POST", "/v1/patients", "application/json", `[]`, 400, CodeMalformedJSON},
		{"bad patient id", "GET", "/v1/patients/nope", "", ``, 400, CodeInvalidID},
		{"braced uuid", "GET", "/v1/patients/{" + missing + "}", "", ``, 400, CodeInvalidID},
		{"bad provider id", "GET", "/v1/providers/123", "", ``, 400, CodeInvalidID},
		{"bad assignment id", "DELETE", "/v1/patients/" + patient + "/care-team/x", "", ``, 400, CodeInvalidID},
		{"missing patient", "GET", "/v1/patients/" + missing, "", ``, 404, CodePatientNotFound},
		{"missing patient team", "GET", "/v1/patients/" + missing + "/care-team", "", ``, 404, CodePatientNotFound},
		{"missing patient history", "GET", "/v1/patients/" + missing + "/care-team/history", "", ``,
			404, CodePatientNotFound},
		{"assign to missing patient", "POST", "/v1/patients/" + missing + "/care-team", "application/json",
			`{"provider_id":"` + provider + `","role":"SPECIALIST"}`, 404, CodePatientNotFound},
		{"missing provider", "GET", "/v1/providers/" + missing, "", ``, 404, CodeProviderNotFound},
		{"assign missing provider", "POST", "/v1/patients/" + patient + "/care-team", "application/json",
			`{"provider_id":"` + missing + `","role":"SPECIALIST"}`, 404, CodeProviderNotFound},
		{"reassign missing provider", "PUT", "/v1/patients/" + patient + "/care-team/primary",
			"application/json", `{"provider_id":"` + missing + `"}`, 404, CodeProviderNotFound},
		{"reassign missing patient", "PUT", "/v1/patients/" + missing + "/care-team/primary",
			"application/json", `{"provider_id":"` + provider + `"}`, 404, CodePatientNotFound},
		{"missing assignment", "DELETE", "/v1/patients/" + patient + "/care-team/" + missing, "", ``,
			404, CodeAssignmentNotFound},
		{"end on another patient", "DELETE", "/v1/patients/" + f.patient() + "/care-team/" +
			primary["id"].(string), "", ``, 404, CodeAssignmentNotFound},
		{"second primary", "POST", "/v1/patients/" + patient + "/care-team", "application/json",
			`{"provider_id":"` + f.provider() + `","role":"PRIMARY"}`, 409, CodePrimaryAlreadyAssigned},
		{"provider twice", "POST", "/v1/patients/" + patient + "/care-team", "application/json",
			`{"provider_id":"` + provider + `","role":"CONSULTANT"}`, 409, CodeProviderAlreadyOnTeam},
		{"npi taken", "POST", "/v1/providers", "application/json",
			`{"npi":"` + existingNPI.(string) + `","given_name":"A","family_name":"B"}`, 409, CodeNPITaken},
		{"mrn taken", "POST", "/v1/patients", "application/json",
			`{"given_name":"C","family_name":"D","mrn":"MRN-1"}`, 409, CodeMRNTaken},
		{"too large", "POST", "/v1/patients", "application/json", big, 413, CodePayloadTooLarge},
		{"no content type", "POST", "/v1/patients", "", `{"given_name":"A","family_name":"B"}`,
			415, CodeUnsupportedMediaType},
		{"text content type", "POST", "/v1/patients", "text/plain", `{"given_name":"A","family_name":"B"}`,
			415, CodeUnsupportedMediaType},
		{"missing field", "POST", "/v1/patients", "application/json", `{"given_name":"A"}`,
			422, CodeValidationFailed},
		{"blank field", "POST", "/v1/patients", "application/json", `{"given_name":" ","family_name":"B"}`,
			422, CodeValidationFailed},
		{"long field", "POST", "/v1/patients", "application/json",
			`{"given_name":"` + strings.Repeat("é", 201) + `","family_name":"B"}`, 422, CodeValidationFailed},
		{"unknown field", "POST", "/v1/patients", "application/json",
			`{"given_name":"A","family_name":"B","nickname":"C"}`, 422, CodeValidationFailed},
		{"duplicate field", "POST", "/v1/patients", "application/json",
			`{"given_name":"A","given_name":"B","family_name":"C"}`, 422, CodeValidationFailed},
		{"field case", "POST", "/v1/patients", "application/json",
			`{"Given_Name":"A","family_name":"B"}`, 422, CodeValidationFailed},
		{"wrong type", "POST", "/v1/patients", "application/json", `{"given_name":1,"family_name":"B"}`,
			422, CodeValidationFailed},
		{"bad date", "POST", "/v1/patients", "application/json",
			`{"given_name":"A","family_name":"B","birth_date":"1990-02-30"}`, 422, CodeValidationFailed},
		{"future date", "POST", "/v1/patients", "application/json",
			`{"given_name":"A","family_name":"B","birth_date":"2999-01-01"}`, 422, CodeValidationFailed},
		{"lower-case role", "POST", "/v1/patients/" + patient + "/care-team", "application/json",
			`{"provider_id":"` + f.provider() + `","role":"primary"}`, 422, CodeValidationFailed},
		{"provider id not uuid", "POST", "/v1/patients/" + patient + "/care-team", "application/json",
			`{"provider_id":"x","role":"SPECIALIST"}`, 422, CodeValidationFailed},
		{"npi not ten digits", "POST", "/v1/providers", "application/json",
			`{"npi":"12345","given_name":"A","family_name":"B"}`, 422, CodeValidationFailed},
		{"npi as number", "POST", "/v1/providers", "application/json",
			`{"npi":1234567893,"given_name":"A","family_name":"B"}`, 422, CodeValidationFailed},
		{"npi check digit", "POST", "/v1/providers", "application/json",
			`{"npi":"1234567890","given_name":"A","family_name":"B"}`, 422, CodeInvalidNPI},
		{"search without npi", "GET", "/v1/providers", "", ``, 422, CodeValidationFailed},
		{"search bad npi", "GET", "/v1/providers?npi=12", "", ``, 422, CodeValidationFailed},
		{"empty reason", "DELETE", "/v1/patients/" + patient + "/care-team/" + primary["id"].(string) +
			"?reason=", "", ``, 422, CodeValidationFailed},
		{"NUL in a name", "POST", "/v1/patients", "application/json",
			`{"given_name":"a\u0000b","family_name":"B"}`, 422, CodeValidationFailed},
		{"control character", "POST", "/v1/providers", "application/json",
			`{"npi":"1234567893","given_name":"a\u001b[31m","family_name":"B"}`, 422, CodeValidationFailed},
		{"invalid UTF-8", "POST", "/v1/patients", "application/json",
			"{\"given_name\":\"\xff\xfe\",\"family_name\":\"B\"}", 422, CodeValidationFailed},
		{"NUL in a reason", "DELETE", "/v1/patients/" + patient + "/care-team/" + primary["id"].(string) +
			"?reason=x%00y", "", ``, 422, CodeValidationFailed},
		{"padded MRN taken", "POST", "/v1/patients", "application/json",
			`{"given_name":"C","family_name":"D","mrn":"  MRN-1 "}`, 409, CodeMRNTaken},
		{"encoded slash", "GET", "/v1/patients%2F" + patient, "", ``, 404, CodeNotFound},
		{"trailing slash", "GET", "/v1/patients/" + patient + "/", "", ``, 404, CodeNotFound},
		{"unknown path", "GET", "/v2/patients", "", ``, 404, CodeNotFound},
		{"wrong method", "PATCH", "/v1/patients/" + patient, "", ``, 405, CodeMethodNotAllowed},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.counts()
			r := f.do(tc.method, tc.path, tc.contentType, []byte(tc.body))
			p := expect(t, r, tc.status, tc.code)
			if tc.status == 422 && p["errors"] == nil {
				t.Errorf("422 without errors: %s", r.body)
			}
			if tc.status != 422 && p["errors"] != nil {
				t.Errorf("errors outside a 422: %s", r.body)
			}
			if after := f.counts(); after != before {
				t.Errorf("rows before %v, after %v: a refused request wrote", before, after)
			}
		})
	}
}

func TestUnknownFieldIsNamed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.do("POST", "/v1/providers", "application/json",
		[]byte(`{"npi":"1234567893","given_name":"A","family_name":"B","Specialty":"x"}`))
	p := expect(t, r, 422, CodeValidationFailed)
	errs := p["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["field"] != "Specialty" {
		t.Fatalf("errors = %v, want the unknown field named", errs)
	}
}

func TestPrimaryConflictSeenOnlyByTheIndex(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, held, racer := f.patient(), f.provider(), f.provider()
	ctx := context.Background()

	// A transaction that has inserted a PRIMARY but not committed: the
	// request's check cannot see it, so only uq_care_team_primary can stop
	// the second PRIMARY once this one commits.
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var heldID string
	err = tx.QueryRow(ctx, `INSERT INTO care_team_assignments (organization_id, patient_id, provider_id, role)
		SELECT organization_id, id, $2, 'PRIMARY' FROM patients WHERE id = $1
		RETURNING id::text`, patient, held).Scan(&heldID)
	if err != nil {
		t.Fatal(err)
	}

	answered := make(chan response, 1)
	go func() { answered <- f.assign(patient, racer, "PRIMARY") }()
	waitForLockWait(t, f.pool)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	p := expect(t, <-answered, 409, CodePrimaryAlreadyAssigned)
	if p["existing_assignment_id"] != heldID {
		t.Errorf("existing_assignment_id = %v, want %s", p["existing_assignment_id"], heldID)
	}
	if !strings.Contains(f.logs.String(), `"constraint":"uq_care_team_primary"`) {
		t.Error("no log event names the constraint")
	}
}

// waitForLockWait waits until some session of the pool's database waits on
// a lock, that is, until the racing request is blocked on the index.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		var waiting bool
		err := pool.QueryRow(context.Background(), `
			SELECT EXISTS (SELECT FROM pg_stat_activity
			               WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		select {
		case <-t.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the racing request never waited on the index")
}

func TestPanicAnswersInternalAndKeepsServing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.srv.engine.GET("/v1/test-panic", func(*gin.Context) { panic("boom") })

	r := f.do("GET", "/v1/test-panic", "", nil)
	p := expect(t, r, 500, CodeInternal)
	if p["request_id"] == "" || p["request_id"] != r.header.Get("X-Request-ID") {
		t.Errorf("request_id = %v, header %q", p["request_id"], r.header.Get("X-Request-ID"))
	}
	if !strings.Contains(f.logs.String(), p["request_id"].(string)) {
		t.Error("the request id of the 500 is not in the log")
	}
	expect(t, f.send("GET", "/healthz", nil), 200, "")
}

func TestDatabaseDownAnswersUnavailable(t *testing.T) {
	t.Parallel()
	// A pool on a port where nothing listens.
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ts := httptest.NewServer(New(store.New(pool), Options{}))
	defer ts.Close()
	// A well-formed key: checking it needs the database.
	f := &fixture{t: t, http: ts, key: apikey.Generate()}

	r := f.send("GET", "/v1/patients/"+uuid.NewString(), nil)
	expect(t, r, 503, CodeUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	expect(t, f.send("GET", "/readyz", nil), 503, CodeUnavailable)
	expect(t, f.send("GET", "/healthz", nil), 200, "")
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	f := setup(t)
	req, _ := http.NewRequest("GET", f.http.URL+"/healthz", nil)
	req.Header.Set("X-Request-ID", "client-id-42")
	res, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("X-Request-ID"); got != "client-id-42" {
		t.Errorf("sane id came back as %q", got)
	}

	req.Header.Set("X-Request-ID", "bad id\twith spaces")
	res, err = f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("X-Request-ID"); got == "" || strings.ContainsAny(got, " \t") {
		t.Errorf("insane id answered with %q, want a fresh one", got)
	}
}

func TestLocationAndEmptyLists(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.send("POST", "/v1/patients", map[string]any{"given_name": "A", "family_name": "B",
		"birth_date": "1990-12-10", "mrn": "A-1001"})
	p := expect(t, r, 201, "")
	if r.header.Get("Location") != "/v1/patients/"+p["id"].(string) {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	if p["birth_date"] != "1990-12-10" || p["mrn"] != "A-1001" {
		t.Errorf("patient = %v", p)
	}
	got := expect(t, f.send("GET", r.header.Get("Location"), nil), 200, "")
	if got["birth_date"] != "1990-12-10" {
		t.Errorf("birth_date read back as %v", got["birth_date"])
	}

	team := f.send("GET", "/v1/patients/"+p["id"].(string)+"/care-team", nil)
	if !strings.Contains(string(team.body), `"assignments":[]`) {
		t.Errorf("empty team = %s, want []", team.body)
	}
	search := f.send("GET", "/v1/providers?npi="+newNPI(), nil)
	if string(search.body) != `{"items":[]}` {
		t.Errorf("empty search = %s", search.body)
	}

	prov := f.send("POST", "/v1/providers", map[string]any{"npi": newNPI(), "given_name": "A",
		"family_name": "B", "specialty": "Cardiology"})
	pj := expect(t, prov, 201, "")
	if prov.header.Get("Location") != "/v1/providers/"+pj["id"].(string) || pj["specialty"] != "Cardiology" {
		t.Errorf("provider = %v, Location %q", pj, prov.header.Get("Location"))
	}
	a := f.assign(p["id"].(string), pj["id"].(string), "CONSULTANT")
	aj := expect(t, a, 201, "")
	want := "/v1/patients/" + p["id"].(string) + "/care-team/" + aj["id"].(string)
	if a.header.Get("Location") != want {
		t.Errorf("Location = %q, want %q", a.header.Get("Location"), want)
	}
}

// TestForeignKeyViolationIsLogged: an assignment naming a provider that does
// not exist answers 404 and leaves one event naming the foreign key.
func TestForeignKeyViolationIsLogged(t *testing.T) {
	t.Parallel()
	f := setup(t)
	expect(t, f.assign(f.patient(), uuid.NewString(), "SPECIALIST"), 404, CodeProviderNotFound)
	if n := strings.Count(f.logs.String(), `"constraint":"fk_care_team_assignments_provider"`); n != 1 {
		t.Errorf("%d events name the provider's foreign key, want 1:\n%s", n, f.logs.String())
	}
	// A plain read of a missing provider is no violation.
	expect(t, f.send("GET", "/v1/providers/"+uuid.NewString(), nil), 404, CodeProviderNotFound)
	if n := strings.Count(f.logs.String(), `"msg":"foreign_key_violation"`); n != 1 {
		t.Errorf("%d foreign-key events after a plain read, want still 1", n)
	}
}
