-- The failed rows a failed-row retry round may pick from, per status (a few rows): the rows of
-- the errors table {{errors}} for @logical_date that the previous round (@previous_round; a
-- NULL round is the day's first jobs) left there. The worker classifies each status
-- (row_retry.py, one rule) and passes the retryable ones to round_requests.sql.
SELECT status, COUNT(*) AS n
FROM {{errors}}
WHERE logical_date = @logical_date AND COALESCE(round, 0) = @previous_round
GROUP BY status
ORDER BY status
