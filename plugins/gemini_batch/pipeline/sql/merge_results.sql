-- Write one load into the results and errors tables in one transaction. MERGE on
-- (key, logical_date): a re-run or a backfill replaces rows, never adds a second one. A key that
-- moved between success and failure since the last run leaves the table it was in.
-- {{logical_date}} is a DATE literal made from a date object (sql.date_literal): the BigQuery
-- emulator binds no query parameters inside multi-statement scripts, and a constant date lets
-- BigQuery prune the MERGE to one partition.
-- {{replace_day}} is TRUE when {{day_input}} is the day's whole input (key, request): then the
-- day's rows of keys that are no longer input keys (prompts removed since an earlier load) are
-- deleted in the same transaction, so the day holds exactly its current input keys. FALSE (a
-- load that adds to the day, e.g. ad hoc runs) deletes nothing.
-- {{round}} is the failed-row retry round of the load (0: the day's first jobs; rounds.py), an
-- INT64 literal made from an int: failed rows carry it into the errors table's `round` column.
-- {{answer_updates}} / {{answer_columns}} / {{answer_values}}: the answers table's columns besides
-- the MERGE key and loaded_at (results.answer_columns: the results table, or the embeddings
-- table of an embeddings load), as `col = source.col` pairs, names and `source.col` values.
BEGIN TRANSACTION;

MERGE {{results}} AS target
USING (SELECT * FROM {{final}} WHERE ok) AS source
ON target.logical_date = {{logical_date}} AND target.key = source.key
WHEN MATCHED THEN UPDATE SET
  {{answer_updates}},
  loaded_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
  key, logical_date, {{answer_columns}}, loaded_at
) VALUES (
  source.key, source.logical_date, {{answer_values}}, CURRENT_TIMESTAMP()
);

MERGE {{errors}} AS target
USING (SELECT * FROM {{final}} WHERE NOT ok) AS source
ON target.logical_date = {{logical_date}} AND target.key = source.key
WHEN MATCHED THEN UPDATE SET
  status = source.status,
  error_code = source.error_code,
  error = source.error,
  response_text = source.response_text,
  request = source.request,
  job_name = source.job_name,
  processed_time = source.processed_time,
  round = {{round}},
  loaded_at = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
  key, logical_date, status, error_code, error, response_text, request, job_name, processed_time,
  round, loaded_at
) VALUES (
  source.key, source.logical_date, source.status, source.error_code, source.error, source.response_text,
  source.request,
  source.job_name, source.processed_time, {{round}}, CURRENT_TIMESTAMP()
);

DELETE FROM {{results}}
WHERE logical_date = {{logical_date}} AND key IN (SELECT key FROM {{final}} WHERE NOT ok);

DELETE FROM {{errors}}
WHERE logical_date = {{logical_date}} AND key IN (SELECT key FROM {{final}} WHERE ok);

DELETE FROM {{results}}
WHERE {{replace_day}} AND logical_date = {{logical_date}}
  AND key NOT IN (SELECT key FROM {{day_input}} AS day_input WHERE key IS NOT NULL);

DELETE FROM {{errors}}
WHERE {{replace_day}} AND logical_date = {{logical_date}}
  AND key NOT IN (SELECT key FROM {{day_input}} AS day_input WHERE key IS NOT NULL);

COMMIT TRANSACTION;
