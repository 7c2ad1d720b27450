-- migrate:up

-- uq_care_team_primary (the next migration) cannot be built while a patient
-- has more than one active PRIMARY assignment. Stop here and name them, so
-- that an operator repairs the data deliberately instead of reading a bare
-- "could not create unique index" error half way through a deploy.
DO $$
DECLARE
    offenders text;
    total     bigint;
BEGIN
    SELECT count(*),
           string_agg(format('%s (%s active)', patient_id, active), ', ' ORDER BY patient_id)
               FILTER (WHERE position <= 20)
      INTO total, offenders
      FROM (
          SELECT patient_id,
                 count(*) AS active,
                 row_number() OVER (ORDER BY patient_id) AS position
            FROM care_team_assignments
           WHERE role = 'PRIMARY' AND removed_at IS NULL
           GROUP BY patient_id
          HAVING count(*) > 1
      ) AS duplicates;

    IF total > 0 THEN
        RAISE EXCEPTION 'cannot add uq_care_team_primary: % patient(s) have more than one active PRIMARY assignment: %',
            total, offenders || CASE WHEN total > 20 THEN ', ...' ELSE '' END
            USING HINT = 'End the surplus assignments with "careteam db repair-primaries --keep newest" (or --keep oldest), then migrate again.';
    END IF;
END
$$;

-- migrate:down

-- The check changes nothing, so there is nothing to undo.
