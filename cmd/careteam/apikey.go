package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/dbgen"
)

func init() {
	commands["apikey"] = command{
		summary: "apikey create --org NAME --name NAME --scopes read,write | list [--org NAME] | revoke ID",
		run:     runAPIKey,
	}
}

// runAPIKey manages API keys. It connects as DATABASE_URL's role, which
// must be the owner (the role that runs the migrations): the service's role
// cannot read keys.
func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}

	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		org := fs.String("org", "", "organization name (made if missing)")
		name := fs.String("name", "", "what the key is for")
		scopes := fs.String("scopes", "read", "read, write, or read,write")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || *org == "" || *name == "" {
			return errUsage
		}
		parsed, err := apikey.ParseScopes(*scopes)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer conn.Close(ctx)
		made, err := apikey.Create(ctx, conn, *org, *name, parsed)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s for organization %q (%s), scopes %v; it is shown once:\n",
			made.ID, *org, made.OrganizationID, parsed)
		fmt.Fprintln(stdout, made.Key)
		return nil

	case "list":
		fs := flag.NewFlagSet("apikey list", flag.ContinueOnError)
		fs.SetOutput(stderr)
		org := fs.String("org", "", "only this organization's keys")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
			return errUsage
		}
		conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer conn.Close(ctx)
		keys, err := apikey.List(ctx, conn, *org)
		if err != nil {
			return err
		}
		for _, k := range keys {
			state := "active"
			if k.RevokedAt != nil {
				state = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%v\tcreated %s\t%s\n", k.ID, k.Organization, k.Name,
				k.Scopes, k.CreatedAt.UTC().Format(time.RFC3339), state)
		}
		return nil

	case "revoke":
		if len(args) != 2 {
			return errUsage
		}
		id, err := uuid.Parse(args[1])
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("key id %q is not a UUID (see apikey list)", args[1])}
		}
		conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer conn.Close(ctx)
		if err := apikey.Revoke(ctx, conn, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s; it stops working at once\n", id)
		return nil

	default:
		return errUsage
	}
}

// ensureOrganization returns the id of the organization with that name,
// making it when missing, as the owner.
func ensureOrganization(ctx context.Context, cfg config, name string) (uuid.UUID, error) {
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return uuid.Nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	id, err := dbgen.New(conn).EnsureOrganization(ctx, name)
	if err != nil {
		return uuid.Nil, fmt.Errorf("organization %q: %w", name, err)
	}
	return id, nil
}
