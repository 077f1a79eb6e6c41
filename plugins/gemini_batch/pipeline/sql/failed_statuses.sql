-- How many keys of the load were answered, and how many failed per status (a few rows): the
-- worker classifies each failed status as retryable or not (row_retry.py, one rule) for
-- LoadCounts.retryable; the answered ones are LoadCounts.answered (this load's jobs only).
SELECT ok, IF(ok, NULL, status) AS status, COUNT(*) AS n FROM {{final}} GROUP BY 1, 2 ORDER BY 1, 2
