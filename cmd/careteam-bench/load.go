package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/fhirimport"
)

// bench runs the scenarios in order and collects their results.
type bench struct {
	o   options
	env *environment
	res *results
	drv driver
	// logNo numbers pgbench's log files.
	logNo int
	// noProfile skips profiling slices after a scenario's first.
	noProfile bool
}

func (b *bench) runAll(ctx context.Context) error {
	drv, err := newDriver(b.o.driver, b.env.baseURL, b.env.apiKey, max(b.o.clients, b.o.burstSize))
	if err != nil {
		return err
	}
	b.drv = drv
	defer drv.close()
	s := b.env.seed

	createOp := func(rng *rand.Rand) (string, string, []byte) {
		role := "SPECIALIST"
		if rng.IntN(2) == 1 {
			role = "CONSULTANT"
		}
		p := s.createLo + rng.IntN(s.createHi-s.createLo+1)
		return http.MethodPost, "/v1/patients/" + patientID(p) + "/care-team",
			[]byte(`{"provider_id":"` + providerID(1+rng.IntN(s.providers)) + `","role":"` + role + `"}`)
	}
	createVars := map[string]int{"plo": s.createLo, "phi": s.createHi, "nprov": s.providers}

	// A step runs when -only names any of its scenarios.
	steps := []struct {
		names []string
		label string
		run   func() error
	}{
		{[]string{"create", "reference"}, "1 create and 5 reference, interleaved", func() error {
			var err error
			b.res.Create, b.res.Reference, err = b.pair(ctx, "create", "reference", 0, createOp, func() (*scenarioResult, error) {
				return b.reference(ctx, "reference", "pgbench-create.sql", createVars, 0)
			})
			return err
		}},
		{[]string{"create-rate", "reference-rate"}, "1' create and 5' reference at fixed rates, interleaved", func() error {
			rates, fractions := []float64(b.o.rate), make([]float64, len(b.o.rate))
			if len(rates) == 0 && b.res.Reference != nil {
				for _, f := range b.o.rateFraction {
					if rate := f * b.res.Reference.RPS; rate >= 1 {
						rates = append(rates, rate)
						fractions = append(fractions, f)
					} else {
						logf("fixed rate %gx of the reference's %.1f TPS skipped: under 1 request per second", f, b.res.Reference.RPS)
					}
				}
			}
			if len(rates) == 0 {
				logf("fixed-rate scenarios skipped: no -rate, and the reference did not run")
				return nil
			}
			pgbenchR := !b.referenceThroughPgx()
			if !pgbenchR {
				logf("the fixed-rate reference skipped: it needs pgbench -R")
			}
			for i, rate := range rates {
				if i > 0 {
					if err := b.env.checkpoint(ctx); err != nil {
						logf("CHECKPOINT before the next rate failed, figures may vary more: %v", err)
					}
				}
				logf("fixed rate %.0f rps", rate)
				fr := fixedRate{RPS: rate, Fraction: fractions[i]}
				var err error
				var ref func() (*scenarioResult, error)
				if pgbenchR {
					ref = func() (*scenarioResult, error) {
						return b.reference(ctx, "reference-rate", "pgbench-create.sql", createVars, rate)
					}
				}
				fr.Create, fr.Reference, err = b.pair(ctx, "create-rate", "reference-rate", rate, createOp, ref)
				if err != nil {
					return err
				}
				b.res.FixedRate = append(b.res.FixedRate, fr)
			}
			return nil
		}},
		{[]string{"read", "read-pgbench"}, "2 read and the read query in pgbench, interleaved", func() error {
			var err error
			b.res.Read, b.res.ReadReference, err = b.pair(ctx, "read", "read-pgbench", 0, func(rng *rand.Rand) (string, string, []byte) {
				return http.MethodGet, "/v1/patients/" + patientID(1+rng.IntN(s.readHi)) + "/care-team", nil
			}, func() (*scenarioResult, error) {
				return b.reference(ctx, "read-pgbench", "pgbench-read.sql", map[string]int{"rhi": s.readHi}, 0)
			})
			return err
		}},
		{[]string{"reassign"}, "3 reassign", func() error {
			r, err := b.httpScenario(ctx, "reassign", func(rng *rand.Rand) (string, string, []byte) {
				return http.MethodPut, "/v1/patients/" + patientID(1+rng.IntN(s.readHi)) + "/care-team/primary",
					[]byte(`{"provider_id":"` + providerID(1+rng.IntN(s.providers)) + `"}`)
			})
			b.res.Reassign = r
			return err
		}},
		{[]string{"contention"}, "4 contention", func() error {
			r, err := b.contention(ctx)
			b.res.Contention = r
			return err
		}},
		{[]string{"import"}, "import", func() error {
			r, err := b.importRate(ctx)
			b.res.Import = r
			return err
		}},
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !slices.ContainsFunc(st.names, b.o.runs) {
			continue
		}
		if err := b.env.checkpoint(ctx); err != nil {
			// A role without the right to CHECKPOINT still gets figures.
			logf("CHECKPOINT before %s failed, figures may vary more: %v", st.label, err)
		}
		logf("scenario %s", st.label)
		if err := st.run(); err != nil {
			return fmt.Errorf("scenario %s: %w", st.label, err)
		}
	}
	return nil
}

