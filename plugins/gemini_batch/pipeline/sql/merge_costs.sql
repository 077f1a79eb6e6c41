-- One row per batch job in the costs table: MERGE on the job's name, so a re-load of the same job
-- replaces its row (exactly once). {{costs}}: the costs table. @has_cost false: no price (NULL cost).
MERGE {{costs}} AS target
USING (
  SELECT
    @logical_date AS logical_date, @dag_id AS dag_id, @run_id AS run_id, @task_id AS task_id,
    @job_name AS job_name, @model AS model, @backend AS backend, @requests AS requests,
    @prompt_tokens AS prompt_tokens, @output_tokens AS output_tokens,
    @thinking_tokens AS thinking_tokens, @total_tokens AS total_tokens,
    @billable_characters AS billable_characters,
    IF(@has_cost, @estimated_cost_usd, NULL) AS estimated_cost_usd,
    NULLIF(@prices_retrieved, '') AS prices_retrieved, @tokens_from AS tokens_from
) AS source
ON target.job_name = source.job_name
WHEN MATCHED THEN UPDATE SET
  logical_date = source.logical_date, dag_id = source.dag_id, run_id = source.run_id,
  task_id = source.task_id, model = source.model, backend = source.backend,
  requests = source.requests, prompt_tokens = source.prompt_tokens,
  output_tokens = source.output_tokens, thinking_tokens = source.thinking_tokens,
  total_tokens = source.total_tokens, billable_characters = source.billable_characters,
  estimated_cost_usd = source.estimated_cost_usd,
  prices_retrieved = source.prices_retrieved, tokens_from = source.tokens_from,
  loaded_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
  logical_date, dag_id, run_id, task_id, job_name, model, backend, requests, prompt_tokens,
  output_tokens, thinking_tokens, total_tokens, billable_characters, estimated_cost_usd,
  prices_retrieved, tokens_from, loaded_at
) VALUES (
  source.logical_date, source.dag_id, source.run_id, source.task_id, source.job_name, source.model,
  source.backend, source.requests, source.prompt_tokens, source.output_tokens,
  source.thinking_tokens, source.total_tokens, source.billable_characters,
  source.estimated_cost_usd, source.prices_retrieved, source.tokens_from, CURRENT_TIMESTAMP()
)
