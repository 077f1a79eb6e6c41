-- Requests and bytes per shard when the rows of {{table}} are spread over @shards shards by a
-- hash of the key (stable across re-runs). Only non-empty shards are returned.
SELECT shard, COUNT(*) AS requests, SUM(request_bytes) AS bytes
FROM (
  SELECT
    MOD(MOD(FARM_FINGERPRINT(CAST({{key}} AS STRING)), @shards) + @shards, @shards) AS shard,
    {{request_bytes}} + 1 AS request_bytes
  FROM {{table}}
) AS rows_by_shard
GROUP BY shard
