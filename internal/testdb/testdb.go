// Package testdb gives each test a freshly migrated PostgreSQL database of
// its own.
//
// The server comes from the first of these that works:
//
//  1. TEST_DATABASE_URL, a server the caller runs (any database on it: the
//     harness only creates and drops databases of its own);
//  2. a Docker engine, through dockertest, when one answers;
//  3. the PostgreSQL server binaries on this machine: an ephemeral cluster
//     that lives as long as the test binary.
//
// It says which one it used. When none works a test skips, unless CI is set:
// then it fails, so that CI can never pass by skipping.
//
// Every package's TestMain calls [Main], which also puts the process in a
// time zone other than UTC, as are the databases it hands out, so that code
// which forgets a zone shows up in tests.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/db"
	"github.com/careteam/careteam/internal/migrate"
)

// TimeZone is the zone tests run in: Go's local zone and every test
// database's TimeZone. It has a half-hour offset, which finds more mistakes
// than a whole-hour one.
const TimeZone = "Asia/Kolkata"

// DatabaseTimeZone is the TimeZone setting of every test database. It
// differs from TimeZone, so that a value that goes through the database
// without its zone shows up.
const DatabaseTimeZone = "America/St_Johns"

var (
	serverOnce sync.Once
	srv        server
	serverErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// server is a PostgreSQL server that test databases are made on.
type server struct {
	// adminURL connects to a database that always exists on the server.
	adminURL string
	// source says which strategy provided it.
	source string
	// stop releases what the strategy started, if anything.
	stop func()
}

// Main runs the tests of a package and stops whatever server it started.
// Use it as: func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }.
func Main(m *testing.M) int {
	zone, err := time.LoadLocation(TimeZone)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: load zone %s: %v\n", TimeZone, err)
		return 2
	}
	time.Local = zone
	os.Setenv("TZ", TimeZone)

	code := m.Run()

	if srv.stop != nil {
		srv.stop()
	}
	return code
}

// Server returns the admin URL of the server that test databases are made on,
// starting it on first use, or fails (or skips, outside CI) the test.
func Server(t testing.TB) string {
	t.Helper()

	serverOnce.Do(func() {
		srv, serverErr = findServer()
		if serverErr == nil {
			fmt.Fprintf(os.Stderr, "testdb: PostgreSQL from %s\n", srv.source)
		}
	})
	if serverErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("testdb: no PostgreSQL for tests, and CI is set: %v", serverErr)
		}
		t.Skipf("testdb: no PostgreSQL for tests (%v); this test runs when TEST_DATABASE_URL is set, "+
			"a Docker engine answers, or PostgreSQL server binaries are installed, and always in CI", serverErr)
	}
	t.Logf("testdb: PostgreSQL from %s", srv.source)
	return srv.adminURL
}

func findServer() (server, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		if err := ping(u); err != nil {
			return server{}, fmt.Errorf("TEST_DATABASE_URL does not answer: %w", err)
		}
		return server{adminURL: u, source: "TEST_DATABASE_URL"}, nil
	}

	var reasons []string
	s, err := dockerServer()
	if err == nil {
		return s, nil
	}
	reasons = append(reasons, "docker: "+err.Error())

	s, err = localServer()
	if err == nil {
		return s, nil
	}
	reasons = append(reasons, "local binaries: "+err.Error())

	return server{}, fmt.Errorf("%s", strings.Join(reasons, "; "))
}

func ping(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// New returns the URL of a new database for t, migrated to the latest
// version and dropped when t ends.
func New(t testing.TB) string {
	t.Helper()
	admin := Server(t)

	templateOnce.Do(func() {
		templateName, templateErr = ensureTemplate(admin)
	})
	if templateErr != nil {
		t.Fatalf("testdb: template database: %v", templateErr)
	}
	return create(t, admin, "TEMPLATE "+pgx.Identifier{templateName}.Sanitize())
}

// Empty returns the URL of a new database for t with nothing in it, not even
// the migrations table, dropped when t ends. Tests of migrations start here.
func Empty(t testing.TB) string {
	t.Helper()
	return create(t, Server(t), "TEMPLATE template0")
}

// Pool returns a pool on a new migrated database for t, closed when t ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), New(t))
	if err != nil {
		t.Fatalf("testdb: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func create(t testing.TB, admin, from string) string {
	t.Helper()
	ctx := context.Background()

	name := "careteam_test_" + randomSuffix()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testdb: connect: %v", err)
	}
	defer conn.Close(ctx)

	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" "+from); err != nil {
		t.Fatalf("testdb: create database: %v", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" SET TimeZone TO '"+DatabaseTimeZone+"'"); err != nil {
		t.Fatalf("testdb: set time zone: %v", err)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testdb: connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return WithDatabase(admin, name)
}

// WithDatabase returns dsn with its database replaced by name.
func WithDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("testdb: parse %q: %v", dsn, err))
	}
	u.Path = "/" + name
	return u.String()
}

// ensureTemplate makes, once per set of migrations, a database migrated to
// the latest version, for test databases to be copied from. Its name carries
// a hash of the migration files, so a change to any of them makes a new one.
// An advisory lock keeps test binaries running in parallel from building it
// twice; it is built under a temporary name and renamed when complete, so a
// build cut short is never copied.
func ensureTemplate(admin string) (string, error) {
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "careteam_tpl_" + hash

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('careteam testdb template'))"); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext('careteam testdb template'))")

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for template: %w", err)
	}
	if exists {
		return name, nil
	}

	building := name + "_building"
	ident := pgx.Identifier{building}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop unfinished template: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrate.New(WithDatabase(admin, building), nil).Up(ctx); err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	return name, nil
}

func migrationsHash() (string, error) {
	entries, err := fs.ReadDir(db.Migrations, db.MigrationsDir)
	if err != nil {
		return "", fmt.Errorf("read migrations: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)

	h := sha256.New()
	for _, n := range names {
		body, err := fs.ReadFile(db.Migrations, db.MigrationsDir+"/"+n)
		if err != nil {
			return "", fmt.Errorf("read migration %s: %w", n, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(body))
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
