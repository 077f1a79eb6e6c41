-- params: {"logical_date": "2026-01-01", "previous_round": 0}
SELECT status, COUNT(*) AS n
FROM `proj.ds.errors`
WHERE logical_date = @logical_date AND COALESCE(round, 0) = @previous_round
GROUP BY status
ORDER BY status

-- params: {"logical_date": "2026-01-01", "previous_round": 0, "statuses": ["RESOURCE_EXHAUSTED"]}
SELECT key
FROM `proj.ds.errors`
WHERE logical_date = @logical_date
  AND COALESCE(round, 0) = @previous_round
  AND status IN UNNEST(@statuses)
ORDER BY key
