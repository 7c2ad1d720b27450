package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

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
	// The import writes as the service's role, under row-level security,
	// in the organization's name.
	pool, err := openPool(ctx, cfg)
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
