// Package api holds careteam's OpenAPI document, the machine-readable form
// of the REST contract in API.md.
package api

import _ "embed"

// OpenAPI is openapi.yaml, the OpenAPI 3.0 document of the service's
// routes, bodies, statuses and problems.
//
//go:embed openapi.yaml
var OpenAPI []byte
