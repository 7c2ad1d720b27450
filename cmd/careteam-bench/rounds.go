package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// interleave runs a scenario and its reference in -rounds slices each, in
// the order A B, B A, A B, ..., so that a slow spell of this shared
// machine falls on both rather than on whichever ran then. Each slice
// measures duration/rounds after its own warm-up (the full warm-up first,
// then at most 2 s), and starts from a checkpoint. The slices of each side
// are merged into one result.
func (b *bench) interleave(ctx context.Context, first, second func() (*scenarioResult, error)) (*scenarioResult, *scenarioResult, error) {
	saved := b.o
	defer func() { b.o = saved; b.noProfile = false }()
	rounds := max(saved.rounds, 1)
	// Whole seconds, as pgbench -T takes them, so that both sides of a
	// round measure for as long.
	b.o.duration = max((saved.duration / time.Duration(rounds)).Round(time.Second), time.Second)

	fns := [2]func() (*scenarioResult, error){first, second}
	var merged [2]*scenarioResult
	firstSlice := true
	for i := range rounds {
		if i > 0 {
			b.o.warmup = min(saved.warmup, 2*time.Second)
			b.noProfile = true // the first slice's profile stands for the scenario
		}
		order := [2]int{0, 1}
		if i%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, k := range order {
			if fns[k] == nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			// The first slice starts from the checkpoint runAll made.
			if !firstSlice {
				if err := b.env.checkpoint(ctx); err != nil {
					logf("CHECKPOINT failed, figures may vary more: %v", err)
				}
			}
			firstSlice = false
			r, err := fns[k]()
			if err != nil {
				return nil, nil, err
			}
			merged[k] = mergeSlices(merged[k], r)
		}
	}
	return merged[0], merged[1], nil
}

// mergeSlices adds slice r to the merged result m (nil at first).
func mergeSlices(m, r *scenarioResult) *scenarioResult {
	if m == nil {
		r.Rounds = []float64{r.RPS}
		return r
	}
	m.Rounds = append(m.Rounds, r.RPS)
	m.RPS = (m.RPS*m.Seconds + r.RPS*r.Seconds) / (m.Seconds + r.Seconds)
	m.Seconds += r.Seconds
	m.Requests += r.Requests
	for k, v := range r.Status {
		m.Status[k] += v
	}
	m.TransportErrs += r.TransportErrs
	if m.ErrorSample == "" {
		m.ErrorSample = r.ErrorSample
	}
	m.lat = append(m.lat, r.lat...)
	m.Latency = summarise(m.lat)
	m.CPU = addCPU(m.CPU, r.CPU)
	m.ServiceRSSMiB = r.ServiceRSSMiB
	m.ServicePeakRSSMiB = max(m.ServicePeakRSSMiB, r.ServicePeakRSSMiB)
	m.PeakSinceStart = m.PeakSinceStart || r.PeakSinceStart
	return m
}

func addCPU(a, b cpuUse) cpuUse {
	wall := a.WallSeconds + b.WallSeconds
	busy := 0.0
	if wall > 0 {
		busy = (a.BusyCores*a.WallSeconds + b.BusyCores*b.WallSeconds) / wall
	}
	return cpuUse{
		ServiceSeconds:  a.ServiceSeconds + b.ServiceSeconds,
		PostgresSeconds: a.PostgresSeconds + b.PostgresSeconds,
		LoadSeconds:     a.LoadSeconds + b.LoadSeconds,
		BusyCores:       busy,
		OtherSeconds:    a.OtherSeconds + b.OtherSeconds,
		IRQSeconds:      a.IRQSeconds + b.IRQSeconds,
		StealSeconds:    a.StealSeconds + b.StealSeconds,
		WallSeconds:     wall,
	}
}

// openLoop sends requests at a fixed mean rate, whether or not earlier
// ones have answered, from -clients workers with a connection each. The
// requests fall due as a Poisson process (exponential gaps), as pgbench -R
// schedules its transactions; a worker takes the next due request when it
// is free, so when every worker is busy the request waits, and its
// latency, counted from when it fell due rather than from when it was
// sent, shows the wait (no coordinated omission). Only requests due in the
// measured window count.
func (b *bench) openLoop(ctx context.Context, name string, rate float64,
	next func(rng *rand.Rand) (method, path string, body []byte)) (*scenarioResult, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("%s: no rate", name)
	}
	pid := b.env.svcPID()
	resetOK := resetPeak(pid)
	start := time.Now().Add(10 * time.Millisecond)
	var schedule struct {
		sync.Mutex
		next time.Time
		rng  *rand.Rand
	}
	schedule.next = start
	schedule.rng = rand.New(rand.NewPCG(7, uint64(start.UnixNano())))
	nextDue := func() time.Time {
		schedule.Lock()
		defer schedule.Unlock()
		due := schedule.next
		schedule.next = due.Add(time.Duration(schedule.rng.ExpFloat64() / rate * float64(time.Second)))
		return due
	}
	measureStart := start.Add(b.o.warmup)
	measureEnd := measureStart.Add(b.o.duration)

	var before cpuSample
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTimer(time.Until(measureStart))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		before = sampleCPU(pid, b.env.pgPID)
	}()

	clients := b.o.clients
	states := b.tallies(clients)
	lastAnswer := make([]time.Time, clients) // per worker
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &states[i]
			rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				due := nextDue()
				if !due.Before(measureEnd) {
					return
				}
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				method, path, body := next(rng)
				label, _, err := b.send(ctx, i, method, path, body, false)
				done := time.Now()
				lat := done.Sub(due)
				if due.Before(measureStart) {
					continue
				}
				if err != nil && ctx.Err() != nil {
					return
				}
				st.record(due, label, lat, err)
				if err == nil {
					lastAnswer[i] = done
				}
			}
		}()
	}
	wg.Wait()
	<-sampled
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	after := sampleCPU(pid, b.env.pgPID)
	r := &scenarioResult{Name: name, Driver: b.drv.describe() + ", open loop", Clients: clients,
		Status: map[string]int{}, Seconds: b.o.duration.Seconds(), CPU: before.to(after),
		PeakSinceStart: pid > 0 && !resetOK, TargetRPS: rate}
	r.addTallies(states)
	b.writeLatencyLog(fmt.Sprintf("%s-%.0frps", name, rate), states)
	if r.Status["401"] > 0 || r.Status["403"] > 0 {
		return nil, &authError{"the service answered 401/403: the key the bench made was refused"}
	}
	// The rate served: the answers over the time from the window's start to
	// the last of them, which is longer than the window when the service
	// fell behind the schedule. Only that rate says whether it kept up.
	var last time.Time
	for _, t := range lastAnswer {
		if t.After(last) {
			last = t
		}
	}
	if span := last.Sub(measureStart); span > b.o.duration {
		r.Seconds = span.Seconds()
	}
	r.RPS = float64(len(r.lat)) / r.Seconds
	if pid > 0 {
		rss, peak := memory(pid)
		r.ServiceRSSMiB, r.ServicePeakRSSMiB = mib(rss), mib(peak)
	}
	return r, nil
}
