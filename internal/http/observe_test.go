package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
)

// observed is a server wired as cmd/careteam wires it, with the pool's
// gauges, over the database of a setup fixture.
type observed struct {
	*fixture
	seq int
}

func setupObserved(t *testing.T) *observed {
	t.Helper()
	f := setup(t)
	cfg, err := pgxpool.ParseConfig(f.dsn)
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
	reg := prometheus.NewRegistry()
	RegisterPoolCollector(reg, appPool)
	logs := &syncBuffer{}
	srv := New(store.New(appPool), Options{
		Log:      slog.New(slog.NewJSONHandler(logs, nil)),
		Registry: reg,
	})
	srv.engine.GET("/v1/test-panic", func(*gin.Context) { panic("boom") })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &observed{fixture: &fixture{t: t, dsn: f.dsn, pool: f.pool, srv: srv, http: ts, logs: logs,
		org: f.org, key: f.key, readKey: f.readKey}}
}

// call is one scripted request and what it should be logged and counted as.
type call struct {
	id     string
	method string
	route  string
	status int
	size   int
}

// send sends a request with a request id of its own and checks the status.
func (o *observed) send(method, path, route string, status int, v any) (call, map[string]any) {
	o.t.Helper()
	o.seq++
	id := fmt.Sprintf("observe-%02d", o.seq)
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			o.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, o.http.URL+path, body)
	if err != nil {
		o.t.Fatal(err)
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Request-ID", id)
	req.Header.Set("Authorization", "Bearer "+o.key)
	res, err := o.http.Client().Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		o.t.Fatal(err)
	}
	if res.StatusCode != status {
		o.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, status, b)
	}
	if got := res.Header.Get("X-Request-ID"); got != id {
		o.t.Errorf("%s %s: X-Request-ID %q, want %q", method, path, got, id)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return call{id: id, method: method, route: route, status: status, size: len(b)}, m
}

