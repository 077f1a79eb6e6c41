-- Rows missing from a job's output (record_missing): every key of the job's source {{source}}
-- (key, request) that no staged output row carries becomes a failed row of {{final}} with status
-- `missing` (retryable: row_retry.py), the job's name and the submitted request, so it lands in
-- the errors table and a failed-row retry round resubmits it, instead of failing reconciliation.
INSERT INTO {{final}} (key, logical_date, ok, status, error, request, job_name)
SELECT
  source.key,
  @logical_date,
  FALSE,
  'missing',
  @error,
  source.request,
  @job_name
FROM {{source}} AS source
WHERE source.key IS NOT NULL AND source.key NOT IN (SELECT key FROM {{final}} WHERE key IS NOT NULL)
