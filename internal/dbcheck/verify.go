package dbcheck

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// uniqueIndex is a unique index the service relies on, as PostgreSQL
// describes it back.
type uniqueIndex struct {
	name    string
	table   string
	columns []string
	// predicate is pg_get_expr of the index predicate, "" for none.
	predicate string
}

// constraint is a check or foreign key the service relies on.
type constraint struct {
	name       string
	table      string
	definition string // pg_get_constraintdef
}

// The unique indexes that keep the service's rules. Each unique constraint
// is backed by an index of its name.
var uniqueIndexes = []uniqueIndex{
	{"uq_care_team_primary", "care_team_assignments", []string{"patient_id"},
		"((role = 'PRIMARY'::care_team_role) AND (removed_at IS NULL))"},
	{"uq_care_team_patient_provider", "care_team_assignments", []string{"patient_id", "provider_id"},
		"(removed_at IS NULL)"},
	{"uq_providers_npi", "providers", []string{"npi"}, ""},
	{"uq_patients_mrn", "patients", []string{"organization_id", "mrn"}, ""},
	{"uq_api_keys_key_hash", "api_keys", []string{"key_hash"}, ""},
}

var constraints = []constraint{
	{"ck_providers_npi_valid", "providers", "CHECK (npi_is_valid(npi))"},
	{"ck_care_team_assignments_removed_after_assigned", "care_team_assignments",
		"CHECK (((removed_at IS NULL) OR (removed_at >= assigned_at)))"},
	{"fk_care_team_assignments_patient", "care_team_assignments",
		"FOREIGN KEY (patient_id) REFERENCES patients(id)"},
	{"fk_care_team_assignments_provider", "care_team_assignments",
		"FOREIGN KEY (provider_id) REFERENCES providers(id)"},
	{"fk_care_team_assignments_patient_organization", "care_team_assignments",
		"FOREIGN KEY (organization_id, patient_id) REFERENCES patients(organization_id, id)"},
}

// triggers the service relies on: history cannot be rewritten or deleted.
var triggers = []struct{ name, table string }{
	{"trg_care_team_assignments_guard", "care_team_assignments"},
}

// Verify checks that every constraint the service relies on is present,
// valid, and has the expected columns and predicate. It returns one
// sentence per thing that is missing or wrong; none means all hold.
func Verify(ctx context.Context, db DB) ([]string, error) {
	var problems []string
	for _, want := range uniqueIndexes {
		p, err := verifyIndex(ctx, db, want)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
	}
	for _, want := range constraints {
		p, err := verifyConstraint(ctx, db, want)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
	}
	for _, want := range triggers {
		var enabled string
		err := db.QueryRow(ctx, `
			SELECT t.tgenabled::text FROM pg_trigger AS t
			WHERE t.tgname = $1 AND t.tgrelid = to_regclass('public.' || $2)`,
			want.name, want.table).Scan(&enabled)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			problems = append(problems, fmt.Sprintf("trigger %s on %s is missing", want.name, want.table))
		case err != nil:
			return nil, fmt.Errorf("look up trigger %s: %w", want.name, err)
		case enabled == "D":
			problems = append(problems, fmt.Sprintf("trigger %s on %s is disabled", want.name, want.table))
		}
	}
	more, err := verifySecurity(ctx, db)
	if err != nil {
		return nil, err
	}
	return append(problems, more...), nil
}

func verifyIndex(ctx context.Context, db DB, want uniqueIndex) ([]string, error) {
	var (
		table         string
		unique, valid bool
		ready         bool
		predicate     *string
		columns       []string
	)
	err := db.QueryRow(ctx, `
		SELECT t.relname, i.indisunique, i.indisvalid, i.indisready,
		       pg_get_expr(i.indpred, i.indrelid),
		       ARRAY(SELECT a.attname::text
		             FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, n)
		             JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		             ORDER BY k.n)
		FROM pg_index AS i
		JOIN pg_class AS c ON c.oid = i.indexrelid
		JOIN pg_class AS t ON t.oid = i.indrelid
		WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace`,
		want.name).Scan(&table, &unique, &valid, &ready, &predicate, &columns)
	if errors.Is(err, pgx.ErrNoRows) {
		return []string{fmt.Sprintf("index %s is missing", want.name)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up index %s: %w", want.name, err)
	}

	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("index %s ", want.name)+fmt.Sprintf(format, args...))
	}
	if !valid || !ready {
		add("is INVALID (indisvalid=%t, indisready=%t): a concurrent build failed; "+
			"run \"careteam migrate up\" to rebuild it", valid, ready)
	}
	if !unique {
		add("is not unique")
	}
	if table != want.table {
		add("is on %s, want %s", table, want.table)
	}
	if !slices.Equal(columns, want.columns) {
		add("covers %v, want %v", columns, want.columns)
	}
	got := ""
	if predicate != nil {
		got = *predicate
	}
	if got != want.predicate {
		add("has predicate %q, want %q", got, want.predicate)
	}
	return problems, nil
}

func verifyConstraint(ctx context.Context, db DB, want constraint) ([]string, error) {
	var (
		table, definition string
		validated         bool
	)
	err := db.QueryRow(ctx, `
		SELECT t.relname, pg_get_constraintdef(c.oid), c.convalidated
		FROM pg_constraint AS c
		JOIN pg_class AS t ON t.oid = c.conrelid
		WHERE c.conname = $1 AND c.connamespace = 'public'::regnamespace`,
		want.name).Scan(&table, &definition, &validated)
	if errors.Is(err, pgx.ErrNoRows) {
		return []string{fmt.Sprintf("constraint %s is missing", want.name)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up constraint %s: %w", want.name, err)
	}

	var problems []string
	if table != want.table {
		problems = append(problems, fmt.Sprintf("constraint %s is on %s, want %s", want.name, table, want.table))
	}
	if definition != want.definition {
		problems = append(problems, fmt.Sprintf("constraint %s is %q, want %q", want.name, definition, want.definition))
	}
	if !validated {
		problems = append(problems, fmt.Sprintf("constraint %s is NOT VALID: existing rows were never checked", want.name))
	}
	return problems, nil
}