// latencyMS summarises latencies in milliseconds.
type latencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func summarise(lat []time.Duration) latencyMS {
	if len(lat) == 0 {
		return latencyMS{}
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return ms(lat[max(i, 0)])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return latencyMS{P50: at(.50), P90: at(.90), P99: at(.99), Max: ms(lat[len(lat)-1]),
		Mean: ms(sum / time.Duration(len(lat)))}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// scenarioResult is one load scenario's figures.
type scenarioResult struct {
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	Clients int    `json:"clients"`
	// Requests counts requests (or transactions) started in the measured
	// window; RPS is Requests over its length.
	Requests      int64          `json:"requests"`
	Seconds       float64        `json:"seconds"`
	RPS           float64        `json:"rps"`
	Latency       latencyMS      `json:"latency_ms"`
	Status        map[string]int `json:"status"`
	TransportErrs int            `json:"transport_errors"`
	ErrorSample   string         `json:"error_sample,omitempty"`
	CPU           cpuUse         `json:"cpu"`
	// The service's resident set at the end and its peak over the scenario
	// (warm-up included), in MiB.
	ServiceRSSMiB     float64 `json:"service_rss_mib"`
	ServicePeakRSSMiB float64 `json:"service_peak_rss_mib"`
	// PeakSinceStart is true when VmHWM could not be reset, so the peak is
	// the process's since it started.
	PeakSinceStart bool   `json:"peak_since_start,omitempty"`
	Note           string `json:"note,omitempty"`
	// Rounds holds each slice's rate when the scenario ran in slices
	// interleaved with its reference (-rounds).
	Rounds []float64 `json:"rounds_rps,omitempty"`
	// TargetRPS is the fixed rate of an open-loop scenario.
	TargetRPS float64 `json:"target_rps,omitempty"`

	lat []time.Duration // every latency, for merging slices
}

// workerTally is what one worker of a load scenario saw in the measured
// window.
type workerTally struct {
	lat    []time.Duration
	status map[string]int
	errs   int
	sample string
	// keep makes record also keep each request in log (-latency-log).
	keep bool
	log  []latencySample
}

// latencySample is one measured request: when it started (or fell due,
// in an open loop), how long its answer took, and its outcome.
type latencySample struct {
	at    time.Time
	lat   time.Duration
	label string
}

// tallies returns one empty tally per worker, keeping every request when
// -latency-log asks for it.
func (b *bench) tallies(workers int) []workerTally {
	ws := make([]workerTally, workers)
	for i := range ws {
		ws[i].lat = make([]time.Duration, 0, 1<<14)
		ws[i].keep = b.o.latencyLog
	}
	return ws
}

// record counts one answer (its status label and latency), or a request
// that got none; at is when the request started or fell due.
func (w *workerTally) record(at time.Time, label string, lat time.Duration, err error) {
	if w.keep {
		l := label
		if err != nil {
			l = "no-answer"
		}
		w.log = append(w.log, latencySample{at: at, lat: lat, label: l})
	}
	if err != nil {
		w.errs++
		if w.sample == "" {
			w.sample = err.Error()
		}
		return
	}
	if w.status == nil {
		w.status = map[string]int{}
	}
	w.lat = append(w.lat, lat)
	w.status[label]++
}

// addTallies adds the workers' counts and latencies to r and summarises
// the latencies.
func (r *scenarioResult) addTallies(ws []workerTally) {
	for _, w := range ws {
		r.lat = append(r.lat, w.lat...)
		for k, v := range w.status {
			r.Status[k] += v
		}
		r.TransportErrs += w.errs
		if r.ErrorSample == "" {
			r.ErrorSample = w.sample
		}
	}
	r.Requests = int64(len(r.lat) + r.TransportErrs)
	r.Latency = summarise(r.lat)
}

// op is one request of a closed loop: it returns the outcome's label (an
// HTTP status, "ok", ...) or an error when no answer came.
type op func(ctx context.Context, worker int, rng *rand.Rand) (string, error)

// closedLoop runs clients workers, each sending its next request when the
// previous one has answered, for the warm-up and then the measured
// duration; only requests started in the measured window count.
func (b *bench) closedLoop(ctx context.Context, name, driver string, clients int, do op) (*scenarioResult, error) {
	pid := b.env.svcPID()
	resetOK := resetPeak(pid)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var measureStart, measureEnd atomic.Int64
	var unauthorized atomic.Bool
	var before cpuSample
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		select {
		case <-time.After(b.o.warmup):
		case <-ctx.Done():
			return
		}
		before = sampleCPU(pid, b.env.pgPID)
		start := before.at.UnixNano()
		measureEnd.Store(start + int64(b.o.duration))
		measureStart.Store(start)
	}()

	states := b.tallies(clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &states[i]
			rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))
			for ctx.Err() == nil && !unauthorized.Load() {
				t0 := time.Now()
				if end := measureEnd.Load(); end != 0 && t0.UnixNano() >= end {
					return
				}
				label, err := do(ctx, i, rng)
				d := time.Since(t0)
				if label == "401" || label == "403" {
					unauthorized.Store(true)
				}
				if start := measureStart.Load(); start == 0 || t0.UnixNano() < start {
					continue
				}
				if err != nil && ctx.Err() != nil {
					return
				}
				st.record(t0, label, d, err)
			}
		}()
	}
	wg.Wait()
	<-sampled
	if unauthorized.Load() {
		return nil, &authError{"the service answered 401/403 (authentication is required or the key lacks a scope): " +
			"the key the bench made was refused"}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	after := sampleCPU(pid, b.env.pgPID)

	r := &scenarioResult{Name: name, Driver: driver, Clients: clients, Status: map[string]int{},
		Seconds: b.o.duration.Seconds(), CPU: before.to(after), PeakSinceStart: pid > 0 && !resetOK}
	r.addTallies(states)
	r.RPS = float64(len(r.lat)) / r.Seconds
	b.writeLatencyLog(name, states)
	if pid > 0 {
		rss, peak := memory(pid)
		r.ServiceRSSMiB, r.ServicePeakRSSMiB = mib(rss), mib(peak)
	}
	return r, nil
}

