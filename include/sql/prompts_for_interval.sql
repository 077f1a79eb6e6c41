-- The prompts of one data interval: the source of a run's requests. Edit this query for your
-- own data; it must return the columns `key` (unique per interval) and `prompt` (the text).
-- {{prompts_table}}: the prompts table; @interval_start, @interval_end: the run's data interval
-- (TIMESTAMP, end exclusive), so a backfill of a day reads exactly that day.
SELECT
  CAST(id AS STRING) AS key,
  prompt
FROM {{prompts_table}}
WHERE created_at >= @interval_start
  AND created_at < @interval_end
