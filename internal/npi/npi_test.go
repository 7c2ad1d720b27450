package npi_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/npi"
	"github.com/careteam/careteam/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func TestValid(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		// CMS's worked example, and NPIs from the sample data.
		"1234567893": true, "1245319599": true, "9941339100": true, "9999944819": true,
		"1234567890": false, "1245319598": false, "124531959": false, "12453195990": false,
		"12453I9599": false, "": false, "١٢٣٤٥٦٧٨٩٣": false,
	}
	for s, want := range cases {
		if got := npi.Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestAgreesWithTheDatabase compares Valid with npi_is_valid, the check
// constraint's function, over every last digit of many prefixes.
func TestAgreesWithTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	var candidates []string
	for i := 0; i < 300; i++ {
		nine := fmt.Sprintf("%09d", (i*7919+12345)%1_000_000_000)
		for d := 0; d < 10; d++ {
			candidates = append(candidates, fmt.Sprintf("%s%d", nine, d))
		}
	}
	rows, err := conn.Query(ctx, "SELECT n, npi_is_valid(n) FROM unnest($1::text[]) AS n", candidates)
	if err != nil {
		t.Fatal(err)
	}
	valid := 0
	for rows.Next() {
		var s string
		var db bool
		if err := rows.Scan(&s, &db); err != nil {
			t.Fatal(err)
		}
		if npi.Valid(s) != db {
			t.Errorf("%s: Valid %t, npi_is_valid %t", s, npi.Valid(s), db)
		}
		if db {
			valid++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Exactly one last digit of each prefix is the check digit.
	if valid != 300 {
		t.Errorf("%d valid NPIs among 300 prefixes, want 300", valid)
	}
}
