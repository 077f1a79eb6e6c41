-- One typed row per key from the stage: a success wins over a failure, then the latest
-- ({{ranked}}: rank_stage.sql). {{input}} is a subquery of the
-- input (key, request), used to give failed rows their request when the service echoes none.
-- Structured output: a request whose generationConfig has responseMimeType application/json and
-- a responseJsonSchema (dialect json_schema, preferred as the services prefer it) or a
-- responseSchema (dialect openapi) carries its schema into response_schema / schema_dialect, and
-- its answer is parsed server-side into response_json (NULL when it is not JSON); the worker then
-- checks the answers against the schema (structured_answers.sql, structured_invalid.sql).
CREATE OR REPLACE TABLE {{final}} AS
WITH ranked AS (
{{ranked}}
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
  LEFT JOIN {{input}} AS input ON input.key = latest.key
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
