-- params: {}
CREATE TABLE `proj.ds.requests_shard_0` AS SELECT * FROM `proj.ds.requests` WHERE key = 'k0000'

-- params: {}
CREATE TABLE `proj.ds.requests_shard_1` AS SELECT * FROM `proj.ds.requests` WHERE key = 'k0001'

-- params: {}
CREATE TABLE `proj.ds.requests_shard_2` AS SELECT * FROM `proj.ds.requests` WHERE key = 'k0002'

-- params: {"jobs": ["batches/1"], "logical_date": "2026-01-01"}
SELECT DISTINCT job_name FROM `proj.ds.results` WHERE logical_date = @logical_date AND job_name IN UNNEST(@jobs) UNION DISTINCT SELECT DISTINCT job_name FROM `proj.ds.errors` WHERE logical_date = @logical_date AND job_name IN UNNEST(@jobs)

-- params: {"end_time": "2026-01-01T11:00:00Z", "job_name": "batches/1", "model": "gemini-2.5-flash"}
INSERT INTO `proj.ds._gemini_batch_stage_c1e9c5cf223c` (key, request, response, status, error_message, error_code, processed_time, job_name, model)
SELECT
  key,
  CAST(NULL AS JSON) AS request,
  response,
  IF(error IS NULL, NULL, COALESCE(JSON_VALUE(error, '$.status'), CONCAT('code ', JSON_VALUE(error, '$.code')), 'ERROR')) AS status,
  IF(error IS NULL, NULL, COALESCE(JSON_VALUE(error, '$.message'), TO_JSON_STRING(error))) AS error_message,
  SAFE_CAST(JSON_VALUE(error, '$.code') AS INT64) AS error_code,
  SAFE_CAST(@end_time AS TIMESTAMP) AS processed_time,
  @job_name AS job_name,
  @model AS model
FROM `proj.ds._gemini_batch_raw0_c1e9c5cf223c`

