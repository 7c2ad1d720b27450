\restrict dbmate


SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: care_team_role; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.care_team_role AS ENUM (
    'PRIMARY',
    'SPECIALIST',
    'CONSULTANT'
);


--
-- Name: careteam_audit(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.careteam_audit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    AS $$
DECLARE
    new_row jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
    old_row jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
    row_data jsonb := CASE WHEN TG_OP = 'DELETE' THEN old_row ELSE new_row END;
    changes jsonb;
    kind text := TG_OP;
BEGIN
    -- One set-based pass over the columns: cheaper than a loop that
    -- concatenates. The database keeps the times itself, which would only
    -- repeat occurred_at, and the organization is a column of the entry.
    SELECT coalesce(jsonb_object_agg(col, CASE
               WHEN col = ANY (TG_ARGV) THEN jsonb_build_object('redacted', true)
               WHEN TG_OP = 'INSERT' THEN jsonb_build_object('new', new_row -> col)
               WHEN TG_OP = 'DELETE' THEN jsonb_build_object('old', old_row -> col)
               ELSE jsonb_build_object('old', old_row -> col, 'new', new_row -> col)
           END), '{}'::jsonb)
      INTO changes
      FROM jsonb_object_keys(old_row || new_row) AS col
     WHERE col NOT IN ('created_at', 'updated_at', 'organization_id')
       AND (TG_OP <> 'UPDATE' OR new_row -> col IS DISTINCT FROM old_row -> col);

    IF TG_OP = 'UPDATE' THEN
        IF changes = '{}'::jsonb THEN
            RETURN NULL;
        END IF;
        -- Ending an assignment or revoking a key is a soft delete.
        IF (old_row -> 'removed_at' = 'null'::jsonb AND new_row -> 'removed_at' <> 'null'::jsonb)
            OR (old_row -> 'revoked_at' = 'null'::jsonb AND new_row -> 'revoked_at' <> 'null'::jsonb) THEN
            kind := 'SOFT_DELETE';
        END IF;
    END IF;

    INSERT INTO audit_log (organization_id, table_name, row_id, patient_id, action,
                           actor_id, request_id, changes)
    VALUES (
        coalesce((row_data ->> 'organization_id')::uuid, careteam_current_organization()),
        TG_TABLE_NAME,
        (row_data ->> 'id')::uuid,
        CASE TG_TABLE_NAME
            WHEN 'patients' THEN (row_data ->> 'id')::uuid
            ELSE (row_data ->> 'patient_id')::uuid
        END,
        kind,
        NULLIF(current_setting('careteam.actor_id', true), '')::uuid,
        NULLIF(current_setting('careteam.request_id', true), ''),
        changes);
    RETURN NULL;
END
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    organization_id uuid NOT NULL,
    name text NOT NULL,
    key_hash text NOT NULL,
    scopes text[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    CONSTRAINT ck_api_keys_key_hash_sha256 CHECK ((key_hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT ck_api_keys_name_length CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200))),
    CONSTRAINT ck_api_keys_scopes CHECK (((cardinality(scopes) >= 1) AND (scopes <@ ARRAY['read'::text, 'write'::text])))
);


