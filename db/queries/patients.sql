-- name: CreatePatient :one
-- CreatePatient inserts a patient. A taken MRN fails on uq_patients_mrn.
INSERT INTO patients (mrn, given_name, family_name, birth_date)
VALUES (sqlc.narg(mrn), @given_name, @family_name, sqlc.narg(birth_date))
RETURNING id, mrn, given_name, family_name, birth_date, external_ref, created_at, updated_at, organization_id;

-- name: GetPatient :one
SELECT id, mrn, given_name, family_name, birth_date, external_ref, created_at, updated_at,
       organization_id
FROM patients
WHERE id = @id;

-- name: PatientExists :one
SELECT EXISTS (SELECT FROM patients WHERE id = @id) AS exists;
