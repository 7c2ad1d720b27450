-- migrate:up

-- audit_log records every insert, update and soft delete of every table:
-- which row, what changed (old and new values), who (the API key), in which
-- request and organization, and when. Names, birth dates, MRNs and key
-- hashes are not copied: the log says they changed, not to what.
CREATE TABLE audit_log (
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    organization_id uuid,
    table_name      text        NOT NULL,
    row_id          uuid        NOT NULL,
    patient_id      uuid,
    action          text        NOT NULL,
    actor_id        uuid,
    request_id      text,
    changes         jsonb       NOT NULL,

    CONSTRAINT pk_audit_log PRIMARY KEY (id),
    CONSTRAINT ck_audit_log_action
        CHECK (action IN ('INSERT', 'UPDATE', 'SOFT_DELETE', 'DELETE'))
);

-- "This patient's history", newest first.
CREATE INDEX ix_audit_log_patient
    ON audit_log (organization_id, patient_id, id DESC)
    WHERE patient_id IS NOT NULL;

-- "This organization, this time range".
CREATE INDEX ix_audit_log_organization_occurred_at
    ON audit_log (organization_id, occurred_at);

-- careteam_audit writes one audit row for the row that fired it. Its
-- arguments name the columns whose values are never copied. It runs as the
-- owner, so the service's role needs, and has, no privilege to write the
-- log: to it the log is read-only.
CREATE FUNCTION careteam_audit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    -- Old and new instants are written in UTC, whatever the session's zone.
    SET timezone = 'UTC'
AS $$
DECLARE
    new_row jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
    old_row jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
    row_data jsonb := CASE WHEN TG_OP = 'DELETE' THEN old_row ELSE new_row END;
    changes jsonb;
    kind text := TG_OP;
BEGIN
    -- One set-based pass over the columns: cheaper than a loop that
    -- concatenates. The database keeps the times itself, which would only
    -- repeat occurred_at, and the organization is a column of the entry.
    SELECT coalesce(jsonb_object_agg(col, CASE
               WHEN col = ANY (TG_ARGV) THEN jsonb_build_object('redacted', true)
               WHEN TG_OP = 'INSERT' THEN jsonb_build_object('new', new_row -> col)
               WHEN TG_OP = 'DELETE' THEN jsonb_build_object('old', old_row -> col)
               ELSE jsonb_build_object('old', old_row -> col, 'new', new_row -> col)
           END), '{}'::jsonb)
      INTO changes
      FROM jsonb_object_keys(old_row || new_row) AS col
     WHERE col NOT IN ('created_at', 'updated_at', 'organization_id')
       AND (TG_OP <> 'UPDATE' OR new_row -> col IS DISTINCT FROM old_row -> col);

    IF TG_OP = 'UPDATE' THEN
        IF changes = '{}'::jsonb THEN
            RETURN NULL;
        END IF;
        -- Ending an assignment or revoking a key is a soft delete.
        IF (old_row -> 'removed_at' = 'null'::jsonb AND new_row -> 'removed_at' <> 'null'::jsonb)
            OR (old_row -> 'revoked_at' = 'null'::jsonb AND new_row -> 'revoked_at' <> 'null'::jsonb) THEN
            kind := 'SOFT_DELETE';
        END IF;
    END IF;

    INSERT INTO audit_log (organization_id, table_name, row_id, patient_id, action,
                           actor_id, request_id, changes)
    VALUES (
        coalesce((row_data ->> 'organization_id')::uuid, careteam_current_organization()),
        TG_TABLE_NAME,
        (row_data ->> 'id')::uuid,
        CASE TG_TABLE_NAME
            WHEN 'patients' THEN (row_data ->> 'id')::uuid
            ELSE (row_data ->> 'patient_id')::uuid
        END,
        kind,
        NULLIF(current_setting('careteam.actor_id', true), '')::uuid,
        NULLIF(current_setting('careteam.request_id', true), ''),
        changes);
    RETURN NULL;
END
$$;

CREATE TRIGGER trg_organizations_audit
    AFTER INSERT OR UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION careteam_audit();
CREATE TRIGGER trg_patients_audit
    AFTER INSERT OR UPDATE OR DELETE ON patients
    FOR EACH ROW EXECUTE FUNCTION careteam_audit('given_name', 'family_name', 'birth_date', 'mrn', 'external_ref');
CREATE TRIGGER trg_providers_audit
    AFTER INSERT OR UPDATE OR DELETE ON providers
    FOR EACH ROW EXECUTE FUNCTION careteam_audit('given_name', 'family_name');
CREATE TRIGGER trg_care_team_assignments_audit
    AFTER INSERT OR UPDATE OR DELETE ON care_team_assignments
    FOR EACH ROW EXECUTE FUNCTION careteam_audit();
CREATE TRIGGER trg_api_keys_audit
    AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION careteam_audit('key_hash');

-- The service reads its organization's log and nothing else; it can neither
-- write, change nor remove entries.
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log FOR SELECT
    USING (organization_id = careteam_current_organization());
CREATE POLICY operator_all_organizations ON audit_log FOR SELECT TO CURRENT_USER
    USING (current_setting('careteam.all_organizations', true) = 'on');
CREATE POLICY audit_writer ON audit_log FOR INSERT TO CURRENT_USER
    WITH CHECK (true);
GRANT SELECT ON audit_log TO careteam_app;

-- migrate:down

DROP TRIGGER trg_api_keys_audit ON api_keys;
DROP TRIGGER trg_care_team_assignments_audit ON care_team_assignments;
DROP TRIGGER trg_providers_audit ON providers;
DROP TRIGGER trg_patients_audit ON patients;
DROP TRIGGER trg_organizations_audit ON organizations;
DROP FUNCTION careteam_audit();
REVOKE ALL ON audit_log FROM careteam_app;
DROP TABLE audit_log;
