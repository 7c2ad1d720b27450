package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/dbgen"
)

// AuditEvent is one entry of the audit log: a row written, by whom, when.
type AuditEvent struct {
	ID         int64
	OccurredAt time.Time
	Table      string
	RowID      uuid.UUID
	Action     string
	ActorID    *uuid.UUID
	RequestID  *string
	// Changes maps each changed column to {"old": ..., "new": ...}, or to
	// {"redacted": true} for personal details.
	Changes json.RawMessage
}

// PatientAudit returns up to limit audit events of the patient, newest
// first, older than the event with id before (0 for the newest). A patient
// of another organization is ErrPatientNotFound.
func (s *Store) PatientAudit(ctx context.Context, patientID uuid.UUID, before int64, limit int) ([]AuditEvent, error) {
	var rows []dbgen.ListPatientAuditRow
	err := s.inTx(ctx, func(q *dbgen.Queries) error {
		exists, err := q.PatientExists(ctx, patientID)
		if err != nil {
			return err
		}
		if !exists {
			return ErrPatientNotFound
		}
		rows, err = q.ListPatientAudit(ctx, dbgen.ListPatientAuditParams{
			PatientID: patientID,
			BeforeID:  before,
			MaxRows:   int32(limit),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list patient audit: %w", translate(err))
	}

	out := make([]AuditEvent, 0, len(rows))
	for _, r := range rows {
		out = append(out, AuditEvent{
			ID:         r.ID,
			OccurredAt: r.OccurredAt,
			Table:      r.TableName,
			RowID:      r.RowID,
			Action:     r.Action,
			ActorID:    r.ActorID,
			RequestID:  r.RequestID,
			Changes:    r.Changes,
		})
	}
	return out, nil
}

// ImportTotal is the number of records that imports have read of one kind
// with one outcome.
type ImportTotal struct {
	Kind, Outcome string
	Records       int64
}

// ImportTotals returns the running totals of every import. They are counts,
// not tenant data, and need no tenant. It reads on a connection of its own,
// as the service's role, so that a metrics scrape never takes a connection
// from requests nor shows in the pool's gauges.
func (s *Store) ImportTotals(ctx context.Context) ([]ImportTotal, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect: %w", translate(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SET ROLE "+AppRole); err != nil {
		return nil, fmt.Errorf("set role: %w", translate(err))
	}
	rows, err := dbgen.New(conn).ListImportRecordTotals(ctx)
	if err != nil {
		return nil, fmt.Errorf("list import totals: %w", translate(err))
	}
	out := make([]ImportTotal, 0, len(rows))
	for _, r := range rows {
		out = append(out, ImportTotal{Kind: r.Kind, Outcome: r.Outcome, Records: r.Records})
	}
	return out, nil
}
