-- How many keys of the load failed, per status (a few rows): the worker classifies each status
-- as retryable or not (row_retry.py, one rule) for LoadCounts.retryable.
SELECT status, COUNT(*) AS n FROM {{final}} WHERE NOT ok GROUP BY status ORDER BY status
