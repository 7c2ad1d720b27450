package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/careteam/careteam/internal/store"
)

// authenticate admits a /v1 request that carries an active API key with the
// scope its method needs, and scopes the request to the key's organization.
// A missing, malformed, unknown or revoked key answers the same 401, so
// that no answer tells whether a key exists.
func (s *Server) authenticate(c *gin.Context) {
	key, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		s.unauthenticated(c)
		return
	}
	p, err := s.store.Authenticate(c.Request.Context(), key)
	if errors.Is(err, store.ErrUnauthenticated) {
		s.unauthenticated(c)
		return
	}
	if err != nil {
		s.writeStoreError(c, err)
		return
	}

	writes := c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead
	if (writes && !p.CanWrite()) || (!writes && !p.CanRead()) {
		writeProblem(c, http.StatusForbidden, CodeForbidden, "This API key may not do that.")
		return
	}

	ctx := store.WithTenant(c.Request.Context(), store.Tenant{
		OrganizationID: p.OrganizationID,
		ActorID:        p.KeyID,
		RequestID:      requestID(c),
	})
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// bearerToken reads "Bearer <token>"; the scheme is case-insensitive.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) unauthenticated(c *gin.Context) {
	s.metrics.authFailures.Inc()
	c.Header("WWW-Authenticate", `Bearer realm="careteam"`)
	writeProblem(c, http.StatusUnauthorized, CodeUnauthenticated,
		"Send a valid API key as Authorization: Bearer <key>.")
}

// auditEventJSON is one audit event as the API shows it.
type auditEventJSON struct {
	ID         int64   `json:"id"`
	OccurredAt instant `json:"occurred_at"`
	Table      string  `json:"table"`
	RowID      string  `json:"row_id"`
	Action     string  `json:"action"`
	ActorID    *string `json:"actor_id"`
	RequestID  *string `json:"request_id"`
	Changes    rawJSON `json:"changes"`
}

// rawJSON is JSON passed through as it is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

const (
	defaultAuditLimit = 50
	maxAuditLimit     = 200
)

// getPatientAudit lists a patient's audit events, newest first, a page at a
// time: next_cursor, when not null, fetches the next page.
func (s *Server) getPatientAudit(c *gin.Context) {
	id, ok := pathID(c, "patient_id")
	if !ok {
		return
	}

	var problems []FieldError
	limit := defaultAuditLimit
	if v, present := c.GetQuery("limit"); present {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			problems = append(problems, FieldError{Field: "limit", Message: "must be a whole number from 1 to 200"})
		}
		limit = n
	}
	var before int64
	if v, present := c.GetQuery("cursor"); present {
		var ok bool
		if before, ok = decodeCursor(v); !ok {
			problems = append(problems, FieldError{Field: "cursor", Message: "is not a cursor this API gave"})
		}
	}
	if len(problems) > 0 {
		writeValidation(c, problems)
		return
	}

	// One more than asked says whether there is a next page.
	events, err := s.store.PatientAudit(c.Request.Context(), id, before, limit+1)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	var next *string
	if len(events) > limit {
		events = events[:limit]
		cursor := encodeCursor(events[len(events)-1].ID)
		next = &cursor
	}

	items := make([]auditEventJSON, 0, len(events))
	for _, e := range events {
		item := auditEventJSON{
			ID:         e.ID,
			OccurredAt: instant(e.OccurredAt),
			Table:      e.Table,
			RowID:      e.RowID.String(),
			Action:     e.Action,
			RequestID:  e.RequestID,
			Changes:    rawJSON(e.Changes),
		}
		if e.ActorID != nil {
			actor := e.ActorID.String()
			item.ActorID = &actor
		}
		items = append(items, item)
	}
	writeJSON(c, http.StatusOK, "", map[string]any{"items": items, "next_cursor": next})
}

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	digits, ok := strings.CutPrefix(string(b), "a:")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	return id, err == nil && id > 0
}
