package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/migrate"
	"github.com/careteam/careteam/internal/pgcluster"
)

// devClusterPort is where "careteam dev" runs its own PostgreSQL when no
// server answers; fixed, so that DATABASE_URL stays the same across runs.
const devClusterPort = 54329

// devDataDir is the ignored folder that keeps the development cluster's data
// between runs.
const devDataDir = ".devdb"

func init() {
	commands["dev"] = command{
		summary: "migrate and serve for development (what \"make run\" runs)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			if len(args) != 0 {
				return errUsage
			}
			return dev(ctx, stdout, stderr)
		},
	}
}

// dev finds a database, migrates it and serves. The database is DATABASE_URL
// when set; otherwise the default one when a server answers on the default
// address; otherwise a cluster of its own, started from the machine's
// PostgreSQL binaries with its data in .devdb/, so a restart keeps what was
// entered.
func dev(ctx context.Context, stdout, stderr io.Writer) error {
	if os.Getenv("DATABASE_URL") == "" {
		if answers(ctx, defaultDatabaseURL) {
			fmt.Fprintf(stderr, "dev: using the PostgreSQL that answers at %s\n", defaultDatabaseURL)
		} else {
			cluster, err := startDevCluster(ctx, stderr)
			if err != nil {
				return err
			}
			defer func() {
				fmt.Fprintln(stderr, "dev: stopping the development cluster")
				_ = cluster.Stop()
			}()
			os.Setenv("DATABASE_URL", cluster.URL("careteam"))
		}
	}

	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if err := migrate.New(cfg.DatabaseURL, stderr).Up(ctx); err != nil {
		return err
	}
	if err := printDevKey(ctx, cfg, stderr); err != nil {
		return err
	}
	return serve(ctx, cfg, stdout)
}

// answers reports whether a server accepts connections for dsn. A missing
// database still counts: migrate creates it.
func answers(ctx context.Context, dsn string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return false
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

func startDevCluster(ctx context.Context, stderr io.Writer) (*pgcluster.Cluster, error) {
	dir, err := filepath.Abs(devDataDir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "dev: no PostgreSQL answers at %s; starting one in %s on 127.0.0.1:%d\n",
		defaultDatabaseURL, devDataDir, devClusterPort)
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Port: devClusterPort, Durable: true})
	if err != nil {
		return nil, fmt.Errorf("start a development PostgreSQL (install PostgreSQL, or set DATABASE_URL): %w", err)
	}
	return cluster, nil
}

// devOrganization owns what a developer enters through "make run".
const devOrganization = "development"

// printDevKey makes a fresh read-write key of the development organization
// and prints it: keys are stored hashed, so an old one cannot be shown
// again.
func printDevKey(ctx context.Context, cfg config, w io.Writer) error {
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	made, err := apikey.Create(ctx, conn, devOrganization, "make run "+time.Now().UTC().Format(time.RFC3339),
		[]string{apikey.ScopeRead, apikey.ScopeWrite})
	if err != nil {
		return fmt.Errorf("development key: %w", err)
	}
	fmt.Fprintf(w, "dev: API key of organization %q (read, write):\n\n    export CARETEAM_KEY=%s\n\n"+
		"dev: then: curl -H \"Authorization: Bearer $CARETEAM_KEY\" ...\n", devOrganization, made.Key)
	return nil
}
