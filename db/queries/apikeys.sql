-- name: EnsureOrganization :one
-- EnsureOrganization returns the organization with this name, making it
-- when there is none.
WITH made AS (
    INSERT INTO organizations (name) VALUES (@name)
    ON CONFLICT (name) DO NOTHING
    RETURNING id
)
SELECT id FROM made
UNION ALL
SELECT id FROM organizations WHERE name = @name
LIMIT 1;

-- name: CreateAPIKey :one
-- CreateAPIKey stores a new key's hash; the key itself is never stored.
INSERT INTO api_keys (organization_id, name, key_hash, scopes)
VALUES (@organization_id, @name, @key_hash, @scopes::text[])
RETURNING id, created_at;

-- name: ListAPIKeys :many
-- ListAPIKeys lists keys, of one organization when a name is given, without
-- their hashes.
SELECT k.id, o.name AS organization, k.name, k.scopes, k.created_at, k.revoked_at
FROM api_keys AS k
JOIN organizations AS o ON o.id = k.organization_id
WHERE (@organization::text = '' OR o.name = @organization::text)
ORDER BY o.name, k.created_at, k.id;

-- name: RevokeAPIKey :one
-- RevokeAPIKey ends a key; it stops working at the next request.
UPDATE api_keys
SET revoked_at = clock_timestamp()
WHERE id = @id AND revoked_at IS NULL
RETURNING id, revoked_at;
