-- An order-independent fingerprint of a requests table, computed by BigQuery: the row count, the
-- distinct key count and the XOR of a 64-bit hash of every (key, request) row. Any change of a
-- key or a request changes it (but for a 2^-64 chance); the row order and the run never do.
SELECT
  COUNT(*) AS row_count,
  COUNT(DISTINCT CAST({{key}} AS STRING)) AS key_count,
  COALESCE(
    BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(CAST({{key}} AS STRING) AS key, {{request}} AS request)))),
    0
  ) AS row_hash
FROM {{table}}
