package main

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	httpapi "github.com/careteam/careteam/internal/http"
	"github.com/careteam/careteam/internal/npi"
	"github.com/careteam/careteam/internal/store"
	"github.com/careteam/careteam/internal/testdb"
)

// TestImportCommand imports a small NDJSON file twice for an organization,
// as the service's role, and finds the totals at /metrics.
func TestImportCommand(t *testing.T) {
	dsn := testdb.New(t)
	dir := t.TempDir()
	nine := "123456789"
	valid := nine + string('0'+npi.CheckDigit(nine))
	lines := strings.Join([]string{
		`{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:test","value":"p1"}],` +
			`"name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1970-01-01"}`,
		`{"resourceType":"Practitioner","id":"d1","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi",` +
			`"value":"` + valid + `"}],"name":[{"family":"Who","given":["Doctor"]}]}`,
		`{"resourceType":"Practitioner","id":"d2","name":[{"family":"None","given":["No"]}]}`,
		`not json`,
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "small.ndjson"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out := careteam(t, dsn, "import", "--org", "clinic", dir)
	if code != 0 || !strings.Contains(out, "Patient") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	if code, out := careteam(t, dsn, "import", "--org", "clinic", dir); code != 0 {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}

	conn := connect(t, dsn)
	var org string
	err := conn.QueryRow(context.Background(), `SELECT o.name FROM patients AS p
		JOIN organizations AS o ON o.id = p.organization_id`).Scan(&org)
	if err != nil || org != "clinic" {
		t.Fatalf("the imported patient belongs to %q (%v), want clinic", org, err)
	}

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	store.ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	st := store.New(pool)
	httpapi.RegisterImportCollector(reg, st)
	ts := httptest.NewServer(httpapi.New(st, httpapi.Options{Registry: reg}))
	defer ts.Close()

	res, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`careteam_import_records_total{kind="Patient",outcome="loaded"} 1`,
		`careteam_import_records_total{kind="Patient",outcome="unchanged"} 1`,
		`careteam_import_records_total{kind="Practitioner",outcome="loaded"} 1`,
		`careteam_import_records_total{kind="Practitioner",outcome="skipped"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(body), "careteam_import"))
		}
	}
}

// TestImportOfAMissingPathFails: a path that cannot be read is a file that
// could not be loaded, and the command says so with exit 1.
func TestImportOfAMissingPathFails(t *testing.T) {
	dsn := testdb.New(t)
	code, out := careteam(t, dsn, "import", filepath.Join(t.TempDir(), "missing"))
	if code != 1 || !strings.Contains(out, "cannot read") {
		t.Fatalf("import of a missing path: exit %d, want 1 naming it:\n%s", code, out)
	}
}
