package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/migrate"
	"github.com/careteam/careteam/internal/npi"
	"github.com/careteam/careteam/internal/pgcluster"
	"github.com/careteam/careteam/internal/testdb"
)

// The tests of this file prove what the service promises when PostgreSQL,
// the network or its clients misbehave. They drive the real serve (in this
// process, or as a child process for signals) over loopback, against real
// PostgreSQL servers, and each is bounded by a context deadline.

// runMainEnv makes the test binary run main() instead of the tests, so that
// a test can start it as the real "careteam serve" process and signal it.
const runMainEnv = "CARETEAM_TEST_RUN_MAIN"

// lockedBuffer is a log sink that serve and the test read concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines decodes the JSON log lines written so far.
func logLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(text), "\n") {
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, raw)
		}
		lines = append(lines, m)
	}
	return lines
}

// eventually polls cond every 20ms until it holds or ctx ends, and fails the
// test with what when it never does.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
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

// liveServer is serve running in this process.
type liveServer struct {
	url  string
	logs *lockedBuffer
	stop func()
}

// testConfig is the configuration of the service with its defaults, on a
// free loopback port.
func testConfig(t *testing.T, dsn string) config {
	t.Helper()
	for _, name := range []string{"DB_STATEMENT_TIMEOUT", "REQUEST_TIMEOUT", "SHUTDOWN_TIMEOUT", "DB_MAX_CONNS"} {
		if os.Getenv(name) != "" {
			t.Fatalf("%s is set: these tests run with the defaults", name)
		}
	}
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = dsn
	cfg.ListenAddr = "127.0.0.1:0"
	return cfg
}

// startServe runs serve with cfg until the test ends or stop is called, and
// returns once it listens.
func startServe(ctx context.Context, t *testing.T, cfg config) *liveServer {
	t.Helper()
	logs := &lockedBuffer{}
	serveCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(serveCtx, cfg, logs) }()

	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(cfg.ShutdownTimeout + 10*time.Second):
				t.Error("serve did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)

	var addr string
	eventually(ctx, t, "serve listens", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve returned before listening: %v", err)
		default:
		}
		for _, l := range logLines(t, logs.String()) {
			if l["msg"] == "listening" {
				addr, _ = l["addr"].(string)
				return true
			}
		}
		return false
	})
	return &liveServer{url: "http://" + addr, logs: logs, stop: stop}
}

// outcome is what a client saw of one request.
type outcome struct {
	key      string // the MRN or id the request is about
	status   int    // 0 when the request failed without an answer
	code     string // the problem code of an error answer
	id       string // the id of a created resource
	err      error
	started  time.Time
	finished time.Time
}

// postPatient creates a patient whose MRN is mrn.
func postPatient(ctx context.Context, client *http.Client, base, mrn string) outcome {
	o := outcome{key: mrn, started: time.Now()}
	defer func() { o.finished = time.Now() }()

	body := fmt.Sprintf(`{"given_name":"Ada","family_name":"Lovelace","mrn":%q}`, mrn)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/patients", strings.NewReader(body))
	if err != nil {
		o.err = err
		return o
	}
	req.Header.Set("Content-Type", "application/json")
	o.status, o.code, o.id, o.err = roundTrip(client, req)
	o.finished = time.Now()
	return o
}

// roundTrip sends req and reads the status, a problem's code and a created
// resource's id.
func roundTrip(client *http.Client, req *http.Request) (status int, code, id string, err error) {
	res, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, "", "", err
	}
	var m struct{ Code, ID string }
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m.Code, m.ID, nil
}

