package store_test

import (
	"cmp"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careteam/careteam/internal/dbgen"
	"github.com/careteam/careteam/internal/store"
)

// insertAssignmentSQL inserts an assignment with none of the store's checks,
// as a script or a careless import would.
const insertAssignmentSQL = `
	INSERT INTO care_team_assignments (patient_id, provider_id, role)
	VALUES ($1, $2, $3)
	RETURNING id`

// TestPrimaryIndexRejectsSecondPrimaryFromPlainSQL bypasses the store and
// expects uq_care_team_primary alone to refuse a second active PRIMARY.
func TestPrimaryIndexRejectsSecondPrimaryFromPlainSQL(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, first, second := f.patient(t), f.provider(t), f.provider(t)

	var firstID uuid.UUID
	err := f.pool.QueryRow(f.ctx, insertAssignmentSQL, patient.ID, first.ID, "PRIMARY").Scan(&firstID)
	if err != nil {
		t.Fatalf("insert first PRIMARY: %v", err)
	}

	_, err = f.pool.Exec(f.ctx, insertAssignmentSQL, patient.ID, second.ID, "PRIMARY")
	checkViolation(t, err, "23505", store.ConstraintPrimary)

	if got := f.activePrimaries(t, patient.ID); len(got) != 1 || got[0] != firstID {
		t.Fatalf("active primaries = %v, want only %s", got, firstID)
	}
}

