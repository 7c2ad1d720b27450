-- migrate:up

-- An API key lets a client act for one organization. Only a SHA-256 hash of
-- the key is stored: the key itself is shown once, when it is made. Keys
-- carry 256 random bits, so a fast hash is enough; a slow one would only
-- slow every request. Revoking sets revoked_at, and the key stops working
-- at the next request: nothing caches it.
CREATE TABLE api_keys (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    key_hash        text        NOT NULL,
    scopes          text[]      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,

    CONSTRAINT pk_api_keys PRIMARY KEY (id),
    CONSTRAINT fk_api_keys_organization
        FOREIGN KEY (organization_id) REFERENCES organizations (id),
    CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash),
    CONSTRAINT ck_api_keys_key_hash_sha256 CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT ck_api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT ck_api_keys_scopes
        CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['read', 'write']::text[])
);

CREATE TRIGGER trg_api_keys_set_updated_at
    BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- careteam_authenticate returns the active key with that hash, if any. It
-- runs as the owner, so that the service's role, which has no privilege on
-- api_keys at all, can check a key without reading the table. The caller
-- already holds the key, so the row's hash tells it nothing new.
CREATE FUNCTION careteam_authenticate(p_key_hash text)
    RETURNS SETOF api_keys
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
AS $$
    SELECT k.*
    FROM api_keys AS k
    WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL
$$;

REVOKE ALL ON FUNCTION careteam_authenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION careteam_authenticate(text) TO careteam_app;

-- careteam_begin_request authenticates a request's key and scopes the
-- transaction to its organization, actor and request id, in the statement
-- that precedes the request's own work, so that both travel in one round
-- trip. A key that is unknown or revoked raises SQLSTATE CT401; one without
-- the scope the request needs (write, or else read) raises CT403. Either
-- aborts the transaction before the work runs.
CREATE FUNCTION careteam_begin_request(p_key_hash text, p_request_id text, p_write boolean)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = public, pg_temp
AS $$
DECLARE
    k api_keys;
BEGIN
    SELECT * INTO k FROM api_keys WHERE key_hash = p_key_hash AND revoked_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unauthenticated' USING ERRCODE = 'CT401';
    END IF;
    IF NOT (CASE WHEN p_write THEN 'write' ELSE 'read' END) = ANY (k.scopes) THEN
        RAISE EXCEPTION 'forbidden' USING ERRCODE = 'CT403';
    END IF;
    PERFORM set_config('careteam.organization_id', k.organization_id::text, true),
            set_config('careteam.actor_id', k.id::text, true),
            set_config('careteam.request_id', p_request_id, true);
    RETURN k.organization_id;
END
$$;

REVOKE ALL ON FUNCTION careteam_begin_request(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION careteam_begin_request(text, text, boolean) TO careteam_app;

-- migrate:down

DROP FUNCTION careteam_begin_request(text, text, boolean);
DROP FUNCTION careteam_authenticate(text);
DROP TABLE api_keys;
