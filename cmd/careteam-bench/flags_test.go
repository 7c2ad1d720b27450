package main

import (
	"slices"
	"testing"
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
