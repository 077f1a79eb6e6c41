-- The tokens of one job's answered rows of one day, by price tier (a prompt above @above tokens is
-- billed at the long-context price). Thinking tokens: total - prompt - output (usageMetadata's
-- totalTokenCount counts thoughts; the results table keeps no thoughtsTokenCount), never below 0.
-- {{results}}: the results table.
SELECT
  COALESCE(prompt_tokens, 0) > @above AS long_tier,
  COUNT(*) AS requests,
  SUM(COALESCE(prompt_tokens, 0)) AS prompt,
  SUM(COALESCE(output_tokens, 0)) AS output,
  SUM(GREATEST(COALESCE(total_tokens, 0) - COALESCE(prompt_tokens, 0) - COALESCE(output_tokens, 0), 0)) AS thinking
FROM {{results}}
WHERE logical_date = @logical_date AND job_name = @job_name
GROUP BY long_tier
