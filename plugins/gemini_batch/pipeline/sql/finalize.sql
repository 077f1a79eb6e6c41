-- One typed row per key from the stage: a success wins over a failure, then the latest. A row
-- succeeded when it has a response and no status or error. {{input}} is a subquery of the
-- input (key, request), used to give failed rows their request when the service echoes none.
CREATE OR REPLACE TABLE {{final}} AS
WITH ranked AS (
  SELECT
    *,
    (response IS NOT NULL AND status IS NULL AND error_message IS NULL) AS ok,
    ROW_NUMBER() OVER (
      PARTITION BY key
      ORDER BY IF(response IS NOT NULL AND status IS NULL AND error_message IS NULL, 0, 1), processed_time DESC
    ) AS rank_in_key
  FROM {{stage}}
  WHERE key IS NOT NULL
),
latest AS (
  SELECT * FROM ranked WHERE rank_in_key = 1
)
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
