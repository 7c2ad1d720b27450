package fhirimport

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The kinds of record the report counts.
const (
	KindPatient     = "Patient"
	KindProvider    = "Practitioner"
	KindCareTeam    = "CareTeam assignment"
	KindAttribution = "Encounter attribution"
)

var kindOrder = []string{KindPatient, KindProvider, KindCareTeam, KindAttribution}

// Counts tallies what became of the records of one kind. Every record lands
// in exactly one of Loaded, Updated, Unchanged and Skipped.
type Counts struct {
	// Loaded counts new rows.
	Loaded int `json:"loaded"`
	// Updated counts existing rows the import changed: a patient whose
	// details differ, an assignment the source now shows as ended.
	Updated int `json:"updated"`
	// Unchanged counts records the database already held as they are.
	Unchanged int `json:"unchanged"`
	// Skipped counts records that were not used, tallied in SkipReasons.
	Skipped     int            `json:"skipped"`
	SkipReasons map[string]int `json:"skip_reasons,omitempty"`
}

// Report says what an import did.
type Report struct {
	// Kinds holds the counts per kind of record: Patient, Practitioner,
	// CareTeam assignment and Encounter attribution.
	Kinds map[string]*Counts `json:"kinds"`
	// Read counts the resources read, per resource type.
	Read map[string]int `json:"read"`
	// ResourcesRead is the total of Read.
	ResourcesRead int `json:"resources_read"`
	// Files is the number of .json and .ndjson files read.
	Files int `json:"files"`
	// IgnoredFiles counts the other files found in folders.
	IgnoredFiles int `json:"ignored_files"`
	// FailedFiles counts files of which nothing was written.
	FailedFiles int `json:"failed_files"`
	// SkippedLines counts NDJSON lines that were not valid resources.
	SkippedLines int `json:"skipped_lines"`
	// FileErrors lists the files and lines that could not be used.
	FileErrors []FileError `json:"file_errors"`
	// Elapsed is the wall time of the import.
	Elapsed time.Duration `json:"-"`
}

// MarshalJSON adds the elapsed time in milliseconds and the rate.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		*plain
		ElapsedMS          float64 `json:"elapsed_ms"`
		ResourcesPerSecond float64 `json:"resources_per_second"`
	}{(*plain)(r), float64(r.Elapsed.Microseconds()) / 1000, r.ResourcesPerSecond()})
}

// ResourcesPerSecond is the rate of the import over its whole elapsed time.
func (r *Report) ResourcesPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.ResourcesRead) / r.Elapsed.Seconds()
}

// Total returns the sum of Loaded and Updated over all kinds: what the
// import wrote.
func (r *Report) Total() (written int) {
	for _, c := range r.Kinds {
		written += c.Loaded + c.Updated
	}
	return written
}

func newReport() *Report {
	r := &Report{Kinds: map[string]*Counts{}, Read: map[string]int{},
		FileErrors: []FileError{}}
	for _, k := range kindOrder {
		r.Kinds[k] = &Counts{SkipReasons: map[string]int{}}
	}
	return r
}

func (r *Report) kind(k string) *Counts { return r.Kinds[k] }

func (r *Report) addFileError(path string, line int, msg string) {
	r.FileErrors = append(r.FileErrors, FileError{Path: path, Line: line, Message: msg})
}

func (r *Report) countRead(typ string) {
	r.Read[typ]++
	r.ResourcesRead++
}

func (r *Report) skipLine() { r.SkippedLines++ }

// outcome is what became of one record.
type outcome int

const (
	outPending outcome = iota
	outLoaded
	outUpdated
	outUnchanged
	outSkipped
)

func (c *Counts) add(o outcome, reason string) {
	switch o {
	case outLoaded:
		c.Loaded++
	case outUpdated:
		c.Updated++
	case outUnchanged:
		c.Unchanged++
	case outSkipped:
		c.Skipped++
		c.SkipReasons[reason]++
	}
}

// WriteText writes the report as a table for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tloaded\tupdated\tunchanged\tskipped\t")
	for _, k := range kindOrder {
		c := r.Kinds[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", k, c.Loaded, c.Updated, c.Unchanged, c.Skipped)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report table: %w", err)
	}

	for _, k := range kindOrder {
		c := r.Kinds[k]
		if len(c.SkipReasons) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\nskipped %s:\n", k)
		reasons := make([]string, 0, len(c.SkipReasons))
		for reason := range c.SkipReasons {
			reasons = append(reasons, reason)
		}
		sort.Slice(reasons, func(i, j int) bool {
			ci, cj := c.SkipReasons[reasons[i]], c.SkipReasons[reasons[j]]
			if ci != cj {
				return ci > cj
			}
			return reasons[i] < reasons[j]
		})
		for _, reason := range reasons {
			fmt.Fprintf(&b, "  %5d  %s\n", c.SkipReasons[reason], reason)
		}
	}

	fmt.Fprintf(&b, "\nfiles: %d read, %d failed, %d ignored; %d bad lines\n",
		r.Files, r.FailedFiles, r.IgnoredFiles, r.SkippedLines)
	if len(r.FileErrors) > 0 {
		fmt.Fprintln(&b, "file errors:")
		for _, e := range r.FileErrors {
			if e.Line > 0 {
				fmt.Fprintf(&b, "  %s:%d: %s\n", e.Path, e.Line, e.Message)
			} else {
				fmt.Fprintf(&b, "  %s: %s\n", e.Path, e.Message)
			}
		}
	}
	fmt.Fprintf(&b, "resources read: %d in %s (%.0f resources/s)\n",
		r.ResourcesRead, r.Elapsed.Round(time.Millisecond), r.ResourcesPerSecond())

	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
