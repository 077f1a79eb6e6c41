-- Vertex AI BigQuery output table {{output}} (input columns passed through, plus response,
-- status and processed_time) into the normalized stage. {{key}}: the key expression;
-- {{request_json}} / {{response_json}}: the columns as JSON whatever their stored type;
-- {{status}} / {{processed_time}}: the columns, or stand-ins when the table lacks them.
INSERT INTO {{stage}} (key, request, response, status, error_message, error_code, processed_time, job_name, model)
SELECT
  {{key}} AS key,
  {{request_json}} AS request,
  {{response_json}} AS response,
  NULLIF({{status}}, '') AS status,
  NULLIF({{status}}, '') AS error_message,
  CAST(NULL AS INT64) AS error_code,
  {{processed_time}} AS processed_time,
  @job_name AS job_name,
  @model AS model
FROM {{output}}
