package migrate_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/amacneil/dbmate/v2/pkg/dbmate"

	"github.com/careteam/careteam/internal/migrate"
	"github.com/careteam/careteam/internal/testdb"
)

// schemaFile is db/schema/schema.sql, from this package's folder.
var schemaFile = filepath.Join("..", "..", "db", "schema", "schema.sql")

// dumpedBy matches pg_dump's version lines, which change with every patch
// release of PostgreSQL and say nothing about the schema.
var dumpedBy = regexp.MustCompile(`(?m)^-- Dumped (from database|by pg_dump) version .*\n`)

// dumpSchema migrates a new database and returns its schema as dbmate dumps
// it, without the version lines.
func dumpSchema(t *testing.T) []byte {
	t.Helper()
	dsn := testdb.Empty(t)
	if err := migrate.New(dsn, nil).Up(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	d := dbmate.New(u)
	d.SchemaFile = filepath.Join(t.TempDir(), "schema.sql")
	d.Log = &bytes.Buffer{}
	if err := d.DumpSchema(); err != nil {
		t.Fatalf("dump schema (pg_dump must be on PATH): %v", err)
	}
	body, err := os.ReadFile(d.SchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	return dumpedBy.ReplaceAll(body, nil)
}

// TestSchemaDumpIsCurrent fails when db/schema/schema.sql is not what the
// migrations produce. UPDATE_SCHEMA=1 (make schema) rewrites it instead.
func TestSchemaDumpIsCurrent(t *testing.T) {
	t.Parallel()
	got := dumpSchema(t)

	if os.Getenv("UPDATE_SCHEMA") != "" {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", schemaFile)
		return
	}

	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run \"make schema\" and commit the result", schemaFile)
	}
}

// TestSchemaDumpIsReproducible dumps two fresh databases and expects the
// same bytes, so that the staleness check above cannot flap.
func TestSchemaDumpIsReproducible(t *testing.T) {
	t.Parallel()
	if a, b := dumpSchema(t), dumpSchema(t); !bytes.Equal(a, b) {
		t.Fatal("two dumps of freshly migrated databases differ")
	}
}