func get(ctx context.Context, t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// metricValue reads one series from a /metrics page, or -1 when absent.
func metricValue(page, series string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestDatabaseRestartUnderLoad stops the service's PostgreSQL, a cluster
// that the test owns, under a steady stream of writes and reads, then
// starts it again: no answer is a 500, only 503s come while it is down and
// they come fast, /readyz follows the database, the service recovers by
// itself within seconds, and every 201 it gave is in the database.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	t.Parallel()
	if _, err := pgcluster.FindBinaries(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("%v: this test stops and starts a cluster of its own, so it needs the PostgreSQL "+
			"server binaries; it runs wherever they are installed, and always in CI", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The folder must be reachable by the postgres user when the test runs
	// as root, which t.TempDir's parent is not.
	dir, err := os.MkdirTemp("", "careteam-restart-")
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Durable: true})
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Stop()
		_ = cluster.Remove()
	})
	dsn := cluster.URL("careteam")
	if err := migrate.New(dsn, nil).Up(ctx); err != nil {
		t.Fatal(err)
	}

	srv := startServe(ctx, t, testConfig(t, dsn))
	client := keyedClient(t, dsn, 20*time.Second)

	var (
		mu       sync.Mutex
		outcomes []outcome
		seq      atomic.Int64
	)
	record := func(o outcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	// count counts the outcomes that started after since and match keep.
	count := func(since time.Time, keep func(outcome) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if !o.started.Before(since) && keep(o) {
				n++
			}
		}
		return n
	}
	is := func(status int) func(outcome) bool {
		return func(o outcome) bool { return o.status == status }
	}

	// Four writers and a reader run until told to stop.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				o := postPatient(context.Background(), client, srv.url,
					fmt.Sprintf("R-%d-%d", w, seq.Add(1)))
				record(o)
			}
		})
	}
	wg.Go(func() {
		for loadCtx.Err() == nil {
			req, _ := http.NewRequest("GET", srv.url+"/v1/providers?npi=1234567893", nil)
			o := outcome{key: "read", started: time.Now()}
			o.status, o.code, _, o.err = roundTrip(client, req)
			o.finished = time.Now()
			record(o)
		}
	})
	defer func() {
		stopLoad()
		wg.Wait()
	}()

	start := time.Now()
	phase, endPhase := context.WithTimeout(ctx, 30*time.Second)
	defer endPhase()
	eventually(phase, t, "the service writes while PostgreSQL is up", func() bool {
		return count(start, is(201)) >= 50
	})

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	phase, endPhase = context.WithTimeout(ctx, 30*time.Second)
	defer endPhase()
	eventually(phase, t, "requests are refused while PostgreSQL is down", func() bool {
		return count(down, is(503)) >= 40
	})
	if status, _ := get(ctx, t, client, srv.url+"/readyz"); status != 503 {
		t.Errorf("/readyz = %d while PostgreSQL is down, want 503", status)
	}
	if status, _ := get(ctx, t, client, srv.url+"/healthz"); status != 200 {
		t.Errorf("/healthz = %d while PostgreSQL is down, want 200", status)
	}
	restarting := time.Now()

	if err := cluster.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	recoverCtx, cancelRecover := context.WithTimeout(ctx, 5*time.Second)
	defer cancelRecover()
	eventually(recoverCtx, t, "the service writes again within 5s of PostgreSQL's return", func() bool {
		return count(up, is(201)) >= 1
	})
	t.Logf("first write %v after PostgreSQL accepted connections again", time.Since(up))
	eventually(recoverCtx, t, "/readyz answers 200 again", func() bool {
		status, _ := get(ctx, t, client, srv.url+"/readyz")
		return status == 200
	})
	eventually(ctx, t, "the service keeps writing", func() bool {
		return count(up, is(201)) >= 50
	})
	stopLoad()
	wg.Wait()

	var created []string
	var during, refused int
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			t.Errorf("request %s got no answer: %v", o.key, o.err)
		case o.status == 201 && o.key != "read":
			created = append(created, o.id)
		case o.status == 200 && o.key == "read":
		case o.status == 503:
			refused++
			if o.code != "unavailable" {
				t.Errorf("503 with code %q, want unavailable", o.code)
			}
		default:
			t.Errorf("request %s answered %d %s", o.key, o.status, o.code)
		}
		// Requests sent and answered wholly while the server was down.
		if !o.started.Before(down) && o.finished.Before(restarting) {
			during++
			if o.status != 503 {
				t.Errorf("request %s answered %d while PostgreSQL was down", o.key, o.status)
			}
			if took := o.finished.Sub(o.started); took > 2*time.Second {
				t.Errorf("request %s took %v to answer while PostgreSQL was down", o.key, took)
			}
		}
	}
	t.Logf("%d answers: %d created, %d refused, %d while down", len(outcomes), len(created), refused, during)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM patients WHERE id::text = ANY($1)`,
		created).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(created) {
		t.Errorf("%d of the %d patients answered 201 are in the database", stored, len(created))
	}
}

// sessions counts the service's sessions on the database of dsn whose state
// or wait matches the condition.
func sessions(ctx context.Context, t *testing.T, conn *pgx.Conn, where string) int {
	t.Helper()
	var n int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND application_name = 'careteam' AND `+where).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestClientsThatHangUp cancels 200 requests while they wait on the
