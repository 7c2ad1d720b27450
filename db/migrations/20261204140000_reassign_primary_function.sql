-- migrate:up

-- careteam_reassign_primary makes a provider the patient's PRIMARY in one
-- statement, so that the service sends it, behind the request's key check,
-- in one round trip instead of seven. It runs as its caller (row-level
-- security applies) and takes its locks in the order every writer of a
-- care team uses:
--
--   1. the patient's row FOR UPDATE: reassignments of one patient run one
--      after the other, and an addition (KEY SHARE on the same row) waits;
--   2. the active PRIMARY and the provider's active assignment, FOR
--      UPDATE, in id order;
--   3. unless the provider already is the PRIMARY, it ends both at one
--      instant, read from the clock after the locks were granted: the old
--      PRIMARY with p_reason ('reassigned' when null), the provider's
--      SPECIALIST or CONSULTANT assignment as promoted;
--   4. it starts the new PRIMARY at the instant the old one ended (or that
--      instant when there was none), so that the history shows the
--      handover without a gap or an overlap.
--
-- It returns a row per assignment, labelled by outcome: 'current' for the
-- PRIMARY it started, 'unchanged' for the PRIMARY that already was the
-- provider, 'previous' and 'promoted' for the ones it ended. A missing
-- patient or provider (for the caller's organization) raises the foreign
-- key violation an insert would have met, naming the same constraint, so
-- that callers translate it as they do any other.
-- careteam_reassignment_rows names the function's row type: an outcome
-- and an assignment. It is a view that never has rows, rather than a
-- composite type, because sqlc reads a view's columns and not a type's.
-- A later change to these columns of care_team_assignments recreates the
-- view and the function.
CREATE VIEW careteam_reassignment_rows AS
SELECT NULL::text AS outcome,
       a.id, a.patient_id, a.provider_id, a.role, a.assigned_at, a.removed_at,
       a.removal_reason, a.created_at, a.updated_at, a.organization_id
FROM care_team_assignments AS a
WHERE false;

CREATE FUNCTION careteam_reassign_primary(p_patient_id uuid, p_provider_id uuid, p_reason text)
    RETURNS SETOF careteam_reassignment_rows
    LANGUAGE plpgsql VOLATILE
    SET search_path = public, pg_temp
AS $$
DECLARE
    held care_team_assignments;
    replaced uuid[] := '{}';
    ended_at timestamptz;
BEGIN
    -- Both references are checked before any lock, so that a request that
    -- names a missing one holds nothing; a missing patient is reported
    -- first. Patients are never deleted, so the lock finds the row.
    IF NOT EXISTS (SELECT FROM patients AS p WHERE p.id = p_patient_id) THEN
        RAISE EXCEPTION 'no such patient'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'fk_care_team_assignments_patient';
    END IF;
    IF NOT EXISTS (SELECT FROM providers AS v WHERE v.id = p_provider_id) THEN
        RAISE EXCEPTION 'no such provider'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'fk_care_team_assignments_provider';
    END IF;
    PERFORM FROM patients AS p WHERE p.id = p_patient_id FOR UPDATE OF p;

    FOR held IN
        SELECT c.*
        FROM care_team_assignments AS c
        WHERE c.patient_id = p_patient_id
          AND c.removed_at IS NULL
          AND (c.role = 'PRIMARY' OR c.provider_id = p_provider_id)
        ORDER BY c.id
        FOR UPDATE OF c
    LOOP
        IF held.role = 'PRIMARY' AND held.provider_id = p_provider_id THEN
            RETURN QUERY SELECT 'unchanged', held.id, held.patient_id, held.provider_id, held.role,
                                held.assigned_at, held.removed_at, held.removal_reason,
                                held.created_at, held.updated_at, held.organization_id;
            RETURN;
        END IF;
        replaced := replaced || held.id;
    END LOOP;

    ended_at := clock_timestamp();
    RETURN QUERY
    WITH ended AS (
        UPDATE care_team_assignments AS c
        SET removed_at = greatest(ended_at, c.assigned_at),
            removal_reason = CASE WHEN c.role = 'PRIMARY' THEN coalesce(p_reason, 'reassigned')
                                  ELSE 'promoted to PRIMARY' END
        WHERE c.id = ANY (replaced) AND c.removed_at IS NULL
        RETURNING c.id, c.patient_id, c.provider_id, c.role, c.assigned_at, c.removed_at,
                  c.removal_reason, c.created_at, c.updated_at, c.organization_id
    )
    SELECT CASE WHEN e.role = 'PRIMARY' THEN 'previous' ELSE 'promoted' END,
           e.id, e.patient_id, e.provider_id, e.role, e.assigned_at, e.removed_at,
           e.removal_reason, e.created_at, e.updated_at, e.organization_id
    FROM ended AS e;

    -- This statement sees the rows the previous one ended, so the old
    -- PRIMARY has left uq_care_team_primary.
    RETURN QUERY
    WITH started AS (
        INSERT INTO care_team_assignments (patient_id, provider_id, role, assigned_at)
        VALUES (p_patient_id, p_provider_id, 'PRIMARY',
                coalesce((SELECT o.removed_at
                          FROM care_team_assignments AS o
                          WHERE o.id = ANY (replaced) AND o.role = 'PRIMARY'),
                         ended_at))
        RETURNING care_team_assignments.id, care_team_assignments.patient_id,
                  care_team_assignments.provider_id, care_team_assignments.role,
                  care_team_assignments.assigned_at, care_team_assignments.removed_at,
                  care_team_assignments.removal_reason, care_team_assignments.created_at,
                  care_team_assignments.updated_at, care_team_assignments.organization_id
    )
    SELECT 'current', s.id, s.patient_id, s.provider_id, s.role, s.assigned_at, s.removed_at,
           s.removal_reason, s.created_at, s.updated_at, s.organization_id
    FROM started AS s;
END
$$;

REVOKE ALL ON FUNCTION careteam_reassign_primary(uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION careteam_reassign_primary(uuid, uuid, text) TO careteam_app;

-- migrate:down

DROP FUNCTION careteam_reassign_primary(uuid, uuid, text);
DROP VIEW careteam_reassignment_rows;
