package main

import (
	"context"
	"fmt"
	"io"

	"github.com/careteam/careteam/internal/migrate"
)

func init() {
	commands["migrate"] = command{
		summary: "migrate up|down|status: apply, roll back one, or list the embedded migrations",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			if len(args) != 1 {
				return errUsage
			}
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			m := migrate.New(cfg.DatabaseURL, stdout)

			switch args[0] {
			case "up":
				if err := m.Up(ctx); err != nil {
					return err
				}
				// A migration that "succeeded" but left a constraint missing
				// or INVALID must fail the deploy here, not later.
				return dbVerify(ctx, cfg, nil, stdout)
			case "down":
				return m.Down()
			case "status":
				pending, err := m.Status()
				if err != nil {
					// 1 means pending migrations; not knowing is 2, as for db check.
					return &exitError{code: 2, err: err}
				}
				if pending > 0 {
					return &exitError{code: 1, err: fmt.Errorf("%d migration(s) pending", pending)}
				}
				return nil
			default:
				return errUsage
			}
		},
	}
}
