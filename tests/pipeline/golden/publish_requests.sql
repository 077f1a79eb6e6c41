-- params: {}
SELECT
  COUNT(*) AS row_count,
  COUNT(DISTINCT CAST(`key` AS STRING)) AS key_count,
  COALESCE(
    BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(CAST(`key` AS STRING) AS key, `request` AS request)))),
    0
  ) AS row_hash
FROM `proj.ds.requests`

-- params: {}
CREATE TABLE IF NOT EXISTS `proj.ds.requests_20260101_9c225858cc855786` AS
SELECT * FROM `proj.ds.requests`

-- params: {}
SELECT
  COUNT(*) AS row_count,
  COUNT(DISTINCT CAST(`key` AS STRING)) AS key_count,
  COALESCE(
    BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(CAST(`key` AS STRING) AS key, `request` AS request)))),
    0
  ) AS row_hash
FROM `proj.ds.requests`

-- params: {}
CREATE TABLE IF NOT EXISTS `proj.ds.requests_20260101_9c225858cc855786` AS
SELECT * FROM `proj.ds.requests`
