package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/api"
	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/store"
)

// canonicalUUID is the form of every id the service writes: lower case,
// 36 characters.
var canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// loadOpenAPI loads api/openapi.yaml and validates it, examples included.
// kin-openapi checks no uuid format on its own, so the document gets one.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml does not validate: %v", err)
	}
	doc.SetStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(canonicalUUID.String()))
	return doc
}

// operations returns the document's operations keyed "METHOD path".
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

// The codes problem.go can write: the document must list exactly these.
var problemCodes = []string{
	CodeMalformedJSON, CodeUnauthenticated, CodeForbidden, CodeInvalidID,
	CodePatientNotFound, CodeProviderNotFound,
	CodeAssignmentNotFound, CodePrimaryAlreadyAssigned, CodeProviderAlreadyOnTeam,
	CodeNPITaken, CodeMRNTaken, CodePayloadTooLarge, CodeUnsupportedMediaType,
	CodeValidationFailed, CodeInvalidNPI, CodeUnavailable, CodeInternal, CodeNotFound,
	CodeMethodNotAllowed,
}

// declaredCodes returns the values of the Code constants that problem.go
// declares, so that a code added there cannot be missed here.
func declaredCodes(t *testing.T) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "problem.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("problem.go: %s is not a string literal", name.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, v)
			}
		}
	}
	return codes
}

// TestOpenAPIDocument checks that the document loads and validates, and
// that it keeps the conventions every operation shares.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)

	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	if !strings.Contains(doc.Info.Description, `"access control"`) {
		t.Error(`info.description does not say that the issue "access control" extends API.md`)
	}

	declared, listed := declaredCodes(t), slices.Clone(problemCodes)
	slices.Sort(declared)
	slices.Sort(listed)
	if !slices.Equal(declared, listed) {
		t.Errorf("problem.go declares the codes %v, the test lists %v", declared, listed)
	}

	// Every /v1 operation needs a Bearer key; the operations endpoints
	// need none.
	bearer := doc.Components.SecuritySchemes["bearerAuth"]
	if bearer == nil || bearer.Value.Type != "http" || !strings.EqualFold(bearer.Value.Scheme, "bearer") {
		t.Errorf("no bearerAuth security scheme of type http, scheme bearer: %+v", bearer)
	}
	needsKey := func(srs openapi3.SecurityRequirements) bool {
		if len(srs) != 1 || len(srs[0]) != 1 {
			return false
		}
		scopes, ok := srs[0]["bearerAuth"]
		return ok && len(scopes) == 0
	}
	if !needsKey(doc.Security) {
		t.Errorf("the global security is %v, want bearerAuth alone", doc.Security)
	}

	codes := map[string]bool{}
	for name, s := range doc.Components.Schemas {
		if !strings.HasPrefix(name, "Problem") {
			continue
		}
		code := s.Value.Properties["code"]
		if code == nil {
			t.Errorf("schema %s has no code", name)
			continue
		}
		for _, c := range code.Value.Enum {
			codes[c.(string)] = true
		}
	}
	for _, c := range problemCodes {
		if !codes[c] {
			t.Errorf("code %q is missing from the document's problem schemas", c)
		}
		delete(codes, c)
	}
	for c := range codes {
		t.Errorf("the document lists code %q, which the service never writes", c)
	}

	for key, op := range operations(doc) {
		method, path, _ := strings.Cut(key, " ")
		item := doc.Paths.Value(path)
		params := slices.Concat(item.Parameters, op.Parameters)
		for _, p := range params {
			if p.Value.In == openapi3.ParameterInPath && p.Value.Schema.Value.Format != "uuid" {
				t.Errorf("%s: path parameter %s is not format uuid", key, p.Value.Name)
			}
		}
		security := doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		if strings.HasPrefix(path, "/v1/") {
			for _, status := range []int{401, 403, 500, 503} {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s: no %d response", key, status)
				}
			}
			if !needsKey(security) {
				t.Errorf("%s: security is %v, want bearerAuth", key, security)
			}
		} else if op.Security == nil || len(*op.Security) != 0 {
			t.Errorf("%s: needs no key, but does not say security: []", key)
		}
		if (method == http.MethodPost || method == http.MethodPut) && op.RequestBody != nil {
			body := op.RequestBody.Value.Content.Get("application/json").Schema.Value
			if body.AdditionalProperties.Has == nil || *body.AdditionalProperties.Has {
				t.Errorf("%s: request body allows unknown fields", key)
			}
			for _, status := range []int{400, 413, 415, 422} {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s: takes a body but has no %d response", key, status)
				}
			}
		}
		for status, ref := range op.Responses.Map() {
			checkResponse(t, key+" "+status, status, ref.Value)
		}
	}
	for name, ref := range doc.Components.Responses {
		checkResponse(t, "components/responses/"+name, "", ref.Value)
	}
}

