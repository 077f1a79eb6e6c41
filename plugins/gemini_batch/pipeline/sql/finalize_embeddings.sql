-- One typed row per key from the stage of an embeddings load (the stage as for answers: a
-- response JSON per row), ranked as answers are ({{ranked}}: rank_stage.sql). The vector and its
-- tokens in each layout: Vertex AI `{"embeddings": {"values", "statistics": {"token_count"}}}`
-- (the first element of `predictions`), the Gemini API's `{"embedding": {"values"},
-- "usageMetadata": {"promptTokenCount"}}` (a results file) or the SDK's `tokenCount` (inline).
-- Columns the errors MERGE reads are here as for answers (response_text, request, error_code);
-- an answered row without a vector is a failure (status `no_embedding`). `model` is the bare id
-- (`publishers/google/models/text-embedding-005` and `models/gemini-embedding-001` name the job's).
CREATE OR REPLACE TABLE {{final}} AS
WITH ranked AS (
{{ranked}}
),
latest AS (
  SELECT
    *,
    COALESCE(JSON_QUERY(response, '$.embeddings.values'), JSON_QUERY(response, '$.embedding.values')) AS vector
  FROM ranked
  WHERE rank_in_key = 1
),
typed AS (
  SELECT
    latest.key AS key,
    @logical_date AS logical_date,
    latest.ok AND latest.vector IS NOT NULL AS ok,
    ARRAY_REVERSE(SPLIT(latest.model, '/'))[SAFE_OFFSET(0)] AS model,
    ARRAY(
      SELECT SAFE_CAST(JSON_VALUE(value, '$') AS FLOAT64)
      FROM UNNEST(JSON_QUERY_ARRAY(latest.vector)) AS value WITH OFFSET AS position
      ORDER BY position
    ) AS embedding,
    ARRAY_LENGTH(JSON_QUERY_ARRAY(latest.vector)) AS dimension,
    COALESCE(
      SAFE_CAST(JSON_VALUE(latest.response, '$.embeddings.statistics.token_count') AS INT64),
      SAFE_CAST(JSON_VALUE(latest.response, '$.usageMetadata.promptTokenCount') AS INT64),
      SAFE_CAST(JSON_VALUE(latest.response, '$.tokenCount') AS INT64)
    ) AS token_count,
    CASE
      WHEN NOT latest.ok THEN COALESCE(latest.status, 'ERROR')
      WHEN latest.vector IS NULL THEN 'no_embedding'
      ELSE 'succeeded'
    END AS status,
    CASE
      WHEN NOT latest.ok THEN latest.error_message
      WHEN latest.vector IS NULL THEN 'the response has no embedding values'
    END AS error,
    latest.error_code AS error_code,
    CAST(NULL AS STRING) AS response_text,
    COALESCE(latest.request, input.request) AS request,
    latest.job_name AS job_name,
    latest.processed_time AS processed_time
  FROM latest
  LEFT JOIN {{input}} AS input ON input.key = latest.key
)
SELECT * FROM typed
