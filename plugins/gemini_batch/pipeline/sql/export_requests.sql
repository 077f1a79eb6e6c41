-- One JSONL line per request, built by BigQuery; ordered by key, so the files (and shards) of a
-- re-run hold the same requests. {{source}}: the prompts query; {{line}}: the line text.
SELECT {{line}} AS line
FROM (SELECT CAST(key AS STRING) AS key, prompt FROM {{source}} AS source) AS prompts
ORDER BY key
