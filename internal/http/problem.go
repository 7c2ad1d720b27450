package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/careteam/careteam/internal/store"
)

// Problem is an error answer, as RFC 9457 describes it, with careteam's
// stable code.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Code   string       `json:"code"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors,omitempty"`
	// ExistingAssignmentID names the active PRIMARY on a
	// primary_already_assigned conflict.
	ExistingAssignmentID *uuid.UUID `json:"existing_assignment_id,omitempty"`
	// RequestID is set on internal errors, so that a client can quote it and
	// an operator find the log line.
	RequestID string `json:"request_id,omitempty"`
}

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// The codes of the contract (../shared/API.md), and the two that its
// conventions imply for unknown routes and methods.
const (
	CodeMalformedJSON          = "malformed_json"
	CodeUnauthenticated        = "unauthenticated"
	CodeForbidden              = "forbidden"
	CodeInvalidID              = "invalid_id"
	CodePatientNotFound        = "patient_not_found"
	CodeProviderNotFound       = "provider_not_found"
	CodeAssignmentNotFound     = "assignment_not_found"
	CodePrimaryAlreadyAssigned = "primary_already_assigned"
	CodeProviderAlreadyOnTeam  = "provider_already_on_care_team"
	CodeNPITaken               = "npi_taken"
	CodeMRNTaken               = "mrn_taken"
	CodePayloadTooLarge        = "payload_too_large"
	CodeUnsupportedMediaType   = "unsupported_media_type"
	CodeValidationFailed       = "validation_failed"
	CodeInvalidNPI             = "invalid_npi"
	CodeUnavailable            = "unavailable"
	CodeInternal               = "internal"
	CodeNotFound               = "not_found"
	CodeMethodNotAllowed       = "method_not_allowed"
)

const problemContentType = "application/problem+json"

// writeProblem answers with a problem and stops the handler chain.
func writeProblem(c *gin.Context, status int, code, detail string) {
	writeProblemBody(c, Problem{Status: status, Code: code, Detail: detail})
}

func writeProblemBody(c *gin.Context, p Problem) {
	// A client error found before any statement checked the key: check it
	// now, so that a wrong key answers 401 rather than telling a stranger
	// what is wrong with the request.
	if p.Status >= 400 && p.Status < 500 && p.Status != http.StatusUnauthorized &&
		p.Status != http.StatusForbidden && p.Status != 499 {
		if v, ok := c.Get(ctxVerify); ok {
			c.Set(ctxVerify, nil)
			if verify, _ := v.(func(*gin.Context) bool); verify != nil && !verify(c) {
				return
			}
		}
	}
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	if p.Status == http.StatusInternalServerError {
		p.RequestID = requestID(c)
	}
	if p.Status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	c.Abort()
	writeJSON(c, p.Status, problemContentType, p)
}

func writeValidation(c *gin.Context, errs []FieldError) {
	writeProblemBody(c, Problem{
		Status: http.StatusUnprocessableEntity,
		Code:   CodeValidationFailed,
		Detail: "The request has invalid fields.",
		Errors: errs,
	})
}

