-- Vertex AI GCS output (prediction-model-*/predictions*.jsonl, loaded as is into {{raw}}) into
-- the normalized stage. Vertex passes no key through JSONL: the key is the request's label.
INSERT INTO {{stage}} (key, request, response, status, error_message, error_code, processed_time, job_name, model)
SELECT
  JSON_VALUE(request, '$.labels.{{key_label}}') AS key,
  request,
  response,
  NULLIF(status, '') AS status,
  NULLIF(status, '') AS error_message,
  CAST(NULL AS INT64) AS error_code,
  COALESCE(SAFE_CAST(processed_time AS TIMESTAMP), SAFE_CAST(@end_time AS TIMESTAMP)) AS processed_time,
  @job_name AS job_name,
  @model AS model
FROM {{raw}}
