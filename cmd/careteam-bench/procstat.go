package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// cpuSample is the CPU time used so far by the parties of a scenario.
type cpuSample struct {
	at time.Time
	// service: the service process; postgres: the postmaster, its live
	// children and the children it reaped; bench: this process.
	service, postgres, bench time.Duration
	// busy and total are the machine's non-idle and total CPU time; irq is
	// the part of busy spent in interrupts (on loopback, most of the TCP
	// work), steal what the hypervisor took.
	busy, total, irq, steal time.Duration
}

// sampleCPU reads the CPU times now.
func sampleCPU(svcPID, pgPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	if svcPID > 0 {
		s.service, _, _ = procCPU(svcPID)
	}
	if pgPID > 0 {
		s.postgres = postgresCPU(pgPID)
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.bench = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.busy, s.total, s.irq, s.steal = machineCPU()
	return s
}

// cpuUse is what a scenario used between two samples.
type cpuUse struct {
	ServiceSeconds  float64 `json:"service_cpu_seconds"`
	PostgresSeconds float64 `json:"postgres_cpu_seconds"`
	// LoadSeconds is the load generator's: this process, or pgbench.
	LoadSeconds float64 `json:"load_generator_cpu_seconds"`
	// BusyCores is the machine's mean number of busy cores.
	BusyCores float64 `json:"machine_busy_cores"`
	// OtherSeconds is the machine's busy CPU time less the three above:
	// other processes, steal, and interrupts that arrived while no party
	// ran. It is a difference of two differently made figures (a
	// process's time is its measured run time, the machine's busy time is
	// sampled at each timer tick), so small values either side of zero,
	// negative ones included, are noise.
	OtherSeconds float64 `json:"other_cpu_seconds"`
	// IRQSeconds is the machine's hard and soft interrupt time (most of it
	// loopback TCP): part of the busy time, and partly also inside the
	// times of the processes the interrupts arrived in.
	IRQSeconds   float64 `json:"irq_softirq_cpu_seconds"`
	StealSeconds float64 `json:"steal_cpu_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
}

func (a cpuSample) to(b cpuSample) cpuUse {
	u := cpuUse{
		ServiceSeconds:  (b.service - a.service).Seconds(),
		PostgresSeconds: (b.postgres - a.postgres).Seconds(),
		LoadSeconds:     (b.bench - a.bench).Seconds(),
		WallSeconds:     b.at.Sub(a.at).Seconds(),
	}
	if u.WallSeconds > 0 && b.total > a.total {
		cores := float64(b.total-a.total) / float64(b.at.Sub(a.at)) // total CPU time / wall = cores
		u.BusyCores = cores * float64(b.busy-a.busy) / float64(b.total-a.total)
	}
	u.IRQSeconds = (b.irq - a.irq).Seconds()
	u.StealSeconds = (b.steal - a.steal).Seconds()
	u.OtherSeconds = (b.busy - a.busy).Seconds() - u.ServiceSeconds - u.PostgresSeconds - u.LoadSeconds
	return u
}

// procCPU returns a process's own CPU time (utime+stime), the CPU time of
// the children it has waited for (cutime+cstime), and its parent's pid.
func procCPU(pid int) (self, children time.Duration, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0
	}
	// The command name may hold spaces; the fields start after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, 0, 0
	}
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	ppid, _ = strconv.Atoi(f[1])
	ticks := func(k int) time.Duration {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		return time.Duration(v) * time.Second / clockTicks
	}
	return ticks(11) + ticks(12), ticks(13) + ticks(14), ppid
}

// postgresCPU is the CPU time of the whole server: the postmaster, every
// backend still running, and every backend that ended (the postmaster has
// reaped those, so their time is in its children's time).
func postgresCPU(postmaster int) time.Duration {
	// A backend that exits between reading the postmaster's reaped time
	// and reading the live children would be counted in neither: read
	// again until the reaped time holds still across the scan.
	var total time.Duration
	for range 5 {
		self, reaped, _ := procCPU(postmaster)
		total = self + reaped
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			pid, err := strconv.Atoi(filepath.Base(d))
			if err != nil || pid == postmaster {
				continue
			}
			if own, _, ppid := procCPU(pid); ppid == postmaster {
				total += own
			}
		}
		if _, again, _ := procCPU(postmaster); again == reaped {
			break
		}
	}
	return total
}

// machineCPU returns the busy and total CPU time of all cores, from the
// first line of /proc/stat.
func machineCPU() (busy, total, irq, steal time.Duration) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 6 || fields[0] != "cpu" {
		return
	}
	var sum, idle, irqs, stolen int64
	for i, v := range fields[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest times are already counted in user
			break
		}
		sum += n
		switch i {
		case 3, 4: // idle, iowait
			idle += n
		case 5, 6: // irq, softirq
			irqs += n
		case 7:
			stolen = n
		}
	}
	tick := time.Second / clockTicks
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick, time.Duration(irqs) * tick, time.Duration(stolen) * tick
}

// memory returns a process's resident set now and its peak (VmRSS, VmHWM).
func memory(pid int) (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb * 1024
		case "VmHWM":
			peak = kb * 1024
		}
	}
	return rss, peak
}

// resetPeak resets a process's VmHWM to its current resident set (Linux:
// "5" to /proc/PID/clear_refs), so that each scenario reports its own peak.
// It reports whether that worked; when not, VmHWM is the peak since start.
func resetPeak(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
