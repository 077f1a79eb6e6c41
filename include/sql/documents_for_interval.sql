-- The documents of one data interval: what a run of gemini_batch_embeddings embeds. Edit this
-- query for your own data; it must return the columns `key` (unique per interval) and `content`
-- (the text; Vertex AI text-embedding jobs read a `content` column, and may read `task_type` and
-- `title` columns too). {{documents_table}}: the documents table; @interval_start,
-- @interval_end: the run's data interval (TIMESTAMP, end exclusive).
SELECT
  CAST(id AS STRING) AS key,
  content
FROM {{documents_table}}
WHERE created_at >= @interval_start
  AND created_at < @interval_end
