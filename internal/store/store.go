// Package store is careteam's data layer: the rules of a care team written
// over the queries that sqlc generates into internal/dbgen. It hands the
// HTTP layer its own types and errors, never driver ones.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/dbgen"
)

// Role is a member's role on a care team.
type Role = dbgen.CareTeamRole

// The roles.
const (
	RolePrimary    = dbgen.CareTeamRolePRIMARY
	RoleSpecialist = dbgen.CareTeamRoleSPECIALIST
	RoleConsultant = dbgen.CareTeamRoleCONSULTANT
)

// DefaultReassignReason is the removal reason of a PRIMARY that a
// reassignment replaces when the request gives none.
const DefaultReassignReason = "reassigned"

// maxAttempts bounds how often a transaction that met a serialization
// failure or a deadlock is run again.
const maxAttempts = 3

// Patient is a person whose care team is kept.
type Patient struct {
	ID         uuid.UUID
	MRN        *string
	GivenName  string
	FamilyName string
	BirthDate  *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Provider is a clinician who can be on care teams.
type Provider struct {
	ID         uuid.UUID
	NPI        string
	GivenName  string
	FamilyName string
	Specialty  *string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Assignment is one provider's membership of one patient's care team.
type Assignment struct {
	ID            uuid.UUID
	PatientID     uuid.UUID
	ProviderID    uuid.UUID
	Role          Role
	AssignedAt    time.Time
	RemovedAt     *time.Time
	RemovalReason *string
}

// Store runs careteam's reads and writes on a pool. Every write is one
// transaction.
type Store struct {
	pool *pgxpool.Pool
	q    *dbgen.Queries
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, q: dbgen.New(pool)}
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return translate(err)
	}
	return nil
}

// inTx runs fn in a transaction scoped to the context's tenant, commits
// when it returns nil and rolls back otherwise, also when fn panics. Reads
// run in one too: row-level security needs the tenant's settings, which
// live as long as a transaction. A serialization failure or deadlock runs
// fn again from the start, at most maxAttempts times in all.
func (s *Store) inTx(ctx context.Context, fn func(q *dbgen.Queries) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			q := s.q.WithTx(tx)
			if err := setTenant(ctx, q); err != nil {
				return err
			}
			tenantSet(ctx)
			return fn(q)
		})
		if !isRetryable(err) {
			return err
		}
	}
	return fmt.Errorf("%w: gave up after %d attempts: %w", ErrUnavailable, maxAttempts, err)
}

// CreatePatientParams are the fields of a new patient.
type CreatePatientParams struct {
	MRN        *string
	GivenName  string
	FamilyName string
	BirthDate  *time.Time
}

// CreatePatient adds a patient.
func (s *Store) CreatePatient(ctx context.Context, p CreatePatientParams) (Patient, error) {
	var row dbgen.Patient
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		row, err = q.CreatePatient(ctx, dbgen.CreatePatientParams{
			Mrn:        p.MRN,
			GivenName:  p.GivenName,
			FamilyName: p.FamilyName,
			BirthDate:  p.BirthDate,
		})
		return err
	})
	if err != nil {
		return Patient{}, fmt.Errorf("insert patient: %w", translate(err))
	}
	return patientFromRow(row), nil
}

// GetPatient returns the patient with id.
func (s *Store) GetPatient(ctx context.Context, id uuid.UUID) (Patient, error) {
	var row dbgen.Patient
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		row, err = q.GetPatient(ctx, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Patient{}, ErrPatientNotFound
	}
	if err != nil {
		return Patient{}, fmt.Errorf("get patient: %w", translate(err))
	}
	return patientFromRow(row), nil
}

// CreateProviderParams are the fields of a new provider.
type CreateProviderParams struct {
	NPI        string
	GivenName  string
	FamilyName string
	Specialty  *string
}

// CreateProvider adds a provider.
func (s *Store) CreateProvider(ctx context.Context, p CreateProviderParams) (Provider, error) {
	var row dbgen.Provider
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		row, err = q.CreateProvider(ctx, dbgen.CreateProviderParams{
			Npi:        p.NPI,
			GivenName:  p.GivenName,
			FamilyName: p.FamilyName,
			Specialty:  p.Specialty,
		})
		return err
	})
	if err != nil {
		return Provider{}, fmt.Errorf("insert provider: %w", translate(err))
	}
	return providerFromRow(row), nil
}

// GetProvider returns the provider with id.
func (s *Store) GetProvider(ctx context.Context, id uuid.UUID) (Provider, error) {
	var row dbgen.Provider
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		row, err = q.GetProvider(ctx, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Provider{}, ErrProviderNotFound
	}
	if err != nil {
		return Provider{}, fmt.Errorf("get provider: %w", translate(err))
	}
	return providerFromRow(row), nil
}

