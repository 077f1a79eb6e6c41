-- Structured answers that failed the worker's check ({{invalid}}: key, problem) leave the
-- answered rows: status invalid_output, the first problem as the error, no response_json. An
-- answered structured row that BigQuery could not parse is invalid too, whatever the worker saw.
UPDATE {{final}} AS final
SET
  ok = FALSE,
  status = 'invalid_output',
  error = COALESCE(
    (SELECT invalid.problem FROM {{invalid}} AS invalid WHERE invalid.key = final.key LIMIT 1),
    '$: not valid JSON (BigQuery could not parse it)'
  ),
  response_json = NULL
WHERE final.ok AND final.status = 'succeeded' AND final.schema_dialect IS NOT NULL
  AND (final.response_json IS NULL OR final.key IN (SELECT key FROM {{invalid}}))
