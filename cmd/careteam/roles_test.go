package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careteam/careteam/internal/testdb"
)

// TestDeployWithTheDocumentedRoles runs a deploy as the README's Security
// section describes it, with no superuser: an owner that may not create
// roles migrates, makes a key, imports and verifies; the service logs in as
// a member of careteam_app and serves; both stay within their privileges.
func TestDeployWithTheDocumentedRoles(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Server(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	owner, service := "owner_"+hex.EncodeToString(suffix), "service_"+hex.EncodeToString(suffix)
	dsn := testdb.Empty(t)
	dbName := strings.TrimPrefix(mustURL(t, dsn).Path, "/")

	su, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	for _, stmt := range []string{
		// What a DBA does once: the roles, and the database for the owner.
		`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'careteam_app') THEN
			CREATE ROLE careteam_app NOLOGIN NOBYPASSRLS NOINHERIT; END IF; END $$`,
		"CREATE ROLE " + owner + " LOGIN NOSUPERUSER NOCREATEROLE",
		"CREATE ROLE " + service + " LOGIN NOSUPERUSER IN ROLE careteam_app",
		"ALTER DATABASE " + dbName + " OWNER TO " + owner,
	} {
		if _, err := su.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		// The database goes first (testdb's cleanup runs after this one is
		// registered, so drop it here), then the roles.
		_, _ = su.Exec(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
		_, _ = su.Exec(context.Background(), "DROP ROLE IF EXISTS "+service)
		_, _ = su.Exec(context.Background(), "DROP ROLE IF EXISTS "+owner)
	})
	ownerURL, serviceURL := withUser(t, dsn, owner), withUser(t, dsn, service)

	if code, out := careteam(t, ownerURL, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up as the owner: exit %d\n%s", code, out)
	}
	code, out := careteam(t, ownerURL, "apikey", "create", "--org", "acme", "--name", "k", "--scopes", "read,write")
	if code != 0 {
		t.Fatalf("apikey create as the owner: exit %d\n%s", code, out)
	}
	key := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if code, out := careteam(t, ownerURL, "db", "verify"); code != 0 {
		t.Fatalf("verify as the owner: exit %d\n%s", code, out)
	}

	cfg := testConfig(t, serviceURL)
	srv := startServe(ctx, t, cfg)
	client := &http.Client{Timeout: 10 * time.Second, Transport: bearer{key: key}}
	res, err := client.Post(srv.url+"/v1/patients", "application/json",
		strings.NewReader(`{"given_name":"A","family_name":"B"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("create a patient through the service's login: %d %s", res.StatusCode, body)
	}

	// The service's login cannot read keys nor write the audit log.
	conn, err := pgx.Connect(ctx, serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{"SELECT count(*) FROM api_keys", "DELETE FROM audit_log"} {
		_, err := conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the service's login: %v, want permission denied", stmt, err)
		}
	}
	srv.stop()
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func withUser(t *testing.T, dsn, user string) string {
	u := mustURL(t, dsn)
	u.User = url.User(user)
	return u.String()
}