--
-- Name: careteam_authenticate(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.careteam_authenticate(p_key_hash text) RETURNS SETOF public.api_keys
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT k.*
    FROM api_keys AS k
    WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL
$$;


--
-- Name: careteam_begin_request(text, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.careteam_begin_request(p_key_hash text, p_request_id text, p_write boolean) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    k api_keys;
BEGIN
    SELECT * INTO k FROM api_keys WHERE key_hash = p_key_hash AND revoked_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unauthenticated' USING ERRCODE = 'CT401';
    END IF;
    IF NOT (CASE WHEN p_write THEN 'write' ELSE 'read' END) = ANY (k.scopes) THEN
        RAISE EXCEPTION 'forbidden' USING ERRCODE = 'CT403';
    END IF;
    PERFORM set_config('careteam.organization_id', k.organization_id::text, true),
            set_config('careteam.actor_id', k.id::text, true),
            set_config('careteam.request_id', p_request_id, true);
    RETURN k.organization_id;
END
$$;


--
-- Name: careteam_current_organization(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.careteam_current_organization() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT NULLIF(current_setting('careteam.organization_id', true), '')::uuid
$$;


--
-- Name: careteam_write_organization(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.careteam_write_organization() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(careteam_current_organization(), '00000000-0000-0000-0000-000000000001'::uuid)
$$;


--
-- Name: care_team_assignments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.care_team_assignments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    patient_id uuid NOT NULL,
    provider_id uuid NOT NULL,
    role public.care_team_role NOT NULL,
    assigned_at timestamp with time zone DEFAULT now() NOT NULL,
    removed_at timestamp with time zone,
    removal_reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    organization_id uuid DEFAULT public.careteam_write_organization() NOT NULL,
    CONSTRAINT ck_care_team_assignments_reason_needs_removal CHECK (((removal_reason IS NULL) OR (removed_at IS NOT NULL))),
    CONSTRAINT ck_care_team_assignments_removal_reason_length CHECK (((char_length(removal_reason) >= 1) AND (char_length(removal_reason) <= 500))),
    CONSTRAINT ck_care_team_assignments_removed_after_assigned CHECK (((removed_at IS NULL) OR (removed_at >= assigned_at)))
);

ALTER TABLE ONLY public.care_team_assignments FORCE ROW LEVEL SECURITY;


--
-- Name: careteam_reassignment_rows; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.careteam_reassignment_rows AS
 SELECT NULL::text AS outcome,
    a.id,
    a.patient_id,
    a.provider_id,
    a.role,
    a.assigned_at,
    a.removed_at,
    a.removal_reason,
    a.created_at,
    a.updated_at,
    a.organization_id
   FROM public.care_team_assignments a
  WHERE false;


--
-- Name: careteam_reassign_primary(uuid, uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.careteam_reassign_primary(p_patient_id uuid, p_provider_id uuid, p_reason text) RETURNS SETOF public.careteam_reassignment_rows
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    held care_team_assignments;
    replaced uuid[] := '{}';
    ended_at timestamptz;
BEGIN
    -- Both references are checked before any lock, so that a request that
    -- names a missing one holds nothing; a missing patient is reported
    -- first. Patients are never deleted, so the lock finds the row.
    IF NOT EXISTS (SELECT FROM patients AS p WHERE p.id = p_patient_id) THEN
        RAISE EXCEPTION 'no such patient'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'fk_care_team_assignments_patient';
    END IF;
    IF NOT EXISTS (SELECT FROM providers AS v WHERE v.id = p_provider_id) THEN
        RAISE EXCEPTION 'no such provider'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'fk_care_team_assignments_provider';
    END IF;
    PERFORM FROM patients AS p WHERE p.id = p_patient_id FOR UPDATE OF p;

    FOR held IN
        SELECT c.*
        FROM care_team_assignments AS c
        WHERE c.patient_id = p_patient_id
          AND c.removed_at IS NULL
          AND (c.role = 'PRIMARY' OR c.provider_id = p_provider_id)
        ORDER BY c.id
        FOR UPDATE OF c
    LOOP
        IF held.role = 'PRIMARY' AND held.provider_id = p_provider_id THEN
            RETURN QUERY SELECT 'unchanged', held.id, held.patient_id, held.provider_id, held.role,
                                held.assigned_at, held.removed_at, held.removal_reason,
                                held.created_at, held.updated_at, held.organization_id;
            RETURN;
        END IF;
        replaced := replaced || held.id;
    END LOOP;

    ended_at := clock_timestamp();
    RETURN QUERY
    WITH ended AS (
        UPDATE care_team_assignments AS c
        SET removed_at = greatest(ended_at, c.assigned_at),
            removal_reason = CASE WHEN c.role = 'PRIMARY' THEN coalesce(p_reason, 'reassigned')
                                  ELSE 'promoted to PRIMARY' END
        WHERE c.id = ANY (replaced) AND c.removed_at IS NULL
        RETURNING c.id, c.patient_id, c.provider_id, c.role, c.assigned_at, c.removed_at,
                  c.removal_reason, c.created_at, c.updated_at, c.organization_id
    )
    SELECT CASE WHEN e.role = 'PRIMARY' THEN 'previous' ELSE 'promoted' END,
           e.id, e.patient_id, e.provider_id, e.role, e.assigned_at, e.removed_at,
           e.removal_reason, e.created_at, e.updated_at, e.organization_id
    FROM ended AS e;

    -- This statement sees the rows the previous one ended, so the old
    -- PRIMARY has left uq_care_team_primary.
    RETURN QUERY
    WITH started AS (
        INSERT INTO care_team_assignments (patient_id, provider_id, role, assigned_at)
        VALUES (p_patient_id, p_provider_id, 'PRIMARY',
                coalesce((SELECT o.removed_at
                          FROM care_team_assignments AS o
                          WHERE o.id = ANY (replaced) AND o.role = 'PRIMARY'),
                         ended_at))
        RETURNING care_team_assignments.id, care_team_assignments.patient_id,
                  care_team_assignments.provider_id, care_team_assignments.role,
                  care_team_assignments.assigned_at, care_team_assignments.removed_at,
                  care_team_assignments.removal_reason, care_team_assignments.created_at,
                  care_team_assignments.updated_at, care_team_assignments.organization_id
    )
    SELECT 'current', s.id, s.patient_id, s.provider_id, s.role, s.assigned_at, s.removed_at,
           s.removal_reason, s.created_at, s.updated_at, s.organization_id
    FROM started AS s;
END
$$;


--
-- Name: guard_care_team_assignment(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.guard_care_team_assignment() RETURNS trigger
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


--
-- Name: npi_is_valid(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.npi_is_valid(npi text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $_$
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
$_$;


--
-- Name: set_updated_at(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
    RETURN NEW;
END
$$;


--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    occurred_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    organization_id uuid,
    table_name text NOT NULL,
    row_id uuid NOT NULL,
    patient_id uuid,
    action text NOT NULL,
    actor_id uuid,
    request_id text,
    changes jsonb NOT NULL,
    CONSTRAINT ck_audit_log_action CHECK ((action = ANY (ARRAY['INSERT'::text, 'UPDATE'::text, 'SOFT_DELETE'::text, 'DELETE'::text])))
);

ALTER TABLE ONLY public.audit_log FORCE ROW LEVEL SECURITY;


--
-- Name: audit_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: import_record_totals; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.import_record_totals (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    kind text NOT NULL,
    outcome text NOT NULL,
    records bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ck_import_record_totals_outcome CHECK ((outcome = ANY (ARRAY['loaded'::text, 'updated'::text, 'unchanged'::text, 'skipped'::text]))),
    CONSTRAINT ck_import_record_totals_records CHECK ((records >= 0))
);


--
-- Name: organizations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.organizations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ck_organizations_name_length CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200)))
);


--
-- Name: patients; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.patients (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mrn text,
    given_name text NOT NULL,
    family_name text NOT NULL,
    birth_date date,
    external_ref text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    organization_id uuid DEFAULT public.careteam_write_organization() NOT NULL,
    CONSTRAINT ck_patients_family_name_length CHECK (((char_length(family_name) >= 1) AND (char_length(family_name) <= 200))),
    CONSTRAINT ck_patients_given_name_length CHECK (((char_length(given_name) >= 1) AND (char_length(given_name) <= 200))),
    CONSTRAINT ck_patients_mrn_length CHECK (((char_length(mrn) >= 1) AND (char_length(mrn) <= 64)))
);

ALTER TABLE ONLY public.patients FORCE ROW LEVEL SECURITY;


--
-- Name: providers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.providers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    npi text NOT NULL,
    given_name text NOT NULL,
    family_name text NOT NULL,
    specialty text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ck_providers_family_name_length CHECK (((char_length(family_name) >= 1) AND (char_length(family_name) <= 200))),
    CONSTRAINT ck_providers_given_name_length CHECK (((char_length(given_name) >= 1) AND (char_length(given_name) <= 200))),
    CONSTRAINT ck_providers_npi_valid CHECK (public.npi_is_valid(npi)),
    CONSTRAINT ck_providers_specialty_length CHECK (((char_length(specialty) >= 1) AND (char_length(specialty) <= 200)))
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version character varying NOT NULL
);


--
-- Name: api_keys pk_api_keys; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT pk_api_keys PRIMARY KEY (id);


--
-- Name: audit_log pk_audit_log; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT pk_audit_log PRIMARY KEY (id);


--
-- Name: care_team_assignments pk_care_team_assignments; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.care_team_assignments
    ADD CONSTRAINT pk_care_team_assignments PRIMARY KEY (id);


--
-- Name: import_record_totals pk_import_record_totals; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_record_totals
    ADD CONSTRAINT pk_import_record_totals PRIMARY KEY (id);


--
-- Name: organizations pk_organizations; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.organizations
    ADD CONSTRAINT pk_organizations PRIMARY KEY (id);


--
-- Name: patients pk_patients; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.patients
    ADD CONSTRAINT pk_patients PRIMARY KEY (id);


--
-- Name: providers pk_providers; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.providers
    ADD CONSTRAINT pk_providers PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: api_keys uq_api_keys_key_hash; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash);


--
-- Name: import_record_totals uq_import_record_totals_kind_outcome; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_record_totals
    ADD CONSTRAINT uq_import_record_totals_kind_outcome UNIQUE (kind, outcome);


--
-- Name: organizations uq_organizations_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.organizations
    ADD CONSTRAINT uq_organizations_name UNIQUE (name);


--
-- Name: patients uq_patients_external_ref; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.patients
    ADD CONSTRAINT uq_patients_external_ref UNIQUE (organization_id, external_ref);


--
-- Name: patients uq_patients_mrn; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.patients
    ADD CONSTRAINT uq_patients_mrn UNIQUE (organization_id, mrn);


--
-- Name: patients uq_patients_organization_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.patients
    ADD CONSTRAINT uq_patients_organization_id UNIQUE (organization_id, id);


--
-- Name: providers uq_providers_npi; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.providers
    ADD CONSTRAINT uq_providers_npi UNIQUE (npi);


--
-- Name: ix_audit_log_organization_occurred_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_log_organization_occurred_at ON public.audit_log USING btree (organization_id, occurred_at);


--
-- Name: ix_audit_log_patient; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_log_patient ON public.audit_log USING btree (organization_id, patient_id, id DESC) WHERE (patient_id IS NOT NULL);


--
-- Name: ix_care_team_assignments_patient_assigned_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_care_team_assignments_patient_assigned_at ON public.care_team_assignments USING btree (patient_id, assigned_at DESC);


--
-- Name: ix_care_team_assignments_provider; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_care_team_assignments_provider ON public.care_team_assignments USING btree (provider_id);


--
-- Name: uq_care_team_patient_provider; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_care_team_patient_provider ON public.care_team_assignments USING btree (patient_id, provider_id) WHERE (removed_at IS NULL);


--
-- Name: uq_care_team_primary; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_care_team_primary ON public.care_team_assignments USING btree (patient_id) WHERE ((role = 'PRIMARY'::public.care_team_role) AND (removed_at IS NULL));


--
-- Name: api_keys trg_api_keys_audit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_api_keys_audit AFTER INSERT OR DELETE OR UPDATE ON public.api_keys FOR EACH ROW EXECUTE FUNCTION public.careteam_audit('key_hash');


--
-- Name: api_keys trg_api_keys_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_api_keys_set_updated_at BEFORE UPDATE ON public.api_keys FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: care_team_assignments trg_care_team_assignments_audit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_care_team_assignments_audit AFTER INSERT OR DELETE OR UPDATE ON public.care_team_assignments FOR EACH ROW EXECUTE FUNCTION public.careteam_audit();


--
-- Name: care_team_assignments trg_care_team_assignments_guard; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_care_team_assignments_guard BEFORE DELETE OR UPDATE ON public.care_team_assignments FOR EACH ROW EXECUTE FUNCTION public.guard_care_team_assignment();


--
-- Name: care_team_assignments trg_care_team_assignments_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_care_team_assignments_set_updated_at BEFORE UPDATE ON public.care_team_assignments FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: import_record_totals trg_import_record_totals_audit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_import_record_totals_audit AFTER INSERT OR DELETE OR UPDATE ON public.import_record_totals FOR EACH ROW EXECUTE FUNCTION public.careteam_audit();


--
-- Name: import_record_totals trg_import_record_totals_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_import_record_totals_set_updated_at BEFORE UPDATE ON public.import_record_totals FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: organizations trg_organizations_audit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_organizations_audit AFTER INSERT OR DELETE OR UPDATE ON public.organizations FOR EACH ROW EXECUTE FUNCTION public.careteam_audit();


--
-- Name: organizations trg_organizations_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_organizations_set_updated_at BEFORE UPDATE ON public.organizations FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: patients trg_patients_audit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_patients_audit AFTER INSERT OR DELETE OR UPDATE ON public.patients FOR EACH ROW EXECUTE FUNCTION public.careteam_audit('given_name', 'family_name', 'birth_date', 'mrn', 'external_ref');


--
-- Name: patients trg_patients_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_patients_set_updated_at BEFORE UPDATE ON public.patients FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: providers trg_providers_audit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_providers_audit AFTER INSERT OR DELETE OR UPDATE ON public.providers FOR EACH ROW EXECUTE FUNCTION public.careteam_audit('given_name', 'family_name');


--
-- Name: providers trg_providers_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_providers_set_updated_at BEFORE UPDATE ON public.providers FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: api_keys fk_api_keys_organization; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT fk_api_keys_organization FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: care_team_assignments fk_care_team_assignments_patient; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.care_team_assignments
    ADD CONSTRAINT fk_care_team_assignments_patient FOREIGN KEY (patient_id) REFERENCES public.patients(id);


--
-- Name: care_team_assignments fk_care_team_assignments_patient_organization; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.care_team_assignments
    ADD CONSTRAINT fk_care_team_assignments_patient_organization FOREIGN KEY (organization_id, patient_id) REFERENCES public.patients(organization_id, id);


--
-- Name: care_team_assignments fk_care_team_assignments_provider; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.care_team_assignments
    ADD CONSTRAINT fk_care_team_assignments_provider FOREIGN KEY (provider_id) REFERENCES public.providers(id);


--
-- Name: patients fk_patients_organization; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.patients
    ADD CONSTRAINT fk_patients_organization FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: audit_log; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_log audit_writer; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY audit_writer ON public.audit_log FOR INSERT TO postgres WITH CHECK (true);


--
-- Name: care_team_assignments; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.care_team_assignments ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_log operator_all_organizations; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY operator_all_organizations ON public.audit_log FOR SELECT TO postgres USING ((current_setting('careteam.all_organizations'::text, true) = 'on'::text));


--
-- Name: care_team_assignments operator_all_organizations; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY operator_all_organizations ON public.care_team_assignments TO postgres USING ((current_setting('careteam.all_organizations'::text, true) = 'on'::text)) WITH CHECK ((current_setting('careteam.all_organizations'::text, true) = 'on'::text));


--
-- Name: patients operator_all_organizations; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY operator_all_organizations ON public.patients TO postgres USING ((current_setting('careteam.all_organizations'::text, true) = 'on'::text)) WITH CHECK ((current_setting('careteam.all_organizations'::text, true) = 'on'::text));


--
-- Name: patients; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.patients ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_log tenant_isolation; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY tenant_isolation ON public.audit_log FOR SELECT USING ((organization_id = public.careteam_current_organization()));


--
-- Name: care_team_assignments tenant_isolation; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY tenant_isolation ON public.care_team_assignments USING ((organization_id = public.careteam_current_organization())) WITH CHECK ((organization_id = public.careteam_current_organization()));


--
-- Name: patients tenant_isolation; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY tenant_isolation ON public.patients USING ((organization_id = public.careteam_current_organization())) WITH CHECK ((organization_id = public.careteam_current_organization()));


--
-- PostgreSQL database dump complete
--

\unrestrict dbmate


--
-- Dbmate schema migrations
--

INSERT INTO public.schema_migrations (version) VALUES
    ('20261204110000'),
    ('20261204110100'),
    ('20261204110200'),
    ('20261204130000'),
    ('20261204130100'),
    ('20261204130200'),
    ('20261204130300'),
    ('20261204140000');
