-- migrate:up

-- Care-team roles, upper case as the REST contract spells them.
CREATE TYPE care_team_role AS ENUM ('PRIMARY', 'SPECIALIST', 'CONSULTANT');

-- npi_is_valid reports whether npi is a National Provider Identifier: ten
-- digits whose last is the Luhn check digit computed over the prefix 80840
-- followed by the first nine digits (CMS, "NPI check digit"). The CASE keeps
-- the digit arithmetic away from strings that are not ten digits.
CREATE FUNCTION npi_is_valid(npi text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN npi !~ '^[0-9]{10}$' THEN false
        ELSE (
            SELECT (10 - sum(
                       CASE WHEN i % 2 = 1
                            THEN (2 * d) / 10 + (2 * d) % 10
                            ELSE d
                       END) % 10) % 10 = substr(npi, 10, 1)::int
            FROM (
                SELECT i, substr(reverse('80840' || substr(npi, 1, 9)), i, 1)::int AS d
                FROM generate_series(1, 14) AS i
            ) AS digits
        )
    END
$$;

-- set_updated_at keeps updated_at in the database's hands: every update
-- stamps the time it happened and keeps created_at as it was. It uses
-- clock_timestamp() rather than now() so that a transaction that waited on a
-- lock never stamps a time earlier than the row it changes.
CREATE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
    RETURN NEW;
END
$$;

CREATE TABLE patients (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    mrn          text,
    given_name   text        NOT NULL,
    family_name  text        NOT NULL,
    birth_date   date,
    -- external_ref names the record in the system it was imported from
    -- (identifier system and value), so that a second import finds it again.
    -- The REST API neither shows nor sets it.
    external_ref text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT pk_patients PRIMARY KEY (id),
    CONSTRAINT uq_patients_mrn UNIQUE (mrn),
    CONSTRAINT uq_patients_external_ref UNIQUE (external_ref),
    CONSTRAINT ck_patients_mrn_length CHECK (char_length(mrn) BETWEEN 1 AND 64),
    CONSTRAINT ck_patients_given_name_length CHECK (char_length(given_name) BETWEEN 1 AND 200),
    CONSTRAINT ck_patients_family_name_length CHECK (char_length(family_name) BETWEEN 1 AND 200)
);

CREATE TRIGGER trg_patients_set_updated_at
    BEFORE UPDATE ON patients
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE providers (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    npi         text        NOT NULL,
    given_name  text        NOT NULL,
    family_name text        NOT NULL,
    specialty   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT pk_providers PRIMARY KEY (id),
    CONSTRAINT uq_providers_npi UNIQUE (npi),
    CONSTRAINT ck_providers_npi_valid CHECK (npi_is_valid(npi)),
    CONSTRAINT ck_providers_given_name_length CHECK (char_length(given_name) BETWEEN 1 AND 200),
    CONSTRAINT ck_providers_family_name_length CHECK (char_length(family_name) BETWEEN 1 AND 200),
    CONSTRAINT ck_providers_specialty_length CHECK (char_length(specialty) BETWEEN 1 AND 200)
);

CREATE TRIGGER trg_providers_set_updated_at
    BEFORE UPDATE ON providers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- An assignment is one provider's membership of one patient's care team.
-- It is never deleted: removed_at ends it and the row stays as history.
CREATE TABLE care_team_assignments (
    id             uuid           NOT NULL DEFAULT gen_random_uuid(),
    patient_id     uuid           NOT NULL,
    provider_id    uuid           NOT NULL,
    role           care_team_role NOT NULL,
    assigned_at    timestamptz    NOT NULL DEFAULT now(),
    removed_at     timestamptz,
    removal_reason text,
    created_at     timestamptz    NOT NULL DEFAULT now(),
    updated_at     timestamptz    NOT NULL DEFAULT now(),

    CONSTRAINT pk_care_team_assignments PRIMARY KEY (id),
    CONSTRAINT fk_care_team_assignments_patient
        FOREIGN KEY (patient_id) REFERENCES patients (id),
    CONSTRAINT fk_care_team_assignments_provider
        FOREIGN KEY (provider_id) REFERENCES providers (id),
    CONSTRAINT ck_care_team_assignments_removed_after_assigned
        CHECK (removed_at IS NULL OR removed_at >= assigned_at),
    CONSTRAINT ck_care_team_assignments_reason_needs_removal
        CHECK (removal_reason IS NULL OR removed_at IS NOT NULL),
    CONSTRAINT ck_care_team_assignments_removal_reason_length
        CHECK (char_length(removal_reason) BETWEEN 1 AND 500)
);

-- One active assignment per patient and provider. It also serves the
-- "active care team of a patient" lookups.
CREATE UNIQUE INDEX uq_care_team_patient_provider
    ON care_team_assignments (patient_id, provider_id)
    WHERE removed_at IS NULL;

-- A patient's history, newest first.
CREATE INDEX ix_care_team_assignments_patient_assigned_at
    ON care_team_assignments (patient_id, assigned_at DESC);

-- The foreign key to providers, so that provider lookups and checks do not
-- scan the table.
CREATE INDEX ix_care_team_assignments_provider
    ON care_team_assignments (provider_id);

-- guard_care_team_assignment keeps history honest: an assignment keeps its
-- patient, provider, role and start, and once ended it stays ended.
CREATE FUNCTION guard_care_team_assignment() RETURNS trigger
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

CREATE TRIGGER trg_care_team_assignments_guard
    BEFORE UPDATE OR DELETE ON care_team_assignments
    FOR EACH ROW EXECUTE FUNCTION guard_care_team_assignment();

CREATE TRIGGER trg_care_team_assignments_set_updated_at
    BEFORE UPDATE ON care_team_assignments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- migrate:down

DROP TABLE care_team_assignments;
DROP FUNCTION guard_care_team_assignment();
DROP TABLE providers;
DROP TABLE patients;
DROP FUNCTION set_updated_at();
DROP FUNCTION npi_is_valid(text);
DROP TYPE care_team_role;