-- params: {"logical_date": "2026-01-01"}
CREATE OR REPLACE TABLE `proj.ds._gemini_batch_final_c1e9c5cf223c` AS
WITH ranked AS (
  SELECT
    *,
    (response IS NOT NULL AND status IS NULL AND error_message IS NULL) AS ok,
    ROW_NUMBER() OVER (
      PARTITION BY key
      ORDER BY IF(response IS NOT NULL AND status IS NULL AND error_message IS NULL, 0, 1), processed_time DESC
    ) AS rank_in_key
  FROM `proj.ds._gemini_batch_stage_c1e9c5cf223c`
  WHERE key IS NOT NULL
),
latest AS (
  SELECT * FROM ranked WHERE rank_in_key = 1
),
typed AS (
  SELECT
    latest.key AS key,
    @logical_date AS logical_date,
    latest.ok AS ok,
    COALESCE(JSON_VALUE(latest.response, '$.modelVersion'), latest.model) AS model,
    (
      SELECT STRING_AGG(JSON_VALUE(part, '$.text'), '')
      FROM UNNEST(JSON_QUERY_ARRAY(latest.response, '$.candidates[0].content.parts')) AS part
      WHERE COALESCE(JSON_VALUE(part, '$.thought'), 'false') != 'true'
    ) AS response_text,
    JSON_VALUE(latest.response, '$.candidates[0].finishReason') AS finish_reason,
    SAFE_CAST(JSON_VALUE(latest.response, '$.usageMetadata.promptTokenCount') AS INT64) AS prompt_tokens,
    SAFE_CAST(JSON_VALUE(latest.response, '$.usageMetadata.candidatesTokenCount') AS INT64) AS output_tokens,
    SAFE_CAST(JSON_VALUE(latest.response, '$.usageMetadata.totalTokenCount') AS INT64) AS total_tokens,
    CASE
      WHEN NOT latest.ok THEN COALESCE(latest.status, 'ERROR')
      WHEN JSON_QUERY(latest.response, '$.candidates[0]') IS NULL THEN 'blocked'
      ELSE 'succeeded'
    END AS status,
    CASE
      WHEN NOT latest.ok THEN latest.error_message
      WHEN JSON_QUERY(latest.response, '$.candidates[0]') IS NULL
        THEN COALESCE(JSON_VALUE(latest.response, '$.promptFeedback.blockReason'), 'no candidates')
    END AS error,
    latest.error_code AS error_code,
    COALESCE(latest.request, input.request) AS request,
    latest.job_name AS job_name,
    latest.processed_time AS processed_time
  FROM latest
  LEFT JOIN (SELECT * FROM (SELECT CAST(`key` AS STRING) AS key, `request` AS request FROM `proj.ds.requests_shard_0` UNION ALL SELECT CAST(`key` AS STRING) AS key, `request` AS request FROM `proj.ds.requests_shard_1`)) AS input ON input.key = latest.key
),
configured AS (
  SELECT
    typed.*,
    COALESCE(JSON_QUERY(request, '$.generationConfig'), JSON_QUERY(request, '$.generation_config')) AS config
  FROM typed
),
declared AS (
  SELECT
    configured.*,
    COALESCE(JSON_VALUE(config, '$.responseMimeType'), JSON_VALUE(config, '$.response_mime_type')) = 'application/json' AS wants_json,
    COALESCE(JSON_QUERY(config, '$.responseJsonSchema'), JSON_QUERY(config, '$.response_json_schema')) AS json_schema,
    COALESCE(JSON_QUERY(config, '$.responseSchema'), JSON_QUERY(config, '$.response_schema')) AS openapi_schema
  FROM configured
)
SELECT
  key, logical_date, ok, model, response_text, finish_reason, prompt_tokens, output_tokens,
  total_tokens, status, error, error_code, request, job_name, processed_time,
  IF(wants_json, COALESCE(json_schema, openapi_schema), NULL) AS response_schema,
  CASE
    WHEN NOT wants_json THEN NULL
    WHEN json_schema IS NOT NULL THEN 'json_schema'
    WHEN openapi_schema IS NOT NULL THEN 'openapi'
  END AS schema_dialect,
  IF(
    ok AND status = 'succeeded' AND wants_json AND COALESCE(json_schema, openapi_schema) IS NOT NULL,
    SAFE.PARSE_JSON(response_text),
    NULL
  ) AS response_json
FROM declared

-- params: {}
WITH answers AS (
  SELECT
    key,
    response_text,
    schema_dialect,
    TO_HEX(SHA256(CONCAT(schema_dialect, ':', TO_JSON_STRING(response_schema)))) AS schema_id,
    TO_JSON_STRING(response_schema) AS schema_text
  FROM `proj.ds._gemini_batch_final_c1e9c5cf223c`
  WHERE ok AND status = 'succeeded' AND schema_dialect IS NOT NULL
),
numbered AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY schema_id ORDER BY key) AS row_in_schema FROM answers
)
SELECT
  key,
  response_text,
  schema_dialect,
  schema_id,
  IF(row_in_schema = 1, schema_text, NULL) AS schema_text
FROM numbered
ORDER BY schema_id, row_in_schema

-- params: {}
BEGIN TRANSACTION;

MERGE `proj.ds.results` AS target
USING (SELECT * FROM `proj.ds._gemini_batch_final_c1e9c5cf223c` WHERE ok) AS source
ON target.logical_date = DATE '2026-01-01' AND target.key = source.key
WHEN MATCHED THEN UPDATE SET
  model = source.model,
  response_text = source.response_text,
  response_json = source.response_json,
  finish_reason = source.finish_reason,
  prompt_tokens = source.prompt_tokens,
  output_tokens = source.output_tokens,
  total_tokens = source.total_tokens,
  status = source.status,
  error = source.error,
  job_name = source.job_name,
  processed_time = source.processed_time,
  loaded_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
  key, logical_date, model, response_text, response_json, finish_reason, prompt_tokens, output_tokens, total_tokens, status, error, job_name, processed_time, loaded_at
) VALUES (
  source.key, source.logical_date, source.model, source.response_text, source.response_json, source.finish_reason, source.prompt_tokens, source.output_tokens, source.total_tokens, source.status, source.error, source.job_name, source.processed_time, CURRENT_TIMESTAMP()
);

