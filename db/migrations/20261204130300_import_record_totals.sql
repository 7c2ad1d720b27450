-- migrate:up

-- import_record_totals counts every record that "careteam import" has read,
-- by resource kind and outcome (loaded, updated, unchanged, skipped), since
-- the database began. The service shows them at /metrics as counters. They
-- hold counts only, no tenant data.
CREATE TABLE import_record_totals (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    kind       text        NOT NULL,
    outcome    text        NOT NULL,
    records    bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT pk_import_record_totals PRIMARY KEY (id),
    CONSTRAINT uq_import_record_totals_kind_outcome UNIQUE (kind, outcome),
    CONSTRAINT ck_import_record_totals_outcome
        CHECK (outcome IN ('loaded', 'updated', 'unchanged', 'skipped')),
    CONSTRAINT ck_import_record_totals_records CHECK (records >= 0)
);

CREATE TRIGGER trg_import_record_totals_set_updated_at
    BEFORE UPDATE ON import_record_totals
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER trg_import_record_totals_audit
    AFTER INSERT OR UPDATE OR DELETE ON import_record_totals
    FOR EACH ROW EXECUTE FUNCTION careteam_audit();

-- The service only reads them; the import adds to them as the owner.
GRANT SELECT ON import_record_totals TO careteam_app;

-- migrate:down

REVOKE ALL ON import_record_totals FROM careteam_app;
DROP TABLE import_record_totals;
