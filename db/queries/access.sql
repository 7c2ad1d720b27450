-- name: Authenticate :one
-- Authenticate returns the active API key with this hash. No row means no
-- such key, or a revoked one: the caller cannot tell which, nor can a client.
SELECT k.id, k.organization_id, k.scopes
FROM careteam_authenticate(@key_hash::text) AS k;

-- name: BeginRequest :exec
-- BeginRequest authenticates the request's key and scopes the transaction
-- to its organization (careteam_begin_request); it fails with SQLSTATE
-- CT401 or CT403 when the key may not.
SELECT careteam_begin_request(@key_hash::text, @request_id::text, @write::boolean);

-- name: SetTenant :exec
-- SetTenant scopes the transaction to an organization, an actor and a
-- request: row-level security, column defaults and the audit trigger read
-- these settings. They end with the transaction.
SELECT set_config('careteam.organization_id', @organization_id::text, true),
       set_config('careteam.actor_id', @actor_id::text, true),
       set_config('careteam.request_id', @request_id::text, true);

-- name: ListPatientAudit :many
-- ListPatientAudit returns a patient's audit events, newest first, after
-- the cursor (an id; 0 for the first page). Row-level security limits them
-- to the transaction's organization.
SELECT id, occurred_at, table_name, row_id, action, actor_id, request_id, changes
FROM audit_log
WHERE organization_id = careteam_current_organization()
  AND patient_id = @patient_id::uuid
  AND (@before_id::bigint = 0 OR id < @before_id::bigint)
ORDER BY id DESC
LIMIT @max_rows::int;
