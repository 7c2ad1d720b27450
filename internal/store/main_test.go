package store_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
	"github.com/careteam/careteam/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// maxConns is the size of every test's pool: enough for the races to run
// fifty transactions at once, each on its own connection.
const maxConns = 60

// fixtures is what most tests start from: a store over a pool on a new,
// migrated database of the test's own.
type fixtures struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	store *store.Store
}

// setup returns the fixtures of a test.
func setup(t testing.TB) *fixtures {
	t.Helper()
	return setupWithConfig(t, nil)
}

// setupWithConfig is setup with a hook that may change the pool's
// configuration before the pool opens, for example to add a tracer.
func setupWithConfig(t testing.TB, configure func(*pgxpool.Config)) *fixtures {
	t.Helper()
	// The store acts for the default organization, where plain SQL of the
	// superuser's pool also writes.
	ctx := store.WithTenant(t.Context(), store.Tenant{
		OrganizationID: store.DefaultOrganizationID,
		RequestID:      t.Name(),
	})
	dsn := testdb.New(t)

	// The superuser's pool, for plain SQL that sees everything.
	suCfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse pool config: %v", err)
	}
	suCfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, suCfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)

	// The store's pool runs as the service's role, under row-level
	// security, as in production.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse pool config: %v", err)
	}
	cfg.MaxConns = maxConns
	store.ConfigurePool(cfg)
	if configure != nil {
		configure(cfg)
	}
	appPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(appPool.Close)

	return &fixtures{ctx: ctx, pool: pool, store: store.New(appPool)}
}

// npiSeq numbers the NPIs the tests make. Each test has a database of its
// own, so a counter shared by the whole binary keeps them unique enough.
var npiSeq atomic.Uint64

// validNPI returns a new NPI with a correct check digit.
func validNPI() string {
	body := fmt.Sprintf("%09d", 100000000+npiSeq.Add(1)%900000000)
	return body + string(luhnCheckDigit("80840"+body))
}

// wrongCheckDigit returns npi with its check digit changed, so that it is
// no longer valid.
func wrongCheckDigit(npi string) string {
	last := npi[len(npi)-1] - '0'
	return npi[:len(npi)-1] + string(rune('0'+(last+1)%10))
}

// luhnCheckDigit returns the Luhn check digit of payload, a string of
// digits: the one to append so that the whole passes the Luhn test.
func luhnCheckDigit(payload string) byte {
	sum := 0
	double := true
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// patient creates a patient without an MRN.
func (f *fixtures) patient(t *testing.T) store.Patient {
	t.Helper()
	p, err := f.store.CreatePatient(f.ctx, store.CreatePatientParams{
		GivenName:  "Test",
		FamilyName: "Patient",
	})
	if err != nil {
		t.Fatalf("create patient: %v", err)
	}
	return p
}

// provider creates a provider with a new valid NPI.
func (f *fixtures) provider(t *testing.T) store.Provider {
	t.Helper()
	p, err := f.store.CreateProvider(f.ctx, store.CreateProviderParams{
		NPI:        validNPI(),
		GivenName:  "Test",
		FamilyName: "Provider",
	})
	if err != nil {
		t.Fatalf("create provider: %v", err)
	}
	return p
}

// providers creates n providers.
func (f *fixtures) providers(t *testing.T, n int) []store.Provider {
	t.Helper()
	out := make([]store.Provider, n)
	for i := range out {
		out[i] = f.provider(t)
	}
	return out
}

// addMember adds a member and fails the test when the store refuses.
func (f *fixtures) addMember(t *testing.T, patientID, providerID uuid.UUID, role store.Role) store.Assignment {
	t.Helper()
	a, err := f.store.AddMember(f.ctx, patientID, providerID, role)
	if err != nil {
		t.Fatalf("add %s member: %v", role, err)
	}
	return a
}

// assignmentCount returns how many assignments, active or ended, the patient
// has in the table.
func (f *fixtures) assignmentCount(t *testing.T, patientID uuid.UUID) int {
	t.Helper()
	var n int
	err := f.pool.QueryRow(f.ctx,
		"SELECT count(*) FROM care_team_assignments WHERE patient_id = $1", patientID).Scan(&n)
	if err != nil {
		t.Fatalf("count assignments: %v", err)
	}
	return n
}

// activePrimaries returns the ids of the patient's active PRIMARY
// assignments, read straight from the table.
func (f *fixtures) activePrimaries(t *testing.T, patientID uuid.UUID) []uuid.UUID {
	t.Helper()
	rows, err := f.pool.Query(f.ctx, `
		SELECT id FROM care_team_assignments
		WHERE patient_id = $1 AND role = 'PRIMARY' AND removed_at IS NULL`, patientID)
	if err != nil {
		t.Fatalf("list active primaries: %v", err)
	}
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("scan active primary: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list active primaries: %v", err)
	}
	return ids
}

// snapshot returns a digest of every row of the three tables, so that a test
// can tell whether anything at all was written between two calls.
func (f *fixtures) snapshot(t *testing.T) string {
	t.Helper()
	var digest string
	err := f.pool.QueryRow(f.ctx, `
		SELECT concat_ws('/',
			(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x.id), '')) FROM patients x),
			(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x.id), '')) FROM providers x),
			(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x.id), ''))
			   FROM care_team_assignments x))`).Scan(&digest)
	if err != nil {
		t.Fatalf("snapshot tables: %v", err)
	}
	return digest
}

// warm opens n connections in the pool ahead of a race, so that the racing
// goroutines do not spend their head start dialling.
func (f *fixtures) warm(t *testing.T, n int) {
	t.Helper()
	conns := make([]*pgxpool.Conn, 0, n)
	for range n {
		c, err := f.pool.Acquire(f.ctx)
		if err != nil {
			t.Fatalf("warm pool: %v", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// TestValidNPIHelper checks the test's own NPI helper against the example in
// the CMS documentation and against the schema's npi_is_valid.
func TestValidNPIHelper(t *testing.T) {
	t.Parallel()
	f := setup(t)

	if got := luhnCheckDigit("80840" + "123456789"); got != '3' {
		t.Fatalf("check digit of 123456789 = %c, want 3 (NPI 1234567893)", got)
	}

	for range 20 {
		npi := validNPI()
		var valid, wrong bool
		err := f.pool.QueryRow(f.ctx, "SELECT npi_is_valid($1), npi_is_valid($2)",
			npi, wrongCheckDigit(npi)).Scan(&valid, &wrong)
		if err != nil {
			t.Fatalf("npi_is_valid: %v", err)
		}
		if !valid || wrong {
			t.Fatalf("npi_is_valid(%s) = %v, npi_is_valid(%s) = %v; want true, false",
				npi, valid, wrongCheckDigit(npi), wrong)
		}
	}
}
