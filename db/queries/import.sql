-- Queries of the FHIR importer (internal/fhirimport). Each one takes a whole
-- file's rows as parallel arrays, so that a file costs a few round trips
-- however many records it holds. The arrays are unnested side by side in one
-- SELECT list, which PostgreSQL walks in step (sqlc does not know the
-- several-argument form of unnest); the importer passes them equally long.

-- name: LockImport :exec
-- LockImport makes imports run one file at a time across sessions, until the
-- transaction ends. The importer decides what to insert from what it read
-- first; two imports interleaving would both decide to insert the same
-- ended assignment, which no unique index catches.
SELECT pg_advisory_xact_lock(@lock_key::bigint);

-- name: UpsertImportProviders :many
-- UpsertImportProviders inserts the providers whose NPI is new and leaves
-- any existing one as it is: the first record of an NPI wins. For every
-- input row it says whether it inserted it, and whether the existing row
-- carries the same names, so that the importer can tell "unchanged" from a
-- conflict. The outer query reads the table as it was before the INSERT.
WITH input AS (
    SELECT t.npi, t.given_name, t.family_name, NULLIF(t.specialty, '') AS specialty
    FROM (
        SELECT unnest(@npis::text[]) AS npi,
               unnest(@given_names::text[]) AS given_name,
               unnest(@family_names::text[]) AS family_name,
               unnest(@specialties::text[]) AS specialty
    ) AS t
),
inserted AS (
    INSERT INTO providers (npi, given_name, family_name, specialty)
    SELECT input.npi, input.given_name, input.family_name, input.specialty
    FROM input
    ON CONFLICT (npi) DO NOTHING
    RETURNING providers.npi
)
SELECT input.npi::text AS npi,
       (inserted.npi IS NOT NULL)::boolean AS inserted,
       coalesce(existing.given_name = input.given_name
                AND existing.family_name = input.family_name, false)::boolean AS same_name
FROM input
LEFT JOIN inserted ON inserted.npi = input.npi
LEFT JOIN providers AS existing ON existing.npi = input.npi
ORDER BY input.npi;

-- name: UpsertImportPatients :many
-- UpsertImportPatients inserts patients of the transaction's organization
-- (careteam_write_organization) by external_ref, or updates the
-- names, birth date and MRN of one imported before when they differ. An MRN
-- that another patient already holds is left out rather than failing on
-- uq_patients_mrn. Rows that were already up to date come back as nothing;
-- inserted tells a new row from an updated one (xmax is 0 only for a row
-- this statement inserted).
INSERT INTO patients (external_ref, mrn, given_name, family_name, birth_date)
SELECT t.external_ref,
       CASE
           WHEN t.mrn = '' THEN NULL
           WHEN EXISTS (
                SELECT FROM patients AS other
                WHERE other.organization_id = careteam_write_organization()
                  AND other.mrn = t.mrn
                  AND other.external_ref IS DISTINCT FROM t.external_ref) THEN NULL
           ELSE t.mrn
       END,
       t.given_name, t.family_name, NULLIF(t.birth_date, '')::date
FROM (
    SELECT unnest(@external_refs::text[]) AS external_ref,
           unnest(@mrns::text[]) AS mrn,
           unnest(@given_names::text[]) AS given_name,
           unnest(@family_names::text[]) AS family_name,
           unnest(@birth_dates::text[]) AS birth_date
) AS t
ON CONFLICT (organization_id, external_ref) DO UPDATE
SET mrn = EXCLUDED.mrn,
    given_name = EXCLUDED.given_name,
    family_name = EXCLUDED.family_name,
    birth_date = EXCLUDED.birth_date
WHERE (patients.mrn, patients.given_name, patients.family_name, patients.birth_date)
      IS DISTINCT FROM
      (EXCLUDED.mrn, EXCLUDED.given_name, EXCLUDED.family_name, EXCLUDED.birth_date)
RETURNING patients.external_ref::text AS external_ref, (xmax = 0)::boolean AS inserted;

-- name: LockImportPatients :many
-- LockImportPatients returns the ids of the patients with these external
-- references and locks them, in id order as the reassignment code does, so
-- that the importer and a reassignment of the same patient run one after
-- the other.
SELECT id, external_ref::text AS external_ref
FROM patients
WHERE organization_id = careteam_write_organization()
  AND external_ref = ANY (@external_refs::text[])
ORDER BY id
FOR UPDATE;

-- name: ListImportProviders :many
-- ListImportProviders returns the ids of the providers with these NPIs.
SELECT id, npi
FROM providers
WHERE npi = ANY (@npis::text[])
ORDER BY npi;

-- name: ListImportAssignments :many
-- ListImportAssignments returns every assignment, active or ended, of these
-- patients with the NPI of its provider: what the importer compares a
-- file's care-team entries with.
SELECT a.id, a.patient_id, p.npi, a.role, a.assigned_at, a.removed_at
FROM care_team_assignments AS a
JOIN providers AS p ON p.id = a.provider_id
WHERE a.patient_id = ANY (@patient_ids::uuid[])
ORDER BY a.patient_id, a.assigned_at, a.id;

-- name: InsertImportAssignments :many
-- InsertImportAssignments inserts a file's new assignments, active or
-- ended. Rows that would break uq_care_team_primary or
-- uq_care_team_patient_provider (an API request got there first) are left
-- out instead of failing the file: the conflict target is left open so that
-- both partial indexes count, and the importer reports every row that does
-- not come back.
INSERT INTO care_team_assignments
    (patient_id, provider_id, role, assigned_at, removed_at, removal_reason)
SELECT t.patient_id, t.provider_id, t.role::care_team_role, t.assigned_at,
       CASE WHEN t.ended THEN t.removed_at END,
       CASE WHEN t.ended THEN t.removal_reason END
FROM (
    SELECT unnest(@patient_ids::uuid[]) AS patient_id,
           unnest(@provider_ids::uuid[]) AS provider_id,
           unnest(@roles::text[]) AS role,
           unnest(@assigned_ats::timestamptz[]) AS assigned_at,
           unnest(@ended::boolean[]) AS ended,
           unnest(@removed_ats::timestamptz[]) AS removed_at,
           unnest(@removal_reasons::text[]) AS removal_reason
) AS t
ON CONFLICT DO NOTHING
RETURNING id, patient_id, provider_id, role, assigned_at;

-- name: EndImportAssignments :many
-- EndImportAssignments ends active assignments that the source now shows as
-- ended. An assignment that ended meanwhile is left alone (the guard
-- trigger would refuse to change it anyway).
UPDATE care_team_assignments AS a
SET removed_at = greatest(t.removed_at, a.assigned_at),
    removal_reason = t.removal_reason
FROM (
    SELECT unnest(@ids::uuid[]) AS id,
           unnest(@removed_ats::timestamptz[]) AS removed_at,
           unnest(@removal_reasons::text[]) AS removal_reason
) AS t
WHERE a.id = t.id AND a.removed_at IS NULL
RETURNING a.id;