// checkResponse checks one documented response against the conventions:
// X-Request-ID always, Location on 201, Retry-After on 503, problems on
// every API error.
func checkResponse(t *testing.T, where, status string, r *openapi3.Response) {
	t.Helper()
	if h := r.Headers["X-Request-ID"]; h == nil || !h.Value.Required {
		t.Errorf("%s: X-Request-ID is not a required header", where)
	}
	if status == "201" && (r.Headers["Location"] == nil || !r.Headers["Location"].Value.Required) {
		t.Errorf("%s: Location is not a required header", where)
	}
	if status == "503" && r.Headers["Retry-After"] == nil {
		t.Errorf("%s: no Retry-After header", where)
	}
	if status == "401" && (r.Headers["WWW-Authenticate"] == nil ||
		!r.Headers["WWW-Authenticate"].Value.Required) {
		t.Errorf("%s: WWW-Authenticate is not a required header", where)
	}
	if status == "204" && len(r.Content) != 0 {
		t.Errorf("%s: a 204 has no body", where)
	}
	n, _ := strconv.Atoi(status)
	if n >= 400 && !strings.HasPrefix(where, "GET /metrics") {
		if len(r.Content) != 1 || r.Content["application/problem+json"] == nil {
			t.Errorf("%s: an error is application/problem+json and nothing else", where)
		}
	}
}

// TestOpenAPIRouteParity checks that the engine serves exactly the
// document's operations.
func TestOpenAPIRouteParity(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	srv := New(nil, Options{})

	param := regexp.MustCompile(`:([A-Za-z0-9_]+)`)
	served := map[string]bool{}
	for _, r := range srv.engine.Routes() {
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for key := range operations(doc) {
		documented[key] = true
	}

	for key := range served {
		if !documented[key] {
			t.Errorf("the engine serves %s, which the document does not describe", key)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("the document describes %s, which the engine does not serve", key)
		}
	}
	if len(served) == 0 {
		t.Fatal("the engine serves no routes")
	}
}

// conformance sends requests and checks each answer against the document.
type conformance struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	// key is the API key that requests carry unless they say otherwise.
	key string
	// covered records "METHOD path status" for each answer checked.
	covered map[string]bool
}

// exchange is one scripted request and the answer it must get.
type exchange struct {
	method, path string
	contentType  string
	body         []byte
	header       http.Header
	// key replaces the script's API key; anonymous sends none. An
	// Authorization in header wins over both.
	key       string
	anonymous bool
	// status and code are what the service must answer (code "" for
	// success).
	status int
	code   string
	// docRejects says the document itself rejects the request, so that it
	// does not promise more than the service accepts.
	docRejects bool
}

func newConformance(t *testing.T) *conformance {
	doc := loadOpenAPI(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &conformance{
		t:      t,
		doc:    doc,
		router: router,
		opts: &openapi3filter.Options{
			IncludeResponseStatus:   true,
			MultiError:              true,
			AuthenticationFunc:      bearerAuth,
			SchemaValidationOptions: doc.GetSchemaValidationOptions(),
		},
		covered: map[string]bool{},
	}
}

// bearerAuth holds a request to the document's security as a client must
// meet it: the scheme is HTTP Bearer, and the request carries
// "Authorization: Bearer <token>" (RFC 6750; the scheme name is
// case-insensitive). Whether the service knows the token is not the
// document's to say.
func bearerAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme := in.SecurityScheme
	if scheme.Type != "http" || !strings.EqualFold(scheme.Scheme, "bearer") {
		return in.NewError(fmt.Errorf("security scheme %s is %s %s, not http bearer",
			in.SecuritySchemeName, scheme.Type, scheme.Scheme))
	}
	name, token, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(name, "Bearer") || strings.TrimSpace(token) == "" {
		return in.NewError(errors.New("no Authorization: Bearer <token>"))
	}
	return nil
}

// jsonBody returns a JSON exchange.
func jsonBody(method, path, body string, status int, code string) exchange {
	return exchange{method: method, path: path, contentType: "application/json",
		body: []byte(body), status: status, code: code}
}

