-- The answered rows of some jobs for one day and their tokens, per job and price tier (a prompt
-- above @above tokens is billed at the model's long-context price). Thinking tokens: total -
-- prompt - output (usageMetadata's totalTokenCount counts thoughts; the results table keeps no
-- thoughtsTokenCount), never below 0. Only the sums come back.
-- {{results}}: the results table; @jobs: the job names; @logical_date: the day.
SELECT
  job_name,
  COALESCE(prompt_tokens, 0) > @above AS long_tier,
  COUNT(*) AS requests,
  SUM(COALESCE(prompt_tokens, 0)) AS prompt,
  SUM(COALESCE(output_tokens, 0)) AS output,
  SUM(GREATEST(COALESCE(total_tokens, 0) - COALESCE(prompt_tokens, 0) - COALESCE(output_tokens, 0), 0)) AS thinking
FROM {{results}}
WHERE logical_date = @logical_date AND job_name IN UNNEST(@jobs)
GROUP BY job_name, long_tier
ORDER BY job_name, long_tier
