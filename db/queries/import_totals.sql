-- name: AddImportRecordTotals :exec
-- AddImportRecordTotals adds one import's counts to the running totals.
INSERT INTO import_record_totals (kind, outcome, records)
SELECT unnest(@kinds::text[]), unnest(@outcomes::text[]), unnest(@records::bigint[])
ON CONFLICT (kind, outcome) DO UPDATE
SET records = import_record_totals.records + EXCLUDED.records;

-- name: ListImportRecordTotals :many
-- ListImportRecordTotals returns the running totals, for /metrics.
SELECT kind, outcome, records
FROM import_record_totals
ORDER BY kind, outcome;