// TestPrimaryIndexCatchesWhatTheCheckMisses runs the store's own insert in
// two transactions that both pass its NOT EXISTS check, the way two racing
// requests do, and expects the index to refuse the second.
func TestPrimaryIndexCatchesWhatTheCheckMisses(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, first, second := f.patient(t), f.provider(t), f.provider(t)

	winner, err := f.pool.Begin(f.ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer winner.Rollback(f.ctx)
	won, err := dbgen.New(winner).CreateAssignment(f.ctx, dbgen.CreateAssignmentParams{
		PatientID: patient.ID, ProviderID: first.ID, Role: store.RolePrimary,
	})
	if err != nil || won.ID == nil {
		t.Fatalf("first insert: %+v, %v", won, err)
	}

	// The second transaction cannot see the first's uncommitted row, so its
	// check passes and it waits on the index until the first commits.
	loserErr := make(chan error, 1)
	go func() {
		_, err := dbgen.New(f.pool).CreateAssignment(f.ctx, dbgen.CreateAssignmentParams{
			PatientID: patient.ID, ProviderID: second.ID, Role: store.RolePrimary,
		})
		loserErr <- err
	}()
	f.waitForLockWait(t)

	if err := winner.Commit(f.ctx); err != nil {
		t.Fatalf("commit first: %v", err)
	}
	checkViolation(t, <-loserErr, "23505", store.ConstraintPrimary)

	if got := f.activePrimaries(t, patient.ID); len(got) != 1 || got[0] != *won.ID {
		t.Fatalf("active primaries = %v, want only %s", got, *won.ID)
	}
}

// waitForLockWait returns once some other session of the test's database
// waits on a lock, or fails the test after a while.
func (f *fixtures) waitForLockWait(t *testing.T) {
	t.Helper()
	f.waitForLockWaits(t, 1)
}

// waitForLockWaits returns once at least n other sessions of the test's
// database wait on a lock, or fails the test after a while.
func (f *fixtures) waitForLockWaits(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var waiting bool
		err := f.pool.QueryRow(f.ctx, `
			SELECT count(*) >= $1
			FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			  AND wait_event_type = 'Lock'`, n).Scan(&waiting)
		if err != nil {
			t.Fatalf("look for a lock wait: %v", err)
		}
		if waiting {
			return
		}
		select {
		case <-f.ctx.Done():
			t.Fatal("cancelled while waiting for a lock wait")
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("no session began to wait on a lock")
}

// checkViolation fails the test unless err is a PostgreSQL error with code
// on constraint, and store.ViolatedConstraint names the constraint.
func checkViolation(t *testing.T, err error, code, constraint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("err = %v, want a PostgreSQL error %s on %s", err, code, constraint)
	}
	if pgErr.Code != code || pgErr.ConstraintName != constraint {
		t.Fatalf("err = %s on %q, want %s on %q", pgErr.Code, pgErr.ConstraintName, code, constraint)
	}
	if got := store.ViolatedConstraint(err); got != constraint {
		t.Fatalf("ViolatedConstraint = %q, want %q", got, constraint)
	}
}

// TestStoreTranslatesEachConstraint provokes every translated constraint
// through the store and expects the store's error, with the driver error
// still in the chain.
func TestStoreTranslatesEachConstraint(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		constraint string
		want       error
		provoke    func(t *testing.T, f *fixtures) error
	}{
		{
			constraint: store.ConstraintProvidersNPI,
			want:       store.ErrNPITaken,
			provoke: func(t *testing.T, f *fixtures) error {
				taken := f.provider(t)
				_, err := f.store.CreateProvider(f.ctx, store.CreateProviderParams{
					NPI: taken.NPI, GivenName: "Other", FamilyName: "Provider",
				})
				return err
			},
		},
		{
			constraint: store.ConstraintProvidersNPIValid,
			want:       store.ErrInvalidNPI,
			provoke: func(t *testing.T, f *fixtures) error {
				_, err := f.store.CreateProvider(f.ctx, store.CreateProviderParams{
					NPI: wrongCheckDigit(validNPI()), GivenName: "Bad", FamilyName: "Digit",
				})
				return err
			},
		},
		{
			constraint: store.ConstraintPatientsMRN,
			want:       store.ErrMRNTaken,
			provoke: func(t *testing.T, f *fixtures) error {
				params := store.CreatePatientParams{
					MRN: ptr("MRN-0001"), GivenName: "Test", FamilyName: "Patient",
				}
				if _, err := f.store.CreatePatient(f.ctx, params); err != nil {
					t.Fatalf("first patient: %v", err)
				}
				_, err := f.store.CreatePatient(f.ctx, params)
				return err
			},
		},
		{
			// AddMember locks the patient's row before it inserts, so a
			// missing patient is found there and the foreign key, a safety
			// net, is never reached: no constraint in the chain.
			constraint: "",
			want:       store.ErrPatientNotFound,
			provoke: func(t *testing.T, f *fixtures) error {
				_, err := f.store.AddMember(f.ctx, uuid.New(), f.provider(t).ID, store.RolePrimary)
				return err
			},
		},
		{
			constraint: store.ConstraintAssignmentProviderFK,
			want:       store.ErrProviderNotFound,
			provoke: func(t *testing.T, f *fixtures) error {
				_, err := f.store.AddMember(f.ctx, f.patient(t).ID, uuid.New(), store.RoleSpecialist)
				return err
			},
		},
		{
			constraint: store.ConstraintPatientProvider,
			want:       store.ErrProviderAlreadyOnCareTeam,
			provoke: func(t *testing.T, f *fixtures) error {
				patient, provider := f.patient(t), f.provider(t)
				f.addMember(t, patient.ID, provider.ID, store.RoleSpecialist)
				_, err := f.store.AddMember(f.ctx, patient.ID, provider.ID, store.RoleConsultant)
				return err
			},
		},
	} {
		t.Run(cmp.Or(tc.constraint, "missing patient"), func(t *testing.T) {
			t.Parallel()
			f := setup(t)

			err := tc.provoke(t, f)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got := store.ViolatedConstraint(err); got != tc.constraint {
				t.Fatalf("ViolatedConstraint = %q, want %q", got, tc.constraint)
			}
		})
	}
}

// TestViolatedConstraintIgnoresOtherErrors expects no constraint name for
// errors that are not integrity violations, even when PostgreSQL gives one.
func TestViolatedConstraintIgnoresOtherErrors(t *testing.T) {
	t.Parallel()

	for _, err := range []error{
		nil,
		errors.New("plain"),
		&pgconn.PgError{Code: "23001", ConstraintName: store.ConstraintPrimary},
		&pgconn.PgError{Code: "40001"},
	} {
		if got := store.ViolatedConstraint(err); got != "" {
			t.Errorf("ViolatedConstraint(%v) = %q, want \"\"", err, got)
		}
	}
}

