package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// results is everything one run measured; it is also the JSON file.
type results struct {
	StartedAt    time.Time      `json:"started_at"`
	TotalSeconds float64        `json:"total_seconds"`
	Options      map[string]any `json:"options"`
	Machine      map[string]any `json:"machine"`

	Create        *scenarioResult `json:"create"`
	Reference     *scenarioResult `json:"reference"`
	Read          *scenarioResult `json:"read"`
	ReadReference *scenarioResult `json:"read_pgbench"`
	// FixedRate holds scenarios 1 and 5 as open loops at fixed rates: the
	// latency at stated loads, in the order the rates were given.
	FixedRate  []fixedRate       `json:"fixed_rate"`
	Reassign   *scenarioResult   `json:"reassign"`
	Contention *contentionResult `json:"contention"`
	Import     *importResult     `json:"import"`

	Ratios  map[string]float64 `json:"ratios"`
	Targets []target           `json:"targets"`
	// Profiles lists the pprof files of a -profile run, per scenario.
	Profiles map[string][]string `json:"profiles,omitempty"`
	// LatencyLogs lists the files of a -latency-log run, per scenario.
	LatencyLogs map[string]string `json:"latency_logs,omitempty"`
	mu          sync.Mutex
}

func (r *results) addProfile(scenario, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Profiles == nil {
		r.Profiles = map[string][]string{}
	}
	r.Profiles[scenario] = append(r.Profiles[scenario], path)
}

// fixedRate is scenario 1' and 5' at one rate.
type fixedRate struct {
	RPS float64 `json:"rps"`
	// Fraction is the rate over the closed-loop reference's TPS, when the
	// rate came from -rate-fraction; 0 when -rate gave it.
	Fraction  float64         `json:"fraction_of_reference,omitempty"`
	Create    *scenarioResult `json:"create"`
	Reference *scenarioResult `json:"reference"`
}

func (r *results) addLatencyLog(scenario, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.LatencyLogs == nil {
		r.LatencyLogs = map[string]string{}
	}
	r.LatencyLogs[scenario] = path
}

type target struct {
	Name    string `json:"name"`
	Want    string `json:"want"`
	Got     string `json:"got"`
	Pass    bool   `json:"pass"`
	Skipped bool   `json:"skipped,omitempty"`
}

func optionsJSON(o options) map[string]any {
	return map[string]any{
		"duration_s": o.duration.Seconds(), "warmup_s": o.warmup.Seconds(), "clients": o.clients,
		"quick": o.quick, "patients": o.patients, "providers": o.providers, "bursts": o.bursts,
		"burst_size": o.burstSize, "durable_cluster": o.durable, "reference": o.reference,
		"driver": o.driver, "only": o.only,
		"rounds": o.rounds, "rate_fraction": []float64(o.rateFraction), "rate": []float64(o.rate), "service_env": []string(o.serviceEnv),
		"database": map[bool]string{true: "BENCH_DATABASE_URL", false: "ephemeral"}[os.Getenv("BENCH_DATABASE_URL") != ""],
	}
}

func machineInfo(ctx context.Context, env *environment) map[string]any {
	m := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "goos": runtime.GOOS, "goarch": runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu_model"] = strings.TrimSpace(v)
				break
			}
		}
	}
	var version string
	if env.pool.QueryRow(ctx, "SELECT version()").Scan(&version) == nil {
		m["postgres"] = version
	}
	if out, err := exec.Command("git", "-C", env.root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", env.root, "status", "--porcelain", "--", "cmd/careteam", "internal", "db").Output(); err == nil && len(st) > 0 {
			commit += "+dirty"
		}
		m["commit"] = commit
	} else if c := os.Getenv("BENCH_COMMIT"); c != "" {
		m["commit"] = c
	}
	m["service_env"] = serviceSettings(env)
	return m
}

// serviceSettings lists the service's settings that shape the figures.
func serviceSettings(env *environment) map[string]string {
	s := map[string]string{"DB_MAX_CONNS": "16 (default)", "LOG_LEVEL": "info (default)"}
	for _, kv := range append(os.Environ(), env.o.serviceEnv...) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := s[k]; ok {
			s[k] = v
		}
	}
	return s
}

