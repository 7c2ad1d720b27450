package db_test

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"

	pgquery "github.com/pganalyze/pg_query_go/v6"

	"github.com/careteam/careteam/db"
)

// section is one "-- migrate:up" or "-- migrate:down" part of a migration.
type section struct {
	direction     string
	noTransaction bool
	sql           string
}

// sections splits a dbmate migration into its up and down parts.
func sections(body string) []section {
	var out []section
	for _, line := range strings.SplitAfter(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if dir, ok := strings.CutPrefix(trimmed, "-- migrate:"); ok {
			fields := strings.Fields(dir)
			out = append(out, section{
				direction:     fields[0],
				noTransaction: strings.Contains(dir, "transaction:false"),
			})
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].sql += line
		}
	}
	return out
}

// lintMigration returns what is wrong with one migration file.
func lintMigration(body string) []string {
	var problems []string
	parts := sections(body)
	var up, down int
	for _, s := range parts {
		switch s.direction {
		case "up":
			up++
		case "down":
			down++
		default:
			problems = append(problems, "unknown section -- migrate:"+s.direction)
		}
		stmts, err := pgquery.SplitWithParser(s.sql, true)
		if err != nil {
			problems = append(problems, s.direction+": does not parse: "+err.Error())
			continue
		}
		// Outside a transaction dbmate sends the section as one string, and
		// PostgreSQL runs a multi-statement string as one implicit
		// transaction, where CREATE INDEX CONCURRENTLY fails. One statement,
		// then, and a failure leaves nothing half done.
		if s.noTransaction && len(stmts) > 1 {
			problems = append(problems, s.direction+": transaction:false holds "+
				strconv.Itoa(len(stmts))+" statements; put each in a migration of its own")
		}
		if s.direction == "up" && len(stmts) == 0 {
			problems = append(problems, "up: no statement")
		}
		for _, stmt := range stmts {
			upper := strings.ToUpper(stmt)
			if strings.Contains(upper, "CONCURRENTLY") && !s.noTransaction {
				problems = append(problems, s.direction+": CONCURRENTLY needs transaction:false")
			}
		}
	}
	if up != 1 || down != 1 {
		problems = append(problems, "want exactly one up and one down section")
	}
	return problems
}

func TestMigrationsLint(t *testing.T) {
	entries, err := fs.ReadDir(db.Migrations, db.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no migrations embedded")
	}
	for _, e := range entries {
		body, err := fs.ReadFile(db.Migrations, db.MigrationsDir+"/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range lintMigration(string(body)) {
			t.Errorf("%s: %s", e.Name(), p)
		}
	}
}

// TestMigrationsLintCatches shows the lint refusing the mistakes it exists
// for.
func TestMigrationsLintCatches(t *testing.T) {
	cases := map[string]string{
		"two statements without a transaction": `-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY a ON t (x);
CREATE INDEX CONCURRENTLY b ON t (y);
-- migrate:down
SELECT 1;
`,
		"concurrently in a transaction": `-- migrate:up
CREATE INDEX CONCURRENTLY a ON t (x);
-- migrate:down
SELECT 1;
`,
		"no down": `-- migrate:up
SELECT 1;
`,
		"not sql": `-- migrate:up
CREAT TABLE t ();
-- migrate:down
SELECT 1;
`,
	}
	for name, body := range cases {
		if len(lintMigration(body)) == 0 {
			t.Errorf("%s: the lint let it pass", name)
		}
	}
	ok := "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY a ON t (x);\n" +
		"-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY a;\n"
	if p := lintMigration(ok); len(p) != 0 {
		t.Errorf("a good migration was refused: %v", p)
	}
}
