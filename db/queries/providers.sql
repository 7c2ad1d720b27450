-- name: CreateProvider :one
-- CreateProvider inserts a provider. A taken NPI fails on uq_providers_npi,
-- one with a wrong check digit on ck_providers_npi_valid.
INSERT INTO providers (npi, given_name, family_name, specialty)
VALUES (@npi, @given_name, @family_name, sqlc.narg(specialty))
RETURNING id, npi, given_name, family_name, specialty, created_at, updated_at;

-- name: GetProvider :one
SELECT id, npi, given_name, family_name, specialty, created_at, updated_at
FROM providers
WHERE id = @id;

-- name: ListProvidersByNPI :many
-- ListProvidersByNPI returns the provider with that NPI, if any, as a list so
-- that the search endpoint can grow other filters.
SELECT id, npi, given_name, family_name, specialty, created_at, updated_at
FROM providers
WHERE npi = @npi
ORDER BY id;