// TestConstraintConstantsExistInSchema reads every Constraint* constant of
// errors.go and expects a constraint or a valid index of that name in the
// migrated schema, so that a renamed constraint cannot silently stop being
// translated.
func TestConstraintConstantsExistInSchema(t *testing.T) {
	t.Parallel()
	f := setup(t)

	names := constraintConstants(t)
	for _, known := range []string{
		store.ConstraintPrimary, store.ConstraintPatientProvider, store.ConstraintProvidersNPI,
		store.ConstraintProvidersNPIValid, store.ConstraintPatientsMRN,
		store.ConstraintAssignmentPatientFK, store.ConstraintAssignmentProviderFK,
	} {
		if !names[known] {
			t.Fatalf("errors.go parsed without %q: the parser below is wrong", known)
		}
	}

	for name := range names {
		var found bool
		err := f.pool.QueryRow(f.ctx, `
			SELECT EXISTS (SELECT FROM pg_constraint WHERE conname = $1)
			    OR EXISTS (
			        SELECT FROM pg_class AS c JOIN pg_index AS i ON i.indexrelid = c.oid
			        WHERE c.relname = $1 AND c.relkind = 'i' AND i.indisvalid AND i.indisready)`,
			name).Scan(&found)
		if err != nil {
			t.Fatalf("look up %s: %v", name, err)
		}
		if !found {
			t.Errorf("constraint %q of errors.go is not in the migrated schema", name)
		}
	}

	// The clinical-safety rule depends on the index's exact shape: unique,
	// on patient_id alone, and only over active PRIMARY rows.
	var def string
	err := f.pool.QueryRow(f.ctx, "SELECT pg_get_indexdef($1::regclass)", store.ConstraintPrimary).Scan(&def)
	if err != nil {
		t.Fatalf("index definition: %v", err)
	}
	for _, part := range []string{
		"CREATE UNIQUE INDEX", "(patient_id)", "role = 'PRIMARY'", "removed_at IS NULL",
	} {
		if !strings.Contains(def, part) {
			t.Errorf("%s is %q, want it to contain %q", store.ConstraintPrimary, def, part)
		}
	}
}

// constraintConstants returns the values of the string constants in
// errors.go whose names start with "Constraint".
func constraintConstants(t *testing.T) map[string]bool {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatalf("parse errors.go: %v", err)
	}

	out := map[string]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "Constraint") || i >= len(spec.Values) {
				continue
			}
			lit, ok := spec.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			value, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatalf("constant %s: %v", name.Name, err)
			}
			out[value] = true
		}
		return true
	})
	return out
}

// TestRefusedAdditionWritesNothing checks that an addition the friendly
// check refuses neither locks the patient's row nor writes anything: its
// transaction never gets an id, so it commits without waiting for the WAL,
// which is what keeps a burst of losing PRIMARY requests cheap. The same
// statement names the PRIMARY that refused it.
func TestRefusedAdditionWritesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient, first, second := f.patient(t), f.provider(t), f.provider(t)

	won, err := dbgen.New(f.pool).CreateAssignment(f.ctx, dbgen.CreateAssignmentParams{
		PatientID: patient.ID, ProviderID: first.ID, Role: store.RolePrimary,
	})
	if err != nil || won.ID == nil {
		t.Fatalf("first PRIMARY: %+v, %v", won, err)
	}

	tx, err := f.pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	lost, err := dbgen.New(tx).CreateAssignment(f.ctx, dbgen.CreateAssignmentParams{
		PatientID: patient.ID, ProviderID: second.ID, Role: store.RolePrimary,
	})
	if err != nil {
		t.Fatal(err)
	}
	if lost.ID != nil || !lost.PatientExists || lost.ExistingPrimaryID != *won.ID {
		t.Fatalf("second PRIMARY: got %+v, want nothing inserted, naming %s", lost, *won.ID)
	}
	var xid *string
	if err := tx.QueryRow(f.ctx, "SELECT pg_current_xact_id_if_assigned()::text").Scan(&xid); err != nil {
		t.Fatal(err)
	}
	if xid != nil {
		t.Fatalf("the refused addition's transaction got id %s: it locked or wrote something", *xid)
	}

	// A SPECIALIST on the same patient is added, in the same statement.
	added, err := dbgen.New(tx).CreateAssignment(f.ctx, dbgen.CreateAssignmentParams{
		PatientID: patient.ID, ProviderID: second.ID, Role: store.RoleSpecialist,
	})
	if err != nil || added.ID == nil || added.ExistingPrimaryID != uuid.Nil {
		t.Fatalf("SPECIALIST: got %+v, %v", added, err)
	}

	// A missing patient: nothing inserted, and the row says so.
	missing, err := dbgen.New(f.pool).CreateAssignment(f.ctx, dbgen.CreateAssignmentParams{
		PatientID: uuid.New(), ProviderID: second.ID, Role: store.RolePrimary,
	})
	if err != nil || missing.ID != nil || missing.PatientExists {
		t.Fatalf("missing patient: got %+v, %v", missing, err)
	}
}
