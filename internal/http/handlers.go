package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/careteam/careteam/internal/npi"
	"github.com/careteam/careteam/internal/store"
)

// instant is a point in time as the contract writes it: RFC 3339 in UTC,
// with a Z and microseconds.
type instant time.Time

// instantLayout is the contract's form of an instant.
const instantLayout = "2006-01-02T15:04:05.000000Z"

// MarshalText makes encoding/json write the instant as a JSON string. As a
// text marshaler it costs less than a JSON marshaler, whose output the
// encoder parses again.
func (t instant) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().AppendFormat(make([]byte, 0, len(instantLayout)), instantLayout), nil
}

func instantPtr(t *time.Time) *instant {
	if t == nil {
		return nil
	}
	v := instant(*t)
	return &v
}

func datePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.Format(time.DateOnly)
	return &s
}

type patientJSON struct {
	ID         uuid.UUID `json:"id"`
	MRN        *string   `json:"mrn"`
	GivenName  string    `json:"given_name"`
	FamilyName string    `json:"family_name"`
	BirthDate  *string   `json:"birth_date"`
	CreatedAt  instant   `json:"created_at"`
	UpdatedAt  instant   `json:"updated_at"`
}

func toPatientJSON(p store.Patient) patientJSON {
	return patientJSON{
		ID:         p.ID,
		MRN:        p.MRN,
		GivenName:  p.GivenName,
		FamilyName: p.FamilyName,
		BirthDate:  datePtr(p.BirthDate),
		CreatedAt:  instant(p.CreatedAt),
		UpdatedAt:  instant(p.UpdatedAt),
	}
}

type providerJSON struct {
	ID         uuid.UUID `json:"id"`
	NPI        string    `json:"npi"`
	GivenName  string    `json:"given_name"`
	FamilyName string    `json:"family_name"`
	Specialty  *string   `json:"specialty"`
	CreatedAt  instant   `json:"created_at"`
	UpdatedAt  instant   `json:"updated_at"`
}

func toProviderJSON(p store.Provider) providerJSON {
	return providerJSON{
		ID:         p.ID,
		NPI:        p.NPI,
		GivenName:  p.GivenName,
		FamilyName: p.FamilyName,
		Specialty:  p.Specialty,
		CreatedAt:  instant(p.CreatedAt),
		UpdatedAt:  instant(p.UpdatedAt),
	}
}

type assignmentJSON struct {
	ID            uuid.UUID  `json:"id"`
	PatientID     uuid.UUID  `json:"patient_id"`
	ProviderID    uuid.UUID  `json:"provider_id"`
	Role          store.Role `json:"role"`
	AssignedAt    instant    `json:"assigned_at"`
	RemovedAt     *instant   `json:"removed_at"`
	RemovalReason *string    `json:"removal_reason"`
}

func toAssignmentJSON(a store.Assignment) assignmentJSON {
	return assignmentJSON{
		ID:            a.ID,
		PatientID:     a.PatientID,
		ProviderID:    a.ProviderID,
		Role:          a.Role,
		AssignedAt:    instant(a.AssignedAt),
		RemovedAt:     instantPtr(a.RemovedAt),
		RemovalReason: a.RemovalReason,
	}
}

type careTeamJSON struct {
	PatientID   uuid.UUID        `json:"patient_id"`
	Assignments []assignmentJSON `json:"assignments"`
}

func toCareTeamJSON(patientID uuid.UUID, team []store.Assignment) careTeamJSON {
	out := careTeamJSON{PatientID: patientID, Assignments: make([]assignmentJSON, 0, len(team))}
	for _, a := range team {
		out.Assignments = append(out.Assignments, toAssignmentJSON(a))
	}
	return out
}

func created(c *gin.Context, location string, v any) {
	c.Header("Location", location)
	writeJSON(c, http.StatusCreated, "", v)
}

func (s *Server) createPatient(c *gin.Context) {
	fields, ok := decodeBody(c, "given_name", "family_name", "birth_date", "mrn")
	if !ok {
		return
	}
	v := validator{fields: fields}
	params := store.CreatePatientParams{
		GivenName:  deref(v.text("given_name", true, 200)),
		FamilyName: deref(v.text("family_name", true, 200)),
		BirthDate:  v.date("birth_date"),
		MRN:        v.text("mrn", false, 64),
	}
	if len(v.errs) > 0 {
		writeValidation(c, v.errs)
		return
	}

	p, err := s.store.CreatePatient(c.Request.Context(), params)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	created(c, "/v1/patients/"+p.ID.String(), toPatientJSON(p))
}

func (s *Server) getPatient(c *gin.Context) {
	id, ok := pathID(c, "patient_id")
	if !ok {
		return
	}
	p, err := s.store.GetPatient(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, "", toPatientJSON(p))
}

