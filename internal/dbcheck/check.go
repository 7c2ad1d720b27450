// Package dbcheck holds the operator's tools for the one-PRIMARY rule: find
// the rows a pending migration would reject, repair them deliberately, and
// verify that every constraint the service relies on is in force.
package dbcheck

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/dbgen"
)

// CheckDuplicatePrimaries names the one check there is today: patients with
// more than one active PRIMARY, which uq_care_team_primary cannot be built
// over.
const CheckDuplicatePrimaries = "duplicate_active_primary"

// AssignmentRef names an assignment by id and start; never by person.
type AssignmentRef struct {
	ID         uuid.UUID `json:"id"`
	AssignedAt time.Time `json:"assigned_at"`
}

// Finding is one patient whose rows a migration would reject.
type Finding struct {
	Check       string          `json:"check"`
	PatientID   uuid.UUID       `json:"patient_id"`
	Assignments []AssignmentRef `json:"assignments"`
}

// DB is what the tools need of a connection or pool.
type DB interface {
	dbgen.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Check returns every patient whose rows a pending migration would reject.
// A database without the tables yet has nothing to reject.
func Check(ctx context.Context, db DB) ([]Finding, error) {
	var exists bool
	if err := db.QueryRow(ctx, "SELECT to_regclass('public.care_team_assignments') IS NOT NULL").
		Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for the tables: %w", err)
	}
	if !exists {
		return []Finding{}, nil
	}

	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := operatorSession(ctx, tx, "db-check"); err != nil {
		return nil, err
	}
	rows, err := dbgen.New(tx).ListDuplicatePrimaries(ctx)
	if err != nil {
		return nil, fmt.Errorf("list duplicate primaries: %w", err)
	}
	return group(rows), nil
}

// operatorSession lets the transaction see every organization, as the owner
// may (the policy operator_all_organizations), and names the tool in the
// audit log's request_id.
func operatorSession(ctx context.Context, tx pgx.Tx, tool string) error {
	_, err := tx.Exec(ctx, `SELECT set_config('careteam.all_organizations', 'on', true),
		set_config('careteam.request_id', $1, true)`, tool)
	if err != nil {
		return fmt.Errorf("operator session: %w", err)
	}
	return nil
}

// group turns rows ordered by patient into one finding per patient.
func group(rows []dbgen.ListDuplicatePrimariesRow) []Finding {
	findings := []Finding{}
	for _, r := range rows {
		if n := len(findings); n == 0 || findings[n-1].PatientID != r.PatientID {
			findings = append(findings, Finding{Check: CheckDuplicatePrimaries, PatientID: r.PatientID})
		}
		last := &findings[len(findings)-1]
		last.Assignments = append(last.Assignments, AssignmentRef{ID: r.ID, AssignedAt: r.AssignedAt})
	}
	return findings
}

// Keep says which PRIMARY of a patient a repair keeps.
type Keep string

// The choices of Keep.
const (
	KeepNewest Keep = "newest"
	KeepOldest Keep = "oldest"
)

// Repair is what a repair did, or would do, to one patient.
type Repair struct {
	PatientID uuid.UUID       `json:"patient_id"`
	Kept      AssignmentRef   `json:"kept"`
	Ended     []AssignmentRef `json:"ended"`
}

// RepairReason returns the removal_reason a repair writes.
func RepairReason(keep Keep) string {
	return fmt.Sprintf("surplus active PRIMARY ended by repair-primaries (kept the %s)", keep)
}

// RepairPrimaries ends, in one transaction, every active PRIMARY but one of
// each patient that has several, keeping the newest or the oldest (by
// assigned_at, then id). With dryRun it decides the same and rolls back. On
// a clean database it changes nothing and returns no repairs.
func RepairPrimaries(ctx context.Context, db DB, keep Keep, dryRun bool) ([]Repair, error) {
	if keep != KeepNewest && keep != KeepOldest {
		return nil, fmt.Errorf("keep must be newest or oldest, not %q", keep)
	}

	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := operatorSession(ctx, tx, "repair-primaries"); err != nil {
		return nil, err
	}
	q := dbgen.New(tx)

	locked, err := q.LockDuplicatePrimaries(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock duplicate primaries: %w", err)
	}
	rows := make([]dbgen.ListDuplicatePrimariesRow, len(locked))
	for i, r := range locked {
		rows[i] = dbgen.ListDuplicatePrimariesRow(r)
	}

	repairs := []Repair{}
	var surplus []uuid.UUID
	for _, f := range group(rows) {
		// Rows come oldest first; ties on assigned_at are broken by id.
		keptAt := 0
		if keep == KeepNewest {
			keptAt = len(f.Assignments) - 1
		}
		r := Repair{PatientID: f.PatientID, Kept: f.Assignments[keptAt]}
		for i, a := range f.Assignments {
			if i != keptAt {
				r.Ended = append(r.Ended, a)
				surplus = append(surplus, a.ID)
			}
		}
		repairs = append(repairs, r)
	}

	if dryRun || len(surplus) == 0 {
		return repairs, nil
	}
	ended, err := q.EndSurplusPrimaries(ctx, dbgen.EndSurplusPrimariesParams{
		Reason: RepairReason(keep),
		Ids:    surplus,
	})
	if err != nil {
		return nil, fmt.Errorf("end surplus primaries: %w", err)
	}
	if len(ended) != len(surplus) {
		return nil, fmt.Errorf("ended %d of %d surplus primaries; rolled back", len(ended), len(surplus))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return repairs, nil
}