// writeStoreError answers for an error from the store. It is the one place
// where the data layer's outcomes become statuses and codes.
func (s *Server) writeStoreError(c *gin.Context, err error) {
	var conflict *store.PrimaryConflictError
	switch {
	case errors.Is(c.Request.Context().Err(), context.Canceled):
		// The client hung up, cancelling the queries: nobody reads the
		// answer, but the log and the metrics show it as 499, not as an
		// outage.
		writeProblem(c, 499, CodeUnavailable, "The client closed the request.")
	case errors.As(err, &conflict):
		p := Problem{
			Status: http.StatusConflict,
			Code:   CodePrimaryAlreadyAssigned,
			Detail: "Patient already has an active PRIMARY provider.",
		}
		if conflict.ExistingAssignmentID != uuid.Nil {
			id := conflict.ExistingAssignmentID
			p.ExistingAssignmentID = &id
		}
		s.logViolation(c, "primary_provider_conflict", store.ConstraintPrimary)
		writeProblemBody(c, p)
	case errors.Is(err, store.ErrProviderAlreadyOnCareTeam):
		s.logViolation(c, "provider_already_on_care_team", store.ConstraintPatientProvider)
		writeProblem(c, http.StatusConflict, CodeProviderAlreadyOnTeam,
			"The provider already has an active assignment on this patient's care team.")
	case errors.Is(err, store.ErrNPITaken):
		s.logViolation(c, "npi_taken", store.ConstraintProvidersNPI)
		writeProblem(c, http.StatusConflict, CodeNPITaken, "Another provider has that NPI.")
	case errors.Is(err, store.ErrMRNTaken):
		s.logViolation(c, "mrn_taken", store.ConstraintPatientsMRN)
		writeProblem(c, http.StatusConflict, CodeMRNTaken, "Another patient has that MRN.")
	case errors.Is(err, store.ErrInvalidNPI):
		writeProblemBody(c, Problem{
			Status: http.StatusUnprocessableEntity,
			Code:   CodeInvalidNPI,
			Detail: "The NPI's check digit is wrong.",
			Errors: []FieldError{{Field: "npi", Message: "check digit is wrong"}},
		})
	case errors.Is(err, store.ErrInvalidText):
		writeValidation(c, []FieldError{{Field: "body", Message: "text must be valid UTF-8 without NUL characters"}})
	case errors.Is(err, store.ErrUnauthenticated):
		s.unauthenticated(c)
	case errors.Is(err, store.ErrForbidden):
		writeProblem(c, http.StatusForbidden, CodeForbidden, "This API key may not do that.")
	case errors.Is(err, store.ErrPatientNotFound):
		s.logForeignKey(c, err)
		writeProblem(c, http.StatusNotFound, CodePatientNotFound, "No patient has that id.")
	case errors.Is(err, store.ErrProviderNotFound):
		s.logForeignKey(c, err)
		writeProblem(c, http.StatusNotFound, CodeProviderNotFound, "No provider has that id.")
	case errors.Is(err, store.ErrAssignmentNotFound):
		writeProblem(c, http.StatusNotFound, CodeAssignmentNotFound,
			"No active assignment with that id is on this patient's care team.")
	case errors.Is(err, store.ErrUnavailable):
		s.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "database_unavailable",
			slog.String("request_id", requestID(c)), slog.String("err", err.Error()))
		writeProblem(c, http.StatusServiceUnavailable, CodeUnavailable,
			"The database cannot be reached; retry later.")
	default:
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "internal_error",
			slog.String("request_id", requestID(c)), slog.String("err", err.Error()))
		writeProblem(c, http.StatusInternalServerError, CodeInternal,
			"Something went wrong on our side; quote the request id when you report it.")
	}
}

// logViolation records a constraint violation by its constraint and the ids
// of the request: never names or bodies.
func (s *Server) logViolation(c *gin.Context, event, constraint string) {
	attrs := []slog.Attr{
		slog.String("request_id", requestID(c)),
		slog.String("constraint", constraint),
	}
	for _, p := range c.Params {
		attrs = append(attrs, slog.String(p.Key, p.Value))
	}
	if id, ok := c.Get(ctxProviderID); ok {
		attrs = append(attrs, slog.String("provider_id", id.(string)))
	}
	s.log.LogAttrs(c.Request.Context(), slog.LevelWarn, event, attrs...)
	s.metrics.violation(constraint)
}

// logForeignKey records a not-found that a foreign key found (an assignment
// naming a provider that does not exist), as every constraint violation is
// recorded; a not-found from a plain read is no violation.
func (s *Server) logForeignKey(c *gin.Context, err error) {
	if constraint := store.ViolatedConstraint(err); constraint != "" {
		s.logViolation(c, "foreign_key_violation", constraint)
	}
}
