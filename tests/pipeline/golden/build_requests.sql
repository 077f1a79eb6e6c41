-- params: {"interval_end": "2026-01-02T00:00:00+00:00", "interval_start": "2026-01-01T00:00:00+00:00", "template_suffix": ",\"generationConfig\":{\"temperature\":0.2}"}
CREATE OR REPLACE TABLE `proj.ds.requests` AS
SELECT
  CAST(key AS STRING) AS key,
  PARSE_JSON(CONCAT('{"contents":[{"role":"user","parts":[{"text":', TO_JSON_STRING(prompt), '}]}]', @template_suffix, '}')) AS request
FROM (SELECT CAST(key AS STRING) AS key, prompt FROM (
SELECT
  CAST(id AS STRING) AS key,
  prompt
FROM `proj.ds.prompts`
WHERE created_at >= @interval_start
  AND created_at < @interval_end
) AS source) AS prompts

-- params: {}
SELECT COUNT(*) AS n FROM `proj.ds.requests`
