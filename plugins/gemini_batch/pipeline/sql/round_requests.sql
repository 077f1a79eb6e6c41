-- The requests of a failed-row retry round: exactly the rows of the day's requests table
-- {{requests}} whose key failed in the previous round for a retryable reason, per the errors
-- table {{errors}} (rows of @logical_date, last failed in round @previous_round -- NULL is the
-- day's first jobs, written before the errors table had a round -- with a status in
-- @statuses: the retryable ones, classified by the worker, row_retry.py). Built server-side,
-- columns as in the day's table, so the job reads the same requests as before.
CREATE OR REPLACE TABLE {{destination}} AS
SELECT requests.*
FROM {{requests}} AS requests
WHERE CAST(requests.{{key}} AS STRING) IN (
  SELECT errors.key
  FROM {{errors}} AS errors
  WHERE errors.logical_date = @logical_date
    AND COALESCE(errors.round, 0) = @previous_round
    AND errors.status IN UNNEST(@statuses)
)
