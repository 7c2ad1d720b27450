// Command careteam-bench measures the careteam service end to end.
//
// It starts a PostgreSQL cluster of its own in a temporary folder (or uses
// BENCH_DATABASE_URL), migrates and seeds it (10,000 patients, 2,000
// providers), builds the service binary and starts it on a free loopback
// port, then drives it with its own closed-loop HTTP load generator:
//
//  1. create      POST /v1/patients/{id}/care-team, SPECIALIST or CONSULTANT
//  2. read        GET  /v1/patients/{id}/care-team, teams of 3 to 5 members
//  3. reassign    PUT  /v1/patients/{id}/care-team/primary
//  4. contention  bursts of simultaneous POST PRIMARY for one patient
//  5. reference   the naive four-statement transaction, run by pgbench
//
// plus pgbench of the read query and the rate of a FHIR import. It prints a
// table and writes the same figures as JSON to bench/results/.
//
//	go run ./cmd/careteam-bench            # the full run, about 5 minutes
//	go run ./cmd/careteam-bench -quick     # a smoke run, about 40 seconds
//
// All traffic stays on 127.0.0.1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	duration     time.Duration
	warmup       time.Duration
	clients      int
	quick        bool
	patients     int
	providers    int
	bursts       int
	burstSize    int
	outDir       string
	importDir    string
	reference    string
	durable      bool
	keep         bool
	profile      bool
	serviceEnv   stringList
	driver       string
	only         stringSet
	rounds       int
	rateFraction floatList
	rate         floatList
	checkpoint   bool
	latencyLog   bool
}

type stringList []string

// floatList is a comma-separated flag of positive numbers, in the order
// given; setting it again replaces the list (so a default can be replaced).
type floatList []float64

func (f *floatList) String() string {
	parts := make([]string, len(*f))
	for i, v := range *f {
		parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (f *floatList) Set(v string) error {
	var out floatList
	for _, part := range strings.Split(v, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || x <= 0 || math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("%q is not a positive number", part)
		}
		out = append(out, x)
	}
	*f = out
	return nil
}

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// scenarioNames are the names -only takes, in the order they run.
var scenarioNames = []string{"create", "reference", "create-rate", "reference-rate", "read", "read-pgbench",
	"reassign", "contention", "import"}

// stringSet is a comma-separated flag of scenario names; empty means all.
type stringSet map[string]bool

func (s *stringSet) String() string { return fmt.Sprint(map[string]bool(*s)) }
func (s *stringSet) Set(v string) error {
	if *s == nil {
		*s = map[string]bool{}
	}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(scenarioNames, name) {
			return fmt.Errorf("unknown scenario %q (want %s)", name, strings.Join(scenarioNames, ", "))
		}
		(*s)[name] = true
	}
	return nil
}