// pair runs HTTP scenario name (next's requests) and its reference
// interleaved (see interleave), or only the one that -only names. A rate
// above 0 makes the HTTP side an open loop at that rate; 0 a closed loop.
func (b *bench) pair(ctx context.Context, name, refName string, rate float64,
	next func(rng *rand.Rand) (string, string, []byte), ref func() (*scenarioResult, error)) (*scenarioResult, *scenarioResult, error) {
	var httpSide func() (*scenarioResult, error)
	if b.o.runs(name) {
		httpSide = func() (*scenarioResult, error) {
			if rate > 0 {
				return b.openLoop(ctx, name, rate, next)
			}
			return b.httpScenario(ctx, name, next)
		}
	}
	if !b.o.runs(refName) {
		ref = nil
	}
	return b.interleave(ctx, httpSide, ref)
}

// httpScenario runs a closed loop of HTTP requests that next makes.
func (b *bench) httpScenario(ctx context.Context, name string,
	next func(rng *rand.Rand) (method, path string, body []byte)) (*scenarioResult, error) {
	if b.env.pprofURL != "" && !b.noProfile {
		done := b.profileDuring(ctx, name)
		defer func() { <-done }()
	}
	return b.closedLoop(ctx, name, b.drv.describe(), b.o.clients,
		func(ctx context.Context, worker int, rng *rand.Rand) (string, error) {
			method, path, body := next(rng)
			status, _, err := b.send(ctx, worker, method, path, body, false)
			return status, err
		})
}

