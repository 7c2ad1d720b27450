-- migrate:up

-- Organizations own patients and their care teams. Providers are a shared
-- directory, as the national NPI registry is, and stay outside them.
CREATE TABLE organizations (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT pk_organizations PRIMARY KEY (id),
    CONSTRAINT uq_organizations_name UNIQUE (name),
    CONSTRAINT ck_organizations_name_length CHECK (char_length(name) BETWEEN 1 AND 200)
);

CREATE TRIGGER trg_organizations_set_updated_at
    BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The default organization holds the rows that existed before
-- organizations did, and what operator tools write without naming one.
INSERT INTO organizations (id, name)
VALUES ('00000000-0000-0000-0000-000000000001', 'default');

-- careteam_current_organization is the organization of the transaction: the
-- service sets careteam.organization_id from the authenticated key with
-- set_config(..., true) at the start of every transaction. Unset, it is
-- null, and the policies below then show no rows and accept none.
CREATE FUNCTION careteam_current_organization() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT NULLIF(current_setting('careteam.organization_id', true), '')::uuid
$$;

-- careteam_write_organization is the organization a row written now belongs
-- to: the transaction's, or the default one when none is set, which is what
-- operators and plain SQL mean. The service's role never gets that far
-- without one: the policies' WITH CHECK refuses a row outside its
-- organization.
CREATE FUNCTION careteam_write_organization() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(careteam_current_organization(), '00000000-0000-0000-0000-000000000001'::uuid)
$$;

-- Existing rows move to the default organization. The updated_at triggers
-- stay off meanwhile: moving a row is not a change to it.
ALTER TABLE patients DISABLE TRIGGER trg_patients_set_updated_at;
ALTER TABLE care_team_assignments DISABLE TRIGGER trg_care_team_assignments_set_updated_at;

ALTER TABLE patients ADD COLUMN organization_id uuid;
UPDATE patients SET organization_id = '00000000-0000-0000-0000-000000000001';

ALTER TABLE patients
    ALTER COLUMN organization_id SET NOT NULL,
    ALTER COLUMN organization_id
        SET DEFAULT careteam_write_organization(),
    ADD CONSTRAINT fk_patients_organization
        FOREIGN KEY (organization_id) REFERENCES organizations (id),
    -- The target of the assignments' composite key below.
    ADD CONSTRAINT uq_patients_organization_id UNIQUE (organization_id, id);

-- MRNs and import references are unique within an organization: another
-- organization's MRN must neither collide nor be detectable.
ALTER TABLE patients
    DROP CONSTRAINT uq_patients_mrn,
    ADD CONSTRAINT uq_patients_mrn UNIQUE (organization_id, mrn),
    DROP CONSTRAINT uq_patients_external_ref,
    ADD CONSTRAINT uq_patients_external_ref UNIQUE (organization_id, external_ref);

ALTER TABLE care_team_assignments ADD COLUMN organization_id uuid;
UPDATE care_team_assignments AS a
SET organization_id = p.organization_id
FROM patients AS p
WHERE p.id = a.patient_id;

-- An assignment belongs to its patient's organization, which the composite
-- foreign key makes certain.
ALTER TABLE care_team_assignments
    ALTER COLUMN organization_id SET NOT NULL,
    ALTER COLUMN organization_id
        SET DEFAULT careteam_write_organization(),
    ADD CONSTRAINT fk_care_team_assignments_patient_organization
        FOREIGN KEY (organization_id, patient_id) REFERENCES patients (organization_id, id);

ALTER TABLE patients ENABLE TRIGGER trg_patients_set_updated_at;
ALTER TABLE care_team_assignments ENABLE TRIGGER trg_care_team_assignments_set_updated_at;

-- History keeps its organization too.
CREATE OR REPLACE FUNCTION guard_care_team_assignment() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'care_team_assignments rows are never deleted; end them with removed_at'
            USING ERRCODE = 'restrict_violation';
    END IF;

    IF NEW.patient_id <> OLD.patient_id
        OR NEW.provider_id <> OLD.provider_id
        OR NEW.role <> OLD.role
        OR NEW.assigned_at <> OLD.assigned_at
        OR NEW.organization_id <> OLD.organization_id THEN
        RAISE EXCEPTION 'an assignment keeps its organization, patient, provider, role and assigned_at'
            USING ERRCODE = 'restrict_violation';
    END IF;

    IF OLD.removed_at IS NOT NULL AND (
        NEW.removed_at IS DISTINCT FROM OLD.removed_at
        OR NEW.removal_reason IS DISTINCT FROM OLD.removal_reason) THEN
        RAISE EXCEPTION 'an ended assignment cannot be changed'
            USING ERRCODE = 'restrict_violation';
    END IF;

    RETURN NEW;
