package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/migrate"
	"github.com/careteam/careteam/internal/npi"
	"github.com/careteam/careteam/internal/pgcluster"
)

// benchDatabase is the database the service is measured on.
const benchDatabase = "careteam_bench"

// environment is everything the benchmark set up: the database, its pool
// for the bench's own queries, and the running service.
type environment struct {
	o       options
	root    string
	tmp     string
	cluster *pgcluster.Cluster
	// pgPID is the postmaster's pid, when the cluster is ours; 0 otherwise.
	pgPID int
	// adminURL connects to the server's "postgres" database.
	adminURL string
	dbURL    string
	pool     *pgxpool.Pool
	seed     seedLayout

	bin     string
	svc     *exec.Cmd
	svcExit chan error
	baseURL string
	apiKey  string
	// pprofURL is the service's pprof listener under -profile.
	pprofURL string
}

// authError stops the bench when the service wants credentials it lacks.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

func newEnvironment(ctx context.Context, o options, root, tmp string) (*environment, error) {
	e := &environment{o: o, root: root, tmp: tmp}

	if u := os.Getenv("BENCH_DATABASE_URL"); u != "" {
		if err := checkLoopback(u); err != nil {
			return e, err
		}
		logf("database: BENCH_DATABASE_URL (its server's CPU is not measured)")
		e.adminURL = withDatabase(u, "postgres")
	} else {
		logf("database: starting an ephemeral PostgreSQL cluster in %s (durable=%v)", tmp, o.durable)
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "pg"), Durable: o.durable})
		if err != nil {
			return e, fmt.Errorf("start PostgreSQL (or set BENCH_DATABASE_URL): %w", err)
		}
		e.cluster = c
		e.adminURL = c.URL("postgres")
		e.pgPID = readPostmasterPID(filepath.Join(tmp, "pg", "data", "postmaster.pid"))
	}
	e.dbURL = withDatabase(e.adminURL, benchDatabase)

	if err := e.freshDatabase(ctx, benchDatabase); err != nil {
		return e, err
	}
	pool, err := pgxpool.New(ctx, e.dbURL)
	if err != nil {
		return e, fmt.Errorf("open pool: %w", err)
	}
	e.pool = pool

	t0 := time.Now()
	e.seed = newSeedLayout(o)
	if err := e.seed.apply(ctx, pool); err != nil {
		return e, fmt.Errorf("seed: %w", err)
	}
	logf("seeded %d patients, %d providers, %d assignments in %s",
		o.patients, o.providers, e.seed.seededAssignments, time.Since(t0).Round(time.Millisecond))

	if err := e.buildService(ctx); err != nil {
		return e, err
	}
	if err := e.startService(ctx); err != nil {
		return e, err
	}
	return e, e.preflight(ctx)
}

// freshDatabase drops name when it exists and migrates a new one.
func (e *environment) freshDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop old %s: %w", name, err)
	}
	if err := migrate.New(withDatabase(e.adminURL, name), nil).Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	return nil
}

func (e *environment) buildService(ctx context.Context) error {
	e.bin = filepath.Join(e.tmp, "careteam")
	t0 := time.Now()
	args := []string{"build", "-o", e.bin}
	if e.o.profile {
		overlay, err := e.writeOverlay()
		if err != nil {
			return err
		}
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/careteam")...)
	cmd.Dir = e.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/careteam: %w\n%s", err, out)
	}
	logf("built the service in %s", time.Since(t0).Round(time.Millisecond))
	return nil
}

//go:embed pprof_overlay.go.txt
var pprofOverlay []byte

// writeOverlay writes the go build -overlay file that adds a pprof listener
// to the service's package main, and returns its path.
func (e *environment) writeOverlay() (string, error) {
	src := filepath.Join(e.tmp, "zz_bench_pprof.go")
	if err := os.WriteFile(src, pprofOverlay, 0o644); err != nil {
		return "", err
	}
	spec, err := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(e.root, "cmd", "careteam", "zz_bench_pprof.go"): src}})
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.tmp, "overlay.json")
	return path, os.WriteFile(path, spec, 0o644)
}

