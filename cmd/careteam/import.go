package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/dbgen"
	"github.com/careteam/careteam/internal/fhirimport"
)

func init() {
	commands["import"] = command{
		summary: "import [--org NAME] [--format text|json] PATH...: load FHIR R4 Bundles and Bulk Data NDJSON",
		run:     runImport,
	}
}

// runImport loads the files and folders named by args and prints the
// report. It exits 1 when a file could not be loaded (the others are), and
// 0 otherwise, skipped records included.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "report as text or json")
	org := fs.String("org", "default", "the organization that owns the imported patients (made if missing)")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 || (*format != "text" && *format != "json") {
		return errUsage
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	orgID, err := ensureOrganization(ctx, cfg, *org)
	if err != nil {
		return err
	}
	// The import runs as the owner, as the other operator commands do (the
	// owner need not be a member of the service's role); every transaction
	// sets the organization, and the forced row-level security holds the
	// owner to it.
	pool, err := openPoolAs(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer pool.Close()

	report, err := fhirimport.Import(ctx, pool, fs.Args(), fhirimport.Options{
		Log:            newLogger(os.Stderr, "warn"),
		OrganizationID: orgID,
	})
	if err != nil {
		return err
	}

	if err := addImportTotals(ctx, cfg, report); err != nil {
		return err
	}

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if report.FailedFiles > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d file(s) could not be loaded", report.FailedFiles)}
	}
	return nil
}

// addImportTotals adds the report's counts to the running totals that the
// service shows at /metrics, as the owner: the service's role only reads
// them.
func addImportTotals(ctx context.Context, cfg config, report *fhirimport.Report) error {
	var params dbgen.AddImportRecordTotalsParams
	kinds := make([]string, 0, len(report.Kinds))
	for kind := range report.Kinds {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		c := report.Kinds[kind]
		for _, o := range []struct {
			outcome string
			n       int
		}{{"loaded", c.Loaded}, {"updated", c.Updated}, {"unchanged", c.Unchanged}, {"skipped", c.Skipped}} {
			if o.n == 0 {
				continue
			}
			params.Kinds = append(params.Kinds, kind)
			params.Outcomes = append(params.Outcomes, o.outcome)
			params.Records = append(params.Records, int64(o.n))
		}
	}
	if len(params.Kinds) == 0 {
		return nil
	}

	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('careteam.request_id', 'import', true)"); err != nil {
			return err
		}
		if err := dbgen.New(tx).AddImportRecordTotals(ctx, params); err != nil {
			return fmt.Errorf("add import totals: %w", err)
		}
		return nil
	})
}
