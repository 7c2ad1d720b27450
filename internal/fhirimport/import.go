// Package fhirimport loads patients, providers and care-team assignments
// from FHIR R4 files: Bundles (.json) and Bulk Data NDJSON (.ndjson), given
// as files or as folders searched recursively. Other files in folders are
// counted as ignored; a file given by name that is neither is reported.
//
// # Order and transactions
//
// The importer reads every file first and indexes every resource, so that a
// reference into another file resolves whatever the order on the command
// line. It then writes file by file, one transaction per file: a file's
// records are written together or not at all. Files that hold only
// Practitioners, PractitionerRoles, Organizations and Locations go first,
// then files with Patients, then the rest (Encounters, CareTeams), each
// group in path order. "First" below means first in that order. A patient
// or provider whose first record is in a file that loads after one whose
// assignments need it is written with the earlier file, so that the first
// run already loads those assignments.
//
// A file that is not valid JSON, or a Bundle entry of an unexpected shape,
// is reported with its line and nothing of it is loaded. A bad NDJSON line
// is reported with its line number and skipped; the rest of the file loads.
//
// # References
//
// A reference may be a Bundle fullUrl (urn:uuid:...), Type/id (relative, or
// absolute, or with /_history/), a conditional Type?identifier=system|value,
// a contained #id, or a logical reference by identifier. Type/id looks in
// the same Bundle first, then in all files. A conditional reference by NPI
// that no file defines still names the provider with that NPI, which may
// exist from an earlier import.
//
// # Patients
//
// A Patient's external_ref is "system|value" of its MR-typed identifier,
// else of its first identifier with a system, else "Patient/<id>". A later
// run finds the same row by it and updates names, birth date and MRN when
// they differ. The name is given[0] and family of the first official or
// usual name (else the first name without a use, else the first name). The
// MRN is set only when the patient's MR identifiers agree on one value, no
// other patient of the import claims it and no other patient in the
// database holds it; otherwise it stays empty. The same external_ref in
// several files: the first record wins; a later identical one counts as
// unchanged and a differing one is skipped.
//
// # Providers
//
// A Practitioner becomes a provider when it has a valid NPI (system
// http://hl7.org/fhir/sid/us-npi, ten digits with the Luhn check over
// 80840 and the first nine); otherwise it is skipped with the reason. The
// NPI is the provider's identity and the first record wins: an existing
// provider is never changed; a later record with the same names counts as
// unchanged and one with other names is skipped as a conflict. The
// specialty comes from the first PractitionerRole naming the practitioner.
//
// # Care-team assignments
//
// Each CareTeam participant that is a Practitioner (directly, through a
// PractitionerRole or contained) becomes an assignment of the CareTeam's
// subject. Participants that are patients, organizations or related persons
// are not assignments and are not counted. A CareTeam entered-in-error or
// proposed is skipped. One that is inactive, or whose period (the
// participant's, else the team's) has ended, gives an ended assignment:
// assigned_at is the period start, removed_at the end (never before the
// start), removal_reason "care team ended in source". An active team gives
// an active assignment starting at the period start, or at the time of the
// first import when the source gives none.
//
// Roles: PRIMARY for SNOMED 453231000124104 (Primary care provider) or
// 446050000 (Primary care physician), or code PCP in v3
// ParticipationFunction or ParticipationType; CONSULTANT for code CON in
// either v3 system; SPECIALIST for anything else, including text-only
// roles. When the participant's roles carry none of these codes, the codes
// of the PractitionerRole it names are tried.
//
// # Primary care attributed from encounters
//
// A patient none of whose CareTeam participants has a primary-care role
// (all Synthea data) gets an active PRIMARY from encounters: the
// practitioner (with a valid NPI) who performed the most ambulatory
// encounters (Encounter.class AMB) in the patient's last three years of
// encounters, the window ending at the start of the patient's latest
// encounter of any class. The performer is the participant typed PPRF
// (primary performer), or, when no participant is typed PPRF, an untyped
// participant. A tie goes to the practitioner with the most recent
// encounter, then to the lower NPI. The assignment starts at the winner's
// first ambulatory encounter in the window and is written with the file
// holding the winner's latest one.
//
// # Invariants
//
// Within one import, per patient: identical entries count once (the rest
// are skipped as duplicates); a provider is active at most once, keeping a
// PRIMARY over another role, then the latest start, then the first read;
// at most one active PRIMARY remains, the one with the latest start (ties:
// the first read), and the others are skipped, not demoted. Against the
// database: an active entry whose provider is already active on the
// patient's team is unchanged when the role matches and skipped otherwise;
// an active PRIMARY is skipped when the patient already has another; an
// ended entry matches the row with its provider, role and start, and ends
// it when that row is still active. Rows are never deleted and ended rows
// never change, so a second run of the same import writes nothing.
//
// Logs carry file positions and counts, never file names (Synthea names
// files after patients), names or birth dates.
package fhirimport

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// defaultOrganizationID is the organization the migrations made for rows
// that name none.
var defaultOrganizationID = uuid.MustParse("00000000-0000-0000-0000-000000000001")

