package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/store"
)

// Defaults that work on a developer machine with PostgreSQL on its standard
// port.
const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/careteam?sslmode=disable"
	defaultListenAddr  = "127.0.0.1:8080"
)

// config is the service's configuration, read from the environment.
type config struct {
	DatabaseURL      string
	ListenAddr       string
	DBMaxConns       int32
	StatementTimeout time.Duration
	RequestTimeout   time.Duration
	ShutdownTimeout  time.Duration
	LogLevel         string
}

func loadConfig() (config, error) {
	c := config{
		DatabaseURL: env("DATABASE_URL", defaultDatabaseURL),
		ListenAddr:  env("LISTEN_ADDR", defaultListenAddr),
		LogLevel:    env("LOG_LEVEL", "info"),
	}
	var err error
	if c.StatementTimeout, err = envDuration("DB_STATEMENT_TIMEOUT", 5*time.Second); err != nil {
		return c, err
	}
	if c.RequestTimeout, err = envDuration("REQUEST_TIMEOUT", 10*time.Second); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = envDuration("SHUTDOWN_TIMEOUT", 20*time.Second); err != nil {
		return c, err
	}
	maxConns, err := envInt("DB_MAX_CONNS", 16)
	if err != nil {
		return c, err
	}
	c.DBMaxConns = int32(maxConns)
	return c, nil
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envDuration(name string, fallback time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return fallback, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 5s", name, v)
	}
	return d, nil
}

func envInt(name string, fallback int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive whole number", name, v)
	}
	return n, nil
}

// openPool returns a pool on c.DatabaseURL whose sessions run as the
// service's role (store.AppRole), under row-level security. It does not wait
// for the database: a service that starts while PostgreSQL is down serves
// 503s and recovers when it returns. Every session gets the statement
// timeout, and one left idle in a transaction is ended by the server.
func openPool(ctx context.Context, c config) (*pgxpool.Pool, error) {
	return openPoolAs(ctx, c, true)
}

// openPoolAs is openPool; asService false keeps the login role (the owner,
// for operator commands), which row-level security still holds to the
// organization each transaction sets, as it is forced.
func openPoolAs(ctx context.Context, c config, asService bool) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pc.MaxConns = c.DBMaxConns
	pc.ConnConfig.ConnectTimeout = 3 * time.Second
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(c.StatementTimeout.Milliseconds(), 10)
	pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "30000"
	pc.ConnConfig.RuntimeParams["application_name"] = "careteam"
	if asService {
		store.ConfigurePool(pc)
	}

	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