// send makes one request for worker and reads the answer; it returns the
// status, and the problem's code when wantCode is set.
func (b *bench) send(ctx context.Context, worker int, method, path string, body []byte, wantCode bool) (string, string, error) {
	status, resp, err := b.drv.do(ctx, worker, method, path, body, wantCode)
	if err != nil {
		return "", "", err
	}
	label := strconv.Itoa(status)
	if !wantCode || status < 400 {
		return label, "", nil
	}
	var problem struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(resp, &problem); err != nil {
		return label, "", fmt.Errorf("a %d without a problem body: %w", status, err)
	}
	return label, problem.Code, nil
}

// contentionResult is scenario 4: bursts of simultaneous PRIMARY requests
// for one patient each.
type contentionResult struct {
	Bursts    int `json:"bursts"`
	BurstSize int `json:"burst_size"`
	// BurstMS are the wall times, from the release of the burst to its last
	// answer, in milliseconds.
	BurstMS       []float64      `json:"burst_ms"`
	MedianBurstMS float64        `json:"median_burst_ms"`
	MaxBurstMS    float64        `json:"max_burst_ms"`
	Latency       latencyMS      `json:"request_latency_ms"`
	Status        map[string]int `json:"status"`
	TransportErrs int            `json:"transport_errors"`
	// ExactlyOne counts bursts with exactly one 201, every other answer a
	// 409 primary_already_assigned, and one active PRIMARY in the table.
	ExactlyOne        int      `json:"bursts_with_exactly_one_201"`
	Failures          []string `json:"failures,omitempty"`
	CPU               cpuUse   `json:"cpu"`
	ServicePeakRSSMiB float64  `json:"service_peak_rss_mib"`
	PeakSinceStart    bool     `json:"peak_since_start,omitempty"`
}