MERGE `proj.ds.errors` AS target
USING (SELECT * FROM `proj.ds._gemini_batch_final_c1e9c5cf223c` WHERE NOT ok) AS source
ON target.logical_date = DATE '2026-01-01' AND target.key = source.key
WHEN MATCHED THEN UPDATE SET
  status = source.status,
  error_code = source.error_code,
  error = source.error,
  response_text = source.response_text,
  request = source.request,
  job_name = source.job_name,
  processed_time = source.processed_time,
  round = 0,
  loaded_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
  key, logical_date, status, error_code, error, response_text, request, job_name, processed_time,
  round, loaded_at
) VALUES (
  source.key, source.logical_date, source.status, source.error_code, source.error, source.response_text,
  source.request,
  source.job_name, source.processed_time, 0, CURRENT_TIMESTAMP()
);

DELETE FROM `proj.ds.results`
WHERE logical_date = DATE '2026-01-01' AND key IN (SELECT key FROM `proj.ds._gemini_batch_final_c1e9c5cf223c` WHERE NOT ok);

DELETE FROM `proj.ds.errors`
WHERE logical_date = DATE '2026-01-01' AND key IN (SELECT key FROM `proj.ds._gemini_batch_final_c1e9c5cf223c` WHERE ok);

DELETE FROM `proj.ds.results`
WHERE TRUE AND logical_date = DATE '2026-01-01'
  AND key NOT IN (SELECT key FROM (SELECT CAST(`key` AS STRING) AS key, `request` AS request FROM `proj.ds.requests`) AS day_input WHERE key IS NOT NULL);

DELETE FROM `proj.ds.errors`
WHERE TRUE AND logical_date = DATE '2026-01-01'
  AND key NOT IN (SELECT key FROM (SELECT CAST(`key` AS STRING) AS key, `request` AS request FROM `proj.ds.requests`) AS day_input WHERE key IS NOT NULL);

COMMIT TRANSACTION;

-- params: {}
SELECT ok, IF(ok, NULL, status) AS status, COUNT(*) AS n FROM `proj.ds._gemini_batch_final_c1e9c5cf223c` GROUP BY 1, 2 ORDER BY 1, 2

-- params: {"logical_date": "2026-01-01", "sample_size": 5}
WITH input_keys AS (
  SELECT DISTINCT key FROM (SELECT * FROM (SELECT CAST(`key` AS STRING) AS key, `request` AS request FROM `proj.ds.requests_shard_0` UNION ALL SELECT CAST(`key` AS STRING) AS key, `request` AS request FROM `proj.ds.requests_shard_1`)) AS input WHERE key IS NOT NULL
),
found AS (
  SELECT key, 1 AS in_results, 0 AS in_errors FROM `proj.ds.results` WHERE logical_date = @logical_date
  UNION ALL
  SELECT key, 0 AS in_results, 1 AS in_errors FROM `proj.ds.errors` WHERE logical_date = @logical_date
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
  WHERE key NOT IN (SELECT key FROM (SELECT CAST(`key` AS STRING) AS key, `request` AS request FROM `proj.ds.requests`) AS day_input WHERE key IS NOT NULL)
),
outputs AS (
  SELECT key FROM `proj.ds._gemini_batch_stage_c1e9c5cf223c` WHERE key IS NOT NULL GROUP BY key
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
  (SELECT COUNT(*) FROM `proj.ds._gemini_batch_stage_c1e9c5cf223c`) AS staged,
  (SELECT COUNTIF(key IS NULL) FROM `proj.ds._gemini_batch_stage_c1e9c5cf223c`) AS unkeyed
