-- The keys of a failed-row retry round of a JSONL input (round_files.py): the rows of the errors
-- table {{errors}} for @logical_date that round @previous_round left (NULL: the day's first
-- jobs) with a retryable status (@statuses, classified by the worker). Paged by the worker.
SELECT key
FROM {{errors}}
WHERE logical_date = @logical_date
  AND COALESCE(round, 0) = @previous_round
  AND status IN UNNEST(@statuses)
ORDER BY key