// run sends e to ts and checks the answer: the scripted status and code,
// then the document's status, headers and body for the route.
func (c *conformance) run(ts *httptest.Server, e exchange) response {
	c.t.Helper()
	t := c.t
	req, err := http.NewRequest(e.method, ts.URL+e.path, bytes.NewReader(e.body))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case e.anonymous:
	case e.key != "":
		req.Header.Set("Authorization", "Bearer "+e.key)
	case c.key != "":
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for k, v := range e.header {
		req.Header[k] = v
	}
	if e.contentType != "" {
		req.Header.Set("Content-Type", e.contentType)
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: body}
	name := e.method + " " + e.path
	if len(name) > 120 {
		name = name[:120] + "..."
	}

	if r.status != e.status {
		t.Errorf("%s: status %d, want %d; body %s", name, r.status, e.status, r.body)
		return r
	}
	if e.code != "" {
		if got := r.json(t)["code"]; got != e.code {
			t.Errorf("%s: code %v, want %s; body %s", name, got, e.code, r.body)
		}
		assertNoLeak(t, r.body)
	}

	// Find the route as the document's server would, whatever server the
	// request went to. Nothing is sent there.
	routeReq, err := http.NewRequest(e.method, c.doc.Servers[0].URL+e.path, bytes.NewReader(e.body))
	if err != nil {
		t.Fatal(err)
	}
	routeReq.Header = req.Header.Clone()
	route, pathParams, err := c.router.FindRoute(routeReq)
	if err != nil {
		c.checkUnrouted(name, routeReq, r, err)
		return r
	}
	c.covered[route.Method+" "+route.Path+" "+strconv.Itoa(r.status)] = true

	in := &openapi3filter.RequestValidationInput{
		Request: routeReq, PathParams: pathParams, Route: route, Options: c.opts,
	}
	c.checkRequest(name, e, in)

	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.status,
		Header:                 r.header,
		Options:                c.opts,
	}
	out.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: the answer does not conform: %v\nstatus %d, headers %v, body %s",
			name, err, r.status, r.header, r.body)
	}
	if doc := route.Operation.Responses.Status(r.status); doc != nil &&
		len(doc.Value.Content) == 0 && len(r.body) != 0 {
		t.Errorf("%s: the document gives %d no body, the answer has %q", name, r.status, r.body)
	}
	return r
}

// checkRequest checks that the document accepts what the service accepts,
// and rejects what the script says it rejects.
func (c *conformance) checkRequest(name string, e exchange,
	in *openapi3filter.RequestValidationInput) {
	c.t.Helper()
	in.Request.Body = io.NopCloser(bytes.NewReader(e.body))
	err := openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case e.status < 300 && err != nil:
		c.t.Errorf("%s: the service accepts the request, the document does not: %v", name, err)
	case e.docRejects && err == nil:
		c.t.Errorf("%s: the service refuses the request, the document accepts it", name)
	}
}

// checkUnrouted checks an answer for a path or method outside the document
// against the NotFound or MethodNotAllowed component.
func (c *conformance) checkUnrouted(name string, req *http.Request, r response, findErr error) {
	c.t.Helper()
	component, status := "NotFound", http.StatusNotFound
	if findErr == routers.ErrMethodNotAllowed {
		component, status = "MethodNotAllowed", http.StatusMethodNotAllowed
	}
	if r.status != status {
		c.t.Errorf("%s: outside the document (%v) the answer must be %d, got %d",
			name, findErr, status, r.status)
		return
	}
	c.covered["components/responses/"+component] = true
	route := &routers.Route{
		Spec: c.doc,
		Operation: &openapi3.Operation{
			Responses: openapi3.NewResponses(
				openapi3.WithStatus(status, c.doc.Components.Responses[component])),
		},
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route},
		Status:                 r.status,
		Header:                 r.header,
		Options:                c.opts,
	}
	out.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s: the answer does not conform to %s: %v\nheaders %v, body %s",
			name, component, err, r.header, r.body)
	}
}

