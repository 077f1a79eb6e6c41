-- The requests table of a BigQuery batch job: the key passes through, the request is JSON.
-- {{source}}: the prompts query (columns key, prompt); {{request}}: the request JSON text.
CREATE OR REPLACE TABLE {{destination}} AS
SELECT
  CAST(key AS STRING) AS key,
  PARSE_JSON({{request}}) AS request
FROM (SELECT CAST(key AS STRING) AS key, prompt FROM {{source}} AS source) AS prompts
