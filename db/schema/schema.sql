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


SET default_tablespace = '';

SET default_table_access_method = heap;

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
    CONSTRAINT ck_care_team_assignments_reason_needs_removal CHECK (((removal_reason IS NULL) OR (removed_at IS NOT NULL))),
    CONSTRAINT ck_care_team_assignments_removal_reason_length CHECK (((char_length(removal_reason) >= 1) AND (char_length(removal_reason) <= 500))),
    CONSTRAINT ck_care_team_assignments_removed_after_assigned CHECK (((removed_at IS NULL) OR (removed_at >= assigned_at)))
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
    CONSTRAINT ck_patients_family_name_length CHECK (((char_length(family_name) >= 1) AND (char_length(family_name) <= 200))),
    CONSTRAINT ck_patients_given_name_length CHECK (((char_length(given_name) >= 1) AND (char_length(given_name) <= 200))),
    CONSTRAINT ck_patients_mrn_length CHECK (((char_length(mrn) >= 1) AND (char_length(mrn) <= 64)))
);


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
-- Name: care_team_assignments pk_care_team_assignments; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.care_team_assignments
    ADD CONSTRAINT pk_care_team_assignments PRIMARY KEY (id);


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
-- Name: patients uq_patients_external_ref; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.patients
    ADD CONSTRAINT uq_patients_external_ref UNIQUE (external_ref);


--
-- Name: patients uq_patients_mrn; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.patients
    ADD CONSTRAINT uq_patients_mrn UNIQUE (mrn);


--
-- Name: providers uq_providers_npi; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.providers
    ADD CONSTRAINT uq_providers_npi UNIQUE (npi);


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
-- Name: care_team_assignments trg_care_team_assignments_guard; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_care_team_assignments_guard BEFORE DELETE OR UPDATE ON public.care_team_assignments FOR EACH ROW EXECUTE FUNCTION public.guard_care_team_assignment();


--
-- Name: care_team_assignments trg_care_team_assignments_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_care_team_assignments_set_updated_at BEFORE UPDATE ON public.care_team_assignments FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: patients trg_patients_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_patients_set_updated_at BEFORE UPDATE ON public.patients FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: providers trg_providers_set_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg_providers_set_updated_at BEFORE UPDATE ON public.providers FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();


--
-- Name: care_team_assignments fk_care_team_assignments_patient; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.care_team_assignments
    ADD CONSTRAINT fk_care_team_assignments_patient FOREIGN KEY (patient_id) REFERENCES public.patients(id);


--
-- Name: care_team_assignments fk_care_team_assignments_provider; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.care_team_assignments
    ADD CONSTRAINT fk_care_team_assignments_provider FOREIGN KEY (provider_id) REFERENCES public.providers(id);


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
    ('20261204110200');