// TestOpenAPIResponsesConform drives every operation through its success
// and error answers and checks each against the document. At the end,
// every documented status of every operation must have been seen.
func TestOpenAPIResponsesConform(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := newConformance(t)
	c.key = f.key
	ts := f.http

	run := func(e exchange) map[string]any {
		t.Helper()
		r := c.run(ts, e)
		if len(r.body) == 0 || !strings.Contains(r.header.Get("Content-Type"), "json") {
			return nil
		}
		return r.json(t)
	}
	get := func(path string, status int, code string) map[string]any {
		t.Helper()
		return run(exchange{method: "GET", path: path, status: status, code: code})
	}
	unknown := uuid.NewString()
	huge := `{"given_name": "` + strings.Repeat("a", MaxBodyBytes) + `"}`

	// Operations: no key needed.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		run(exchange{method: "GET", path: path, anonymous: true, status: 200})
	}

	// Patients.
	mrn := "MRN-" + uuid.NewString()[:8]
	ada := run(jsonBody("POST", "/v1/patients", `{"given_name": "Ada", "family_name": "Lovelace",
		"birth_date": "1990-12-10", "mrn": "`+mrn+`"}`, 201, ""))
	run(jsonBody("POST", "/v1/patients",
		`{"given_name": "Bo", "family_name": "Li", "mrn": null, "birth_date": null}`, 201, ""))
	run(jsonBody("POST", "/v1/patients",
		`{"given_name": "Cy", "family_name": "Twombly", "mrn": "`+mrn+`"}`, 409, CodeMRNTaken))
	run(jsonBody("POST", "/v1/patients", `{"given_name": `, 400, CodeMalformedJSON))
	run(jsonBody("POST", "/v1/patients", `{} {}`, 400, CodeMalformedJSON))
	run(jsonBody("POST", "/v1/patients", `null`, 400, CodeMalformedJSON))
	run(jsonBody("POST", "/v1/patients", huge, 413, CodePayloadTooLarge))
	run(exchange{method: "POST", path: "/v1/patients", contentType: "text/plain",
		body:   []byte(`{"given_name": "Ada", "family_name": "Lovelace"}`),
		status: 415, code: CodeUnsupportedMediaType, docRejects: true})
	run(exchange{method: "POST", path: "/v1/patients", body: []byte(`{}`),
		status: 415, code: CodeUnsupportedMediaType, docRejects: true})
	bad := jsonBody("POST", "/v1/patients", `{"given_name": "Ada", "Family_Name": "x"}`,
		422, CodeValidationFailed)
	bad.docRejects = true
	run(bad)
	bad = jsonBody("POST", "/v1/patients", `{"given_name": "", "family_name": "`+
		strings.Repeat("x", 201)+`", "birth_date": "1990-02-30"}`, 422, CodeValidationFailed)
	bad.docRejects = true
	run(bad)

	// Lengths count characters, not bytes; blank is not a name.
	run(jsonBody("POST", "/v1/patients", `{"given_name": "`+strings.Repeat("é", 200)+
		`", "family_name": "B"}`, 201, ""))
	bad = jsonBody("POST", "/v1/patients", `{"given_name": " ", "family_name": "B"}`,
		422, CodeValidationFailed)
	bad.docRejects = true
	run(bad)

	patient := ada["id"].(string)
	get("/v1/patients/"+patient, 200, "")
	get("/v1/patients/"+unknown, 404, CodePatientNotFound)
	run(exchange{method: "GET", path: "/v1/patients/not-a-uuid", status: 400,
		code: CodeInvalidID, docRejects: true})

	// Providers.
	number := newNPI()
	grace := run(jsonBody("POST", "/v1/providers", `{"npi": "`+number+`",
		"given_name": "Grace", "family_name": "Hopper", "specialty": "Cardiology"}`, 201, ""))
	run(jsonBody("POST", "/v1/providers",
		`{"npi": "`+newNPI()+`", "given_name": "Al", "family_name": "Kay"}`, 201, ""))
	run(jsonBody("POST", "/v1/providers",
		`{"npi": "`+number+`", "given_name": "Al", "family_name": "Kay"}`, 409, CodeNPITaken))
	wrong := number[:9] + strconv.Itoa((int(number[9]-'0')+1)%10)
	run(jsonBody("POST", "/v1/providers",
		`{"npi": "`+wrong+`", "given_name": "Al", "family_name": "Kay"}`, 422, CodeInvalidNPI))
	bad = jsonBody("POST", "/v1/providers",
		`{"npi": "12345", "given_name": "Al"}`, 422, CodeValidationFailed)
	bad.docRejects = true
	run(bad)
	run(jsonBody("POST", "/v1/providers", `[]`, 400, CodeMalformedJSON))
	run(jsonBody("POST", "/v1/providers", huge, 413, CodePayloadTooLarge))
	run(exchange{method: "POST", path: "/v1/providers", contentType: "application/xml",
		body: []byte(`<npi/>`), status: 415, code: CodeUnsupportedMediaType, docRejects: true})

	provider := grace["id"].(string)
	get("/v1/providers/"+provider, 200, "")
	get("/v1/providers/"+unknown, 404, CodeProviderNotFound)
	run(exchange{method: "GET", path: "/v1/providers/123", status: 400,
		code: CodeInvalidID, docRejects: true})
	found := get("/v1/providers?npi="+number, 200, "")
	if items := found["items"].([]any); len(items) != 1 {
		t.Errorf("find by npi: %d items, want 1", len(items))
	}
	get("/v1/providers?npi="+newNPI(), 200, "")
	run(exchange{method: "GET", path: "/v1/providers", status: 422,
		code: CodeValidationFailed, docRejects: true})
	run(exchange{method: "GET", path: "/v1/providers?npi=12ab", status: 422,
		code: CodeValidationFailed, docRejects: true})

	// Care team.
	team := "/v1/patients/" + patient + "/care-team"
	get(team, 200, "")
	get(team+"/history", 200, "")
	get("/v1/patients/"+unknown+"/care-team", 404, CodePatientNotFound)
	get("/v1/patients/"+unknown+"/care-team/history", 404, CodePatientNotFound)
	run(exchange{method: "GET", path: "/v1/patients/x/care-team", status: 400,
		code: CodeInvalidID, docRejects: true})
	run(exchange{method: "GET", path: "/v1/patients/x/care-team/history", status: 400,
		code: CodeInvalidID, docRejects: true})

	member := func(providerID, role string) string {
		return `{"provider_id": "` + providerID + `", "role": "` + role + `"}`
	}
	primary := run(jsonBody("POST", team, member(provider, "PRIMARY"), 201, ""))
	second, specialist := f.provider(), f.provider()
	conflict := run(jsonBody("POST", team, member(second, "PRIMARY"),
		409, CodePrimaryAlreadyAssigned))
	if conflict["existing_assignment_id"] != primary["id"] {
		t.Errorf("existing_assignment_id = %v, want %v", conflict["existing_assignment_id"],
			primary["id"])
	}
	run(jsonBody("POST", team, member(provider, "SPECIALIST"),
		409, CodeProviderAlreadyOnTeam))
	spec := run(jsonBody("POST", team, member(specialist, "SPECIALIST"), 201, ""))
	run(jsonBody("POST", team, member(unknown, "CONSULTANT"), 404, CodeProviderNotFound))
	run(jsonBody("POST", "/v1/patients/"+unknown+"/care-team", member(second, "CONSULTANT"),
		404, CodePatientNotFound))
	bad = jsonBody("POST", team, member(second, "primary"), 422, CodeValidationFailed)
	bad.docRejects = true
	run(bad)
	bad = jsonBody("POST", team, `{"provider_id": "nope", "role": "PRIMARY", "x": 1}`,
		422, CodeValidationFailed)
	bad.docRejects = true
	run(bad)
	bad = jsonBody("POST", "/v1/patients/nope/care-team", member(second, "PRIMARY"),
		400, CodeInvalidID)
	bad.docRejects = true
	run(bad)
	run(jsonBody("POST", team, `{"provider_id"`, 400, CodeMalformedJSON))
	run(jsonBody("POST", team, huge, 413, CodePayloadTooLarge))
	run(exchange{method: "POST", path: team, status: 415,
		code: CodeUnsupportedMediaType, docRejects: true})

	// Reassigning the PRIMARY.
	reassign := func(providerID, extra string, status int, code string) map[string]any {
		t.Helper()
		return run(jsonBody("PUT", team+"/primary",
			`{"provider_id": "`+providerID+`"`+extra+`}`, status, code))
	}
	moved := reassign(second, `, "reason": "moved"`, 200, "")
	if prev, _ := moved["previous"].(map[string]any); prev == nil ||
		prev["id"] != primary["id"] || prev["removal_reason"] != "moved" {
		t.Errorf("previous = %v, want the first PRIMARY ended as moved", moved["previous"])
	}
	if same := reassign(second, "", 200, ""); same["previous"] != nil {
		t.Errorf("previous = %v, want null when nothing changes", same["previous"])
	}
	reassign(specialist, `, "reason": null`, 200, "")
	lone := f.patient()
	run(jsonBody("PUT", "/v1/patients/"+lone+"/care-team/primary",
		`{"provider_id": "`+second+`"}`, 200, ""))
	reassign(unknown, "", 404, CodeProviderNotFound)
	run(jsonBody("PUT", "/v1/patients/"+unknown+"/care-team/primary",
		`{"provider_id": "`+second+`"}`, 404, CodePatientNotFound))
	bad = jsonBody("PUT", team+"/primary", `{"reason": "`+strings.Repeat("r", 501)+`"}`,
		422, CodeValidationFailed)
	bad.docRejects = true
	run(bad)
	bad = jsonBody("PUT", "/v1/patients/1/care-team/primary", `{}`, 400, CodeInvalidID)
	bad.docRejects = true
	run(bad)
	run(jsonBody("PUT", team+"/primary", `"x"`, 400, CodeMalformedJSON))
	run(jsonBody("PUT", team+"/primary", huge, 413, CodePayloadTooLarge))
	run(exchange{method: "PUT", path: team + "/primary", contentType: "application/json-seq",
		body: []byte(`{}`), status: 415, code: CodeUnsupportedMediaType, docRejects: true})

	// Ending an assignment. The specialist was promoted, so end the
	// PRIMARY of the lone patient and the consultant made here.
	consultant := run(jsonBody("POST", team, member(f.provider(), "CONSULTANT"), 201, ""))
	end := team + "/" + consultant["id"].(string)
	run(exchange{method: "DELETE", path: end + "?reason=moved+away", status: 204})
	run(exchange{method: "DELETE", path: end, status: 404, code: CodeAssignmentNotFound})
	run(exchange{method: "DELETE", path: team + "/" + spec["id"].(string), status: 404,
		code: CodeAssignmentNotFound})
	run(exchange{method: "DELETE", path: "/v1/patients/" + unknown + "/care-team/" + unknown,
		status: 404, code: CodePatientNotFound})
	run(exchange{method: "DELETE", path: team + "/" + unknown + "?reason=", status: 422,
		code: CodeValidationFailed, docRejects: true})
	run(exchange{method: "DELETE", path: team + "/42", status: 400,
		code: CodeInvalidID, docRejects: true})
	history := get(team+"/history", 200, "")
	if n := len(history["assignments"].([]any)); n != 5 {
		t.Errorf("history has %d assignments, want 5", n)
	}
	get(team, 200, "")

	// The audit trail: the same events whether read whole or a page at a
	// time, newest first; the last page has no next cursor.
	audit := "/v1/patients/" + patient + "/audit"
	whole := get(audit, 200, "")
	if whole["next_cursor"] != nil {
		t.Errorf("audit: next_cursor %v on the only page", whole["next_cursor"])
	}
	var want, paged []float64
	for _, it := range whole["items"].([]any) {
		want = append(want, it.(map[string]any)["id"].(float64))
	}
	if len(want) < 5 || !slices.IsSortedFunc(want, func(a, b float64) int { return cmp.Compare(b, a) }) {
		t.Errorf("audit: event ids %v, want at least 5, newest first", want)
	}
	for page, next := 0, audit+"?limit=2"; next != ""; page++ {
		if page > len(want) {
			t.Fatal("audit: the pages do not end")
		}
		got := get(next, 200, "")
		items := got["items"].([]any)
		if len(items) > 2 {
			t.Errorf("audit: %d events on a page of 2", len(items))
		}
		for _, it := range items {
			paged = append(paged, it.(map[string]any)["id"].(float64))
		}
		next = ""
		if cursor, ok := got["next_cursor"].(string); ok {
			next = audit + "?limit=2&cursor=" + cursor
		}
	}
	if !slices.Equal(paged, want) {
		t.Errorf("audit: paged ids %v, want %v", paged, want)
	}
	get("/v1/patients/"+unknown+"/audit", 404, CodePatientNotFound)
	run(exchange{method: "GET", path: audit, key: f.newKey("another-org", "read"),
		status: 404, code: CodePatientNotFound})
	run(exchange{method: "GET", path: "/v1/patients/x/audit", status: 400,
		code: CodeInvalidID, docRejects: true})
	for _, query := range []string{"limit=0", "limit=201", "limit=ten", "limit=", "cursor="} {
		run(exchange{method: "GET", path: audit + "?" + query, status: 422,
			code: CodeValidationFailed, docRejects: true})
	}
	// Only the service knows its cursors.
	run(exchange{method: "GET", path: audit + "?cursor=nope", status: 422,
		code: CodeValidationFailed})
	both := run(exchange{method: "GET", path: "/v1/patients/" + unknown + "/audit?limit=-1&cursor=x",
		status: 422, code: CodeValidationFailed, docRejects: true})
	if errs, _ := both["errors"].([]any); len(errs) != 2 {
		t.Errorf("audit: errors %v, want one for limit and one for cursor", both["errors"])
	}

	// Paths and methods outside the document.
	get("/v1/nothing", 404, CodeNotFound)
	get("/v1/patients/"+patient+"/", 404, CodeNotFound)
	get("/healthz/", 404, CodeNotFound)
	get("/v1/patients/", 404, CodeNotFound)
	get("/v1/providers/", 404, CodeNotFound)
	get(team+"/", 404, CodeNotFound)
	run(jsonBody("POST", "/v1/patients/", `{"given_name": "A", "family_name": "B"}`,
		404, CodeNotFound))
	run(jsonBody("PUT", team+"/primary/", `{"provider_id": "`+second+`"}`, 404, CodeNotFound))
	run(exchange{method: "DELETE", path: team + "/", status: 404, code: CodeNotFound})
	run(exchange{method: "OPTIONS", path: "/healthz", status: 405, code: CodeMethodNotAllowed})
	run(exchange{method: "PATCH", path: "/v1/patients", status: 405, code: CodeMethodNotAllowed})
	run(exchange{method: "DELETE", path: "/v1/patients/" + patient, status: 405,
		code: CodeMethodNotAllowed})
	run(exchange{method: "POST", path: "/metrics", status: 405, code: CodeMethodNotAllowed})
	// These answer before the key is looked at.
	run(exchange{method: "GET", path: "/v1/nothing", anonymous: true, status: 404, code: CodeNotFound})
	run(exchange{method: "PATCH", path: "/v1/patients", anonymous: true, status: 405,
		code: CodeMethodNotAllowed})

	// X-Request-ID: a sane one comes back, another is replaced.
	echo := c.run(ts, exchange{method: "GET", path: "/healthz", status: 200,
		header: requestIDHeader("client-1.a:b_c")})
	if got := echo.header.Get("X-Request-ID"); got != "client-1.a:b_c" {
		t.Errorf("X-Request-ID = %q, want the client's", got)
	}
	made := c.run(ts, exchange{method: "GET", path: "/healthz", status: 200,
		header: requestIDHeader("no spaces allowed")})
	if got := made.header.Get("X-Request-ID"); !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(got) {
		t.Errorf("X-Request-ID = %q, want one the service made", got)
	}

	// The same operations over a database that cannot be reached (503)
	// and over a pool that is closed (500).
	everyV1 := func(status int, code string) []exchange {
		id := uuid.NewString()
		return []exchange{
			jsonBody("POST", "/v1/patients", `{"given_name": "A", "family_name": "B"}`, status, code),
			{method: "GET", path: "/v1/patients/" + id, status: status, code: code},
			jsonBody("POST", "/v1/providers",
				`{"npi": "`+newNPI()+`", "given_name": "A", "family_name": "B"}`, status, code),
			{method: "GET", path: "/v1/providers?npi=" + newNPI(), status: status, code: code},
			{method: "GET", path: "/v1/providers/" + id, status: status, code: code},
			{method: "GET", path: "/v1/patients/" + id + "/care-team", status: status, code: code},
			{method: "GET", path: "/v1/patients/" + id + "/care-team/history", status: status,
				code: code},
			jsonBody("POST", "/v1/patients/"+id+"/care-team", member(id, "PRIMARY"), status, code),
			{method: "DELETE", path: "/v1/patients/" + id + "/care-team/" + id, status: status,
				code: code},
			jsonBody("PUT", "/v1/patients/"+id+"/care-team/primary",
				`{"provider_id": "`+id+`"}`, status, code),
			{method: "GET", path: "/v1/patients/" + id + "/audit", status: status, code: code},
		}
	}

	// Every operation without a usable key, which the document requires
	// (401), and with a key that lacks the method's scope (403): reads
	// need read, writes need write. Neither writes anything.
	before := f.counts()
	for _, e := range everyV1(401, CodeUnauthenticated) {
		e.anonymous, e.docRejects = true, true
		run(e)
	}
	writeOnly := f.newKey(f.org, "write")
	for _, e := range everyV1(403, CodeForbidden) {
		e.key = f.readKey
		if e.method == http.MethodGet {
			e.key = writeOnly
		}
		run(e)
	}
	if after := f.counts(); after != before {
		t.Errorf("refused requests wrote: counts %v, then %v", before, after)
	}
	// A key the service does not know, or a header that is not a Bearer
	// token; the scheme's name is case-insensitive.
	me := "/v1/patients/" + patient
	authorization := func(value string) http.Header {
		h := http.Header{}
		h.Set("Authorization", value)
		return h
	}
	for _, value := range []string{"Bearer " + apikey.Generate(), "Bearer not-a-key"} {
		run(exchange{method: "GET", path: me, header: authorization(value),
			status: 401, code: CodeUnauthenticated})
	}
	for _, value := range []string{"Basic " + f.key, "Bearer", f.key} {
		run(exchange{method: "GET", path: me, header: authorization(value),
			status: 401, code: CodeUnauthenticated, docRejects: true})
	}
	run(exchange{method: "GET", path: me, header: authorization("bEaReR " + f.key), status: 200})
	// The key and its scope come before the path id, the content type and
	// the body.
	run(exchange{method: "GET", path: "/v1/patients/not-a-uuid", anonymous: true,
		status: 401, code: CodeUnauthenticated, docRejects: true})
	run(exchange{method: "POST", path: "/v1/patients", contentType: "text/plain", body: []byte("{"),
		anonymous: true, status: 401, code: CodeUnauthenticated, docRejects: true})
	run(exchange{method: "POST", path: "/v1/patients", contentType: "text/plain", body: []byte("{"),
		key: f.readKey, status: 403, code: CodeForbidden, docRejects: true})
	run(exchange{method: "GET", path: "/v1/patients/x/audit?limit=0", key: writeOnly,
		status: 403, code: CodeForbidden, docRejects: true})

	down := brokenServer(t, unreachablePool(t))
	run503 := func(e exchange) {
		t.Helper()
		r := c.run(down, e)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", e.method, e.path)
		}
	}
	run503(exchange{method: "GET", path: "/readyz", status: 503, code: CodeUnavailable})
	for _, e := range everyV1(503, CodeUnavailable) {
		run503(e)
	}

	closed := closedPool(t, f.pool)
	broken := brokenServer(t, closed)
	c.run(broken, exchange{method: "GET", path: "/healthz", status: 200})
	c.run(broken, exchange{method: "GET", path: "/readyz", status: 503, code: CodeUnavailable})
	for _, e := range everyV1(500, CodeInternal) {
		e.header = requestIDHeader("quote-me-" + strconv.Itoa(len(e.path)))
		r := c.run(broken, e)
		if id := r.json(t)["request_id"]; id != e.header.Get("X-Request-ID") {
			t.Errorf("%s %s: request_id %v, want the X-Request-ID %s",
				e.method, e.path, id, e.header.Get("X-Request-ID"))
		}
	}

	c.requireCoverage(map[string]bool{
		// A panic in these handlers, or a failing metrics registry, is
		// beyond what a request can cause.
		"GET /healthz 500": true,
		"GET /readyz 500":  true,
		"GET /metrics 500": true,
	})
}

