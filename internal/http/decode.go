package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// writeJSON encodes v as the answer. contentType "" means application/json.
func writeJSON(c *gin.Context, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here: every answer is a plain struct.
		panic(err)
	}
	if contentType == "" {
		contentType = "application/json"
	}
	c.Data(status, contentType, body)
}

// decodeBody reads the request's JSON object into fields, a raw value per
// key. It answers the request itself, and returns false, when the body is
// not JSON (400), too large (413), of another media type (415), or has
// keys that allowed does not list (422).
func decodeBody(c *gin.Context, allowed ...string) (map[string]json.RawMessage, bool) {
	if !jsonMediaType(c.GetHeader("Content-Type")) {
		writeProblem(c, http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"Send the body as application/json.")
		return nil, false
	}

	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeProblem(c, http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"The body is larger than 1 MiB.")
		return nil, false
	}
	if err != nil {
		writeProblem(c, http.StatusBadRequest, CodeMalformedJSON, "The body could not be read.")
		return nil, false
	}

	fields, dup, err := parseObject(body)
	switch {
	case errors.Is(err, errTrailingData):
		writeProblem(c, http.StatusBadRequest, CodeMalformedJSON,
			"The body holds more than one JSON value.")
		return nil, false
	case err != nil:
		writeProblem(c, http.StatusBadRequest, CodeMalformedJSON, "The body is not a JSON object.")
		return nil, false
	case dup != "":
		writeValidation(c, []FieldError{{Field: dup, Message: "appears more than once"}})
		return nil, false
	}

	var unknown []FieldError
	for key := range fields {
		if !slices.Contains(allowed, key) {
			unknown = append(unknown, FieldError{Field: key, Message: "unknown field"})
		}
	}
	if len(unknown) > 0 {
		slices.SortFunc(unknown, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		writeValidation(c, unknown)
		return nil, false
	}
	return fields, true
}

// jsonMediaType reports whether a Content-Type names application/json,
// with or without parameters.
func jsonMediaType(contentType string) bool {
	if contentType == "application/json" {
		return true // the usual case, without parsing
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

// errTrailingData means a JSON value was followed by more than space.
var errTrailingData = errors.New("data after the JSON value")

// parseObject reads body, which must be one JSON object and nothing more,
// in one pass: its fields as raw values, and the first key it names twice
// ("" when none), since a body that says two things of one field is
// ambiguous and a map would silently keep the last.
func parseObject(body []byte) (map[string]json.RawMessage, string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, "", errors.New("not a JSON object")
	}
	fields := make(map[string]json.RawMessage, 4)
	dup := ""
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, "", err
		}
		key, ok := t.(string)
		if !ok {
			return nil, "", errors.New("not a JSON object")
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, "", err
		}
		if _, seen := fields[key]; seen && dup == "" {
			dup = key
		}
		fields[key] = value
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, "", errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", errTrailingData
	}
	return fields, dup, nil
}

// validator collects the problems with a request's fields, so that one 422
// names all of them.
type validator struct {
	fields map[string]json.RawMessage
	errs   []FieldError
}

func (v *validator) fail(field, message string) {
	v.errs = append(v.errs, FieldError{Field: field, Message: message})
}

// raw returns the field's JSON, or nil when it is absent or null.
func (v *validator) raw(field string) json.RawMessage {
	r, ok := v.fields[field]
	if !ok || string(r) == "null" {
		return nil
	}
	return r
}

// text reads a string field of 1 to maxLen characters that is not blank.
// A missing or null field is nil, and a problem when required.
func (v *validator) text(field string, required bool, maxLen int) *string {
	r := v.raw(field)
	if r == nil {
		if required {
			v.fail(field, "is required")
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		v.fail(field, "must be a string")
		return nil
	}
	// Surrounding spaces are not part of a name or an MRN: " M-1 " and
	// "M-1" are one MRN.
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	switch {
	case s == "":
		v.fail(field, "must not be blank")
		return nil
	case strings.ContainsFunc(s, badRune):
		v.fail(field, "must be valid UTF-8 text without control characters")
		return nil
	case n > maxLen:
		v.fail(field, "must be at most "+strconv.Itoa(maxLen)+" characters")
		return nil
	}
	return &s
}

// id reads a required UUID field.
func (v *validator) id(field string) uuid.UUID {
	s := v.text(field, true, 64)
	if s == nil {
		return uuid.Nil
	}
	id, ok := parseID(*s)
	if !ok {
		v.fail(field, "must be a UUID")
	}
	return id
}

// date reads an optional YYYY-MM-DD field that is not in the future.
func (v *validator) date(field string) *time.Time {
	r := v.raw(field)
	if r == nil {
		return nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		v.fail(field, "must be a date as YYYY-MM-DD")
		return nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		v.fail(field, "must be a date as YYYY-MM-DD")
		return nil
	}
	if d.Year() < 1850 || d.After(time.Now().UTC()) {
		v.fail(field, "must be a real date, not in the future")
		return nil
	}
	return &d
}

var tenDigits = regexp.MustCompile(`^[0-9]{10}$`)

// parseID accepts a UUID only in its canonical 36-character form.
func parseID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// pathID reads a UUID path parameter, answering 400 invalid_id when it is
// not one.
func pathID(c *gin.Context, name string) (uuid.UUID, bool) {
	id, ok := parseID(c.Param(name))
	if !ok {
		writeProblem(c, http.StatusBadRequest, CodeInvalidID, "The "+name+" in the path is not a UUID.")
		return uuid.Nil, false
	}
	return id, true
}

// badRune reports control characters (NUL among them, which PostgreSQL
// cannot store) and the replacement character that invalid UTF-8 decodes to.
func badRune(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r)
}
