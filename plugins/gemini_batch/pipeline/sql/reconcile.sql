-- Every input key must be in results or errors for the date, exactly once. Returns the counts
-- and samples of the keys that are not. {{input}}: a subquery of the input keys. {{day_input}}:
-- the day's whole input; keys of the date in the tables that are not in it are `stale`.
WITH input_keys AS (
  SELECT DISTINCT key FROM {{input}} AS input WHERE key IS NOT NULL
),
found AS (
  SELECT key, 1 AS in_results, 0 AS in_errors FROM {{results}} WHERE logical_date = @logical_date
  UNION ALL
  SELECT key, 0 AS in_results, 1 AS in_errors FROM {{errors}} WHERE logical_date = @logical_date
),
per_key AS (
  SELECT
    input_keys.key AS key,
    COALESCE(SUM(found.in_results), 0) AS in_results,
    COALESCE(SUM(found.in_errors), 0) AS in_errors
  FROM input_keys
  LEFT JOIN found ON found.key = input_keys.key
  GROUP BY input_keys.key
),
stale_keys AS (
  SELECT DISTINCT key FROM found
  WHERE key NOT IN (SELECT key FROM {{day_input}} AS day_input WHERE key IS NOT NULL)
),
outputs AS (
  SELECT key FROM {{stage}} WHERE key IS NOT NULL GROUP BY key
)
SELECT
  (SELECT COUNT(*) FROM input_keys) AS input,
  (SELECT COUNTIF(in_results = 1 AND in_errors = 0) FROM per_key) AS succeeded,
  (SELECT COUNTIF(in_errors = 1 AND in_results = 0) FROM per_key) AS failed,
  (SELECT COUNTIF(in_results + in_errors = 0) FROM per_key) AS missing,
  ARRAY(SELECT key FROM per_key WHERE in_results + in_errors = 0 ORDER BY key LIMIT @sample_size) AS missing_sample,
  (SELECT COUNTIF(in_results + in_errors > 1) FROM per_key) AS duplicated,
  ARRAY(SELECT key FROM per_key WHERE in_results + in_errors > 1 ORDER BY key LIMIT @sample_size) AS duplicated_sample,
  (SELECT COUNT(*) FROM outputs WHERE key NOT IN (SELECT key FROM input_keys)) AS unexpected,
  (SELECT COUNT(*) FROM stale_keys) AS stale,
  ARRAY(SELECT key FROM stale_keys ORDER BY key LIMIT @sample_size) AS stale_sample,
  (SELECT COUNT(*) FROM {{stage}}) AS staged,
  (SELECT COUNTIF(key IS NULL) FROM {{stage}}) AS unkeyed