func (e *environment) startService(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e.baseURL = "http://" + addr

	logFile, err := os.Create(filepath.Join(e.tmp, "service.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(e.bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.dbURL, "LISTEN_ADDR="+addr)
	cmd.Env = append(cmd.Env, e.o.serviceEnv...)
	if e.o.profile {
		pport, err := freePort()
		if err != nil {
			return err
		}
		paddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(pport))
		e.pprofURL = "http://" + paddr
		cmd.Env = append(cmd.Env, "CARETEAM_BENCH_PPROF_ADDR="+paddr)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C reaches the bench, which stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start the service: %w", err)
	}
	e.svc = cmd
	e.svcExit = make(chan error, 1)
	go func() { e.svcExit <- cmd.Wait(); logFile.Close() }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-e.svcExit:
			e.svc = nil
			return fmt.Errorf("the service exited while starting (%v); its log:\n%s", err, tail(filepath.Join(e.tmp, "service.log")))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		res, err := http.Get(e.baseURL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				logf("service pid %d ready on %s", cmd.Process.Pid, addr)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the service was not ready within 30s; its log:\n%s", tail(filepath.Join(e.tmp, "service.log")))
		}
	}
}

// preflight reads one care team. A 401 means the service wants an API key:
// without one the bench tries to make one with "careteam apikey create" in
// its own database, and stops with a clear message when it cannot.
func (e *environment) preflight(ctx context.Context) error {
	status, err := e.probe(ctx)
	if err != nil {
		return err
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		key, why := e.createAPIKey(ctx)
		if key == "" {
			return &authError{fmt.Sprintf("the service answered %d (authentication required) and no key could be made (%s)", status, why)}
		}
		e.apiKey = key
		logf("the service requires an API key: made one with 'careteam apikey create'")
		if status, err = e.probe(ctx); err != nil {
			return err
		}
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET a seeded care team answered %d, want 200", status)
	}
	return nil
}

func (e *environment) probe(ctx context.Context) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		e.baseURL+"/v1/patients/"+patientID(1)+"/care-team", nil)
	e.authorize(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("preflight request: %w", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func (e *environment) createAPIKey(ctx context.Context) (key, why string) {
	cmd := exec.CommandContext(ctx, e.bin, "apikey", "create", "--org", "default", "--name", "careteam-bench",
		"--scopes", "read,write")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.dbURL)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Sprintf("careteam apikey create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" || strings.ContainsAny(last, " \t") {
		return "", "careteam apikey create printed no key on its last line"
	}
	return last, ""
}

func (e *environment) authorize(req *http.Request) {
	if e.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.apiKey)
	}
}

func (e *environment) svcPID() int {
	if e.svc == nil || e.svc.Process == nil {
		return 0
	}
	return e.svc.Process.Pid
}

func (e *environment) close() {
	if e.svc != nil && e.svc.Process != nil {
		e.svc.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.svcExit:
		case <-time.After(25 * time.Second):
			e.svc.Process.Kill()
			<-e.svcExit
		}
	}
	if e.pool != nil {
		e.pool.Close()
	}
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			logf("stop cluster: %v", err)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + name
	return u.String()
}

// checkLoopback refuses a BENCH_DATABASE_URL that is not a postgres:// URL
// or names any host, fallbacks included, that is not on this machine: the
// bench loads the server it talks to, and drops and creates databases on
// it.
func checkLoopback(dsn string) error {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return errors.New("BENCH_DATABASE_URL: give a postgres:// URL (the bench names its own databases in it)")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("BENCH_DATABASE_URL: %w", err)
	}
	hosts := []string{cfg.Host}
	for _, fb := range cfg.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, host := range hosts {
		if strings.HasPrefix(host, "/") || host == "localhost" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			continue
		}
		return fmt.Errorf("BENCH_DATABASE_URL names host %q: the bench only loads servers on this machine (loopback or a socket)", host)
	}
	return nil
}

func readPostmasterPID(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(s.Text()))
	return pid
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// The seed's ids are deterministic, so that the load generator and pgbench
// scripts name rows by number without reading them back: patient n is
// a0000000-0000-4000-8000-<n in 12 hex digits>, provider n the same with b.
func patientID(n int) string  { return fmt.Sprintf("a0000000-0000-4000-8000-%012x", n) }
func providerID(n int) string { return fmt.Sprintf("b0000000-0000-4000-8000-%012x", n) }

