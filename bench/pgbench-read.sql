-- The read scenario's query (db/queries/care_team.sql, ListActiveCareTeam)
-- run by pgbench -M prepared over the seeded patients 1..:rhi, each with a
-- care team of 3 to 5 active members.
\set pi random(1, :rhi)
SELECT p.id AS patient_id,
       a.id AS assignment_id, a.provider_id, a.role, a.assigned_at,
       a.removed_at, a.removal_reason
FROM patients AS p
LEFT JOIN care_team_assignments AS a
       ON a.patient_id = p.id AND a.removed_at IS NULL
WHERE p.id = ('a0000000-0000-4000-8000-' || lpad(to_hex(:pi::int), 12, '0'))::uuid
ORDER BY a.role = 'PRIMARY' DESC, a.assigned_at, a.id;
