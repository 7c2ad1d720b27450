// Package migrate applies careteam's embedded dbmate migrations. It is what
// "careteam migrate" runs in deploys and what the test harness runs on each
// template database, so both see exactly the files dbmate sees.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"

	"github.com/amacneil/dbmate/v2/pkg/dbmate"
	_ "github.com/amacneil/dbmate/v2/pkg/driver/postgres" // dbmate's postgres driver
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/db"
	"github.com/careteam/careteam/internal/dbcheck"
)

// PrimaryIndex is the partial unique index that keeps one active PRIMARY per
// patient. Its migration builds it CONCURRENTLY, which can leave an INVALID
// index behind when the build fails.
const PrimaryIndex = "uq_care_team_primary"

// primaryIndexVersion is the version of the migration that builds
// PrimaryIndex.
const primaryIndexVersion = "20261204110200"

// Migrator runs the embedded migrations against one database.
type Migrator struct {
	url string
	log io.Writer
	// through, when set, hides the migrations after that version: tests use
	// it to build a database as it was before a migration.
	through string
	// files holds the migrations, under db.MigrationsDir.
	files fs.FS
}

// New returns a Migrator for databaseURL that writes dbmate's progress to
// log.
func New(databaseURL string, log io.Writer) *Migrator {
	if log == nil {
		log = io.Discard
	}
	return &Migrator{url: databaseURL, log: log, files: db.Migrations}
}

// WithMigrations returns a Migrator that applies the files under
// db.MigrationsDir of files instead of the embedded ones. Tests use it to
// play a deploy that carries other migrations.
func (m *Migrator) WithMigrations(files fs.FS) *Migrator {
	c := *m
	c.files = files
	return &c
}

func (m *Migrator) dbmate() (*dbmate.DB, error) {
	u, err := url.Parse(m.url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}

	// lib/pq, dbmate's driver, only knows the postgres scheme.
	if u.Scheme == "postgresql" {
		u.Scheme = "postgres"
	}

	d := dbmate.New(u)
	d.FS = m.files
	if m.through != "" {
		d.FS = throughFS{FS: m.files, last: m.through}
	}
	d.MigrationsDir = []string{db.MigrationsDir}
	d.AutoDumpSchema = false
	d.Log = m.log
	// Strict refuses a migration older than one already applied: in a deploy
	// that means a branch merged out of order, which needs a new version.
	d.Strict = true
	return d, nil
}

// Through returns a Migrator that sees only the migrations up to and
// including version, as a database deployed before the later ones would.
func (m *Migrator) Through(version string) *Migrator {
	c := *m
	c.through = version
	return &c
}

// throughFS hides the migration files whose version is after last.
type throughFS struct {
	fs.FS
	last string
}

