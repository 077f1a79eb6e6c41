-- The input table of a Vertex AI text-embedding job: the key passes through to the output (the
-- loader joins on it), `content` is what is embedded. {{source}}: the documents query (columns
-- key, content; documents_for_interval.sql).
CREATE OR REPLACE TABLE {{destination}} AS
SELECT
  CAST(key AS STRING) AS key,
  CAST(content AS STRING) AS content
FROM {{source}} AS source