// seedLayout says which patients each scenario uses, so that one scenario's
// writes do not change what another measures.
type seedLayout struct {
	patients, providers int
	// readHi: patients 1..readHi have teams of 3 to 5 active members (one
	// PRIMARY); read and reassign use them.
	readHi int
	// createLo..createHi are the patients of create and its reference;
	// they start with empty teams.
	createLo, createHi int
	// contention bursts use patients contentionLo..patients, one each.
	contentionLo int

	seededAssignments int64
}

func newSeedLayout(o options) seedLayout {
	reserve := max(o.bursts, 50)
	return seedLayout{
		patients:     o.patients,
		providers:    o.providers,
		readHi:       o.patients / 2,
		createLo:     o.patients/2 + 1,
		createHi:     o.patients - reserve,
		contentionLo: o.patients - reserve + 1,
	}
}

func (s *seedLayout) apply(ctx context.Context, pool *pgxpool.Pool) error {
	npis := make([]string, s.providers)
	for i := range npis {
		nine := fmt.Sprintf("1%08d", 10_000_000+i)
		npis[i] = nine + string(rune('0'+npi.CheckDigit(nine)))
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	steps := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO patients (id, mrn, given_name, family_name, birth_date)
		  SELECT ('a0000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
		         'B-' || lpad(n::text, 6, '0'), 'Bench', 'Patient ' || n,
		         date '1940-01-01' + (n * 37 % 25000)
		  FROM generate_series(1, $1::int) AS n`, []any{s.patients}},
		{`INSERT INTO providers (id, npi, given_name, family_name, specialty)
		  SELECT ('b0000000-0000-4000-8000-' || lpad(to_hex(i::int), 12, '0'))::uuid,
		         t.npi, 'Bench', 'Provider ' || i,
		         (ARRAY['Cardiology','Oncology','Family Medicine','Nephrology'])[1 + i % 4]
		  FROM unnest($1::text[]) WITH ORDINALITY AS t(npi, i)`, []any{npis}},
		// Patient n gets 3 + n%3 members: provider k is ((7n + 97k) mod P)+1,
		// distinct for k < 5; k = 0 is the PRIMARY.
		{`INSERT INTO care_team_assignments (patient_id, provider_id, role, assigned_at)
		  SELECT ('a0000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
		         ('b0000000-0000-4000-8000-' || lpad(to_hex((7 * n + 97 * k) % $2::int + 1), 12, '0'))::uuid,
		         (CASE WHEN k = 0 THEN 'PRIMARY' WHEN k % 2 = 1 THEN 'SPECIALIST' ELSE 'CONSULTANT' END)::care_team_role,
		         now() - make_interval(days => 400 - k)
		  FROM generate_series(1, $1::int) AS n, generate_series(0, 4) AS k
		  WHERE k < 3 + n % 3`, []any{s.readHi, s.providers}},
	}
	for _, st := range steps {
		tag, err := tx.Exec(ctx, st.sql, st.args...)
		if err != nil {
			return err
		}
		if strings.Contains(st.sql, "care_team_assignments") {
			s.seededAssignments = tag.RowsAffected()
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	_, err = pool.Exec(ctx, "VACUUM ANALYZE")
	return err
}

// checkpoint writes every dirty page out, so that each scenario starts
// from the same state: the first change of each page after a checkpoint
// writes the whole page to the WAL, and a scenario that ran right after
// another's checkpoint would pay for it while the next one would not.
func (e *environment) checkpoint(ctx context.Context) error {
	if !e.o.checkpoint {
		return nil
	}
	_, err := e.pool.Exec(ctx, "CHECKPOINT")
	return err
}

// activePrimaries counts the patient's active PRIMARY rows.
func (e *environment) activePrimaries(ctx context.Context, patient int) (int, error) {
	var n int
	err := e.pool.QueryRow(ctx, `SELECT count(*) FROM care_team_assignments
		WHERE patient_id = $1 AND role = 'PRIMARY' AND removed_at IS NULL`, patientID(patient)).Scan(&n)
	return n, err
}

var errNoPgbench = errors.New("pgbench not found")