// scrape reads /metrics into a map from series (name and labels, as the
// text format writes them) to value.
func (o *observed) scrape() (map[string]float64, string) {
	o.t.Helper()
	r := o.fixture.send("GET", "/metrics", nil)
	if r.status != 200 {
		o.t.Fatalf("/metrics: %d", r.status)
	}
	series := map[string]float64{}
	for _, line := range strings.Split(string(r.body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			o.t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series, string(r.body)
}

var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestMetricsAndLogsAfterAScript runs a scripted sequence of requests that
// succeed, violate each constraint, miss, panic and probe, then reads
// /metrics and the log: every request is counted and timed under its route
// template and status, each violation is counted by constraint and logged
// with its ids, assignments and reassignments are counted by role, the
// pool's gauges are there, every log line carries its request id, and no
// line holds a patient's or provider's name, birth date, MRN or body.
func TestMetricsAndLogsAfterAScript(t *testing.T) {
	t.Parallel()
	o := setupObserved(t)
	const (
		given, family, birth, mrn = "Zenobia", "Quarterfield", "1961-07-23", "MRN-OBS-7731"
		provGiven, provFamily     = "Octavia", "Brightwater"
	)
	const (
		patientsRoute  = "/v1/patients"
		patientRoute   = "/v1/patients/:patient_id"
		providersRoute = "/v1/providers"
		teamRoute      = "/v1/patients/:patient_id/care-team"
		memberRoute    = "/v1/patients/:patient_id/care-team/:assignment_id"
		primaryRoute   = "/v1/patients/:patient_id/care-team/primary"
	)
	var calls []call
	step := func(method, path, route string, status int, v any) map[string]any {
		t.Helper()
		c, m := o.send(method, path, route, status, v)
		calls = append(calls, c)
		return m
	}

	p := step("POST", "/v1/patients", patientsRoute, 201, map[string]any{
		"given_name": given, "family_name": family, "birth_date": birth, "mrn": mrn})
	patient := p["id"].(string)
	step("POST", "/v1/patients", patientsRoute, 409, map[string]any{
		"given_name": given + "x", "family_name": family, "mrn": mrn})
	mrnTaken := calls[len(calls)-1].id

	npiA := newNPI()
	provider := func(number string, status int) string {
		m := step("POST", "/v1/providers", providersRoute, status, map[string]any{
			"npi": number, "given_name": provGiven, "family_name": provFamily})
		id, _ := m["id"].(string)
		return id
	}
	a := provider(npiA, 201)
	provider(npiA, 409)
	npiTaken := calls[len(calls)-1].id
	b, c := provider(newNPI(), 201), provider(newNPI(), 201)

	team := "/v1/patients/" + patient + "/care-team"
	add := func(provider, role string, status int) map[string]any {
		return step("POST", team, teamRoute, status, map[string]any{"provider_id": provider, "role": role})
	}
	add(a, "PRIMARY", 201)
	add(b, "PRIMARY", 409)
	primaryConflict := calls[len(calls)-1].id
	specialist := add(c, "SPECIALIST", 201)["id"].(string)
	add(c, "CONSULTANT", 409)
	onTeam := calls[len(calls)-1].id

	step("PUT", team+"/primary", primaryRoute, 200, map[string]any{"provider_id": b})
	step("DELETE", team+"/"+specialist, memberRoute, 204, nil)
	step("GET", "/v1/patients/"+patient, patientRoute, 200, nil)
	step("GET", "/v1/patients/not-a-uuid", patientRoute, 400, nil)
	step("GET", "/nowhere", "unmatched", 404, nil)
	panicked := step("GET", "/v1/test-panic", "/v1/test-panic", 500, nil)
	step("GET", "/readyz", "/readyz", 200, nil)
	step("GET", "/healthz", "/healthz", 200, nil)
	if panicked["request_id"] != calls[len(calls)-3].id {
		t.Errorf("the 500 carries request_id %v, want %s", panicked["request_id"], calls[len(calls)-3].id)
	}

	t.Run("metrics", func(t *testing.T) {
		series, page := o.scrape()
		want := map[string]float64{
			`careteam_constraint_violations_total{constraint="uq_care_team_primary"}`:          1,
			`careteam_constraint_violations_total{constraint="uq_care_team_patient_provider"}`: 1,
			`careteam_constraint_violations_total{constraint="uq_providers_npi"}`:              1,
			`careteam_constraint_violations_total{constraint="uq_patients_mrn"}`:               1,
			`careteam_assignments_created_total{role="PRIMARY"}`:                               2,
			`careteam_assignments_created_total{role="SPECIALIST"}`:                            1,
			`careteam_assignments_ended_total{role="PRIMARY"}`:                                 1,
			`careteam_assignments_ended_total{role="SPECIALIST"}`:                              1,
			`careteam_primary_reassignments_total`:                                             1,
			`careteam_db_pool_max_conns`:                                                       20,
			`careteam_db_pool_acquired_conns`:                                                  0,
		}
		// Requests by method, route template and status, and their latency.
		perRoute := map[[2]string]float64{}
		for _, c := range calls {
			key := fmt.Sprintf(`careteam_http_requests_total{method=%q,route=%q,status="%d"}`,
				c.method, c.route, c.status)
			want[key]++
			perRoute[[2]string{c.method, c.route}]++
		}
		for mr, n := range perRoute {
			labels := fmt.Sprintf(`method=%q,route=%q`, mr[0], mr[1])
			want[`careteam_http_request_duration_seconds_count{`+labels+`}`] = n
			want[`careteam_http_request_duration_seconds_bucket{`+labels+`,le="+Inf"}`] = n
		}
		for name, v := range want {
			got, ok := series[name]
			if !ok {
				t.Errorf("%s missing", name)
			} else if got != v {
				t.Errorf("%s = %v, want %v", name, got, v)
			}
		}
		for name, v := range series {
			if strings.HasPrefix(name, "careteam_http_requests_total") && want[name] != v {
				t.Errorf("unexpected %s = %v", name, v)
			}
		}
		for _, name := range []string{"careteam_db_pool_total_conns", "careteam_db_pool_idle_conns"} {
			if series[name] < 1 {
				t.Errorf("%s = %v, want at least 1", name, series[name])
			}
		}
		if _, ok := series["careteam_db_pool_empty_acquire_total"]; !ok {
			t.Error("careteam_db_pool_empty_acquire_total missing")
		}
		if id := uuidPattern.FindString(page); id != "" {
			t.Errorf("an id is a metric label: %s", id)
		}
	})

	t.Run("logs", func(t *testing.T) {
		text := o.logs.String()
		for _, secret := range []string{given, family, birth, mrn, provGiven, provFamily, npiA} {
			if strings.Contains(text, secret) {
				t.Errorf("the log holds %q:\n%s", secret, grep(text, secret))
			}
		}

		byID := map[string][]map[string]any{}
		for _, raw := range strings.Split(strings.TrimSpace(text), "\n") {
			var line map[string]any
			if err := json.Unmarshal([]byte(raw), &line); err != nil {
				t.Fatalf("log line is not JSON: %v: %s", err, raw)
			}
			id, _ := line["request_id"].(string)
			if id == "" {
				t.Errorf("log line without request_id: %s", raw)
			}
			byID[id] = append(byID[id], line)
		}

		for _, c := range calls {
			var requests []map[string]any
			for _, line := range byID[c.id] {
				if line["msg"] == "request" {
					requests = append(requests, line)
				}
			}
			if len(requests) != 1 {
				t.Errorf("%s: %d request lines, want 1", c.id, len(requests))
				continue
			}
			r := requests[0]
			level := "INFO"
			if c.status >= 500 {
				level = "ERROR"
			}
			d, isNumber := r["duration_ms"].(float64)
			if r["method"] != c.method || r["route"] != c.route || r["status"] != float64(c.status) ||
				r["bytes"] != float64(c.size) || !isNumber || d < 0 || r["level"] != level {
				t.Errorf("%s: request line %v, want %s %s %d, %d bytes, level %s",
					c.id, r, c.method, c.route, c.status, c.size, level)
			}
		}

		events := []struct {
			id, msg string
			fields  map[string]string
		}{
			{primaryConflict, "primary_provider_conflict", map[string]string{
				"constraint": store.ConstraintPrimary, "patient_id": patient, "provider_id": b}},
			{onTeam, "provider_already_on_care_team", map[string]string{
				"constraint": store.ConstraintPatientProvider, "patient_id": patient, "provider_id": c}},
			{npiTaken, "npi_taken", map[string]string{"constraint": store.ConstraintProvidersNPI}},
			{mrnTaken, "mrn_taken", map[string]string{"constraint": store.ConstraintPatientsMRN}},
			{calls[len(calls)-3].id, "panic", nil},
		}
		for _, e := range events {
			var found []map[string]any
			for _, line := range byID[e.id] {
				if line["msg"] == e.msg {
					found = append(found, line)
				}
			}
			if len(found) != 1 {
				t.Errorf("%s: %d %s events, want 1", e.id, len(found), e.msg)
				continue
			}
			for k, v := range e.fields {
				if found[0][k] != v {
					t.Errorf("%s event: %s = %v, want %s", e.msg, k, found[0][k], v)
				}
			}
		}
	})
}

func grep(text, word string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// sessionsWaitingOnLock counts the sessions on the fixture's database,
// other than the test's own, that wait for a lock.
func (f *fixture) sessionsWaitingOnLock(ctx context.Context, exceptPID uint32) int {
	f.t.Helper()
	var n int
	err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> $1 AND pid <> pg_backend_pid()
		  AND wait_event_type = 'Lock'`, exceptPID).Scan(&n)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// waitFor polls cond every 20ms until it holds, failing the test with what
// when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}
