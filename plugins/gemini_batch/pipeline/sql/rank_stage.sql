-- The stage's rows ranked within their key (rank_in_key 1 is the row a load keeps): a success wins
-- over a failure, then the latest. A row succeeded (ok) when it has a response and no status or
-- error. Filled into finalize.sql and finalize_embeddings.sql as {{ranked}}: one rule for both.
  SELECT
    *,
    (response IS NOT NULL AND status IS NULL AND error_message IS NULL) AS ok,
    ROW_NUMBER() OVER (
      PARTITION BY key
      ORDER BY IF(response IS NOT NULL AND status IS NULL AND error_message IS NULL, 0, 1), processed_time DESC
    ) AS rank_in_key
  FROM {{stage}}
  WHERE key IS NOT NULL
