-- The structured answers of a load, for the worker to check one at a time against their schema
-- (pipeline/structured.py): answered rows (status succeeded) whose request declared a JSON
-- schema. Rows come grouped by schema (schema_id: a hash of dialect and schema) and only the
-- first row of a group carries the schema's text, so the worker holds one schema at a time and
-- a schema crosses the wire once per group, not once per row.
WITH answers AS (
  SELECT
    key,
    response_text,
    schema_dialect,
    TO_HEX(SHA256(CONCAT(schema_dialect, ':', TO_JSON_STRING(response_schema)))) AS schema_id,
    TO_JSON_STRING(response_schema) AS schema_text
  FROM {{final}}
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