// database, some inside a transaction waiting for a row lock, the others for
// a connection of the pool. Their queries end at once on the server, no
// session is left busy or idle in a transaction, none of them counts as a
// 500, and the 20 requests that follow all succeed quickly.
func TestClientsThatHangUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := testdb.New(t)
	cfg := testConfig(t, dsn)
	srv := startServe(ctx, t, cfg)
	client := keyedClient(t, dsn, 20*time.Second)

	patient := postPatient(ctx, client, srv.url, "H-1")
	if patient.status != 201 {
		t.Fatalf("create patient: %d %v", patient.status, patient.err)
	}
	provider := createProvider(ctx, t, client, srv.url)
	reassign := func(ctx context.Context, trace *httptrace.ClientTrace) (int, error) {
		body := fmt.Sprintf(`{"provider_id":%q}`, provider)
		if trace != nil {
			ctx = httptrace.WithClientTrace(ctx, trace)
		}
		req, _ := http.NewRequestWithContext(ctx, "PUT",
			srv.url+"/v1/patients/"+patient.id+"/care-team/primary", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		status, _, _, err := roundTrip(client, req)
		return status, err
	}

	// The test holds the patient's row, so every reassignment waits inside
	// its transaction, or for a connection while the pool is full of those.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT FROM patients WHERE id = $1 FOR UPDATE`, patient.id); err != nil {
		t.Fatal(err)
	}

	const hangUps = 200
	clientCtx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	var written atomic.Int64
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { written.Add(1) }}
	errs := make(chan error, hangUps)
	for range hangUps {
		go func() {
			status, err := reassign(clientCtx, trace)
			if err == nil {
				err = fmt.Errorf("answered %d before the client hung up", status)
			}
			errs <- err
		}()
	}
	waitingOnLock := func() int { return sessions(ctx, t, admin, `wait_event_type = 'Lock'`) }
	eventually(ctx, t, "every request is sent and the pool is full of waiting ones", func() bool {
		return written.Load() == hangUps && waitingOnLock() == int(cfg.DBMaxConns)
	})

	hangUp()
	for range hangUps {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("hung-up request: %v", err)
		}
	}
	// The row is still held: only a cancelled query stops waiting for it.
	quick, cancelQuick := context.WithTimeout(ctx, 3*time.Second)
	defer cancelQuick()
	eventually(quick, t, "the server ends the queries of clients that hung up", func() bool {
		return waitingOnLock() == 0
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for i := range 20 {
		began := time.Now()
		status, err := reassign(ctx, nil)
		if err != nil || status != 200 {
			t.Fatalf("request %d after the hang-ups: %d %v", i, status, err)
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("request %d after the hang-ups took %v", i, took)
		}
	}

	eventually(ctx, t, "no session of the service is busy or idle in a transaction", func() bool {
		return sessions(ctx, t, admin, `(state = 'active' OR state LIKE 'idle in transaction%')`) == 0
	})
	_, page := get(ctx, t, client, srv.url+"/metrics")
	if v := metricValue(page, "careteam_db_pool_acquired_conns"); v != 0 {
		t.Errorf("careteam_db_pool_acquired_conns = %v after the requests, want 0", v)
	}
	route := `route="/v1/patients/:patient_id/care-team/primary"`
	if v := metricValue(page, `careteam_http_requests_total{method="PUT",`+route+`,status="200"}`); v != 20 {
		t.Errorf("PUT 200 count = %v, want 20", v)
	}
	if strings.Contains(page, `status="500"`) {
		t.Errorf("hung-up requests counted as 500s:\n%s", grepLines(page, `status="500"`))
	}
	for _, l := range logLines(t, srv.logs.String()) {
		if l["level"] == "ERROR" {
			t.Errorf("error logged for a client that hung up: %v", l)
		}
	}
}

func grepLines(text, word string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

var providerSeq atomic.Int64

// createProvider creates a provider with a fresh valid NPI and returns its
// id.
func createProvider(ctx context.Context, t *testing.T, client *http.Client, base string) string {
	t.Helper()
	nine := fmt.Sprintf("1%08d", (time.Now().UnixNano()/1000+providerSeq.Add(1))%100_000_000)
	number := nine + string('0'+npi.CheckDigit(nine))
	body := fmt.Sprintf(`{"npi":%q,"given_name":"Grace","family_name":"Hopper"}`, number)
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/providers", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	status, code, id, err := roundTrip(client, req)
	if err != nil || status != 201 {
		t.Fatalf("create provider: %d %s %v", status, code, err)
	}
	return id
}

// TestSIGTERMDuringWrites signals the real careteam serve process while a
// burst of writes is in flight, some of them held back by a lock so that
// they are mid-request when the signal lands: the process stops accepting,
// finishes those, exits 0 and closes its sessions; every write that got a
// 201 is stored and none that got an error is.
func TestSIGTERMDuringWrites(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := testdb.New(t)

	cmd := exec.CommandContext(ctx, os.Args[0], "serve")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "DATABASE_URL="+dsn,
		"LISTEN_ADDR=127.0.0.1:0", "DB_MAX_CONNS=8", "SHUTDOWN_TIMEOUT=30s")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	logs := &lockedBuffer{}
	go func() {
		// Copy the log until the process closes its end, then reap it.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()

	var addr string
	eventually(ctx, t, "the process listens", func() bool {
		for _, l := range logLines(t, logs.String()) {
			if l["msg"] == "listening" {
				addr, _ = l["addr"].(string)
				return true
			}
		}
		return false
	})
	base := "http://" + addr

	var (
		mu       sync.Mutex
		outcomes []outcome
		seq      atomic.Int64
		signaled atomic.Bool
	)
	// Each writer writes until its request fails after the signal.
	client := keyedClient(t, dsn, 40*time.Second)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				o := postPatient(ctx, client, base, fmt.Sprintf("S-%d-%d", w, seq.Add(1)))
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if o.err != nil && signaled.Load() {
					return
				}
			}
		})
	}
	writes := func(status int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.status == status {
				n++
			}
		}
		return n
	}
	burst, endBurst := context.WithTimeout(ctx, 30*time.Second)
	defer endBurst()
	eventually(burst, t, "the burst writes", func() bool { return writes(201) >= 100 })

	// Hold the writers back inside their requests.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `LOCK TABLE patients IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "writes wait inside their requests", func() bool {
		return sessions(ctx, t, admin, `wait_event_type = 'Lock'`) == 8
	})
	beforeSignal := writes(201)

	signaled.Store(true)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the process stops accepting connections", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if _, err := tx.Exec(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("careteam serve exited with %v:\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("careteam serve did not exit after SIGTERM")
	}
	wg.Wait()

	drained := writes(201) - beforeSignal
	if drained < 8 {
		t.Errorf("%d writes in flight at SIGTERM finished with 201, want at least 8", drained)
	}
	var stored, refused []string
	for _, o := range outcomes {
		if o.status == 201 {
			stored = append(stored, o.key)
		} else {
			refused = append(refused, o.key)
		}
	}
	if len(refused) == 0 {
		t.Fatal("no write failed: the test proves nothing about failed writes")
	}
	var found, wronglyFound int
	if err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE mrn = ANY($1)),
		count(*) FILTER (WHERE mrn = ANY($2)) FROM patients`, stored, refused).
		Scan(&found, &wronglyFound); err != nil {
		t.Fatal(err)
	}
	if found != len(stored) {
		t.Errorf("%d of the %d writes answered 201 are stored", found, len(stored))
	}
	if wronglyFound != 0 {
		t.Errorf("%d of the %d writes that failed are stored", wronglyFound, len(refused))
	}
	t.Logf("%d writes stored, %d drained after SIGTERM, %d refused", len(stored), drained, len(refused))

	var msgs []string
	for _, l := range logLines(t, logs.String()) {
		if m, _ := l["msg"].(string); m != "request" {
			msgs = append(msgs, m)
		}
	}
	if got := strings.Join(msgs, " "); got != "listening shutting_down stopped" {
		t.Errorf("lifecycle log = %q, want listening shutting_down stopped", got)
	}
	eventually(ctx, t, "the process's sessions are closed", func() bool {
		return sessions(ctx, t, admin, "true") == 0
	})
}

// TestSlowQueriesAnswerUnavailable holds a row that a request needs, so
// that its query outlasts first the statement timeout PostgreSQL enforces
// on the service's sessions, then the request deadline the service passes
// to its queries. Either way the client gets a quick 503 unavailable, not a
// 500 nor a wait, and no session is left waiting or in a transaction.
func TestSlowQueriesAnswerUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                       string
		statementTimeout, deadline time.Duration
	}{
		{"statement timeout", 300 * time.Millisecond, 10 * time.Second},
		{"request deadline", 10 * time.Second, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dsn := testdb.New(t)
			cfg := testConfig(t, dsn)
			cfg.StatementTimeout, cfg.RequestTimeout = tc.statementTimeout, tc.deadline
			srv := startServe(ctx, t, cfg)
			client := keyedClient(t, dsn, 20*time.Second)

			patient := postPatient(ctx, client, srv.url, "T-1")
			provider := createProvider(ctx, t, client, srv.url)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			// Another session watches: one inside a transaction sees a
			// snapshot of pg_stat_activity taken once.
			admin, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close(context.Background())
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(ctx, `SELECT FROM patients WHERE id = $1 FOR UPDATE`, patient.id); err != nil {
				t.Fatal(err)
			}

			began := time.Now()
			req, _ := http.NewRequestWithContext(ctx, "PUT",
				srv.url+"/v1/patients/"+patient.id+"/care-team/primary",
				strings.NewReader(fmt.Sprintf(`{"provider_id":%q}`, provider)))
			req.Header.Set("Content-Type", "application/json")
			status, code, _, err := roundTrip(client, req)
			took := time.Since(began)
			if err != nil || status != 503 || code != "unavailable" {
				t.Errorf("answer %d %q %v, want 503 unavailable", status, code, err)
			}
			if took > 3*time.Second {
				t.Errorf("answered after %v", took)
			}
			eventually(ctx, t, "no session of the service waits or holds a transaction", func() bool {
				return sessions(ctx, t, admin, `(wait_event_type = 'Lock'
					OR state LIKE 'idle in transaction%')`) == 0
			})
		})
	}
}

// TestSessionSettings shows that every session of the service's pool gets
// the statement timeout, the idle-in-transaction timeout and its name.
func TestSessionSettings(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t, testdb.New(t))
	pool, err := openPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var statement, idle, name string
	if err := pool.QueryRow(ctx, `SELECT current_setting('statement_timeout'),
		current_setting('idle_in_transaction_session_timeout'),
		current_setting('application_name')`).Scan(&statement, &idle, &name); err != nil {
		t.Fatal(err)
	}
	if statement != "5s" || idle != "30s" || name != "careteam" {
		t.Errorf("statement_timeout %s, idle_in_transaction_session_timeout %s, application_name %s; "+
			"want 5s, 30s, careteam", statement, idle, name)
	}
}

// keyedClient returns a client whose requests carry a new read-write API
// key of the database's default organization.
func keyedClient(t *testing.T, dsn string, timeout time.Duration) *http.Client {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	made, err := apikey.Create(ctx, conn, "default", "ops test", []string{apikey.ScopeRead, apikey.ScopeWrite})
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: timeout, Transport: bearer{key: made.Key}}
}

// bearer adds an API key to every request.
type bearer struct{ key string }

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(req)
}