func (f throughFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(f.FS, name)
	if err != nil {
		return nil, err
	}
	kept := entries[:0]
	for _, e := range entries {
		if version, _, _ := strings.Cut(e.Name(), "_"); version <= f.last {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// Up creates the database when it does not exist and applies every pending
// migration. Before it does, it drops an INVALID copy of PrimaryIndex that an
// interrupted concurrent build left behind, so that the build runs again
// instead of failing on the name or passing a broken index for a working one.
func (m *Migrator) Up(ctx context.Context) error {
	d, err := m.dbmate()
	if err != nil {
		return err
	}

	drv, err := d.Driver()
	if err != nil {
		return fmt.Errorf("database driver: %w", err)
	}
	exists, err := drv.DatabaseExists()
	if err != nil {
		return fmt.Errorf("look for the database: %w", err)
	}
	if !exists {
		if err := d.Create(); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
	}

	if err := refuseOutOfOrder(d); err != nil {
		return err
	}
	if err := m.refuseRejectedRows(ctx); err != nil {
		return err
	}
	if err := m.dropInvalidPrimaryIndex(ctx, d); err != nil {
		return err
	}

	if err := d.Migrate(); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Down rolls back the most recent migration.
func (m *Migrator) Down() error {
	d, err := m.dbmate()
	if err != nil {
		return err
	}
	if err := d.Rollback(); err != nil {
		return fmt.Errorf("roll back: %w", err)
	}
	return nil
}

// Status writes dbmate's list of applied and pending migrations to the log
// and returns how many are pending.
func (m *Migrator) Status() (int, error) {
	d, err := m.dbmate()
	if err != nil {
		return 0, err
	}
	pending, err := d.Status(false)
	if err != nil {
		return 0, fmt.Errorf("migration status: %w", err)
	}
	return pending, nil
}

// Pending returns the versions of the migrations not yet applied.
func (m *Migrator) Pending() ([]string, error) {
	d, err := m.dbmate()
	if err != nil {
		return nil, err
	}
	all, err := d.FindMigrations()
	if err != nil {
		return nil, fmt.Errorf("find migrations: %w", err)
	}
	var pending []string
	for _, mg := range all {
		if !mg.Applied {
			pending = append(pending, mg.Version)
		}
	}
	return pending, nil
}

// ErrRejectedRows means the database holds rows that a pending migration
// would reject; "careteam db check" lists them. The error Up returns is a
// *RejectedRowsError.
var ErrRejectedRows = errors.New("rows a migration would reject")

// RepairCommand is the command that ends surplus PRIMARY assignments.
const RepairCommand = "careteam db repair-primaries"

// RejectedRowsError names the patients whose rows a pending migration would
// reject, and tells the operator how to repair them.
type RejectedRowsError struct {
	// Patients are the patients with more than one active PRIMARY.
	Patients []uuid.UUID
	// Active is the number of active PRIMARY assignments of each.
	Active []int
}

func (e *RejectedRowsError) Is(target error) bool { return target == ErrRejectedRows }

func (e *RejectedRowsError) Error() string {
	var names []string
	for i, p := range e.Patients {
		if i == 20 {
			names = append(names, "...")
			break
		}
		names = append(names, fmt.Sprintf("%s (%d active)", p, e.Active[i]))
	}
	return fmt.Sprintf("%v: %d patient(s) have more than one active PRIMARY: %s; "+
		"see them with \"careteam db check\", end the surplus with "+
		"\"%s --keep newest\" (or --keep oldest; try --dry-run first), "+
		"then migrate again", ErrRejectedRows, len(e.Patients), strings.Join(names, ", "), RepairCommand)
}

// refuseRejectedRows stops Up before it starts when the database holds rows
// a migration would reject, naming the patients and the command that
// repairs them, so that a deploy fails before it has changed anything.
func (m *Migrator) refuseRejectedRows(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)

	findings, err := dbcheck.Check(ctx, conn)
	if err != nil {
		return fmt.Errorf("check data before migrating: %w", err)
	}
	if len(findings) == 0 {
		return nil
	}
	rejected := &RejectedRowsError{}
	for _, f := range findings {
		rejected.Patients = append(rejected.Patients, f.PatientID)
		rejected.Active = append(rejected.Active, len(f.Assignments))
	}
	return rejected
}

// ErrOutOfOrder means a pending migration is older than one already
// applied: in a deploy, a branch merged out of order, which needs a new
// version.
var ErrOutOfOrder = errors.New("migration out of order")

// refuseOutOfOrder stops Up before it starts when a pending migration is
// older than the newest applied one. dbmate's strict mode refuses it too,
// but says so only in its text.
func refuseOutOfOrder(d *dbmate.DB) error {
	all, err := d.FindMigrations()
	if err != nil {
		return fmt.Errorf("find migrations: %w", err)
	}
	newest := ""
	for _, mg := range all {
		if mg.Applied && mg.Version > newest {
			newest = mg.Version
		}
	}
	for _, mg := range all {
		if !mg.Applied && mg.Version <= newest {
			return fmt.Errorf("%w: %s is older than the applied %s; give it a newer version", ErrOutOfOrder, mg.FileName, newest)
		}
	}
	return nil
}

func (m *Migrator) dropInvalidPrimaryIndex(ctx context.Context, d *dbmate.DB) error {
	all, err := d.FindMigrations()
	if err != nil {
		// A database without the migrations table has nothing to repair.
		return nil
	}
	for _, mg := range all {
		if mg.Version == primaryIndexVersion && mg.Applied {
			return nil
		}
	}

	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)

	var invalid bool
	err = conn.QueryRow(ctx, `
		SELECT NOT (i.indisvalid AND i.indisready)
		FROM pg_index AS i
		JOIN pg_class AS c ON c.oid = i.indexrelid
		WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace`,
		PrimaryIndex).Scan(&invalid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for an invalid %s: %w", PrimaryIndex, err)
	}
	if !invalid {
		return nil
	}

	fmt.Fprintf(m.log, "Dropping INVALID index %s left by an interrupted build\n", PrimaryIndex)
	if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS public."+PrimaryIndex); err != nil {
		return fmt.Errorf("drop invalid %s: %w", PrimaryIndex, err)
	}
	return nil
}
