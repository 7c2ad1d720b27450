-- name: ListDuplicatePrimaries :many
-- ListDuplicatePrimaries returns every active PRIMARY assignment of the
-- patients that have more than one, by patient and then by start: the rows
-- uq_care_team_primary cannot be built over. Ids and times only.
SELECT a.patient_id, a.id, a.assigned_at
FROM care_team_assignments AS a
WHERE a.role = 'PRIMARY' AND a.removed_at IS NULL
  AND a.patient_id IN (
        SELECT d.patient_id
        FROM care_team_assignments AS d
        WHERE d.role = 'PRIMARY' AND d.removed_at IS NULL
        GROUP BY d.patient_id
        HAVING count(*) > 1)
ORDER BY a.patient_id, a.assigned_at, a.id;

-- name: LockDuplicatePrimaries :many
-- LockDuplicatePrimaries is ListDuplicatePrimaries with the rows locked, so
-- that a repair decides over rows nobody else can end or change meanwhile.
SELECT a.patient_id, a.id, a.assigned_at
FROM care_team_assignments AS a
WHERE a.role = 'PRIMARY' AND a.removed_at IS NULL
  AND a.patient_id IN (
        SELECT d.patient_id
        FROM care_team_assignments AS d
        WHERE d.role = 'PRIMARY' AND d.removed_at IS NULL
        GROUP BY d.patient_id
        HAVING count(*) > 1)
ORDER BY a.patient_id, a.assigned_at, a.id
FOR UPDATE OF a;

-- name: EndSurplusPrimaries :many
-- EndSurplusPrimaries ends the given active assignments with a reason: the
-- repair of patients with more than one active PRIMARY.
UPDATE care_team_assignments
SET removed_at = greatest(clock_timestamp(), assigned_at),
    removal_reason = @reason::text
WHERE id = ANY (@ids::uuid[]) AND removed_at IS NULL
RETURNING id, patient_id, assigned_at, removed_at;
