package store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// The errors the store returns for outcomes a client can cause. The HTTP
// layer maps each to one status and code.
var (
	ErrPatientNotFound           = errors.New("patient not found")
	ErrProviderNotFound          = errors.New("provider not found")
	ErrAssignmentNotFound        = errors.New("assignment not found")
	ErrProviderAlreadyOnCareTeam = errors.New("provider already on the care team")
	ErrNPITaken                  = errors.New("npi taken")
	ErrMRNTaken                  = errors.New("mrn taken")
	ErrInvalidNPI                = errors.New("npi check digit is wrong")
	// ErrInvalidText means text the database cannot store (a NUL, or bytes
	// that are not UTF-8), which validation should have caught first.
	ErrInvalidText = errors.New("text the database cannot store")
	// ErrUnavailable means the database could not be reached or is shutting
	// down; the request may be retried.
	ErrUnavailable = errors.New("database unavailable")
)

// PrimaryConflictError says the patient already has an active PRIMARY. It
// is the same whether the store's check saw the existing PRIMARY or only
// uq_care_team_primary did, when two requests raced.
type PrimaryConflictError struct {
	// ExistingAssignmentID is the active PRIMARY assignment, or uuid.Nil in
	// the rare case that it ended before it could be read.
	ExistingAssignmentID uuid.UUID
}

func (e *PrimaryConflictError) Error() string {
	return fmt.Sprintf("patient already has an active PRIMARY assignment %s", e.ExistingAssignmentID)
}

// Names of the constraints whose violations the store translates. They are
// chosen in db/migrations; a test checks that each exists in the schema.
const (
	ConstraintPrimary              = "uq_care_team_primary"
	ConstraintPatientProvider      = "uq_care_team_patient_provider"
	ConstraintProvidersNPI         = "uq_providers_npi"
	ConstraintProvidersNPIValid    = "ck_providers_npi_valid"
	ConstraintPatientsMRN          = "uq_patients_mrn"
	ConstraintAssignmentPatientFK  = "fk_care_team_assignments_patient"
	ConstraintAssignmentProviderFK = "fk_care_team_assignments_provider"
)

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation          = "23505"
	codeForeignKeyViolation      = "23503"
	codeCheckViolation           = "23514"
	codeSerializationFailure     = "40001"
	codeDeadlockDetected         = "40P01"
	codeAdminShutdown            = "57P01"
	codeCrashShutdown            = "57P02"
	codeCannotConnectNow         = "57P03"
	codeTooManyConnections       = "53300"
	codeCharacterNotInRepertoire = "22021"
	codeUntranslatableCharacter  = "22P05"
	// careteam_begin_request raises these for a key it does not accept.
	codeUnauthenticated = "CT401"
	codeForbidden       = "CT403"
	codeQueryCanceled   = "57014"
)

// constraintErrors maps each translated constraint to the error it means.
var constraintErrors = map[string]error{
	ConstraintPatientProvider:      ErrProviderAlreadyOnCareTeam,
	ConstraintProvidersNPI:         ErrNPITaken,
	ConstraintProvidersNPIValid:    ErrInvalidNPI,
	ConstraintPatientsMRN:          ErrMRNTaken,
	ConstraintAssignmentPatientFK:  ErrPatientNotFound,
	ConstraintAssignmentProviderFK: ErrProviderNotFound,
}

// ViolatedConstraint returns the name of the constraint err violated, or ""
// when err is not an integrity constraint violation.
func ViolatedConstraint(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return ""
	}
	switch pgErr.Code {
	case codeUniqueViolation, codeForeignKeyViolation, codeCheckViolation:
		return pgErr.ConstraintName
	}
	return ""
}

// translate turns a database error into one of the store's errors where it
// means something a client did, wraps connection failures in
// ErrUnavailable, and otherwise returns err as it is. A PRIMARY conflict is
// not handled here: it needs a look-up, see Store.primaryConflict.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if mapped, ok := constraintErrors[ViolatedConstraint(err)]; ok {
		return fmt.Errorf("%w: %w", mapped, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUnauthenticated:
			return ErrUnauthenticated
		case codeForbidden:
			return ErrForbidden
		case codeCharacterNotInRepertoire, codeUntranslatableCharacter:
			return fmt.Errorf("%w: %w", ErrInvalidText, err)
		}
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// isUnavailable reports whether err means the database could not serve the
// request at all, or not in time, as opposed to rejecting it. A query the
// server cancelled, which statement_timeout does, is the server's form of
// the request deadline passing, and answers the same.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow, codeTooManyConnections,
			codeQueryCanceled:
			return true
		}
		return false
	}

	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case pgconn.SafeToRetry(err):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// isRetryable reports whether a transaction that failed with err may be run
// again from the start.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == codeSerializationFailure || pgErr.Code == codeDeadlockDetected
	}
	return false
}
