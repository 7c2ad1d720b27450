package dbcheck

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AppRole is the role the service runs as.
const AppRole = "careteam_app"

// Tables that carry no audit trigger: the log itself, and dbmate's record
// of applied migrations.
var unaudited = map[string]bool{"audit_log": true, "schema_migrations": true}

// verifySecurity checks what access control and audit rely on, for every
// table, so that a table added without them fails:
//
//   - every table but the unaudited ones has a careteam_audit trigger;
//   - every table with an organization_id column that the service's role
//     can reach at all has row-level security enabled and forced, with a
//     policy;
//   - the service's role cannot bypass row-level security, owns nothing, and
//     cannot write, change or remove audit entries.
func verifySecurity(ctx context.Context, db DB) ([]string, error) {
	rows, err := db.Query(ctx, `
		SELECT c.relname::text,
		       c.relrowsecurity,
		       c.relforcerowsecurity,
		       EXISTS (SELECT FROM pg_attribute AS a
		               WHERE a.attrelid = c.oid AND a.attname = 'organization_id'
		                 AND NOT a.attisdropped) AS tenant,
		       EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = c.oid) AS has_policy,
		       EXISTS (SELECT FROM pg_trigger AS t
		               JOIN pg_proc AS f ON f.oid = t.tgfoid
		               WHERE t.tgrelid = c.oid AND f.proname = 'careteam_audit'
		                 AND t.tgenabled <> 'D') AS audited,
		       EXISTS (SELECT FROM pg_roles AS r WHERE r.rolname = $1)
		         AND (has_table_privilege($1, c.oid, 'SELECT')
		              OR has_table_privilege($1, c.oid, 'INSERT')
		              OR has_table_privilege($1, c.oid, 'UPDATE')
		              OR has_table_privilege($1, c.oid, 'DELETE')) AS reachable
		FROM pg_class AS c
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
		ORDER BY c.relname`, AppRole)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()

	var problems []string
	for rows.Next() {
		var (
			table                                     string
			rls, forced, tenant, policy, audited, app bool
		)
		if err := rows.Scan(&table, &rls, &forced, &tenant, &policy, &audited, &app); err != nil {
			return nil, fmt.Errorf("read tables: %w", err)
		}
		if !unaudited[table] && !audited {
			problems = append(problems, fmt.Sprintf("table %s has no audit trigger (careteam_audit)", table))
		}
		if tenant && app && !(rls && forced && policy) {
			problems = append(problems, fmt.Sprintf(
				"table %s holds tenant data but row-level security is not enabled, forced and with a policy "+
					"(enabled=%t, forced=%t, policy=%t)", table, rls, forced, policy))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}

	var exists, bypass, owns, writesAudit bool
	err = db.QueryRow(ctx, `
		SELECT true, r.rolsuper OR r.rolbypassrls,
		       EXISTS (SELECT FROM pg_class AS c WHERE c.relowner = r.oid)
		         OR EXISTS (SELECT FROM pg_proc AS p WHERE p.proowner = r.oid),
		       to_regclass('public.audit_log') IS NOT NULL
		         AND (has_table_privilege(r.oid, 'public.audit_log', 'INSERT')
		              OR has_table_privilege(r.oid, 'public.audit_log', 'UPDATE')
		              OR has_table_privilege(r.oid, 'public.audit_log', 'DELETE')
		              OR has_table_privilege(r.oid, 'public.audit_log', 'TRUNCATE'))
		FROM pg_roles AS r WHERE r.rolname = $1`, AppRole).Scan(&exists, &bypass, &owns, &writesAudit)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		problems = append(problems, fmt.Sprintf("role %s is missing", AppRole))
	case err != nil:
		return nil, fmt.Errorf("look up role %s: %w", AppRole, err)
	default:
		if bypass {
			problems = append(problems, fmt.Sprintf("role %s can bypass row-level security", AppRole))
		}
		if owns {
			problems = append(problems, fmt.Sprintf("role %s owns tables or functions", AppRole))
		}
		if writesAudit {
			problems = append(problems, fmt.Sprintf("role %s can write, change or remove audit entries", AppRole))
		}
	}
	return problems, nil
}