func (b *bench) contention(ctx context.Context) (*contentionResult, error) {
	s := b.env.seed
	pid := b.env.svcPID()
	resetOK := resetPeak(pid)
	rng := rand.New(rand.NewPCG(42, uint64(time.Now().UnixNano())))
	r := &contentionResult{Bursts: b.o.bursts, BurstSize: b.o.burstSize, Status: map[string]int{},
		PeakSinceStart: pid > 0 && !resetOK}

	// One unmeasured burst first, on a patient of its own, opens the
	// connections and warms the service.
	if _, err := b.burst(ctx, s.patients, rng, nil); err != nil {
		return nil, err
	}
	before := sampleCPU(pid, b.env.pgPID)
	var all []time.Duration
	for i := range b.o.bursts {
		patient := s.contentionLo + i
		one, err := b.burst(ctx, patient, rng, r)
		if err != nil {
			return nil, err
		}
		all = append(all, one.lat...)
		r.BurstMS = append(r.BurstMS, ms(one.wall))

		primaries, err := b.env.activePrimaries(ctx, patient)
		if err != nil {
			return nil, err
		}
		if one.created == 1 && one.conflicts == b.o.burstSize-1 && primaries == 1 {
			r.ExactlyOne++
		} else {
			r.Failures = append(r.Failures, fmt.Sprintf("burst %d: %d answered 201, %d 409 primary_already_assigned, %d active PRIMARY rows",
				i+1, one.created, one.conflicts, primaries))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.CPU = before.to(sampleCPU(pid, b.env.pgPID))
	sorted := slices.Clone(r.BurstMS)
	sort.Float64s(sorted)
	r.MedianBurstMS = median(sorted)
	r.MaxBurstMS = sorted[len(sorted)-1]
	r.Latency = summarise(all)
	if pid > 0 {
		_, peak := memory(pid)
		r.ServicePeakRSSMiB = mib(peak)
	}
	return r, nil
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

type burstOutcome struct {
	wall               time.Duration
	lat                []time.Duration
	created, conflicts int
}

// burst sends burstSize POST PRIMARY requests for patient at once, each with
// another provider, and waits for every answer. Its counts go into r when r
// is not nil.
func (b *bench) burst(ctx context.Context, patient int, rng *rand.Rand, r *contentionResult) (burstOutcome, error) {
	n := b.o.burstSize
	if err := b.openConns(ctx, n); err != nil {
		return burstOutcome{}, err
	}
	providers := rng.Perm(b.env.seed.providers)[:n]
	path := "/v1/patients/" + patientID(patient) + "/care-team"

	type answer struct {
		status, code string
		err          error
		end          time.Time
		lat          time.Duration
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		body := []byte(`{"provider_id":"` + providerID(providers[i]+1) + `","role":"PRIMARY"}`)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			t0 := time.Now()
			a := &answers[i]
			a.status, a.code, a.err = b.send(ctx, i, http.MethodPost, path, body, true)
			a.end = time.Now()
			a.lat = a.end.Sub(t0)
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()

	var out burstOutcome
	var last time.Time
	for _, a := range answers {
		if a.err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if r != nil {
				r.TransportErrs++
			}
			continue
		}
		if a.status == "401" || a.status == "403" {
			return out, &authError{"the service answered " + a.status + " to POST care-team: the key the bench made was refused"}
		}
		if a.end.After(last) {
			last = a.end
		}
		out.lat = append(out.lat, a.lat)
		switch {
		case a.status == "201":
			out.created++
		case a.status == "409" && a.code == "primary_already_assigned":
			out.conflicts++
		}
		if r != nil {
			label := a.status
			if a.code != "" {
				label += " " + a.code
			}
			r.Status[label]++
		}
	}
	out.wall = last.Sub(t0)
	return out, nil
}

// openConns makes sure the driver holds n open connections to the
// service, so that a burst measures the service rather than TCP handshakes.
func (b *bench) openConns(ctx context.Context, n int) error {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := b.drv.do(ctx, i, http.MethodGet, "/healthz", nil, false); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// importResult is the rate of a FHIR import into an empty database.
type importResult struct {
	Dir                string   `json:"dir"`
	Skipped            string   `json:"skipped,omitempty"`
	Files              int      `json:"files"`
	ResourcesRead      int      `json:"resources_read"`
	Written            int      `json:"written"`
	FailedFiles        int      `json:"failed_files"`
	FileErrors         []string `json:"file_errors,omitempty"`
	ElapsedMS          float64  `json:"elapsed_ms"`
	ResourcesPerSecond float64  `json:"resources_per_second"`
	// The second run of the same files changes nothing: its rate is the
	// read-and-compare path.
	SecondRunElapsedMS          float64 `json:"second_run_elapsed_ms"`
	SecondRunResourcesPerSecond float64 `json:"second_run_resources_per_second"`
	CPU                         cpuUse  `json:"cpu"`
}

const importDatabase = "careteam_bench_import"

func (b *bench) importRate(ctx context.Context) (*importResult, error) {
	r := &importResult{Dir: b.o.importDir}
	if b.o.importDir == "none" {
		r.Skipped = "-import-dir none"
		return r, nil
	}
	if _, err := os.Stat(b.o.importDir); err != nil {
		r.Skipped = err.Error()
		logf("import skipped: %v", err)
		return r, nil
	}
	if err := b.env.freshDatabase(ctx, importDatabase); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, withDatabase(b.env.adminURL, importDatabase))
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return nil, err
	}

	before := sampleCPU(0, b.env.pgPID)
	rep, err := fhirimport.Import(ctx, pool, []string{b.o.importDir}, fhirimport.Options{})
	if err != nil {
		return nil, err
	}
	r.CPU = before.to(sampleCPU(0, b.env.pgPID))
	r.Files, r.ResourcesRead, r.Written, r.FailedFiles = rep.Files, rep.ResourcesRead, rep.Total(), rep.FailedFiles
	r.ElapsedMS = ms(rep.Elapsed)
	for _, fe := range rep.FileErrors {
		r.FileErrors = append(r.FileErrors, fmt.Sprintf("%s:%d: %s", filepath.Base(fe.Path), fe.Line, fe.Message))
	}
	r.ResourcesPerSecond = rep.ResourcesPerSecond()

	again, err := fhirimport.Import(ctx, pool, []string{b.o.importDir}, fhirimport.Options{})
	if err != nil {
		return nil, err
	}
	r.SecondRunElapsedMS = ms(again.Elapsed)
	r.SecondRunResourcesPerSecond = again.ResourcesPerSecond()
	return r, nil
}

// profileDuring fetches a CPU profile of the service over the measured
// window of the scenario starting now, then its heap profile, into the
// results folder. The channel closes when both are written.
func (b *bench) profileDuring(ctx context.Context, name string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-time.After(b.o.warmup):
		case <-ctx.Done():
			return
		}
		secs := max(int(b.o.duration.Seconds())-1, 1)
		prefix := filepath.Join(b.o.outDir, b.res.StartedAt.Format("20060102T150405Z")+"-"+name)
		for _, p := range []struct{ url, file string }{
			{"/debug/pprof/profile?seconds=" + strconv.Itoa(secs), prefix + ".cpu.pprof"},
			{"/debug/pprof/heap", prefix + ".heap.pprof"},
		} {
			if err := fetchTo(ctx, b.env.pprofURL+p.url, p.file); err != nil {
				logf("profile %s: %v", name, err)
				return
			}
			b.res.addProfile(name, p.file)
		}
	}()
	return done
}

