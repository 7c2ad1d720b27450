package fhirimport

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/careteam/careteam/internal/dbgen"
	"github.com/careteam/careteam/internal/testdb"
)

func TestRoleFor(t *testing.T) {
	t.Parallel()
	cc := func(system, code string) []codeableConcept {
		return []codeableConcept{{Coding: []coding{{System: system, Code: code}}}}
	}
	cases := []struct {
		name  string
		roles []codeableConcept
		pr    *practitionerRoleJSON
		want  dbgen.CareTeamRole
	}{
		{"snomed pcp", cc(systemSNOMED, "453231000124104"), nil, dbgen.CareTeamRolePRIMARY},
		{"v3 pcp", cc(systemV3PartType, "PCP"), nil, dbgen.CareTeamRolePRIMARY},
		{"consultant", cc(systemV3PartType, "CON"), nil, dbgen.CareTeamRoleCONSULTANT},
		{"midwife", cc(systemV3PartFunc, "MDWF"), nil, dbgen.CareTeamRoleSPECIALIST},
		{"text only", []codeableConcept{{Text: "Primary care provider"}}, nil,
			dbgen.CareTeamRoleSPECIALIST},
		{"wrong system", cc(systemSNOMED, "PCP"), nil, dbgen.CareTeamRoleSPECIALIST},
		{"from PractitionerRole", nil,
			&practitionerRoleJSON{Code: cc(systemV3PartFunc, "PCP")}, dbgen.CareTeamRolePRIMARY},
	}
	for _, c := range cases {
		if got := roleFor(c.roles, c.pr); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestResolveReferences(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "a.json", `{"resourceType":"Bundle","entry":[
	 {"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Practitioner","id":"p1",
	  "identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1245319599"}]}},
	 {"fullUrl":"urn:uuid:ct","resource":{"resourceType":"CareTeam","id":"ct",
	  "contained":[{"resourceType":"Practitioner","id":"pr1"}]}}]}`)
	write(t, dir, "b.ndjson",
		`{"resourceType":"Practitioner","id":"p2","identifier":[{"system":"x","value":"7"}]}`+"\n")

	rep := newReport()
	var files []*sourceFile
	for _, p := range collectFiles([]string{dir}, rep) {
		f := &sourceFile{path: p, ndjson: filepath.Ext(p) == ".ndjson"}
		readFile(f, rep)
		files = append(files, f)
	}
	ix := newIndex()
	for _, f := range files {
		for _, r := range f.resources {
			ix.add(r)
		}
	}
	ct := files[0].resources[1]
	npiRef := "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1245319599"
	cases := []struct {
		ref, wantID, wantNPI, wantReason string
	}{
		{"urn:uuid:p1", "p1", "", ""},
		{"Practitioner/p2", "p2", "", ""},
		{"http://example.org/fhir/Practitioner/p2/_history/3", "p2", "", ""},
		{npiRef, "p1", "", ""},
		{"Practitioner?identifier=x|7", "p2", "", ""},
		{"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9941339100", "", "9941339100", ""},
		{"#pr1", "pr1", "", ""},
		{"#nope", "", "", reasonNoContainedID},
		{"urn:uuid:missing", "", "", reasonDangling},
		{"Practitioner/missing", "", "", reasonDangling},
		{"Practitioner?name=x", "", "", reasonBadCondition},
	}
	for _, c := range cases {
		got, reason := ix.resolve(&reference{Reference: c.ref}, ct)
		id := ""
		if got.res != nil {
			id = got.res.id
		}
		if id != c.wantID || got.npi != c.wantNPI || reason != c.wantReason {
			t.Errorf("%s: got id %q npi %q reason %q, want %q %q %q",
				c.ref, id, got.npi, reason, c.wantID, c.wantNPI, c.wantReason)
		}
	}
	logical := &reference{Identifier: &identifier{System: systemNPI, Value: "1245319599"}}
	if got, reason := ix.resolve(logical, ct); reason != "" || got.res == nil ||
		got.res.id != "p1" {
		t.Errorf("logical reference: got %+v %q", got, reason)
	}
}

func TestAttributePrimaryTieGoesToMostRecent(t *testing.T) {
	t.Parallel()
	day := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 9, 0, 0, 0, time.UTC) }
	visits := []visit{
		{at: day(2020, 1, 1), amb: true, npi: "A"},
		{at: day(2020, 6, 1), amb: true, npi: "A"},
		{at: day(2020, 2, 1), amb: true, npi: "B"},
		{at: day(2021, 3, 1), amb: true, npi: "B"},
		// Outside the window (three years before the latest visit).
		{at: day(2017, 1, 1), amb: true, npi: "A"},
		{at: day(2017, 2, 1), amb: true, npi: "A"},
		// Not ambulatory, but it is the latest visit and ends the window.
		{at: day(2021, 6, 1), amb: false, npi: "C"},
		{at: day(2021, 5, 1), amb: false, npi: "C"},
	}
	npi, start, _, ok := attributePrimary(visits)
	if !ok || npi != "B" || !start.Equal(day(2020, 2, 1)) {
		t.Errorf("got %q from %v (ok %v), want B from 2020-02-01", npi, start, ok)
	}

	visits = append(visits, visit{at: day(2019, 1, 1), amb: true, npi: "A"})
	if npi, _, _, _ := attributePrimary(visits); npi != "A" {
		t.Errorf("with a third visit of A: got %q, want A", npi)
	}
	if _, _, _, ok := attributePrimary([]visit{{at: day(2020, 1, 1), npi: "A"}}); ok {
		t.Error("no ambulatory visit: want no attribution")
	}
}

