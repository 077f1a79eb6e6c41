-- params: {"logical_date": "2026-01-01", "previous_round": 0}
SELECT status, COUNT(*) AS n
FROM `proj.ds.errors`
WHERE logical_date = @logical_date AND COALESCE(round, 0) = @previous_round
GROUP BY status
ORDER BY status

-- params: {"logical_date": "2026-01-01", "previous_round": 0, "statuses": ["RESOURCE_EXHAUSTED"]}
CREATE OR REPLACE TABLE `proj.ds.requests_r1_build_run1` AS
SELECT requests.*
FROM `proj.ds.requests` AS requests
WHERE CAST(requests.`key` AS STRING) IN (
  SELECT errors.key
  FROM `proj.ds.errors` AS errors
  WHERE errors.logical_date = @logical_date
    AND COALESCE(errors.round, 0) = @previous_round
    AND errors.status IN UNNEST(@statuses)
)

-- params: {}
SELECT
  COUNT(*) AS row_count,
  COUNT(DISTINCT CAST(`key` AS STRING)) AS key_count,
  COALESCE(
    BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(CAST(`key` AS STRING) AS key, `request` AS request)))),
    0
  ) AS row_hash
FROM `proj.ds.requests_r1_build_run1`

-- params: {}
CREATE TABLE IF NOT EXISTS `proj.ds.requests_r1_a03ef15a5e8eaa98` AS
SELECT * FROM `proj.ds.requests_r1_build_run1`