// runs reports whether the scenario is to run.
func (o options) runs(name string) bool { return len(o.only) == 0 || o.only[name] }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var o options
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "measured time of each load scenario")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "warm-up before each load scenario, not measured")
	flag.IntVar(&o.clients, "clients", 32, "concurrent connections of the load scenarios and of pgbench")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 3s scenarios in one round (no interleaving), 1s warm-up, 5 contention bursts; "+
		"overrides -duration, -warmup, -rounds and -bursts")
	flag.IntVar(&o.patients, "patients", 10000, "patients to seed")
	flag.IntVar(&o.providers, "providers", 2000, "providers to seed")
	flag.IntVar(&o.bursts, "bursts", 20, "contention bursts")
	flag.IntVar(&o.burstSize, "burst-size", 200, "simultaneous requests per contention burst")
	flag.StringVar(&o.outDir, "out", "", "folder for the JSON results (default <repo>/bench/results)")
	flag.StringVar(&o.importDir, "import-dir", "", "FHIR data to time the import with "+
		"(default <repo>/../shared/data/synthea-bulk-10-smart; \"none\" skips)")
	flag.StringVar(&o.reference, "reference", "auto", "how to run the reference: pgbench, pgx or auto (pgbench when installed)")
	flag.BoolVar(&o.durable, "durable", true, "run the benchmark cluster with fsync and synchronous_commit on, as in production")
	flag.BoolVar(&o.profile, "profile", false, "build the service with a pprof listener (go build -overlay, no source change) "+
		"and save CPU and heap profiles of the HTTP scenarios next to the JSON")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (cluster data, service log, pgbench logs)")
	flag.StringVar(&o.driver, "driver", "raw", "the load generator's HTTP client: raw (a minimal HTTP/1.1 client, "+
		"one kept-alive connection per worker) or nethttp (Go's net/http)")
	flag.IntVar(&o.rounds, "rounds", 3, "slices each scenario and its reference are cut into, run alternately (ABBA...)")
	o.rateFraction = floatList{0.25, 0.5}
	flag.Var(&o.rateFraction, "rate-fraction", "the fixed-rate scenarios run at these fractions of the reference's TPS, comma-separated, one pair per fraction")
	flag.Var(&o.rate, "rate", "the fixed-rate scenarios' requests per second, comma-separated (overrides -rate-fraction)")
	flag.BoolVar(&o.checkpoint, "checkpoint", true, "run CHECKPOINT before each scenario and slice, so each starts from the same state")
	flag.BoolVar(&o.latencyLog, "latency-log", false, "also write every measured request of the HTTP load scenarios "+
		"(seconds since the run started, latency in ms, status) to <out>/<time>-<scenario>.latency.csv, to find stalls")
	flag.Var(&o.only, "only", "run only these scenarios, comma-separated: "+strings.Join(scenarioNames, ","))
	flag.Var(&o.serviceEnv, "service-env", "NAME=VALUE added to the service's environment (repeatable), e.g. DB_MAX_CONNS=32")
	flag.Parse()
	if o.quick {
		o.duration, o.warmup, o.bursts, o.rounds = 3*time.Second, time.Second, 5, 1
	}
	if o.clients < 1 || o.patients < 200 || o.providers < o.burstSize || o.bursts < 1 || o.rounds < 1 ||
		len(o.rateFraction) == 0 || slices.ContainsFunc(o.rate, func(r float64) bool { return r < 1 }) {
		fmt.Fprintln(os.Stderr, "careteam-bench: need -clients >= 1, -patients >= 200, -providers >= -burst-size, -bursts >= 1, "+
			"-rounds >= 1, every -rate >= 1")
		os.Exit(2)
	}
	if (o.runs("create-rate") || o.runs("reference-rate")) && !o.runs("reference") && len(o.rate) == 0 {
		fmt.Fprintln(os.Stderr, "careteam-bench: -only create-rate or reference-rate needs -rate, or the reference scenario to take the rates from")
		os.Exit(2)
	}

	if err := run(ctx, o); err != nil {
		var authErr *authError
		if errors.As(err, &authErr) {
			fmt.Fprintf(os.Stderr, "careteam-bench: %v\n", err)
			os.Exit(3)
		}
		fmt.Fprintf(os.Stderr, "careteam-bench: %v\n", err)
		os.Exit(1)
	}
}

// logf reports progress on standard error, so that standard output holds
// only the table.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) error {
	started := time.Now()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.outDir == "" {
		o.outDir = filepath.Join(root, "bench", "results")
	}
	if o.importDir == "" {
		o.importDir = filepath.Join(root, "..", "shared", "data", "synthea-bulk-10-smart")
	}

	tmp, err := os.MkdirTemp("", "careteam-bench-")
	if err != nil {
		return err
	}
	// The cluster runs as the postgres user when we are root: it must be
	// able to reach its folder inside this one.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	defer func() {
		if o.keep {
			logf("kept %s", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()

	env, err := newEnvironment(ctx, o, root, tmp)
	if env != nil {
		defer env.close()
	}
	if err != nil {
		return err
	}

	res := &results{
		StartedAt: started.UTC(),
		Options:   optionsJSON(o),
		Machine:   machineInfo(ctx, env),
	}

	b := &bench{o: o, env: env, res: res}
	if err := b.runAll(ctx); err != nil {
		return err
	}
	res.TotalSeconds = time.Since(started).Seconds()
	res.Targets = evaluateTargets(res)

	printTable(os.Stdout, res)
	path, err := writeJSON(o.outDir, res)
	if err != nil {
		return err
	}
	fmt.Printf("\nresults: %s\n", path)
	return nil
}

// repoRoot returns the folder holding the module's go.mod, from the working
// directory upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "cmd", "careteam")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the careteam repository (no go.mod with cmd/careteam found above the working directory)")
		}
		dir = parent
	}
}
