package fhirimport

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/dbgen"
)

// importLockKey is the advisory lock that serialises imports; any constant
// does, as long as nothing else in careteam takes it.
const importLockKey int64 = 0x6361726574656d31 // "caretem1"

// Reasons a record is skipped while writing.
const (
	reasonProviderDBConflict = "NPI already in the database with other names (first wins)"
	reasonPatientMissing     = "patient not in the database"
	reasonProviderMissing    = "provider not in the database"
	reasonOtherRoleActive    = "provider already active on the care team with another role"
	reasonPrimaryInDB        = "patient already has another active PRIMARY"
	reasonEndedOtherwise     = "assignment already ended in the database at another time"
	reasonRaced              = "conflicts with an assignment made meanwhile"
	reasonFileFailed         = "file not written: database error"
)

// fileWork is what one file's transaction writes.
type fileWork struct {
	patients  []*patientRec
	providers []*providerRec
	claims    []*claim
}

func (w *fileWork) empty() bool {
	return len(w.patients) == 0 && len(w.providers) == 0 && len(w.claims) == 0
}

// failAll marks every record of the file that was still to be written.
func (w *fileWork) failAll() {
	for _, r := range w.patients {
		r.out, r.reason = outSkipped, reasonFileFailed
	}
	for _, r := range w.providers {
		r.out, r.reason = outSkipped, reasonFileFailed
	}
	for _, c := range w.claims {
		c.out, c.reason = outSkipped, reasonFileFailed
	}
}

// writeFile writes one file's records in one transaction. On error nothing
// of the file stays and the caller marks its records failed.
func writeFile(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID, w *fileWork) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	// Outcomes are set on the records as the steps go; when a later step
	// fails the caller overwrites them all, as nothing of the file stays.
	q := dbgen.New(tx)
	if err := q.SetTenant(ctx, dbgen.SetTenantParams{
		OrganizationID: org.String(),
		RequestID:      "import",
	}); err != nil {
		return fmt.Errorf("set organization: %w", err)
	}
	if err := q.LockImport(ctx, importLockKey); err != nil {
		return fmt.Errorf("lock import: %w", err)
	}
	if err := writeProviders(ctx, q, w.providers); err != nil {
		return err
	}
	if err := writePatients(ctx, q, w.patients); err != nil {
		return err
	}
	if err := writeClaims(ctx, q, w.claims); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func writeProviders(ctx context.Context, q *dbgen.Queries, recs []*providerRec) error {
	if len(recs) == 0 {
		return nil
	}
	arg := dbgen.UpsertImportProvidersParams{}
	for _, r := range recs {
		arg.Npis = append(arg.Npis, r.npi)
		arg.GivenNames = append(arg.GivenNames, r.given)
		arg.FamilyNames = append(arg.FamilyNames, r.family)
		arg.Specialties = append(arg.Specialties, r.spec)
	}
	rows, err := q.UpsertImportProviders(ctx, arg)
	if err != nil {
		return fmt.Errorf("upsert providers: %w", err)
	}
	byNPI := make(map[string]dbgen.UpsertImportProvidersRow, len(rows))
	for _, row := range rows {
		byNPI[row.Npi] = row
	}
	for _, r := range recs {
		row := byNPI[r.npi]
		switch {
		case row.Inserted:
			r.out = outLoaded
		case row.SameName:
			r.out = outUnchanged
		default:
			r.out, r.reason = outSkipped, reasonProviderDBConflict
		}
	}
	return nil
}

