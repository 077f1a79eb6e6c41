-- Requests and bytes per shard when the rows of {{table}} are spread over @shards shards by a
-- hash of the key (stable across re-runs). Only non-empty shards are returned.
SELECT
  MOD(MOD(FARM_FINGERPRINT(CAST({{key}} AS STRING)), @shards) + @shards, @shards) AS shard,
  COUNT(*) AS requests,
  SUM({{request_bytes}} + 1) AS bytes
FROM {{table}}
GROUP BY shard