// ProvidersByNPI returns the providers with npi: none or one.
func (s *Store) ProvidersByNPI(ctx context.Context, npi string) ([]Provider, error) {
	var rows []dbgen.Provider
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		rows, err = q.ListProvidersByNPI(ctx, npi)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list providers by npi: %w", translate(err))
	}
	out := make([]Provider, 0, len(rows))
	for _, r := range rows {
		out = append(out, providerFromRow(r))
	}
	return out, nil
}

// ActiveCareTeam returns the patient's active assignments, PRIMARY first,
// then by assigned_at.
func (s *Store) ActiveCareTeam(ctx context.Context, patientID uuid.UUID) ([]Assignment, error) {
	var rows []dbgen.ListActiveCareTeamRow
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		rows, err = q.ListActiveCareTeam(ctx, patientID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list care team: %w", translate(err))
	}
	return teamFromRows(rows)
}

// CareTeamHistory returns every assignment the patient ever had, newest
// first.
func (s *Store) CareTeamHistory(ctx context.Context, patientID uuid.UUID) ([]Assignment, error) {
	var rows []dbgen.ListCareTeamHistoryRow
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		rows, err = q.ListCareTeamHistory(ctx, patientID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list care team history: %w", translate(err))
	}
	converted := make([]dbgen.ListActiveCareTeamRow, len(rows))
	for i, r := range rows {
		converted[i] = dbgen.ListActiveCareTeamRow(r)
	}
	return teamFromRows(converted)
}

// teamFromRows turns the rows of a care-team listing into assignments. No
// row at all means the patient does not exist; a row without an assignment
// means a patient with an empty team.
func teamFromRows(rows []dbgen.ListActiveCareTeamRow) ([]Assignment, error) {
	if len(rows) == 0 {
		return nil, ErrPatientNotFound
	}
	out := make([]Assignment, 0, len(rows))
	for _, r := range rows {
		if r.AssignmentID == nil {
			continue
		}
		out = append(out, Assignment{
			ID:            *r.AssignmentID,
			PatientID:     r.PatientID,
			ProviderID:    *r.ProviderID,
			Role:          *r.Role,
			AssignedAt:    *r.AssignedAt,
			RemovedAt:     r.RemovedAt,
			RemovalReason: r.RemovalReason,
		})
	}
	return out, nil
}

// AddMember adds a provider to a patient's care team. It never replaces
// anyone: a second PRIMARY is a *PrimaryConflictError, the same provider
// twice is ErrProviderAlreadyOnCareTeam.
func (s *Store) AddMember(ctx context.Context, patientID, providerID uuid.UUID, role Role) (Assignment, error) {
	var row dbgen.CreateAssignmentRow
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		row, err = q.CreateAssignment(ctx, dbgen.CreateAssignmentParams{
			PatientID:  patientID,
			ProviderID: providerID,
			Role:       role,
		})
		return err
	})

	// A violation of uq_care_team_primary is a racing request that passed
	// the friendly check: the statement failed, so a second one reads the
	// PRIMARY that won. It answers like the check.
	if ViolatedConstraint(err) == ConstraintPrimary {
		return Assignment{}, s.addConflict(ctx, patientID)
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("insert assignment: %w", translate(err))
	}
	if row.ID == nil {
		// Nothing inserted: the statement said why.
		switch {
		case !row.PatientExists:
			return Assignment{}, ErrPatientNotFound
		case row.ExistingPrimaryID != uuid.Nil:
			return Assignment{}, &PrimaryConflictError{ExistingAssignmentID: row.ExistingPrimaryID}
		}
		return Assignment{}, errors.New("insert assignment: no row inserted, and neither a missing patient nor an active PRIMARY")
	}
	return Assignment{
		ID:            *row.ID,
		PatientID:     deref(row.PatientID),
		ProviderID:    deref(row.ProviderID),
		Role:          deref(row.Role),
		AssignedAt:    deref(row.AssignedAt),
		RemovedAt:     row.RemovedAt,
		RemovalReason: row.RemovalReason,
	}, nil
}

// deref is *p, or the zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// addConflict explains an addition that inserted nothing: a missing
// patient, or the active PRIMARY it names. It reads after the failed
// statement, so it sees the PRIMARY that won a race.
func (s *Store) addConflict(ctx context.Context, patientID uuid.UUID) error {
	var why dbgen.DescribeAddConflictRow
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		why, err = q.DescribeAddConflict(ctx, patientID)
		return err
	})
	if err != nil {
		return fmt.Errorf("read the existing primary: %w", translate(err))
	}
	if !why.PatientExists {
		return ErrPatientNotFound
	}
	return &PrimaryConflictError{ExistingAssignmentID: why.PrimaryID}
}