func writePatients(ctx context.Context, q *dbgen.Queries, recs []*patientRec) error {
	if len(recs) == 0 {
		return nil
	}
	arg := dbgen.UpsertImportPatientsParams{}
	for _, r := range recs {
		arg.ExternalRefs = append(arg.ExternalRefs, r.key)
		arg.Mrns = append(arg.Mrns, r.mrn)
		arg.GivenNames = append(arg.GivenNames, r.given)
		arg.FamilyNames = append(arg.FamilyNames, r.family)
		arg.BirthDates = append(arg.BirthDates, r.birth)
	}
	rows, err := q.UpsertImportPatients(ctx, arg)
	if err != nil {
		return fmt.Errorf("upsert patients: %w", err)
	}
	written := make(map[string]bool, len(rows))
	for _, row := range rows {
		written[row.ExternalRef] = row.Inserted
	}
	for _, r := range recs {
		inserted, ok := written[r.key]
		switch {
		case !ok:
			r.out = outUnchanged
		case inserted:
			r.out = outLoaded
		default:
			r.out = outUpdated
		}
	}
	return nil
}

type assignmentKey struct {
	patient, provider uuid.UUID
	role              dbgen.CareTeamRole
	start             int64
}

// writeClaims compares a file's claims with the assignments the database
// holds for the same patients, then inserts and ends in two statements.
func writeClaims(ctx context.Context, q *dbgen.Queries, claims []*claim) error {
	if len(claims) == 0 {
		return nil
	}
	patientIDs, providerIDs, err := lookupIDs(ctx, q, claims)
	if err != nil {
		return err
	}
	ids := make([]uuid.UUID, 0, len(patientIDs))
	for _, id := range patientIDs {
		ids = append(ids, id)
	}
	existing, err := q.ListImportAssignments(ctx, ids)
	if err != nil {
		return fmt.Errorf("list assignments: %w", err)
	}
	byPatient := map[uuid.UUID][]dbgen.ListImportAssignmentsRow{}
	for _, e := range existing {
		byPatient[e.PatientID] = append(byPatient[e.PatientID], e)
	}

	var ins dbgen.InsertImportAssignmentsParams
	var insClaims []*claim
	var end dbgen.EndImportAssignmentsParams
	endClaims := map[uuid.UUID]*claim{}
	for _, c := range claims {
		patientID, ok := patientIDs[c.patientKey]
		if !ok {
			c.out, c.reason = outSkipped, reasonPatientMissing
			continue
		}
		providerID, ok := providerIDs[c.npi]
		if !ok {
			c.out, c.reason = outSkipped, reasonProviderMissing
			continue
		}
		act, id := decide(c, byPatient[patientID])
		switch act {
		case actInsert:
			ins.PatientIds = append(ins.PatientIds, patientID)
			ins.ProviderIds = append(ins.ProviderIds, providerID)
			ins.Roles = append(ins.Roles, string(c.role))
			ins.AssignedAts = append(ins.AssignedAts, c.start)
			ins.Ended = append(ins.Ended, c.ended)
			ins.RemovedAts = append(ins.RemovedAts, endOrStart(c))
			ins.RemovalReasons = append(ins.RemovalReasons, removalReasonEnded)
			insClaims = append(insClaims, c)
		case actEnd:
			end.Ids = append(end.Ids, id)
			end.RemovedAts = append(end.RemovedAts, c.end)
			end.RemovalReasons = append(end.RemovalReasons, removalReasonEnded)
			endClaims[id] = c
		}
	}

	if err := insertClaims(ctx, q, ins, insClaims, patientIDs, providerIDs); err != nil {
		return err
	}
	return endAssignments(ctx, q, end, endClaims)
}

func endOrStart(c *claim) time.Time {
	if c.ended {
		return c.end
	}
	return c.start
}

// lookupIDs locks the claims' patients and finds their providers.
func lookupIDs(ctx context.Context, q *dbgen.Queries, claims []*claim) (
	map[string]uuid.UUID, map[string]uuid.UUID, error) {
	var keys, npis []string
	seenKey, seenNPI := map[string]bool{}, map[string]bool{}
	for _, c := range claims {
		if !seenKey[c.patientKey] {
			seenKey[c.patientKey] = true
			keys = append(keys, c.patientKey)
		}
		if !seenNPI[c.npi] {
			seenNPI[c.npi] = true
			npis = append(npis, c.npi)
		}
	}

	patients, err := q.LockImportPatients(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("lock patients: %w", err)
	}
	patientIDs := make(map[string]uuid.UUID, len(patients))
	for _, p := range patients {
		patientIDs[p.ExternalRef] = p.ID
	}

	providers, err := q.ListImportProviders(ctx, npis)
	if err != nil {
		return nil, nil, fmt.Errorf("list providers: %w", err)
	}
	providerIDs := make(map[string]uuid.UUID, len(providers))
	for _, p := range providers {
		providerIDs[p.Npi] = p.ID
	}
	return patientIDs, providerIDs, nil
}

