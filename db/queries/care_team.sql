-- name: ListActiveCareTeam :many
-- ListActiveCareTeam returns one row per active assignment of the patient,
-- PRIMARY first and then by assigned_at, or a single row with a null
-- assignment id when the patient has none. No row at all means there is no
-- such patient, so one round trip answers both questions.
SELECT p.id AS patient_id,
       a.id AS assignment_id, a.provider_id, a.role, a.assigned_at,
       a.removed_at, a.removal_reason
FROM patients AS p
LEFT JOIN care_team_assignments AS a
       ON a.patient_id = p.id AND a.removed_at IS NULL
WHERE p.id = @patient_id
ORDER BY a.role = 'PRIMARY' DESC, a.assigned_at, a.id;

-- name: ListCareTeamHistory :many
-- ListCareTeamHistory returns every assignment the patient ever had, newest
-- first, shaped like ListActiveCareTeam.
SELECT p.id AS patient_id,
       a.id AS assignment_id, a.provider_id, a.role, a.assigned_at,
       a.removed_at, a.removal_reason
FROM patients AS p
LEFT JOIN care_team_assignments AS a ON a.patient_id = p.id
WHERE p.id = @patient_id
ORDER BY a.assigned_at DESC, a.id DESC;

-- name: CreateAssignment :one
-- CreateAssignment adds a member to a patient's care team in one statement,
-- and when it adds nothing says why in the same round trip.
--
-- The NOT EXISTS is the friendly check: when the patient already has an
-- active PRIMARY and a second is asked for, nothing is inserted. It is not
-- what keeps the rule: two requests that race both pass it, and
-- uq_care_team_primary rejects the second. The provider's foreign key
-- answers for a missing provider.
--
-- Only an addition that passed the check takes a KEY SHARE lock on the
-- patient's row (a row its WHERE filters out is not locked), and it takes
-- it before its insert touches any unique index: a reassignment locks the
-- same row FOR UPDATE before it inserts, so both take their locks in the
-- same order and cannot deadlock. Adds of one patient do not block each
-- other. A refused addition locks and writes nothing, so it commits
-- without waiting for the WAL: under a burst of requests for one patient,
-- the losers cost little.
--
-- assigned_at is the clock at the insert, not the start of the
-- transaction, so that a PRIMARY never starts before the one it follows
-- ended.
--
-- There is always one row. When the insert happened, its columns are set;
-- when it did not, patient_exists says whether the patient exists (for this
-- organization) and existing_primary_id names the active PRIMARY that the
-- check saw (same snapshot; the nil UUID when none), so that the answer
-- needs no second query. Neither is looked up when the insert happened.
WITH locked AS (
    SELECT p.id AS patient_id
    FROM patients AS p
    WHERE p.id = @patient_id
      AND (@role::care_team_role <> 'PRIMARY'
           OR NOT EXISTS (
                SELECT FROM care_team_assignments AS existing
                WHERE existing.patient_id = p.id
                  AND existing.role = 'PRIMARY'
                  AND existing.removed_at IS NULL))
    FOR KEY SHARE
), created AS (
    INSERT INTO care_team_assignments (patient_id, provider_id, role, assigned_at)
    SELECT locked.patient_id, @provider_id, @role, clock_timestamp()
    FROM locked
    RETURNING id, patient_id, provider_id, role, assigned_at, removed_at, removal_reason,
              created_at, updated_at, organization_id
)
SELECT created.id, created.patient_id, created.provider_id, created.role, created.assigned_at,
       created.removed_at, created.removal_reason, created.created_at, created.updated_at,
       created.organization_id,
       (created.id IS NOT NULL
        OR EXISTS (SELECT FROM patients AS p WHERE p.id = @patient_id))::boolean AS patient_exists,
       coalesce((SELECT primary_now.id
                 FROM care_team_assignments AS primary_now
                 WHERE created.id IS NULL
                   AND primary_now.patient_id = @patient_id
                   AND primary_now.role = 'PRIMARY'
                   AND primary_now.removed_at IS NULL
                 LIMIT 1),
                '00000000-0000-0000-0000-000000000000')::uuid AS existing_primary_id
FROM (SELECT) AS answer
LEFT JOIN created ON true;

-- name: EndAssignment :one
-- EndAssignment ends one active assignment of the patient. No row back means
-- there is no such active assignment on this patient's team.
UPDATE care_team_assignments
SET removed_at = greatest(clock_timestamp(), assigned_at),
    removal_reason = sqlc.narg(reason)
WHERE id = @id AND patient_id = @patient_id AND removed_at IS NULL
RETURNING id, patient_id, provider_id, role, assigned_at, removed_at, removal_reason,
          created_at, updated_at, organization_id;

-- name: ReassignPrimary :many
-- ReassignPrimary makes the provider the patient's PRIMARY in one statement
-- (careteam_reassign_primary, which takes the locks, ends the replaced
-- assignments and starts the new one): one row per assignment, labelled by
-- outcome. A missing patient or provider fails on the name of the foreign
-- key an insert would have violated.
SELECT r.outcome, r.id, r.patient_id, r.provider_id, r.role, r.assigned_at, r.removed_at,
       r.removal_reason, r.created_at, r.updated_at, r.organization_id
FROM careteam_reassign_primary(@patient_id::uuid, @provider_id::uuid, @reason::text) AS r;

-- name: DescribeAddConflict :one
-- DescribeAddConflict explains why CreateAssignment failed on
-- uq_care_team_primary (a race it lost), in one round trip: whether the
-- patient exists (for this organization), and its active PRIMARY, if any
-- (the nil UUID when none).
SELECT EXISTS (SELECT FROM patients AS p WHERE p.id = @patient_id) AS patient_exists,
       coalesce((SELECT a.id
                 FROM care_team_assignments AS a
                 WHERE a.patient_id = @patient_id AND a.role = 'PRIMARY' AND a.removed_at IS NULL
                 LIMIT 1),
                '00000000-0000-0000-0000-000000000000')::uuid AS primary_id;
