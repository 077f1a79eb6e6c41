-- One row per day of the results and errors tables: what the downstream DAG keeps up to date.
-- MERGE on the day, so re-loads of a day replace its figures.
-- {{summary}}, {{results}}, {{errors}}: the tables; @dates: the days that were loaded (ISO strings).
MERGE {{summary}} AS target
USING (
  SELECT
    days.day AS logical_date,
    COUNTIF(answers.source = 'results') AS succeeded,
    COUNTIF(answers.source = 'errors') AS failed,
    SUM(answers.total_tokens) AS total_tokens
  FROM (SELECT DISTINCT DATE(day) AS day FROM UNNEST(@dates) AS day) AS days
  LEFT JOIN (
    SELECT logical_date, 'results' AS source, total_tokens FROM {{results}}
    UNION ALL
    SELECT logical_date, 'errors' AS source, CAST(NULL AS INT64) AS total_tokens FROM {{errors}}
  ) AS answers
  ON answers.logical_date = days.day
  GROUP BY days.day
) AS source
ON target.logical_date = source.logical_date
WHEN MATCHED THEN UPDATE SET
  succeeded = source.succeeded,
  failed = source.failed,
  total_tokens = source.total_tokens,
  updated_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (logical_date, succeeded, failed, total_tokens, updated_at)
VALUES (source.logical_date, source.succeeded, source.failed, source.total_tokens, CURRENT_TIMESTAMP())
