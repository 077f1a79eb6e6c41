-- Server-side checks of a BigQuery requests table: keys present and unique, requests that are
-- JSON, and the figures the per-job limits are checked against (the shape of each request is
-- checked by validate_request_shape.sql).
-- {{table}}: the requests table; {{key}}: the key column; {{request_json}}: the request as JSON;
-- {{request_bytes}}: the byte length of a request. @sample_size: how many sample keys to return.
WITH requests AS (
  SELECT
    CAST({{key}} AS STRING) AS key,
    {{request_json}} AS request,
    {{request_bytes}} AS request_bytes
  FROM {{table}}
),
duplicates AS (
  SELECT key FROM requests WHERE key IS NOT NULL GROUP BY key HAVING COUNT(*) > 1
),
invalid AS (
  SELECT key FROM requests WHERE request IS NULL
)
SELECT
  (SELECT COUNT(*) FROM requests) AS requests,
  (SELECT SUM(request_bytes) FROM requests) AS bytes,
  (SELECT COUNTIF(key IS NULL) FROM requests) AS null_keys,
  ARRAY<STRING>[] AS null_keys_sample,
  (SELECT COUNT(*) FROM duplicates) AS duplicate_keys,
  ARRAY(SELECT key FROM duplicates ORDER BY key LIMIT @sample_size) AS duplicate_keys_sample,
  (SELECT COUNT(*) FROM invalid) AS invalid_json,
  ARRAY(SELECT key FROM invalid ORDER BY key LIMIT @sample_size) AS invalid_json_sample
