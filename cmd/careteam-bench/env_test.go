package main

import "testing"

// TestCheckLoopback accepts only postgres:// URLs whose every host, the
// fallbacks included, is on this machine. It connects to nothing.
func TestCheckLoopback(t *testing.T) {
	for dsn, ok := range map[string]bool{
		"postgres://postgres@127.0.0.1:5432/x":                         true,
		"postgres://postgres@localhost/x":                              true,
		"postgres://postgres@[::1]:5432/x":                             true,
		"postgres://postgres@/x?host=/var/run/postgresql":              true,
		"postgres://postgres@db.example.invalid:5432/x":                false,
		"postgres://postgres@127.0.0.1:5432,db.example.invalid:5432/x": false,
		"postgresql://postgres@127.0.0.1,10.0.0.7/x":                   false,
		"host=127.0.0.1 user=postgres":                                 false,
		"host=127.0.0.1,db.example.invalid user=postgres":              false,
	} {
		if err := checkLoopback(dsn); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", dsn, err, ok)
		}
	}
}