// Options tune an import. The zero value is ready to use.
type Options struct {
	// Now gives the time of the import, the start of active assignments
	// whose source has none. It defaults to time.Now.
	Now func() time.Time
	// Log receives one line per file and per failure, with ids and counts
	// only. It defaults to discarding.
	Log *slog.Logger
	// OrganizationID owns the imported patients and their care teams. It
	// defaults to the default organization.
	OrganizationID uuid.UUID
}

// Import reads the FHIR files under paths and writes their patients,
// providers and assignments, one transaction per file. Problems with the
// input go into the report; the error is for a cancelled context.
func Import(ctx context.Context, pool *pgxpool.Pool, paths []string,
	opts Options) (*Report, error) {
	started := time.Now()
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	org := opts.OrganizationID
	if org == uuid.Nil {
		org = defaultOrganizationID
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	rep := newReport()
	var files []*sourceFile
	for _, path := range collectFiles(paths, rep) {
		f := &sourceFile{path: path,
			ndjson: strings.EqualFold(filepath.Ext(path), ".ndjson")}
		readFile(f, rep)
		if f.failed {
			rep.FailedFiles++
		}
		files = append(files, f)
	}
	rep.Files = len(files)
	sortLoadOrder(files)

	p := buildPlan(files, now())
	writeEarly(p)
	work := groupByFile(files, p)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("import: %w", err)
		}
		w := work[f]
		if f.failed || w.empty() {
			continue
		}
		if err := writeFile(ctx, pool, org, w); err != nil {
			w.failAll()
			rep.FailedFiles++
			rep.addFileError(f.path, 0, err.Error())
			log.ErrorContext(ctx, "import file failed", "file_index", f.index, "err", err)
			if ctx.Err() != nil {
				return rep, fmt.Errorf("import: %w", ctx.Err())
			}
			continue
		}
		log.InfoContext(ctx, "imported file", "file_index", f.index,
			"resources", len(f.resources), "patients", len(w.patients),
			"providers", len(w.providers), "assignments", len(w.claims))
	}

	tally(rep, p)
	rep.Elapsed = time.Since(started)
	log.InfoContext(ctx, "import done", "files", rep.Files, "resources", rep.ResourcesRead,
		"written", rep.Total(), "failed_files", rep.FailedFiles,
		"elapsed_ms", rep.Elapsed.Milliseconds())
	return rep, nil
}

// sortLoadOrder puts files of reference data first, then files with
// patients, then the rest, each group in path order, and numbers them.
func sortLoadOrder(files []*sourceFile) {
	rank := func(f *sourceFile) int {
		onlyReference := len(f.resources) > 0
		for _, r := range f.resources {
			switch r.typ {
			case "Patient":
				return 1
			case "Practitioner", "PractitionerRole", "Organization", "Location":
			default:
				onlyReference = false
			}
		}
		if onlyReference {
			return 0
		}
		return 2
	}
	ranks := make(map[*sourceFile]int, len(files))
	for _, f := range files {
		ranks[f] = rank(f)
	}
	sort.SliceStable(files, func(i, j int) bool {
		if ranks[files[i]] != ranks[files[j]] {
			return ranks[files[i]] < ranks[files[j]]
		}
		return files[i].path < files[j].path
	})
	for i, f := range files {
		f.index = i
	}
}

// writeEarly moves a patient or provider record to the first file whose
// assignments need it, when that file loads before the record's own: a
// PRIMARY in one Bundle can name a practitioner whose first record is in a
// later one. Without the move the first run would skip the assignment and
// the second would load it.
func writeEarly(p *plan) {
	patients := map[string]*patientRec{}
	for _, r := range p.patients {
		if r.out == outPending {
			patients[r.key] = r
		}
	}
	providers := map[string]*providerRec{}
	for _, r := range p.providers {
		if r.out == outPending {
			providers[r.npi] = r
		}
	}
	for _, c := range p.claims {
		if c.out != outPending {
			continue
		}
		if r := patients[c.patientKey]; r != nil && r.file.index > c.file.index {
			r.file = c.file
		}
		if r := providers[c.npi]; r != nil && r.file.index > c.file.index {
			r.file = c.file
		}
	}
}

// groupByFile hands each file the records still to be written.
func groupByFile(files []*sourceFile, p *plan) map[*sourceFile]*fileWork {
	work := make(map[*sourceFile]*fileWork, len(files))
	for _, f := range files {
		work[f] = &fileWork{}
	}
	for _, r := range p.patients {
		if r.out == outPending {
			work[r.file].patients = append(work[r.file].patients, r)
		}
	}
	for _, r := range p.providers {
		if r.out == outPending {
			work[r.file].providers = append(work[r.file].providers, r)
		}
	}
	for _, c := range p.claims {
		if c.out == outPending {
			work[c.file].claims = append(work[c.file].claims, c)
		}
	}
	return work
}

func tally(rep *Report, p *plan) {
	for _, r := range p.patients {
		rep.kind(KindPatient).add(r.out, r.reason)
	}
	for _, r := range p.providers {
		rep.kind(KindProvider).add(r.out, r.reason)
	}
	for _, c := range p.claims {
		rep.kind(c.kind).add(c.out, c.reason)
	}
}