func evaluateTargets(r *results) []target {
	r.Ratios = map[string]float64{}
	var ts []target
	add := func(name, want, got string, pass bool) {
		ts = append(ts, target{Name: name, Want: want, Got: got, Pass: pass})
	}
	if r.Create != nil && r.Reference != nil && r.Reference.RPS > 0 {
		ratio := r.Create.RPS / r.Reference.RPS
		r.Ratios["create_over_reference"] = ratio
		add("create throughput", ">= 1.0x reference TPS", fmt.Sprintf("%.2fx (%.0f / %.0f)", ratio, r.Create.RPS, r.Reference.RPS), ratio >= 1.0)
	}
	for _, fr := range r.FixedRate {
		c := fr.Create
		if c == nil {
			continue
		}
		// A rate the service did not keep up with is not a pass, whatever
		// the latency of what it did serve.
		ok := c.Latency.P99 <= 10 && c.RPS >= 0.95*c.TargetRPS
		name := fmt.Sprintf("create p99 at %.0f rps", c.TargetRPS)
		if fr.Fraction > 0 {
			name = fmt.Sprintf("create p99 at %.2gx ref TPS", fr.Fraction)
		}
		got := fmt.Sprintf("%.1f ms at %.0f rps (pgbench at that rate: %s)", c.Latency.P99, c.RPS, p99Text(fr.Reference))
		add(name, "<= 10 ms", got, ok)
	}
	if r.Create != nil {
		// Under a closed loop the latency is the clients' queue: by
		// Little's law the mean is clients / throughput.
		add("create p99, closed loop (queueing)", "reported", fmt.Sprintf("%.1f ms (pgbench: %s)", r.Create.Latency.P99, p99Text(r.Reference)), true)
	}
	if r.Read != nil {
		ratio := 0.0
		if r.ReadReference != nil && r.ReadReference.RPS > 0 {
			ratio = r.Read.RPS / r.ReadReference.RPS
			r.Ratios["read_over_pgbench_read"] = ratio
		}
		got := fmt.Sprintf("%.0f rps, %.2fx pgbench read", r.Read.RPS, ratio)
		if r.ReadReference == nil {
			got = fmt.Sprintf("%.0f rps (pgbench read not run)", r.Read.RPS)
		}
		add("read throughput", ">= 5000 rps or >= 0.7x pgbench read", got, r.Read.RPS >= 5000 || ratio >= 0.7)
	}
	if c := r.Contention; c != nil {
		add("contention median burst", "<= 100 ms", fmt.Sprintf("%.1f ms", c.MedianBurstMS), c.MedianBurstMS <= 100)
		add("contention exactly one 201", "every burst", fmt.Sprintf("%d/%d bursts", c.ExactlyOne, c.Bursts), c.ExactlyOne == c.Bursts)
	}
	peak := 0.0
	withService := []*scenarioResult{r.Create, r.Read, r.Reassign}
	for _, fr := range r.FixedRate {
		withService = append(withService, fr.Create)
	}
	for _, s := range withService {
		if s != nil {
			peak = max(peak, s.ServicePeakRSSMiB)
		}
	}
	if r.Contention != nil {
		peak = max(peak, r.Contention.ServicePeakRSSMiB)
	}
	if peak > 0 { // some scenario ran the service
		add("service peak RSS", "<= 64 MiB", fmt.Sprintf("%.1f MiB", peak), peak <= 64)
	}
	if im := r.Import; im != nil {
		if im.Skipped != "" {
			ts = append(ts, target{Name: "import rate", Want: ">= 10000 resources/s", Got: "not run: " + im.Skipped, Skipped: true})
		} else {
			add("import rate", ">= 10000 resources/s", fmt.Sprintf("%.0f resources/s", im.ResourcesPerSecond), im.ResourcesPerSecond >= 10000)
		}
	}
	return ts
}

func p99Text(s *scenarioResult) string {
	if s == nil {
		return "not run"
	}
	return fmt.Sprintf("%.1f ms", s.Latency.P99)
}

