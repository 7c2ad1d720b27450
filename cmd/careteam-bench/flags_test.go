package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestFloatListParsesAndReplaces(t *testing.T) {
	f := floatList{0.25, 0.5}
	if err := f.Set("0.4, 1500"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if want := (floatList{0.4, 1500}); !slices.Equal(f, want) {
		t.Fatalf("got %v, want %v: a value given replaces the default", f, want)
	}
	if got := f.String(); got != "0.4,1500" {
		t.Fatalf("String() = %q", got)
	}
	for _, bad := range []string{"", "0", "-1", "abc", "0.5,", "NaN", "Inf", "1,,2"} {
		g := floatList{0.5}
		if err := g.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted %v; want an error", bad, g)
		} else if !slices.Equal(g, floatList{0.5}) {
			t.Errorf("Set(%q) failed but changed the list to %v", bad, g)
		}
	}
}

// TestAppendLatencies writes the header once, then every sample in order,
// across two appends (the slices of one scenario).
func TestAppendLatencies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.latency.csv")
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	first := []latencySample{
		{at: start.Add(1500 * time.Millisecond), lat: 2345 * time.Microsecond, label: "201"},
		{at: start.Add(2 * time.Second), lat: 12 * time.Millisecond, label: "409"},
	}
	second := []latencySample{{at: start.Add(31 * time.Second), lat: 40 * time.Millisecond, label: "no-answer"}}
	if err := appendLatencies(path, start, first); err != nil {
		t.Fatal(err)
	}
	if err := appendLatencies(path, start, second); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "t_s,latency_ms,status\n1.5000,2.345,201\n2.0000,12.000,409\n31.0000,40.000,no-answer\n"
	if string(got) != want {
		t.Fatalf("latency log:\n%s\nwant:\n%s", got, want)
	}
}
