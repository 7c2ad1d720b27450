# careteam: the commands a developer and CI run. "make help" lists them.

GO        ?= go
SQLC      := $(GO) tool sqlc
# Tests run in a zone that is not UTC (the harness sets its own as well).
TEST_TZ   := Asia/Kolkata
# sqlc vet needs a migrated database: CHECK_ADMIN_URL's server gets a
# throwaway one, created and dropped by "make vet".
CHECK_ADMIN_URL    ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
CHECK_DATABASE_URL := $(subst /postgres?,/careteam_sqlc_vet?,$(CHECK_ADMIN_URL))

.PHONY: help run test generate schema check check-generated vet build bench bench-quick

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: ## Migrate and serve against DATABASE_URL, or a development PostgreSQL.
	$(GO) run ./cmd/careteam dev

test: ## Run the whole test suite against a real PostgreSQL, with the race detector.
	TZ=$(TEST_TZ) $(GO) test -race -count=1 -timeout 15m ./...

build: ## Build bin/careteam.
	$(GO) build -o bin/careteam ./cmd/careteam

generate: ## Regenerate internal/dbgen from db/queries and db/migrations.
	$(SQLC) generate

schema: ## Rewrite db/schema/schema.sql from the migrations.
	UPDATE_SCHEMA=1 $(GO) test -count=1 -run 'TestSchemaDumpIsCurrent' ./internal/migrate/

check: check-generated vet ## Fail when generated code is stale or sqlc vet objects.

check-generated: ## Fail when internal/dbgen differs from what sqlc generates.
	$(SQLC) diff

vet: ## go vet, and sqlc vet against a freshly migrated throwaway database.
	$(GO) vet ./...
	PGOPTIONS='-c client_min_messages=warning' psql "$(CHECK_ADMIN_URL)" -qc 'DROP DATABASE IF EXISTS careteam_sqlc_vet WITH (FORCE)'
	DATABASE_URL="$(CHECK_DATABASE_URL)" $(GO) run ./cmd/careteam migrate up >/dev/null
	SQLC_DATABASE_URL="$(CHECK_DATABASE_URL)" $(SQLC) vet; status=$$?; \
	  PGOPTIONS='-c client_min_messages=warning' psql "$(CHECK_ADMIN_URL)" -qc 'DROP DATABASE IF EXISTS careteam_sqlc_vet WITH (FORCE)'; \
	  exit $$status

bench: ## Benchmark the service end to end (about 6 minutes); writes bench/results/<time>.json.
	$(GO) run ./cmd/careteam-bench $(BENCH_FLAGS)

bench-quick: ## A short smoke run of the benchmark (about 40 seconds).
	$(GO) run ./cmd/careteam-bench -quick $(BENCH_FLAGS)