func (s *Server) createProvider(c *gin.Context) {
	fields, ok := decodeBody(c, "npi", "given_name", "family_name", "specialty")
	if !ok {
		return
	}
	v := validator{fields: fields}
	number := v.text("npi", true, 10)
	if number != nil && !tenDigits.MatchString(*number) {
		v.fail("npi", "must be ten digits")
		number = nil
	}
	params := store.CreateProviderParams{
		NPI:        deref(number),
		GivenName:  deref(v.text("given_name", true, 200)),
		FamilyName: deref(v.text("family_name", true, 200)),
		Specialty:  v.text("specialty", false, 200),
	}
	if len(v.errs) > 0 {
		writeValidation(c, v.errs)
		return
	}
	if !npi.Valid(params.NPI) {
		s.writeStoreError(c, store.ErrInvalidNPI)
		return
	}

	p, err := s.store.CreateProvider(c.Request.Context(), params)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	created(c, "/v1/providers/"+p.ID.String(), toProviderJSON(p))
}

func (s *Server) getProvider(c *gin.Context) {
	id, ok := pathID(c, "provider_id")
	if !ok {
		return
	}
	p, err := s.store.GetProvider(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, "", toProviderJSON(p))
}

func (s *Server) findProviders(c *gin.Context) {
	number, ok := c.GetQuery("npi")
	switch {
	case !ok || number == "":
		writeValidation(c, []FieldError{{Field: "npi", Message: "is required"}})
		return
	case !tenDigits.MatchString(number):
		writeValidation(c, []FieldError{{Field: "npi", Message: "must be ten digits"}})
		return
	}

	found, err := s.store.ProvidersByNPI(c.Request.Context(), number)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	items := make([]providerJSON, 0, len(found))
	for _, p := range found {
		items = append(items, toProviderJSON(p))
	}
	writeJSON(c, http.StatusOK, "", map[string]any{"items": items})
}

func (s *Server) getCareTeam(c *gin.Context) {
	id, ok := pathID(c, "patient_id")
	if !ok {
		return
	}
	team, err := s.store.ActiveCareTeam(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, "", toCareTeamJSON(id, team))
}

func (s *Server) getCareTeamHistory(c *gin.Context) {
	id, ok := pathID(c, "patient_id")
	if !ok {
		return
	}
	team, err := s.store.CareTeamHistory(c.Request.Context(), id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, "", toCareTeamJSON(id, team))
}

// role reads a required role field, upper case as the contract spells it.
func (v *validator) role(field string) store.Role {
	s := v.text(field, true, 20)
	if s == nil {
		return ""
	}
	r := store.Role(*s)
	if !r.Valid() {
		v.fail(field, "must be one of PRIMARY, SPECIALIST, CONSULTANT")
		return ""
	}
	return r
}

func (s *Server) addMember(c *gin.Context) {
	patientID, ok := pathID(c, "patient_id")
	if !ok {
		return
	}
	fields, ok := decodeBody(c, "provider_id", "role")
	if !ok {
		return
	}
	v := validator{fields: fields}
	providerID := v.id("provider_id")
	role := v.role("role")
	if len(v.errs) > 0 {
		writeValidation(c, v.errs)
		return
	}
	c.Set(ctxProviderID, providerID.String())

	a, err := s.store.AddMember(c.Request.Context(), patientID, providerID, role)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	s.metrics.created.WithLabelValues(string(a.Role)).Inc()
	created(c, "/v1/patients/"+patientID.String()+"/care-team/"+a.ID.String(), toAssignmentJSON(a))
}

func (s *Server) endMember(c *gin.Context) {
	patientID, ok := pathID(c, "patient_id")
	if !ok {
		return
	}
	assignmentID, ok := pathID(c, "assignment_id")
	if !ok {
		return
	}
	var reason *string
	if r, present := c.GetQuery("reason"); present {
		v := validator{fields: map[string]json.RawMessage{}}
		if quoted, err := json.Marshal(r); err == nil {
			v.fields["reason"] = quoted
		}
		reason = v.text("reason", true, 500)
		if len(v.errs) > 0 {
			writeValidation(c, v.errs)
			return
		}
	}

	a, err := s.store.EndMember(c.Request.Context(), patientID, assignmentID, reason)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	s.metrics.ended.WithLabelValues(string(a.Role)).Inc()
	c.Status(http.StatusNoContent)
}

func (s *Server) reassignPrimary(c *gin.Context) {
	patientID, ok := pathID(c, "patient_id")
	if !ok {
		return
	}
	fields, ok := decodeBody(c, "provider_id", "reason")
	if !ok {
		return
	}
	v := validator{fields: fields}
	providerID := v.id("provider_id")
	reason := v.text("reason", false, 500)
	if len(v.errs) > 0 {
		writeValidation(c, v.errs)
		return
	}
	c.Set(ctxProviderID, providerID.String())

	r, err := s.store.ReassignPrimary(c.Request.Context(), patientID, providerID, reason)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}

	var previous *assignmentJSON
	if r.Previous != nil {
		p := toAssignmentJSON(*r.Previous)
		previous = &p
		s.metrics.ended.WithLabelValues(string(r.Previous.Role)).Inc()
	}
	if r.Promoted != nil {
		s.metrics.ended.WithLabelValues(string(r.Promoted.Role)).Inc()
	}
	if r.Changed {
		s.metrics.created.WithLabelValues(string(r.Assignment.Role)).Inc()
		s.metrics.reassigned.Inc()
	}
	writeJSON(c, http.StatusOK, "", map[string]any{
		"assignment": toAssignmentJSON(r.Assignment),
		"previous":   previous,
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