func statusText(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func printTable(w io.Writer, r *results) {
	o := r.Options
	fmt.Fprintf(w, "\ncareteam benchmark: %v clients, %vs per scenario after %vs warm-up, %v patients, %v providers, %s cluster (durable=%v), %v CPUs\n",
		o["clients"], o["duration_s"], o["warmup_s"], o["patients"], o["providers"], o["database"], o["durable_cluster"], r.Machine["cpus"])
	fmt.Fprintf(w, "service: %s; commit %v\n\n", settingsText(r.Machine["service_env"]), r.Machine["commit"])

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\t rps\t p50 ms\t p99 ms\t max ms\t svc peak RSS MiB\t svc CPU s\t pg CPU s\t load CPU s\t other CPU s (irq)\t busy cores\t statuses\t")
	row := func(label string, s *scenarioResult) {
		if s == nil {
			return
		}
		rss := "-"
		if s.ServicePeakRSSMiB > 0 {
			rss = fmt.Sprintf("%.1f", s.ServicePeakRSSMiB)
		}
		status := statusText(s.Status)
		if s.TransportErrs > 0 {
			status += fmt.Sprintf(" transport-errors:%d", s.TransportErrs)
		}
		fmt.Fprintf(tw, "%s\t %.0f\t %.2f\t %.2f\t %.1f\t %s\t %.1f\t %.1f\t %.1f\t %.1f (%.1f)\t %.2f\t %s\t\n",
			label, s.RPS, s.Latency.P50, s.Latency.P99, s.Latency.Max, rss,
			s.CPU.ServiceSeconds, s.CPU.PostgresSeconds, s.CPU.LoadSeconds, s.CPU.OtherSeconds, s.CPU.IRQSeconds, s.CPU.BusyCores, status)
	}
	row("1 create (POST care-team)", r.Create)
	row("5 reference ("+referenceTool(r.Reference)+" 4-stmt tx)", r.Reference)
	for _, fr := range r.FixedRate {
		if fr.Create != nil {
			row(fmt.Sprintf("1' create at %.0f rps (open loop)", fr.RPS), fr.Create)
		}
		if fr.Reference != nil {
			row(fmt.Sprintf("5' reference at %.0f rps (pgbench -R)", fr.RPS), fr.Reference)
		}
	}
	row("2 read (GET care-team)", r.Read)
	row("  read query ("+referenceTool(r.ReadReference)+")", r.ReadReference)
	row("3 reassign (PUT primary)", r.Reassign)
	if c := r.Contention; c != nil {
		fmt.Fprintf(tw, "4 contention (burst wall time)\t -\t %.2f\t %.2f\t %.1f\t %.1f\t %.1f\t %.1f\t %.1f\t %.1f (%.1f)\t %.2f\t %s\t\n",
			c.MedianBurstMS, percentile(c.BurstMS, .99), c.MaxBurstMS, c.ServicePeakRSSMiB,
			c.CPU.ServiceSeconds, c.CPU.PostgresSeconds, c.CPU.LoadSeconds, c.CPU.OtherSeconds, c.CPU.IRQSeconds, c.CPU.BusyCores, statusText(c.Status))
	}
	tw.Flush()

	fmt.Fprintln(w)
	if v, ok := r.Ratios["create_over_reference"]; ok {
		fmt.Fprintf(w, "create / reference TPS:  %.2fx", v)
		if len(r.Create.Rounds) > 1 && len(r.Create.Rounds) == len(r.Reference.Rounds) {
			fmt.Fprint(w, " (per round:")
			for i := range r.Create.Rounds {
				fmt.Fprintf(w, " %.2fx", r.Create.Rounds[i]/r.Reference.Rounds[i])
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w)
	}
	if v, ok := r.Ratios["read_over_pgbench_read"]; ok {
		fmt.Fprintf(w, "read / pgbench read:     %.2fx\n", v)
	}
	if c := r.Contention; c != nil {
		fmt.Fprintf(w, "contention: %d bursts of %d simultaneous POST PRIMARY; exactly one 201 in %d/%d; request p50 %.1f ms, p99 %.1f ms\n",
			c.Bursts, c.BurstSize, c.ExactlyOne, c.Bursts, c.Latency.P50, c.Latency.P99)
		for _, f := range c.Failures {
			fmt.Fprintf(w, "  FAILED %s\n", f)
		}
	}
	if im := r.Import; im != nil {
		if im.Skipped != "" {
			fmt.Fprintf(w, "import: skipped (%s)\n", im.Skipped)
		} else {
			fmt.Fprintf(w, "import: %d resources from %d files in %.0f ms: %.0f resources/s (%d rows written, %d files failed); second run %.0f resources/s\n",
				im.ResourcesRead, im.Files, im.ElapsedMS, im.ResourcesPerSecond, im.Written, im.FailedFiles, im.SecondRunResourcesPerSecond)
			for _, fe := range im.FileErrors {
				fmt.Fprintf(w, "  import file error: %s\n", fe)
			}
		}
	}

	if len(r.Profiles) > 0 {
		fmt.Fprintln(w, "\nprofiles (service built with a pprof listener: figures slightly perturbed):")
		for _, k := range slices.Sorted(maps.Keys(r.Profiles)) {
			fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(r.Profiles[k], " "))
		}
	}

	if len(r.LatencyLogs) > 0 {
		fmt.Fprintln(w, "\nlatency logs (seconds since the run started, latency ms, status):")
		for _, k := range slices.Sorted(maps.Keys(r.LatencyLogs)) {
			fmt.Fprintf(w, "  %s: %s\n", k, r.LatencyLogs[k])
		}
	}

	fmt.Fprintln(w, "\ntargets:")
	for _, t := range r.Targets {
		verdict := "PASS"
		switch {
		case t.Skipped:
			verdict = "SKIP"
		case !t.Pass:
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %-28s want %-36s got %s\n", verdict, t.Name, t.Want, t.Got)
	}
}

// referenceTool names what ran a reference: pgbench, or pgx when pgbench
// was missing or -reference pgx asked for it.
func referenceTool(s *scenarioResult) string {
	if s != nil && strings.HasPrefix(s.Driver, "pgx") {
		return "pgx"
	}
	return "pgbench"
}

func settingsText(v any) string {
	m, _ := v.(map[string]string)
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func writeJSON(dir string, r *results) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.StartedAt.Format("20060102T150405Z")+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}