func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", url, res.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeLatencyLog appends the workers' kept requests, in time order, to
// the scenario's latency log (-latency-log); the slices of an interleaved
// scenario go to one file, on one time line. A failure to write is
// reported and does not stop the run.
func (b *bench) writeLatencyLog(name string, ws []workerTally) {
	if !b.o.latencyLog {
		return
	}
	var all []latencySample
	for _, w := range ws {
		all = append(all, w.log...)
	}
	slices.SortFunc(all, func(x, y latencySample) int { return x.at.Compare(y.at) })
	path := filepath.Join(b.o.outDir, b.res.StartedAt.Format("20060102T150405Z")+"-"+name+".latency.csv")
	if err := appendLatencies(path, b.res.StartedAt, all); err != nil {
		logf("latency log %s: %v", name, err)
		return
	}
	b.res.addLatencyLog(name, path)
}

// appendLatencies writes samples to path as CSV rows of seconds since
// start, latency in milliseconds and outcome, with a header when the file
// is new.
func appendLatencies(path string, start time.Time, samples []latencySample) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		w.WriteString("t_s,latency_ms,status\n")
	}
	var line []byte
	for _, s := range samples {
		line = strconv.AppendFloat(line[:0], s.at.Sub(start).Seconds(), 'f', 4, 64)
		line = append(line, ',')
		line = strconv.AppendFloat(line, float64(s.lat.Microseconds())/1000, 'f', 3, 64)
		line = append(line, ',')
		line = append(line, s.label...)
		line = append(line, '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
