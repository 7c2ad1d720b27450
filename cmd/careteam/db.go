package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/dbcheck"
)

func init() {
	commands["db"] = command{
		summary: "db check|repair-primaries|verify: find, repair and verify the one-PRIMARY rule",
		run:     runDB,
	}
}

// Exit codes of "db check" and "db verify".
const (
	exitClean    = 0
	exitFindings = 1
	exitCouldNot = 2
)

func runDB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cfg, err := loadConfig()
	if err != nil {
		return &exitError{code: exitCouldNot, err: err}
	}

	switch args[0] {
	case "check":
		return dbCheck(ctx, cfg, args[1:], stdout)
	case "repair-primaries":
		return dbRepair(ctx, cfg, args[1:], stdout)
	case "verify":
		return dbVerify(ctx, cfg, args[1:], stdout)
	default:
		return errUsage
	}
}

func connectDB(ctx context.Context, cfg config) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, &exitError{code: exitCouldNot, err: fmt.Errorf("connect: %w", err)}
	}
	return conn, nil
}

// dbCheck prints every patient whose rows a pending migration would reject:
// ids and times, no names. Exit 0 when clean, 1 when not, 2 when it could
// not check.
func dbCheck(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("db check", flag.ContinueOnError)
	format := fs.String("format", "text", "text or json")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || (*format != "text" && *format != "json") {
		return &exitError{code: exitCouldNot, err: fmt.Errorf("usage: careteam db check [--format text|json]")}
	}

	conn, err := connectDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	findings, err := dbcheck.Check(ctx, conn)
	if err != nil {
		return &exitError{code: exitCouldNot, err: err}
	}

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"clean": len(findings) == 0, "findings": findings}); err != nil {
			return &exitError{code: exitCouldNot, err: err}
		}
	} else {
		for _, f := range findings {
			fmt.Fprintf(stdout, "%s patient %s:", f.Check, f.PatientID)
			for _, a := range f.Assignments {
				fmt.Fprintf(stdout, " %s (assigned_at %s)", a.ID, a.AssignedAt.UTC().Format(time.RFC3339Nano))
			}
			fmt.Fprintln(stdout)
		}
		if len(findings) == 0 {
			fmt.Fprintln(stdout, "clean: no rows a migration would reject")
		} else {
			fmt.Fprintf(stdout, "%d patient(s) need repair: careteam db repair-primaries --keep newest|oldest [--dry-run]\n",
				len(findings))
		}
	}
	if len(findings) > 0 {
		return &exitError{code: exitFindings}
	}
	return nil
}

// dbRepair ends the surplus PRIMARY assignments in one transaction and
// prints what it changed, or with --dry-run what it would change.
func dbRepair(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("db repair-primaries", flag.ContinueOnError)
	keep := fs.String("keep", "", "which PRIMARY of each patient to keep: newest or oldest")
	dryRun := fs.Bool("dry-run", false, "print what would change, change nothing")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 ||
		(*keep != string(dbcheck.KeepNewest) && *keep != string(dbcheck.KeepOldest)) {
		return &exitError{code: exitCouldNot,
			err: fmt.Errorf("usage: careteam db repair-primaries --keep newest|oldest [--dry-run]")}
	}

	conn, err := connectDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	repairs, err := dbcheck.RepairPrimaries(ctx, conn, dbcheck.Keep(*keep), *dryRun)
	if err != nil {
		return err
	}
	verb := "ended"
	if *dryRun {
		verb = "would end"
	}
	for _, r := range repairs {
		for _, a := range r.Ended {
			fmt.Fprintf(stdout, "patient %s: %s assignment %s (assigned_at %s); keeps %s\n",
				r.PatientID, verb, a.ID, a.AssignedAt.UTC().Format(time.RFC3339Nano), r.Kept.ID)
		}
	}
	if len(repairs) == 0 {
		fmt.Fprintln(stdout, "nothing to repair")
	} else if *dryRun {
		fmt.Fprintf(stdout, "dry run: %d patient(s) would be repaired; nothing was changed\n", len(repairs))
	} else {
		fmt.Fprintf(stdout, "%d patient(s) repaired, with removal_reason %q\n",
			len(repairs), dbcheck.RepairReason(dbcheck.Keep(*keep)))
	}
	return nil
}

// dbVerify checks that every constraint the service relies on is in force.
func dbVerify(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return &exitError{code: exitCouldNot, err: fmt.Errorf("usage: careteam db verify")}
	}
	conn, err := connectDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	problems, err := dbcheck.Verify(ctx, conn)
	if err != nil {
		return &exitError{code: exitCouldNot, err: err}
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, "FAIL", p)
	}
	if len(problems) > 0 {
		return &exitError{code: exitFindings, err: fmt.Errorf("%d problem(s)", len(problems))}
	}
	fmt.Fprintln(stdout, "ok: every constraint the service relies on is present and valid")
	return nil
}