// EndMember ends an active assignment of the patient's care team. reason may
// be nil. An assignment that is already ended, or is not on this patient's
// team, is ErrAssignmentNotFound.
func (s *Store) EndMember(ctx context.Context, patientID, assignmentID uuid.UUID, reason *string) (Assignment, error) {
	var ended dbgen.CareTeamAssignment
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		ended, err = q.EndAssignment(ctx, dbgen.EndAssignmentParams{
			Reason:    reason,
			ID:        assignmentID,
			PatientID: patientID,
		})
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		exists, err := s.patientExists(ctx, patientID)
		if err != nil {
			return Assignment{}, fmt.Errorf("look for patient: %w", translate(err))
		}
		if !exists {
			return Assignment{}, ErrPatientNotFound
		}
		return Assignment{}, ErrAssignmentNotFound
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("end assignment: %w", translate(err))
	}
	return assignmentFromRow(ended), nil
}

// Reassignment is the outcome of ReassignPrimary.
type Reassignment struct {
	// Assignment is the patient's PRIMARY after the reassignment.
	Assignment Assignment
	// Previous is the PRIMARY it replaced, ended; nil when there was none or
	// the provider already was the PRIMARY.
	Previous *Assignment
	// Promoted is the provider's SPECIALIST or CONSULTANT assignment that
	// the reassignment ended, or nil.
	Promoted *Assignment
	// Changed is false when the provider already was the PRIMARY and
	// nothing was written.
	Changed bool
}

// ReassignPrimary makes providerID the patient's PRIMARY in one transaction.
// It locks the patient's row, then the current PRIMARY and the provider's
// own active assignment, in that order, so that reassignments of one
// patient run one after another without deadlocks. It ends the old PRIMARY
// with reason (DefaultReassignReason when nil) and a SPECIALIST or
// CONSULTANT assignment of the provider as promoted, then starts the new
// PRIMARY. When the provider already is the PRIMARY nothing changes.
func (s *Store) ReassignPrimary(ctx context.Context, patientID, providerID uuid.UUID, reason *string) (Reassignment, error) {
	primaryReason := DefaultReassignReason
	if reason != nil {
		primaryReason = *reason
	}

	var rows []dbgen.CareteamReassignmentRow
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		rows, err = q.ReassignPrimary(ctx, dbgen.ReassignPrimaryParams{
			PatientID:  patientID,
			ProviderID: providerID,
			Reason:     primaryReason,
		})
		return err
	})
	if err != nil {
		return Reassignment{}, fmt.Errorf("reassign primary: %w", translate(err))
	}

	var out Reassignment
	found := false
	for _, r := range rows {
		a := assignmentFromRow(dbgen.CareTeamAssignment{
			ID: r.ID, PatientID: r.PatientID, ProviderID: r.ProviderID, Role: r.Role,
			AssignedAt: r.AssignedAt, RemovedAt: r.RemovedAt, RemovalReason: r.RemovalReason,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, OrganizationID: r.OrganizationID,
		})
		switch deref(r.Outcome) {
		case "current":
			out.Assignment, out.Changed, found = a, true, true
		case "unchanged":
			out.Assignment, found = a, true
		case "previous":
			out.Previous = &a
		case "promoted":
			out.Promoted = &a
		default:
			return Reassignment{}, fmt.Errorf("reassign primary: unknown outcome %q", deref(r.Outcome))
		}
	}
	if !found {
		return Reassignment{}, errors.New("reassign primary: no PRIMARY came back")
	}
	return out, nil
}

// patientExists reports whether the tenant has the patient.
func (s *Store) patientExists(ctx context.Context, id uuid.UUID) (bool, error) {
	var exists bool
	err := s.single(ctx, func(q *dbgen.Queries) error {
		var err error
		exists, err = q.PatientExists(ctx, id)
		return err
	})
	return exists, err
}

func patientFromRow(r dbgen.Patient) Patient {
	return Patient{
		ID:         r.ID,
		MRN:        r.Mrn,
		GivenName:  r.GivenName,
		FamilyName: r.FamilyName,
		BirthDate:  r.BirthDate,
		CreatedAt:  r.CreatedAt,
		UpdatedAt:  r.UpdatedAt,
	}
}

func providerFromRow(r dbgen.Provider) Provider {
	return Provider{
		ID:         r.ID,
		NPI:        r.Npi,
		GivenName:  r.GivenName,
		FamilyName: r.FamilyName,
		Specialty:  r.Specialty,
		CreatedAt:  r.CreatedAt,
		UpdatedAt:  r.UpdatedAt,
	}
}

func assignmentFromRow(r dbgen.CareTeamAssignment) Assignment {
	return Assignment{
		ID:            r.ID,
		PatientID:     r.PatientID,
		ProviderID:    r.ProviderID,
		Role:          r.Role,
		AssignedAt:    r.AssignedAt,
		RemovedAt:     r.RemovedAt,
		RemovalReason: r.RemovalReason,
	}
}
