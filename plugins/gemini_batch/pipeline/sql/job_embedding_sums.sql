-- The embedded rows of one embedding job for one day and their tokens (an embedding has no output
-- tokens and one price tier). Only the sums come back.
-- {{embeddings}}: the embeddings table; @job: the job's name; @logical_date: the day.
SELECT
  COUNT(*) AS requests,
  SUM(COALESCE(token_count, 0)) AS prompt
FROM {{embeddings}}
WHERE logical_date = @logical_date AND job_name = @job
