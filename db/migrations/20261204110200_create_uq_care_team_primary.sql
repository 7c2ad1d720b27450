-- migrate:up transaction:false

-- At most one active PRIMARY per patient. The index is built CONCURRENTLY, as
-- it would be on a running system, so it cannot share a transaction or a
-- step with anything else. A build that fails leaves an INVALID index with
-- this name; "careteam migrate up" drops such a leftover before it retries,
-- and "careteam db verify" refuses to pass one for a working index.
CREATE UNIQUE INDEX CONCURRENTLY uq_care_team_primary
    ON care_team_assignments (patient_id)
    WHERE role = 'PRIMARY' AND removed_at IS NULL;

-- migrate:down transaction:false

DROP INDEX CONCURRENTLY IF EXISTS uq_care_team_primary;
