package fhirimport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// sourceFile is one input file and what was read from it.
type sourceFile struct {
	path   string
	index  int // position in load order, used in logs instead of the path
	ndjson bool

	resources []*resource
	// failed is set when the file could not be read at all; nothing of it
	// is loaded.
	failed bool
}

// bundleScope resolves urn:uuid and other fullUrl references inside one
// Bundle.
type bundleScope struct {
	byFullURL map[string]*resource
	byTypeID  map[string]*resource
}

// resource is one FHIR resource as read, decoded for its type.
type resource struct {
	file    *sourceFile
	bundle  *bundleScope // nil outside a Bundle
	fullURL string
	line    int // line of an NDJSON resource; 0 in a Bundle

	typ string
	id  string

	// container is the resource that holds a contained one; nil otherwise.
	container *resource
	contained map[string]*resource

	identifiers []identifier

	patient      *patientJSON
	practitioner *practitionerJSON
	role         *practitionerRoleJSON
	careTeam     *careTeamJSON
	encounter    *encounterJSON
}

// FileError is a file, or a line of one, that could not be used.
type FileError struct {
	Path    string `json:"path"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// collectFiles expands paths into the supported files under them, sorted, and
// reports what it ignores or cannot use.
func collectFiles(paths []string, rep *Report) []string {
	var out []string
	for _, p := range paths {
		// A path that cannot be read, or a file named that is of no
		// supported type, is a file that could not be loaded.
		info, err := os.Stat(p)
		if err != nil {
			rep.addFileError(p, 0, fmt.Sprintf("cannot read: %v", errors.Unwrap(err)))
			rep.FailedFiles++
			continue
		}
		if !info.IsDir() {
			if supported(p) {
				out = append(out, p)
			} else {
				rep.addFileError(p, 0, "unsupported file type (want .json or .ndjson)")
				rep.FailedFiles++
			}
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				rep.addFileError(path, 0, fmt.Sprintf("cannot read: %v", err))
				rep.FailedFiles++
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if supported(path) && d.Type().IsRegular() {
				out = append(out, path)
			} else {
				rep.IgnoredFiles++
			}
			return nil
		})
		if err != nil {
			rep.addFileError(p, 0, fmt.Sprintf("cannot walk: %v", err))
		}
	}

	sort.Strings(out)
	return dedupe(out)
}

func supported(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".json" || ext == ".ndjson"
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// readFile reads one file into f.resources. Errors that stop the whole file
// set f.failed; a bad NDJSON line is reported and skipped.
func readFile(f *sourceFile, rep *Report) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.failed = true
		rep.addFileError(f.path, 0, fmt.Sprintf("cannot read: %v", errors.Unwrap(err)))
		return
	}
	if f.ndjson {
		readNDJSON(f, data, rep)
		return
	}
	readJSON(f, data, rep)
}

func readNDJSON(f *sourceFile, data []byte, rep *Report) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), len(data)+1)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		r, err := decodeResource(text)
		if err != nil {
			rep.addFileError(f.path, line, err.Error())
			rep.skipLine()
			continue
		}
		r.file, r.line = f, line
		f.resources = append(f.resources, r)
		rep.countRead(r.typ)
	}
	if err := sc.Err(); err != nil {
		rep.addFileError(f.path, line+1, fmt.Sprintf("cannot read line: %v", err))
	}
}

type bundleJSON struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

func readJSON(f *sourceFile, data []byte, rep *Report) {
	var b bundleJSON
	if err := json.Unmarshal(data, &b); err != nil {
		f.failed = true
		rep.addFileError(f.path, errorLine(data, err), "invalid JSON: "+err.Error())
		return
	}

	if b.ResourceType != "Bundle" {
		// A lone resource is read as a Bundle of one.
		r, err := decodeResource(data)
		if err != nil {
			f.failed = true
			rep.addFileError(f.path, 1, err.Error())
			return
		}
		r.file = f
		f.resources = append(f.resources, r)
		rep.countRead(r.typ)
		return
	}

	scope := &bundleScope{byFullURL: map[string]*resource{}, byTypeID: map[string]*resource{}}
	var bad []string
	for i, e := range b.Entry {
		if len(e.Resource) == 0 {
			continue
		}
		r, err := decodeResource(e.Resource)
		if err != nil {
			bad = append(bad, fmt.Sprintf("entry %d: %v", i, err))
			continue
		}
		r.file, r.bundle, r.fullURL = f, scope, e.FullURL
		if e.FullURL != "" {
			scope.byFullURL[e.FullURL] = r
		}
		if r.id != "" {
			scope.byTypeID[r.typ+"/"+r.id] = r
		}
		f.resources = append(f.resources, r)
		rep.countRead(r.typ)
	}
	if len(bad) > 0 {
		// An entry that does not decode means the file is not what it claims
		// to be: none of it is loaded, as for invalid JSON.
		f.failed = true
		f.resources = nil
		rep.addFileError(f.path, 0, strings.Join(bad, "; "))
	}
}

// errorLine is the line of the byte offset a JSON error points at, or 0.
func errorLine(data []byte, err error) int {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// decodeResource decodes a resource's head and the parts the importer needs
// of its type.
func decodeResource(data []byte) (*resource, error) {
	var h head
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if h.ResourceType == "" {
		return nil, errors.New("not a FHIR resource: no resourceType")
	}
	r := &resource{typ: h.ResourceType, id: h.ID}

	var err error
	switch h.ResourceType {
	case "Patient":
		r.patient = &patientJSON{}
		err = json.Unmarshal(data, r.patient)
		r.identifiers = r.patient.Identifier
	case "Practitioner":
		r.practitioner = &practitionerJSON{}
		err = json.Unmarshal(data, r.practitioner)
		r.identifiers = r.practitioner.Identifier
	case "PractitionerRole":
		r.role = &practitionerRoleJSON{}
		err = json.Unmarshal(data, r.role)
	case "CareTeam":
		r.careTeam = &careTeamJSON{}
		if err = json.Unmarshal(data, r.careTeam); err == nil {
			err = decodeContained(r)
		}
	case "Encounter":
		r.encounter = &encounterJSON{}
		err = json.Unmarshal(data, r.encounter)
	case "Organization", "Location":
		var ids identifierJSON
		err = json.Unmarshal(data, &ids)
		r.identifiers = ids.Identifier
	}
	if err != nil {
		return nil, fmt.Errorf("%s %q: unexpected shape: %w", h.ResourceType, h.ID, err)
	}
	return r, nil
}

// decodeContained decodes the resources a CareTeam contains, so that "#id"
// references resolve.
func decodeContained(r *resource) error {
	for _, raw := range r.careTeam.Contained {
		c, err := decodeResource(raw)
		if err != nil {
			return fmt.Errorf("contained: %w", err)
		}
		c.container = r
		if r.contained == nil {
			r.contained = map[string]*resource{}
		}
		r.contained[c.id] = c
	}
	return nil
}