func TestResolveConflictsTwoPrimaries(t *testing.T) {
	t.Parallel()
	at := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	older := &claim{npi: "A", role: dbgen.CareTeamRolePRIMARY, start: at(2010), seq: 0}
	newer := &claim{npi: "B", role: dbgen.CareTeamRolePRIMARY, start: at(2015), seq: 1}
	sameProv := &claim{npi: "B", role: dbgen.CareTeamRoleSPECIALIST, start: at(2020), seq: 2}
	ended := &claim{npi: "A", role: dbgen.CareTeamRolePRIMARY, start: at(2001),
		ended: true, end: at(2002), seq: 3}
	dup := &claim{npi: "A", role: dbgen.CareTeamRolePRIMARY, start: at(2001),
		ended: true, end: at(2002), seq: 4}
	resolveConflicts([]*claim{older, newer, sameProv, ended, dup})

	if newer.out != outPending {
		t.Errorf("latest PRIMARY: %v %q, want kept", newer.out, newer.reason)
	}
	if older.out != outSkipped || older.reason != reasonLaterPrimary {
		t.Errorf("older PRIMARY: %v %q, want skipped", older.out, older.reason)
	}
	if sameProv.out != outSkipped || sameProv.reason != reasonProviderActive {
		t.Errorf("same provider as SPECIALIST: %v %q, want skipped", sameProv.out,
			sameProv.reason)
	}
	if ended.out != outPending || dup.reason != reasonDuplicate {
		t.Errorf("ended: %v, duplicate: %q", ended.out, dup.reason)
	}
}

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	ndPractitioner = `{"resourceType":"Practitioner","id":"d1","identifier":[{"system":` +
		`"http://hl7.org/fhir/sid/us-npi","value":"1245319599"}],` +
		`"name":[{"given":["Ann"],"family":"Doe"}]}`
	ndPatient = `{"resourceType":"Patient","id":"x1","name":[{"use":"official",` +
		`"given":["Zed"],"family":"Roe"}],"birthDate":"1970-02-03"}`
)

func TestMalformedNDJSONLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "Practitioner.ndjson", ndPractitioner+"\n{not json\n\n"+
		`{"id":"no-type"}`+"\n")
	pool := testdb.Pool(t)

	rep, err := Import(context.Background(), pool, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.FileErrors) != 2 || rep.FileErrors[0].Line != 2 || rep.FileErrors[1].Line != 4 {
		t.Fatalf("file errors %+v, want lines 2 and 4", rep.FileErrors)
	}
	if got := counts(rep.Kinds[KindProvider]); got != [4]int{1, 0, 0, 0} {
		t.Errorf("providers %v, want the good line loaded", got)
	}
}

func TestBadFileInFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "a/Practitioner.ndjson", ndPractitioner+"\n")
	write(t, dir, "b/Bundle l'été.json", "{\"resourceType\":\"Bundle\",\n\"entry\": [ oops ]}")
	// c fails in the database: the trigger below rejects its patient after
	// its practitioner was inserted in the same transaction.
	write(t, dir, "c/bundle.json", `{"resourceType":"Bundle","entry":[
	 {"resource":{"resourceType":"Practitioner","id":"c1","identifier":[{"system":
	  "http://hl7.org/fhir/sid/us-npi","value":"9941339100"}],
	  "name":[{"given":["Cy"],"family":"Cee"}]}},
	 {"resource":{"resourceType":"Patient","id":"boom","name":[{"given":["B"],
	  "family":"Explode"}]}}]}`)
	write(t, dir, "d/Patient.ndjson", ndPatient+"\n")
	write(t, dir, "d/notes.txt", "ignored")
	pool := testdb.Pool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		CREATE FUNCTION test_explode() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.family_name = 'Explode' THEN RAISE EXCEPTION 'test failure'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_explode BEFORE INSERT ON patients
			FOR EACH ROW EXECUTE FUNCTION test_explode();`)
	if err != nil {
		t.Fatalf("create trigger: %v", err)
	}

	rep, err := Import(ctx, pool, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FailedFiles != 2 || rep.IgnoredFiles != 1 || len(rep.FileErrors) != 2 {
		t.Fatalf("failed %d ignored %d errors %+v", rep.FailedFiles, rep.IgnoredFiles,
			rep.FileErrors)
	}
	if e := rep.FileErrors[0]; filepath.Base(e.Path) != "Bundle l'été.json" || e.Line != 2 {
		t.Errorf("bad JSON error %+v, want line 2 of the bundle", e)
	}
	var npis []string
	rows, err := pool.Query(ctx, "SELECT npi FROM providers ORDER BY npi")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		npis = append(npis, n)
	}
	rows.Close()
	if len(npis) != 1 || npis[0] != "1245319599" {
		t.Errorf("providers %v: want only the one of a/, c/ rolled back", npis)
	}
	var patients int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM patients").Scan(&patients); err != nil {
		t.Fatal(err)
	}
	if patients != 1 {
		t.Errorf("%d patients, want 1 (from d/)", patients)
	}
	if got := rep.Kinds[KindProvider].SkipReasons[reasonFileFailed]; got != 1 {
		t.Errorf("provider of the failed file: %d skipped as failed, want 1", got)
	}
}
