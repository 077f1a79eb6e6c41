-- The billable characters of what one embedding job embedded on one day: the `content` of its
-- input table's rows (by key) that have a vector, as UTF-8 code points without white space (how
-- Vertex AI bills its text embedding models). Only the sum comes back.
-- {{embeddings}}: the embeddings table; {{documents}}: the job's input table (key, content);
-- @job: the job's name; @logical_date: the day.
SELECT
  SUM(LENGTH(REGEXP_REPLACE(COALESCE(documents.content, ''), r'\s', ''))) AS characters
FROM {{embeddings}} AS embeddings
JOIN {{documents}} AS documents ON documents.key = embeddings.key
WHERE embeddings.logical_date = @logical_date AND embeddings.job_name = @job
