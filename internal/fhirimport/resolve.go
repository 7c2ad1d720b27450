package fhirimport

import (
	"net/url"
	"strings"
)

// index finds resources across all files by type and id and by identifier.
// When two files hold the same key, the first in load order wins; a
// reference inside a Bundle looks in its own Bundle first.
type index struct {
	byTypeID     map[string]*resource // "Practitioner/123"
	byIdentifier map[string]*resource // "Practitioner|system|value"
}

func newIndex() *index {
	return &index{byTypeID: map[string]*resource{}, byIdentifier: map[string]*resource{}}
}

func (ix *index) add(r *resource) {
	if r.id != "" {
		putFirst(ix.byTypeID, r.typ+"/"+r.id, r)
	}
	for _, id := range r.identifiers {
		if id.Value == "" {
			continue
		}
		putFirst(ix.byIdentifier, r.typ+"|"+id.System+"|"+id.Value, r)
		// A conditional reference may leave the system out.
		putFirst(ix.byIdentifier, r.typ+"||"+id.Value, r)
	}
}

func putFirst(m map[string]*resource, k string, r *resource) {
	if _, ok := m[k]; !ok {
		m[k] = r
	}
}

// target is what a reference resolves to: a resource, or, for a conditional
// reference by NPI that no file defines, the NPI alone (the provider may
// exist from an earlier import).
type target struct {
	res *resource
	npi string
	// typ is the resource type the reference names, when it names one.
	typ string
}

// Reasons a reference does not resolve. They appear in the report.
const (
	reasonDangling      = "dangling reference"
	reasonNoReference   = "empty reference"
	reasonBadCondition  = "unsupported conditional reference"
	reasonNotInBundle   = "urn reference outside a Bundle"
	reasonNoContainedID = "contained reference not found"
)

// resolve finds what ref, written in resource from, points at. It returns
// "" as the reason when it resolved.
func (ix *index) resolve(ref *reference, from *resource) (target, string) {
	if ref == nil {
		return target{}, reasonNoReference
	}
	s := strings.TrimSpace(ref.Reference)
	if s == "" {
		if ref.Identifier != nil && ref.Identifier.Value != "" {
			return ix.byLogical(ref.Type, ref.Identifier.System, ref.Identifier.Value)
		}
		return target{}, reasonNoReference
	}

	switch {
	case strings.HasPrefix(s, "#"):
		return resolveContained(s[1:], from)
	case strings.HasPrefix(s, "urn:uuid:") || strings.HasPrefix(s, "urn:oid:"):
		if from.bundle == nil {
			return target{}, reasonNotInBundle
		}
		if r, ok := from.bundle.byFullURL[s]; ok {
			return target{res: r, typ: r.typ}, ""
		}
		return target{typ: ref.Type}, reasonDangling
	case strings.Contains(s, "?"):
		return ix.conditional(s)
	}

	if from.bundle != nil {
		if r, ok := from.bundle.byFullURL[s]; ok {
			return target{res: r, typ: r.typ}, ""
		}
	}
	typ, id, ok := typeAndID(s)
	if !ok {
		return target{}, reasonDangling
	}
	if from.bundle != nil {
		if r, ok := from.bundle.byTypeID[typ+"/"+id]; ok {
			return target{res: r, typ: typ}, ""
		}
	}
	if r, ok := ix.byTypeID[typ+"/"+id]; ok {
		return target{res: r, typ: typ}, ""
	}
	return target{typ: typ}, reasonDangling
}

func resolveContained(id string, from *resource) (target, string) {
	holder := from
	if holder.container != nil {
		holder = holder.container
	}
	if r, ok := holder.contained[id]; ok {
		return target{res: r, typ: r.typ}, ""
	}
	return target{}, reasonNoContainedID
}

// typeAndID takes "Type/id", "Type/id/_history/n" or an absolute URL ending
// in either, and returns the type and the id.
func typeAndID(s string) (typ, id string, ok bool) {
	if i := strings.Index(s, "/_history/"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(strings.TrimSuffix(s, "/"), "/")
	if len(parts) < 2 {
		return "", "", false
	}
	typ, id = parts[len(parts)-2], parts[len(parts)-1]
	if typ == "" || id == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return "", "", false
	}
	return typ, id, true
}

// conditional resolves "Type?identifier=system|value" (the only search
// parameter the sample data and Synthea use).
func (ix *index) conditional(s string) (target, string) {
	typ, query, _ := strings.Cut(s, "?")
	if i := strings.LastIndex(typ, "/"); i >= 0 {
		typ = typ[i+1:]
	}
	values, err := url.ParseQuery(query)
	if err != nil || len(values) != 1 || len(values["identifier"]) != 1 {
		// ParseQuery turns "+" into a space; identifiers here hold neither.
		return target{typ: typ}, reasonBadCondition
	}
	system, value, found := strings.Cut(values["identifier"][0], "|")
	if !found {
		system, value = "", system
	}
	return ix.byLogical(typ, system, value)
}

// byLogical resolves a reference by identifier. An NPI that no file defines
// still names a provider.
func (ix *index) byLogical(typ, system, value string) (target, string) {
	if typ == "" && system == systemNPI {
		typ = "Practitioner"
	}
	if r, ok := ix.byIdentifier[typ+"|"+system+"|"+value]; ok {
		return target{res: r, typ: typ}, ""
	}
	if typ == "Practitioner" && system == systemNPI {
		return target{npi: value, typ: typ}, ""
	}
	return target{typ: typ}, reasonDangling
}
