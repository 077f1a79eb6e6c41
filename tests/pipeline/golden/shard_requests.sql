-- params: {"shards": 1}
SELECT shard, COUNT(*) AS requests, SUM(request_bytes) AS bytes
FROM (
  SELECT
    MOD(MOD(FARM_FINGERPRINT(CAST(`key` AS STRING)), @shards) + @shards, @shards) AS shard,
    BYTE_LENGTH(TO_JSON_STRING(`request`)) + 1 AS request_bytes
  FROM `proj.ds.requests`
) AS rows_by_shard
GROUP BY shard

-- params: {"shards": 3}
SELECT shard, COUNT(*) AS requests, SUM(request_bytes) AS bytes
FROM (
  SELECT
    MOD(MOD(FARM_FINGERPRINT(CAST(`key` AS STRING)), @shards) + @shards, @shards) AS shard,
    BYTE_LENGTH(TO_JSON_STRING(`request`)) + 1 AS request_bytes
  FROM `proj.ds.requests`
) AS rows_by_shard
GROUP BY shard

-- params: {"shard": 0, "shards": 3}
CREATE OR REPLACE TABLE `proj.ds.requests_shard_00000_of_00003` AS
SELECT *
FROM `proj.ds.requests`
WHERE MOD(MOD(FARM_FINGERPRINT(CAST(`key` AS STRING)), @shards) + @shards, @shards) = @shard

-- params: {"shard": 1, "shards": 3}
CREATE OR REPLACE TABLE `proj.ds.requests_shard_00001_of_00003` AS
SELECT *
FROM `proj.ds.requests`
WHERE MOD(MOD(FARM_FINGERPRINT(CAST(`key` AS STRING)), @shards) + @shards, @shards) = @shard

-- params: {"shard": 2, "shards": 3}
CREATE OR REPLACE TABLE `proj.ds.requests_shard_00002_of_00003` AS
SELECT *
FROM `proj.ds.requests`
WHERE MOD(MOD(FARM_FINGERPRINT(CAST(`key` AS STRING)), @shards) + @shards, @shards) = @shard