END
$$;

-- careteam_app is the role the service runs as: it owns nothing, cannot
-- bypass row-level security, and holds only the privileges below. Roles
-- belong to the cluster, not the database, so another database may have
-- made it already, or a DBA may have, when the owner may not create roles
-- (CREATEROLE); it is made here only when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'careteam_app') THEN
        CREATE ROLE careteam_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    -- Another database's migration made it at the same moment.
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO careteam_app;
GRANT SELECT, INSERT, UPDATE ON patients, care_team_assignments TO careteam_app;
GRANT SELECT, INSERT ON providers TO careteam_app;

-- Row-level security on every table with tenant data, forced so that it
-- holds for the owner too. A transaction sees and writes only the rows of
-- its organization. The second policy lets the owner (the role running
-- these migrations) see every organization, when an operator tool asks
-- for it in its transaction; the service's role cannot use it.
ALTER TABLE patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE patients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON patients
    USING (organization_id = careteam_current_organization())
    WITH CHECK (organization_id = careteam_current_organization());
CREATE POLICY operator_all_organizations ON patients TO CURRENT_USER
    USING (current_setting('careteam.all_organizations', true) = 'on')
    WITH CHECK (current_setting('careteam.all_organizations', true) = 'on');

ALTER TABLE care_team_assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE care_team_assignments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON care_team_assignments
    USING (organization_id = careteam_current_organization())
    WITH CHECK (organization_id = careteam_current_organization());
CREATE POLICY operator_all_organizations ON care_team_assignments TO CURRENT_USER
    USING (current_setting('careteam.all_organizations', true) = 'on')
    WITH CHECK (current_setting('careteam.all_organizations', true) = 'on');

-- migrate:down

DROP POLICY operator_all_organizations ON care_team_assignments;
DROP POLICY tenant_isolation ON care_team_assignments;
ALTER TABLE care_team_assignments NO FORCE ROW LEVEL SECURITY;
ALTER TABLE care_team_assignments DISABLE ROW LEVEL SECURITY;
DROP POLICY operator_all_organizations ON patients;
DROP POLICY tenant_isolation ON patients;
ALTER TABLE patients NO FORCE ROW LEVEL SECURITY;
ALTER TABLE patients DISABLE ROW LEVEL SECURITY;

-- The role stays: other databases of the cluster may use it.
REVOKE ALL ON patients, care_team_assignments, providers FROM careteam_app;
REVOKE USAGE ON SCHEMA public FROM careteam_app;

CREATE OR REPLACE FUNCTION guard_care_team_assignment() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'care_team_assignments rows are never deleted; end them with removed_at'
            USING ERRCODE = 'restrict_violation';
    END IF;

    IF NEW.patient_id <> OLD.patient_id
        OR NEW.provider_id <> OLD.provider_id
        OR NEW.role <> OLD.role
        OR NEW.assigned_at <> OLD.assigned_at THEN
        RAISE EXCEPTION 'an assignment keeps its patient, provider, role and assigned_at'
            USING ERRCODE = 'restrict_violation';
    END IF;

    IF OLD.removed_at IS NOT NULL AND (
        NEW.removed_at IS DISTINCT FROM OLD.removed_at
        OR NEW.removal_reason IS DISTINCT FROM OLD.removal_reason) THEN
        RAISE EXCEPTION 'an ended assignment cannot be changed'
            USING ERRCODE = 'restrict_violation';
    END IF;

    RETURN NEW;
END
$$;

ALTER TABLE care_team_assignments DROP CONSTRAINT fk_care_team_assignments_patient_organization;
ALTER TABLE care_team_assignments DROP COLUMN organization_id;
ALTER TABLE patients
    DROP CONSTRAINT uq_patients_external_ref,
    ADD CONSTRAINT uq_patients_external_ref UNIQUE (external_ref),
    DROP CONSTRAINT uq_patients_mrn,
    ADD CONSTRAINT uq_patients_mrn UNIQUE (mrn);
ALTER TABLE patients DROP CONSTRAINT uq_patients_organization_id;
ALTER TABLE patients DROP CONSTRAINT fk_patients_organization;
ALTER TABLE patients DROP COLUMN organization_id;
DROP FUNCTION careteam_write_organization();
DROP FUNCTION careteam_current_organization();
DROP TABLE organizations;
