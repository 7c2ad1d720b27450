package store_test

// Benchmarks of the store's hot paths against a real PostgreSQL (testdb):
//
//	go test -run '^$' -bench . -count 10 ./internal/store > new.txt
//	benchstat old.txt new.txt
//
// Each benchmark gets a database of its own; the rows it needs are seeded
// with SQL before the timer starts.

import (
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
)

// benchParallelism times GOMAXPROCS is the number of goroutines of the
// parallel benchmarks: 32 on two cores, the client count of make bench.
const benchParallelism = 16

// benchSetup is setup for a benchmark: the same fixtures over a new,
// migrated database, the store acting for the default organization under
// row-level security.
func benchSetup(b *testing.B) *fixtures {
	b.Helper()
	return setup(b)
}

// seedPatients inserts n patients in one statement and returns their ids.
func (f *fixtures) seedPatients(b *testing.B, n int) []uuid.UUID {
	b.Helper()
	rows, err := f.pool.Query(f.ctx, `
		INSERT INTO patients (given_name, family_name)
		SELECT 'Bench', 'Patient ' || i FROM generate_series(1, $1::int) AS i
		RETURNING id`, n)
	if err != nil {
		b.Fatalf("seed patients: %v", err)
	}
	return collectIDs(b, rows.Next, rows.Scan, rows.Err, rows.Close)
}

// seedProviders inserts n providers with valid NPIs and returns their ids.
func (f *fixtures) seedProviders(b *testing.B, n int) []uuid.UUID {
	b.Helper()
	npis := make([]string, n)
	for i := range npis {
		npis[i] = validNPI()
	}
	rows, err := f.pool.Query(f.ctx, `
		INSERT INTO providers (npi, given_name, family_name)
		SELECT npi, 'Bench', 'Provider' FROM unnest($1::text[]) AS npi
		RETURNING id`, npis)
	if err != nil {
		b.Fatalf("seed providers: %v", err)
	}
	return collectIDs(b, rows.Next, rows.Scan, rows.Err, rows.Close)
}

func collectIDs(b *testing.B, next func() bool, scan func(...any) error, errf func() error, closef func()) []uuid.UUID {
	b.Helper()
	defer closef()
	var ids []uuid.UUID
	for next() {
		var id uuid.UUID
		if err := scan(&id); err != nil {
			b.Fatalf("scan id: %v", err)
		}
		ids = append(ids, id)
	}
	if err := errf(); err != nil {
		b.Fatalf("seed: %v", err)
	}
	return ids
}

// seedTeams gives every patient a care team: providers[0] as PRIMARY
// rotated per patient, then members-1 SPECIALISTs.
func (f *fixtures) seedTeams(b *testing.B, patients, providers []uuid.UUID, members int) {
	b.Helper()
	for i, p := range patients {
		for k := range members {
			role := store.RoleSpecialist
			if k == 0 {
				role = store.RolePrimary
			}
			if _, err := f.store.AddMember(f.ctx, p, providers[(i+k)%len(providers)], role); err != nil {
				b.Fatalf("seed team: %v", err)
			}
		}
	}
}

// BenchmarkAddMember adds a SPECIALIST for a new (patient, provider) pair
// per iteration: the transaction of POST /v1/patients/{id}/care-team.
func BenchmarkAddMember(b *testing.B) {
	f := benchSetup(b)
	providers := f.seedProviders(b, 200)
	patients := f.seedPatients(b, b.N/len(providers)+1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_, err := f.store.AddMember(f.ctx, patients[i/len(providers)], providers[i%len(providers)], store.RoleSpecialist)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddMemberParallel is BenchmarkAddMember from 32 goroutines (on
// two cores), as the service runs it under make bench's create scenario.
func BenchmarkAddMemberParallel(b *testing.B) {
	f := benchSetup(b)
	providers := f.seedProviders(b, 200)
	patients := f.seedPatients(b, b.N/len(providers)+1)
	f.warmB(b, benchParallelism*2)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) - 1)
			_, err := f.store.AddMember(f.ctx, patients[i/len(providers)], providers[i%len(providers)], store.RoleConsultant)
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkActiveCareTeam reads care teams of four active members: the
// query of GET /v1/patients/{id}/care-team.
func BenchmarkActiveCareTeam(b *testing.B) {
	f := benchSetup(b)
	providers := f.seedProviders(b, 50)
	patients := f.seedPatients(b, 100)
	f.seedTeams(b, patients, providers, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		team, err := f.store.ActiveCareTeam(f.ctx, patients[i%len(patients)])
		if err != nil {
			b.Fatal(err)
		}
		if len(team) != 4 {
			b.Fatalf("team of %d, want 4", len(team))
		}
	}
}

// BenchmarkActiveCareTeamParallel is BenchmarkActiveCareTeam from 32
// goroutines.
func BenchmarkActiveCareTeamParallel(b *testing.B) {
	f := benchSetup(b)
	providers := f.seedProviders(b, 50)
	patients := f.seedPatients(b, 100)
	f.seedTeams(b, patients, providers, 4)
	f.warmB(b, benchParallelism*2)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			if _, err := f.store.ActiveCareTeam(f.ctx, patients[i%len(patients)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReassignPrimary replaces a PRIMARY per iteration, round robin
// over 100 patients, each time with another provider: the transaction of
// PUT /v1/patients/{id}/care-team/primary (lock, end, insert).
func BenchmarkReassignPrimary(b *testing.B) {
	f := benchSetup(b)
	providers := f.seedProviders(b, 50)
	patients := f.seedPatients(b, 100)
	// Each patient starts with the last provider as PRIMARY; round r gives
	// it providers[r % 49], never the one it has.
	for _, p := range patients {
		f.addMemberB(b, p, providers[len(providers)-1], store.RolePrimary)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		round := i / len(patients)
		r, err := f.store.ReassignPrimary(f.ctx, patients[i%len(patients)], providers[round%(len(providers)-1)], nil)
		if err != nil {
			b.Fatal(err)
		}
		if !r.Changed {
			b.Fatal("reassignment changed nothing")
		}
	}
}

func (f *fixtures) addMemberB(b *testing.B, patient, provider uuid.UUID, role store.Role) {
	b.Helper()
	if _, err := f.store.AddMember(f.ctx, patient, provider, role); err != nil {
		b.Fatalf("add %s member: %v", role, err)
	}
}

// warmB opens n connections ahead of a parallel benchmark, so that the
// timed part does not dial.
func (f *fixtures) warmB(b *testing.B, n int) {
	b.Helper()
	conns := make([]*pgxpool.Conn, 0, n)
	for range n {
		c, err := f.pool.Acquire(f.ctx)
		if err != nil {
			b.Fatalf("warm pool: %v", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}
