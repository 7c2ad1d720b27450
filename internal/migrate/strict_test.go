package migrate_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/careteam/careteam/db"
	"github.com/careteam/careteam/internal/migrate"
	"github.com/careteam/careteam/internal/testdb"
)

// TestOutOfOrderMigrationIsRefused plays a deploy that carries a migration
// older than one already applied, as a branch merged late would: the deploy
// path refuses it rather than apply it out of order.
func TestOutOfOrderMigrationIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.Empty(t)
	m := migrate.New(dsn, nil)
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}

	files := fstest.MapFS{}
	entries, err := fs.ReadDir(db.Migrations, db.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		body, err := fs.ReadFile(db.Migrations, db.MigrationsDir+"/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		files[db.MigrationsDir+"/"+e.Name()] = &fstest.MapFile{Data: body}
	}
	files[db.MigrationsDir+"/20261204110150_merged_late.sql"] = &fstest.MapFile{Data: []byte(
		"-- migrate:up\nCREATE TABLE merged_late (id int);\n-- migrate:down\nDROP TABLE merged_late;\n")}

	err = m.WithMigrations(files).Up(ctx)
	if !errors.Is(err, migrate.ErrOutOfOrder) {
		t.Fatalf("up with a late migration: %v, want it refused as out of order", err)
	}
	conn := connect(t, dsn)
	if n := count(t, conn, "SELECT count(*) FROM pg_class WHERE relname = 'merged_late'"); n != 0 {
		t.Error("the out-of-order migration was applied")
	}
}
