-- The request-shape rules of request_shape.py, over EVERY row of a requests table: every content
-- and every part, not only the first. One row per (rule, detail) found, with how many requests
-- break it and a few sample keys; the requests themselves never leave BigQuery.
-- Rules (ids of request_shape.ROW_RULES): not_object, no_contents, bad_role, no_parts,
-- empty_part, several_data, text_type, blank_text, inline_data, file_data, unknown_field
-- (detail: 'Model|path.field'), not_a_list, not_an_object (detail: the path).
-- Objects checked for unknown fields: the request, contents[], their parts[] and its inlineData
-- and fileData, systemInstruction and its parts[], generationConfig, safetySettings[], tools[],
-- toolConfig. Only JSON_TYPE 'object'/'array' is compared (scalars are told apart by their
-- JSON text), so the checks mean the same on BigQuery and on the local emulator.
-- {{table}}: the requests table; {{key}}: the key column; {{request_json}}: the request as JSON.
-- @known_fields: 'Model.field' for every known field; @roles: the accepted roles;
-- @data_fields: the part data fields; @sample_size: how many sample keys per rule.
WITH requests AS (
  SELECT CAST({{key}} AS STRING) AS key, {{request_json}} AS request
  FROM {{table}}
),
requests_ok AS (
  SELECT key, request FROM requests WHERE request IS NOT NULL AND JSON_TYPE(request) = 'object'
),
contents AS (
  SELECT r.key, c AS content, 'contents[]' AS path
  FROM requests_ok AS r,
    UNNEST(IF(JSON_TYPE(JSON_QUERY(r.request, '$.contents')) = 'array',
              JSON_QUERY_ARRAY(r.request, '$.contents'), ARRAY<JSON>[])) AS c
  UNION ALL
  SELECT key, JSON_QUERY(request, '$.systemInstruction') AS content, 'systemInstruction' AS path
  FROM requests_ok
  WHERE JSON_QUERY(request, '$.systemInstruction') IS NOT NULL
),
parts AS (
  SELECT c.key, p AS part, CONCAT(c.path, '.parts[]') AS path
  FROM contents AS c,
    UNNEST(IF(JSON_TYPE(JSON_QUERY(c.content, '$.parts')) = 'array',
              JSON_QUERY_ARRAY(c.content, '$.parts'), ARRAY<JSON>[])) AS p
),
part_data AS (
  -- One row per data field of a part: name as written, field folded to one spelling ('inlinedata').
  SELECT p.key, p.part, p.path, k AS name, LOWER(REPLACE(k, '_', '')) AS field
  FROM parts AS p,
    UNNEST(IF(JSON_TYPE(p.part) = 'object', JSON_KEYS(p.part, 1), ARRAY<STRING>[])) AS k
  WHERE k IN UNNEST(@data_fields)
),
blobs AS (
  -- inlineData / fileData of each part (either spelling), with the two fields each one needs.
  SELECT key, path, field, blob,
    COALESCE(JSON_QUERY(blob, '$.mimeType'), JSON_QUERY(blob, '$.mime_type')) AS mime_type,
    IF(field = 'inlinedata', JSON_QUERY(blob, '$.data'),
       COALESCE(JSON_QUERY(blob, '$.fileUri'), JSON_QUERY(blob, '$.file_uri'))) AS payload
  FROM (
    SELECT key, path, field,
      IF(field = 'inlinedata',
         COALESCE(JSON_QUERY(part, '$.inlineData'), JSON_QUERY(part, '$.inline_data')),
         COALESCE(JSON_QUERY(part, '$.fileData'), JSON_QUERY(part, '$.file_data'))) AS blob
    FROM part_data
    WHERE field IN ('inlinedata', 'filedata')
  )
),
objects AS (
  SELECT key, request AS object, 'GenerateContentRequest' AS model, '' AS path FROM requests_ok
  UNION ALL
  SELECT key, content, 'Content', path FROM contents
  UNION ALL
  SELECT key, part, 'Part', path FROM parts
  UNION ALL
  SELECT key, blob, IF(field = 'inlinedata', 'Blob', 'FileData'),
    CONCAT(path, IF(field = 'inlinedata', '.inlineData', '.fileData'))
  FROM blobs
  UNION ALL
  SELECT key, JSON_QUERY(request, '$.generationConfig'), 'GenerationConfig', 'generationConfig'
  FROM requests_ok
  UNION ALL
  SELECT key, JSON_QUERY(request, '$.toolConfig'), 'ToolConfig', 'toolConfig' FROM requests_ok
  UNION ALL
  SELECT r.key, s, 'SafetySetting', 'safetySettings[]'
  FROM requests_ok AS r,
    UNNEST(IF(JSON_TYPE(JSON_QUERY(r.request, '$.safetySettings')) = 'array',
              JSON_QUERY_ARRAY(r.request, '$.safetySettings'), ARRAY<JSON>[])) AS s
  UNION ALL
  SELECT r.key, t, 'Tool', 'tools[]'
  FROM requests_ok AS r,
    UNNEST(IF(JSON_TYPE(JSON_QUERY(r.request, '$.tools')) = 'array',
              JSON_QUERY_ARRAY(r.request, '$.tools'), ARRAY<JSON>[])) AS t
),
problems AS (
  SELECT key, 'not_object' AS rule, '' AS detail
  FROM requests WHERE request IS NOT NULL AND JSON_TYPE(request) != 'object'
  UNION ALL
  SELECT key, 'no_contents', '' FROM requests_ok
  WHERE JSON_TYPE(JSON_QUERY(request, '$.contents')) IS DISTINCT FROM 'array'
    OR ARRAY_LENGTH(JSON_QUERY_ARRAY(request, '$.contents')) = 0
  UNION ALL
  SELECT key, 'not_an_object', path FROM objects
  WHERE object IS NOT NULL AND TO_JSON_STRING(object) != 'null' AND JSON_TYPE(object) != 'object'
  UNION ALL
  SELECT o.key, 'unknown_field', CONCAT(o.model, '|', IF(o.path = '', '', CONCAT(o.path, '.')), k)
  FROM objects AS o,
    UNNEST(IF(JSON_TYPE(o.object) = 'object', JSON_KEYS(o.object, 1), ARRAY<STRING>[])) AS k
  WHERE CONCAT(o.model, '.', k) NOT IN UNNEST(@known_fields)
  UNION ALL
  SELECT key, 'bad_role', CONCAT(path, '.role=', TO_JSON_STRING(JSON_QUERY(content, '$.role')))
  FROM contents
  WHERE JSON_TYPE(content) = 'object' AND JSON_QUERY(content, '$.role') IS NOT NULL
    AND TO_JSON_STRING(JSON_QUERY(content, '$.role')) != 'null'
    AND TO_JSON_STRING(JSON_QUERY(content, '$.role')) NOT IN UNNEST(@quoted_roles)
  UNION ALL
  SELECT key, 'no_parts', CONCAT(path, '.parts') FROM contents
  WHERE JSON_TYPE(content) = 'object' AND (
    JSON_TYPE(JSON_QUERY(content, '$.parts')) IS DISTINCT FROM 'array'
    OR ARRAY_LENGTH(JSON_QUERY_ARRAY(content, '$.parts')) = 0)
  UNION ALL
  SELECT p.key, 'empty_part', p.path FROM parts AS p
  WHERE JSON_TYPE(p.part) = 'object'
    AND NOT EXISTS (SELECT 1 FROM part_data AS d WHERE d.key IS NOT DISTINCT FROM p.key AND d.path = p.path
                    AND TO_JSON_STRING(d.part) = TO_JSON_STRING(p.part))
  UNION ALL
  -- (distinct names: the same part twice in a request, e.g. a repeated turn, is not several)
  SELECT key, 'several_data', path FROM part_data
  GROUP BY key, path, TO_JSON_STRING(part) HAVING COUNT(DISTINCT name) > 1
  UNION ALL
  SELECT key, 'text_type', CONCAT(path, '.text') FROM part_data
  WHERE field = 'text' AND SUBSTR(TO_JSON_STRING(JSON_QUERY(part, '$.text')), 1, 1) != '"'
  UNION ALL
  SELECT key, 'blank_text', CONCAT(path, '.text') FROM part_data
  WHERE field = 'text' AND SUBSTR(TO_JSON_STRING(JSON_QUERY(part, '$.text')), 1, 1) = '"'
    AND REGEXP_CONTAINS(JSON_VALUE(part, '$.text'), r'^\s*$')
  UNION ALL
  SELECT key, IF(field = 'inlinedata', 'inline_data', 'file_data'),
    CONCAT(path, IF(field = 'inlinedata', '.inlineData', '.fileData'))
  FROM blobs
  WHERE JSON_TYPE(blob) IS DISTINCT FROM 'object'
    OR SUBSTR(IFNULL(TO_JSON_STRING(mime_type), ''), 1, 1) != '"'
    OR SUBSTR(IFNULL(TO_JSON_STRING(payload), ''), 1, 1) != '"'
    OR REGEXP_CONTAINS(JSON_VALUE(mime_type), r'^\s*$')
    OR REGEXP_CONTAINS(JSON_VALUE(payload), r'^\s*$')
  UNION ALL
  SELECT key, 'not_a_list', 'safetySettings' FROM requests_ok
  WHERE JSON_QUERY(request, '$.safetySettings') IS NOT NULL
    AND TO_JSON_STRING(JSON_QUERY(request, '$.safetySettings')) != 'null'
    AND JSON_TYPE(JSON_QUERY(request, '$.safetySettings')) != 'array'
  UNION ALL
  SELECT key, 'not_a_list', 'tools' FROM requests_ok
  WHERE JSON_QUERY(request, '$.tools') IS NOT NULL
    AND TO_JSON_STRING(JSON_QUERY(request, '$.tools')) != 'null'
    AND JSON_TYPE(JSON_QUERY(request, '$.tools')) != 'array'
)
SELECT
  rule,
  detail,
  COUNT(DISTINCT IFNULL(key, 'NULL')) AS requests,
  ARRAY_AGG(DISTINCT IFNULL(key, 'NULL') ORDER BY IFNULL(key, 'NULL') LIMIT @sample_size) AS sample_keys
FROM problems
GROUP BY rule, detail
ORDER BY rule, detail
