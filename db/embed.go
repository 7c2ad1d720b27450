// Package db holds careteam's SQL: the dbmate migrations (embedded here, so
// that the binary runs exactly the files dbmate runs), the queries sqlc
// compiles, and the schema dumped from the migrations.
package db

import "embed"

// Migrations holds db/migrations/*.sql, the files "go tool dbmate" applies
// in development and "careteam migrate" applies in deploys.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// MigrationsDir is the folder of Migrations that holds the files.
const MigrationsDir = "migrations"
