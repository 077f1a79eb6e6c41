-- One shard of {{table}}: the rows whose key hashes to @shard of @shards (see shard_plan.sql).
CREATE OR REPLACE TABLE {{destination}} AS
SELECT *
FROM {{table}}
WHERE MOD(MOD(FARM_FINGERPRINT(CAST({{key}} AS STRING)), @shards) + @shards, @shards) = @shard
