package migrate_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/migrate"
	"github.com/careteam/careteam/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Empty(t)
	// The index migration is the latest one of this database, so that Down
	// rolls it back.
	m := migrate.New(url, nil).Through(indexVersion)

	if err := m.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	if !indexExists(t, url, migrate.PrimaryIndex) {
		t.Fatalf("%s missing after up", migrate.PrimaryIndex)
	}

	if err := m.Down(); err != nil {
		t.Fatalf("down: %v", err)
	}
	if indexExists(t, url, migrate.PrimaryIndex) {
		t.Fatalf("%s still there after down", migrate.PrimaryIndex)
	}
	pending, err := m.Pending()
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending after down = %v, %v; want one", pending, err)
	}

	if err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if !indexExists(t, url, migrate.PrimaryIndex) {
		t.Fatalf("%s missing after second up", migrate.PrimaryIndex)
	}
}

func indexExists(t *testing.T, url, name string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", "public."+name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}
