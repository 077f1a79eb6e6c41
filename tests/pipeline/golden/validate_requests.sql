-- params: {"sample_size": 5}
WITH requests AS (
  SELECT
    CAST(`key` AS STRING) AS key,
    `request` AS request,
    BYTE_LENGTH(TO_JSON_STRING(`request`)) AS request_bytes
  FROM `proj.ds.requests`
),
duplicates AS (
  SELECT key FROM requests WHERE key IS NOT NULL GROUP BY key HAVING COUNT(*) > 1
),
invalid AS (
  SELECT key FROM requests WHERE request IS NULL
),
no_contents AS (
  SELECT key FROM requests
  WHERE request IS NOT NULL AND JSON_QUERY(request, '$.contents[0].parts[0]') IS NULL
)
SELECT
  (SELECT COUNT(*) FROM requests) AS requests,
  (SELECT SUM(request_bytes) FROM requests) AS bytes,
  (SELECT COUNTIF(key IS NULL) FROM requests) AS null_keys,
  ARRAY<STRING>[] AS null_keys_sample,
  (SELECT COUNT(*) FROM duplicates) AS duplicate_keys,
  ARRAY(SELECT key FROM duplicates ORDER BY key LIMIT @sample_size) AS duplicate_keys_sample,
  (SELECT COUNT(*) FROM invalid) AS invalid_json,
  ARRAY(SELECT key FROM invalid ORDER BY key LIMIT @sample_size) AS invalid_json_sample,
  (SELECT COUNT(*) FROM no_contents) AS missing_contents,
  ARRAY(SELECT key FROM no_contents ORDER BY key LIMIT @sample_size) AS missing_contents_sample
