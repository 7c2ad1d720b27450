package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// reference runs a pgbench script of bench/ against the bench database
// with the scenarios' client count, or, when pgbench is missing (or
// -reference pgx), the same statements through pgx. A rate above 0 makes
// it an open loop at that rate (pgbench -R), which only pgbench runs: see
// referenceThroughPgx.
func (b *bench) reference(ctx context.Context, name, script string, vars map[string]int, rate float64) (*scenarioResult, error) {
	if b.referenceThroughPgx() {
		if rate > 0 {
			return nil, fmt.Errorf("%s: a fixed-rate reference needs pgbench", name)
		}
		if b.o.reference == "auto" {
			logf("pgbench not found: running %s through pgx", name)
		}
		return b.pgxReference(ctx, name, script, vars)
	}
	path, err := exec.LookPath("pgbench")
	if err != nil {
		return nil, fmt.Errorf("%w: install postgresql-client, or run with -reference pgx", errNoPgbench)
	}
	return b.pgbench(ctx, path, name, filepath.Join(b.env.root, "bench", script), vars, rate)
}

// referenceThroughPgx reports whether the references run through pgx:
// when -reference pgx says so, or -reference auto finds no pgbench.
func (b *bench) referenceThroughPgx() bool {
	if b.o.reference != "auto" {
		return b.o.reference == "pgx"
	}
	_, err := exec.LookPath("pgbench")
	return err != nil
}

var (
	tpsRE       = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	processedRE = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	failedRE    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
)

func (b *bench) pgbench(ctx context.Context, bin, name, script string, vars map[string]int, rate float64) (*scenarioResult, error) {
	args := []string{"-n", "-c", strconv.Itoa(b.o.clients), "-j", "2", "-M", "prepared", "-f", script}
	if rate > 0 {
		// Open loop: transactions are scheduled at this rate, and each
		// latency counts from its scheduled start.
		args = append(args, "-R", strconv.FormatFloat(rate, 'f', 0, 64))
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-D", fmt.Sprintf("%s=%d", k, vars[k]))
	}
	run := func(extra ...string) (string, time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, append(append(slicesClone(args), extra...), b.env.dbURL)...)
		cmd.Dir = b.env.tmp
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", 0, fmt.Errorf("pgbench: %w\n%s", err, out)
		}
		var used time.Duration
		if cmd.ProcessState != nil {
			used = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		if strings.Contains(string(out), "aborted") {
			return "", 0, fmt.Errorf("pgbench: a client aborted:\n%s", out)
		}
		return string(out), used, nil
	}

	if secs := int(b.o.warmup.Round(time.Second).Seconds()); secs > 0 {
		if _, _, err := run("-T", strconv.Itoa(secs)); err != nil {
			return nil, err
		}
	}
	b.logNo++
	prefix := filepath.Join(b.env.tmp, fmt.Sprintf("pgbench-%s-%d", name, b.logNo))
	secs := max(int(b.o.duration.Round(time.Second).Seconds()), 1)
	before := sampleCPU(b.env.svcPID(), b.env.pgPID)
	out, used, err := run("-T", strconv.Itoa(secs), "-l", "--log-prefix", prefix)
	if err != nil {
		return nil, err
	}
	after := sampleCPU(b.env.svcPID(), b.env.pgPID)

	r := &scenarioResult{Name: name, Driver: "pgbench -M prepared -j 2 (" + filepath.Base(script) + ")",
		Clients: b.o.clients, Seconds: float64(secs), Status: map[string]int{}, CPU: before.to(after)}
	r.CPU.LoadSeconds = used.Seconds()
	r.CPU.OtherSeconds = r.CPU.BusyCores*r.CPU.WallSeconds - r.CPU.ServiceSeconds - r.CPU.PostgresSeconds - r.CPU.LoadSeconds
	if m := tpsRE.FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := processedRE.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.Status["ok"] = n
	}
	if m := failedRE.FindStringSubmatch(out); m != nil {
		if n, _ := strconv.Atoi(m[1]); n > 0 {
			r.Status["failed"] = n
		}
	}

	lat, err := readPgbenchLogs(prefix)
	if err != nil {
		return nil, err
	}
	r.Latency = summarise(lat)
	r.lat = lat
	r.Requests = int64(r.Status["ok"] + r.Status["failed"])
	if pid := b.env.svcPID(); pid > 0 {
		rss, _ := memory(pid)
		r.ServiceRSSMiB = mib(rss)
	}
	return r, nil
}

// readPgbenchLogs reads pgbench's per-transaction logs (-l): the third
// field of each line is the latency in microseconds.
func readPgbenchLogs(prefix string) ([]time.Duration, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil || len(files) == 0 {
		return nil, errors.New("pgbench wrote no transaction log")
	}
	var lat []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				continue // "failed" or "skipped"
			}
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return lat, nil
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// pgxReference runs the reference statements with pgx, one connection per
// client, each statement prepared (pgx caches them), when pgbench is
// missing.
func (b *bench) pgxReference(ctx context.Context, name, script string, vars map[string]int) (*scenarioResult, error) {
	cfg, err := pgxpool.ParseConfig(b.env.dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(b.o.clients)
	cfg.MinConns = int32(b.o.clients)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()

	var do op
	switch script {
	case "pgbench-create.sql":
		do = func(ctx context.Context, _ int, rng *rand.Rand) (string, error) {
			p := patientID(vars["plo"] + rng.IntN(vars["phi"]-vars["plo"]+1))
			v := providerID(1 + rng.IntN(vars["nprov"]))
			role := "SPECIALIST"
			if rng.IntN(2) == 1 {
				role = "CONSULTANT"
			}
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var one int
				if err := tx.QueryRow(ctx, "SELECT 1 FROM patients WHERE id = $1", p).Scan(&one); err != nil {
					return err
				}
				if err := tx.QueryRow(ctx, "SELECT 1 FROM providers WHERE id = $1", v).Scan(&one); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, `SELECT id FROM care_team_assignments
					WHERE patient_id = $1 AND role = 'PRIMARY' AND removed_at IS NULL`, p)
				if err != nil {
					return err
				}
				rows.Close()
				_, err = tx.Exec(ctx, `INSERT INTO care_team_assignments (patient_id, provider_id, role, assigned_at)
					VALUES ($1, $2, $3::care_team_role, clock_timestamp()) ON CONFLICT DO NOTHING`, p, v, role)
				return err
			})
			if err != nil {
				return "", err
			}
			return "ok", nil
		}
	case "pgbench-read.sql":
		do = func(ctx context.Context, _ int, rng *rand.Rand) (string, error) {
			rows, err := pool.Query(ctx, `SELECT p.id, a.id, a.provider_id, a.role, a.assigned_at,
				       a.removed_at, a.removal_reason
				FROM patients AS p
				LEFT JOIN care_team_assignments AS a ON a.patient_id = p.id AND a.removed_at IS NULL
				WHERE p.id = $1
				ORDER BY a.role = 'PRIMARY' DESC, a.assigned_at, a.id`, patientID(1+rng.IntN(vars["rhi"])))
			if err != nil {
				return "", err
			}
			for rows.Next() {
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return "", err
			}
			return "ok", nil
		}
	default:
		return nil, fmt.Errorf("no pgx version of %s", script)
	}
	r, err := b.closedLoop(ctx, name, "pgx (in the bench process) ("+script+")", b.o.clients, do)
	if r != nil {
		r.ServicePeakRSSMiB = 0
	}
	return r, err
}
