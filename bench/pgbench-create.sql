-- The reference for the create scenario: the naive four-statement
-- transaction (patient exists? provider exists? active PRIMARY? insert),
-- run by pgbench -M prepared. careteam-bench passes the ranges with -D:
-- plo..phi are the patient numbers of the create scenario, nprov the number
-- of providers. Ids are the seed's deterministic UUIDs (see seed.go).
-- ON CONFLICT DO NOTHING keeps a repeated (patient, provider) pair from
-- aborting the pgbench client, as the service answers it with a 409.
\set pi random(:plo, :phi)
\set vi random(1, :nprov)
\set ri random(0, 1)
BEGIN;
SELECT 1 FROM patients WHERE id = ('a0000000-0000-4000-8000-' || lpad(to_hex(:pi::int), 12, '0'))::uuid;
SELECT 1 FROM providers WHERE id = ('b0000000-0000-4000-8000-' || lpad(to_hex(:vi::int), 12, '0'))::uuid;
SELECT id FROM care_team_assignments
 WHERE patient_id = ('a0000000-0000-4000-8000-' || lpad(to_hex(:pi::int), 12, '0'))::uuid
   AND role = 'PRIMARY' AND removed_at IS NULL;
INSERT INTO care_team_assignments (patient_id, provider_id, role, assigned_at)
VALUES (('a0000000-0000-4000-8000-' || lpad(to_hex(:pi::int), 12, '0'))::uuid,
        ('b0000000-0000-4000-8000-' || lpad(to_hex(:vi::int), 12, '0'))::uuid,
        (CASE WHEN :ri::int = 0 THEN 'SPECIALIST' ELSE 'CONSULTANT' END)::care_team_role,
        clock_timestamp())
ON CONFLICT DO NOTHING;
END;