type action int

const (
	actNone action = iota
	actInsert
	actEnd
)

// decide compares a claim with the patient's assignments in the database.
// It sets the claim's outcome when nothing is to be written, and returns
// the assignment to end for actEnd.
func decide(c *claim, existing []dbgen.ListImportAssignmentsRow) (action, uuid.UUID) {
	if !c.ended {
		// An active claim matches the provider's active assignment whatever
		// its start: a team without a start in the source starts at the
		// first import, and the start of a row cannot change anyway.
		for _, e := range existing {
			if e.RemovedAt != nil || e.Npi != c.npi {
				continue
			}
			if e.Role == c.role {
				c.out = outUnchanged
			} else {
				c.out, c.reason = outSkipped, reasonOtherRoleActive
			}
			return actNone, uuid.Nil
		}
		if c.role == dbgen.CareTeamRolePRIMARY {
			for _, e := range existing {
				if e.RemovedAt == nil && e.Role == dbgen.CareTeamRolePRIMARY {
					c.out, c.reason = outSkipped, reasonPrimaryInDB
					return actNone, uuid.Nil
				}
			}
		}
		return actInsert, uuid.Nil
	}

	// An ended claim is the row with its provider, role and start.
	var active *dbgen.ListImportAssignmentsRow
	endedOtherwise := false
	for i, e := range existing {
		if e.Npi != c.npi || e.Role != c.role || !e.AssignedAt.Equal(c.start) {
			continue
		}
		switch {
		case e.RemovedAt == nil:
			active = &existing[i]
		case e.RemovedAt.Equal(c.end):
			c.out = outUnchanged
			return actNone, uuid.Nil
		default:
			endedOtherwise = true
		}
	}
	switch {
	case active != nil:
		return actEnd, active.ID
	case endedOtherwise:
		c.out, c.reason = outSkipped, reasonEndedOtherwise
		return actNone, uuid.Nil
	}
	return actInsert, uuid.Nil
}

func insertClaims(ctx context.Context, q *dbgen.Queries, arg dbgen.InsertImportAssignmentsParams,
	claims []*claim, patientIDs, providerIDs map[string]uuid.UUID) error {
	if len(claims) == 0 {
		return nil
	}
	rows, err := q.InsertImportAssignments(ctx, arg)
	if err != nil {
		return fmt.Errorf("insert assignments: %w", err)
	}
	inserted := make(map[assignmentKey]bool, len(rows))
	for _, row := range rows {
		inserted[assignmentKey{row.PatientID, row.ProviderID, row.Role,
			row.AssignedAt.UnixMicro()}] = true
	}
	for _, c := range claims {
		k := assignmentKey{patientIDs[c.patientKey], providerIDs[c.npi], c.role,
			c.start.UnixMicro()}
		if inserted[k] {
			c.out = outLoaded
		} else {
			c.out, c.reason = outSkipped, reasonRaced
		}
	}
	return nil
}

func endAssignments(ctx context.Context, q *dbgen.Queries, arg dbgen.EndImportAssignmentsParams,
	claims map[uuid.UUID]*claim) error {
	if len(claims) == 0 {
		return nil
	}
	ended, err := q.EndImportAssignments(ctx, arg)
	if err != nil {
		return fmt.Errorf("end assignments: %w", err)
	}
	done := make(map[uuid.UUID]bool, len(ended))
	for _, id := range ended {
		done[id] = true
	}
	for id, c := range claims {
		if done[id] {
			c.out = outUpdated
		} else {
			c.out, c.reason = outSkipped, reasonRaced
		}
	}
	return nil
}
