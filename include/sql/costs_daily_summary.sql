-- Cost per day and model, from the costs table (one row per batch job): what the downstream DAG
-- keeps up to date. MERGE on (day, model), so re-loads of a day replace its figures; a day's
-- models that have no job any more are left as they were.
-- {{summary}}, {{costs}}: the tables; @dates: the days that were loaded (ISO strings).
MERGE {{summary}} AS target
USING (
  SELECT
    costs.logical_date,
    costs.model,
    COUNT(*) AS jobs,
    SUM(costs.requests) AS requests,
    SUM(costs.prompt_tokens) AS prompt_tokens,
    SUM(costs.output_tokens) AS output_tokens,
    SUM(costs.thinking_tokens) AS thinking_tokens,
    SUM(costs.total_tokens) AS total_tokens,
    SUM(costs.billable_characters) AS billable_characters,
    SUM(costs.estimated_cost_usd) AS estimated_cost_usd,
    COUNTIF(costs.estimated_cost_usd IS NULL) AS unpriced_jobs
  FROM {{costs}} AS costs
  WHERE costs.logical_date IN (SELECT DATE(day) FROM UNNEST(@dates) AS day)
  GROUP BY costs.logical_date, costs.model
) AS source
ON target.logical_date = source.logical_date AND target.model = source.model
WHEN MATCHED THEN UPDATE SET
  jobs = source.jobs,
  requests = source.requests,
  prompt_tokens = source.prompt_tokens,
  output_tokens = source.output_tokens,
  thinking_tokens = source.thinking_tokens,
  total_tokens = source.total_tokens,
  billable_characters = source.billable_characters,
  estimated_cost_usd = source.estimated_cost_usd,
  unpriced_jobs = source.unpriced_jobs,
  updated_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
  logical_date, model, jobs, requests, prompt_tokens, output_tokens, thinking_tokens, total_tokens,
  billable_characters, estimated_cost_usd, unpriced_jobs, updated_at
) VALUES (
  source.logical_date, source.model, source.jobs, source.requests, source.prompt_tokens,
  source.output_tokens, source.thinking_tokens, source.total_tokens, source.billable_characters,
  source.estimated_cost_usd, source.unpriced_jobs, CURRENT_TIMESTAMP()
)