// requireCoverage fails for every documented status of every operation
// that the script did not see, except those in unreachable.
func (c *conformance) requireCoverage(unreachable map[string]bool) {
	c.t.Helper()
	var missing []string
	for key, op := range operations(c.doc) {
		for status := range op.Responses.Map() {
			k := key + " " + status
			if !c.covered[k] && !unreachable[k] {
				missing = append(missing, k)
			}
		}
	}
	for _, component := range []string{"NotFound", "MethodNotAllowed"} {
		if !c.covered["components/responses/"+component] {
			missing = append(missing, "components/responses/"+component)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		c.t.Errorf("the script never sees the documented response %s", k)
	}
}

// requestIDHeader returns a header that sets X-Request-ID to id.
func requestIDHeader(id string) http.Header {
	h := http.Header{}
	h.Set("X-Request-ID", id)
	return h
}

// brokenServer serves the API over pool, which does not work, on loopback.
func brokenServer(t *testing.T, pool *pgxpool.Pool) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(New(store.New(pool), Options{}))
	t.Cleanup(ts.Close)
	return ts
}

// unreachablePool returns a pool whose server is a loopback port that
// nothing listens on any more: every connection is refused.
func unreachablePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf(
		"postgres://careteam@127.0.0.1:%d/careteam?sslmode=disable&connect_timeout=2", addr.Port))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// closedPool returns a closed pool over the same database as live: every
// query fails at once with an error that is not a connection failure.
func closedPool(t *testing.T, live *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), live.Config().Copy())
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	return pool
}
