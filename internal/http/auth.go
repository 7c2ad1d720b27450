package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/store"
)

// authenticate admits a /v1 request that carries an API key and scopes it
// to the key's organization. A missing or malformed key answers 401 at
// once. A well-formed one is checked by PostgreSQL in the same round trip
// as the request's first statement (store.Credential), which answers 401
// for a key that is unknown or revoked and 403 for one without the scope
// the method needs. A request refused before it reaches the store (a bad
// id or body) has its key checked first, so that a wrong key always
// answers 401 (verifyBeforeRefusing). All 401s are alike, so that no
// answer tells whether a key exists.
func (s *Server) authenticate(c *gin.Context) {
	key, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok || !apikey.WellFormed(key) {
		s.unauthenticated(c)
		return
	}
	cred := &store.Credential{
		Key:       key,
		RequestID: requestID(c),
		Write:     c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead,
	}
	c.Set(ctxCredential, cred)
	c.Set(ctxVerify, s.verifyBeforeRefusing)
	c.Request = c.Request.WithContext(store.WithCredential(c.Request.Context(), cred))
	c.Next()
}

// verifyBeforeRefusing checks the request's key when the request is about
// to be refused before any statement checked it. It answers 401, 403 or
// 503 itself and returns false when the key does not hold.
func (s *Server) verifyBeforeRefusing(c *gin.Context) bool {
	v, ok := c.Get(ctxCredential)
	if !ok {
		return true
	}
	cred := v.(*store.Credential)
	if cred.Verified() {
		return true
	}
	p, err := s.store.Authenticate(c.Request.Context(), cred.Key)
	switch {
	case errors.Is(err, store.ErrUnauthenticated):
		s.unauthenticated(c)
		return false
	case err != nil:
		s.writeStoreError(c, err)
		return false
	case (cred.Write && !p.CanWrite()) || (!cred.Write && !p.CanRead()):
		writeProblem(c, http.StatusForbidden, CodeForbidden, "This API key may not do that.")
		return false
	}
	return true
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
