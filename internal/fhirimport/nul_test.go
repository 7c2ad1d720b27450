package fhirimport

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/careteam/careteam/internal/testdb"
)

// TestNULInANameSkipsTheRecord: PostgreSQL cannot store a NUL character, so
// a patient whose name holds one is skipped with a reason, and the rest of
// the file still loads.
func TestNULInANameSkipsTheRecord(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	dir := t.TempDir()
	body := `{"resourceType":"Patient","id":"bad","name":[{"family":"Doe","given":["Ja\u0000ne"]}]}` + "\n" +
		`{"resourceType":"Patient","id":"good","name":[{"family":"Doe","given":["John"]}]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "p.ndjson"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Import(context.Background(), pool, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Kinds[KindPatient]
	if rep.FailedFiles != 0 || c.Loaded != 1 || c.Skipped != 1 {
		t.Fatalf("failed files %d, patients loaded %d, skipped %d; want 0, 1, 1 (%+v)",
			rep.FailedFiles, c.Loaded, c.Skipped, c.SkipReasons)
	}
}
