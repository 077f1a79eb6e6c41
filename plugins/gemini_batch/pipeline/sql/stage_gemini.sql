-- Gemini API results ({"key", "response"} or {"key", "error"} lines, loaded into {{raw}}) into
-- the normalized stage. The results carry no processing time: the job's end time stands in.
INSERT INTO {{stage}} (key, request, response, status, error_message, error_code, processed_time, job_name, model)
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
FROM {{raw}}
