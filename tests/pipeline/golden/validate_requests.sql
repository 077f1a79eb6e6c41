-- params: {"sample_size": 5}
WITH requests AS (
  SELECT
    CAST(`key` AS STRING) AS key,
    `request` AS request,
    BYTE_LENGTH(TO_JSON_STRING(`request`)) AS request_bytes
  FROM `proj.ds.requests`
),
duplicates AS (
  SELECT key FROM requests WHERE key IS NOT NULL GROUP BY key HAVING COUNT(*) > 1
),
invalid AS (
  SELECT key FROM requests WHERE request IS NULL
)
SELECT
  (SELECT COUNT(*) FROM requests) AS requests,
  (SELECT SUM(request_bytes) FROM requests) AS bytes,
  (SELECT COUNTIF(key IS NULL) FROM requests) AS null_keys,
  ARRAY<STRING>[] AS null_keys_sample,
  (SELECT COUNT(*) FROM duplicates) AS duplicate_keys,
  ARRAY(SELECT key FROM duplicates ORDER BY key LIMIT @sample_size) AS duplicate_keys_sample,
  (SELECT COUNT(*) FROM invalid) AS invalid_json,
  ARRAY(SELECT key FROM invalid ORDER BY key LIMIT @sample_size) AS invalid_json_sample

-- params: {"data_fields": ["codeExecutionResult", "code_execution_result", "executableCode", "executable_code", "fileData", "file_data", "functionCall", "functionResponse", "function_call", "function_response", "inlineData", "inline_data", "text"], "known_fields": ["Blob.data", "Blob.displayName", "Blob.display_name", "Blob.mimeType", "Blob.mime_type", "Content.parts", "Content.role", "FileData.displayName", "FileData.display_name", "FileData.fileUri", "FileData.file_uri", "FileData.mimeType", "FileData.mime_type", "GenerateContentRequest.cachedContent", "GenerateContentRequest.cached_content", "GenerateContentRequest.contents", "GenerateContentRequest.generationConfig", "GenerateContentRequest.generation_config", "GenerateContentRequest.labels", "GenerateContentRequest.model", "GenerateContentRequest.safetySettings", "GenerateContentRequest.safety_settings", "GenerateContentRequest.systemInstruction", "GenerateContentRequest.system_instruction", "GenerateContentRequest.toolConfig", "GenerateContentRequest.tool_config", "GenerateContentRequest.tools", "GenerationConfig.audioTimestamp", "GenerationConfig.audioTranscriptionConfig", "GenerationConfig.audio_timestamp", "GenerationConfig.audio_transcription_config", "GenerationConfig.candidateCount", "GenerationConfig.candidate_count", "GenerationConfig.enableAffectiveDialog", "GenerationConfig.enableEnhancedCivicAnswers", "GenerationConfig.enable_affective_dialog", "GenerationConfig.enable_enhanced_civic_answers", "GenerationConfig.frequencyPenalty", "GenerationConfig.frequency_penalty", "GenerationConfig.logprobs", "GenerationConfig.maxOutputTokens", "GenerationConfig.max_output_tokens", "GenerationConfig.mediaResolution", "GenerationConfig.media_resolution", "GenerationConfig.modelSelectionConfig", "GenerationConfig.model_selection_config", "GenerationConfig.presencePenalty", "GenerationConfig.presence_penalty", "GenerationConfig.responseFormat", "GenerationConfig.responseJsonSchema", "GenerationConfig.responseLogprobs", "GenerationConfig.responseMimeType", "GenerationConfig.responseModalities", "GenerationConfig.responseSchema", "GenerationConfig.response_format", "GenerationConfig.response_json_schema", "GenerationConfig.response_logprobs", "GenerationConfig.response_mime_type", "GenerationConfig.response_modalities", "GenerationConfig.response_schema", "GenerationConfig.routingConfig", "GenerationConfig.routing_config", "GenerationConfig.seed", "GenerationConfig.speechConfig", "GenerationConfig.speech_config", "GenerationConfig.stopSequences", "GenerationConfig.stop_sequences", "GenerationConfig.temperature", "GenerationConfig.thinkingConfig", "GenerationConfig.thinking_config", "GenerationConfig.topK", "GenerationConfig.topP", "GenerationConfig.top_k", "GenerationConfig.top_p", "GenerationConfig.translationConfig", "GenerationConfig.translation_config", "Part.audioTranscription", "Part.audio_transcription", "Part.codeExecutionResult", "Part.code_execution_result", "Part.executableCode", "Part.executable_code", "Part.fileData", "Part.file_data", "Part.functionCall", "Part.functionResponse", "Part.function_call", "Part.function_response", "Part.inlineData", "Part.inline_data", "Part.mediaProcessing", "Part.mediaResolution", "Part.media_processing", "Part.media_resolution", "Part.partMetadata", "Part.part_metadata", "Part.speechMetadata", "Part.speech_metadata", "Part.text", "Part.thought", "Part.thoughtSignature", "Part.thought_signature", "Part.toolCall", "Part.toolResponse", "Part.tool_call", "Part.tool_response", "Part.videoMetadata", "Part.video_metadata", "SafetySetting.category", "SafetySetting.method", "SafetySetting.threshold", "Tool.codeExecution", "Tool.code_execution", "Tool.computerUse", "Tool.computer_use", "Tool.enterpriseWebSearch", "Tool.enterprise_web_search", "Tool.exaAiSearch", "Tool.exa_ai_search", "Tool.fileSearch", "Tool.file_search", "Tool.functionDeclarations", "Tool.function_declarations", "Tool.googleMaps", "Tool.googleSearch", "Tool.googleSearchRetrieval", "Tool.google_maps", "Tool.google_search", "Tool.google_search_retrieval", "Tool.mcpServers", "Tool.mcp_servers", "Tool.parallelAiSearch", "Tool.parallel_ai_search", "Tool.retrieval", "Tool.urlContext", "Tool.url_context", "ToolConfig.functionCallingConfig", "ToolConfig.function_calling_config", "ToolConfig.includeServerSideToolInvocations", "ToolConfig.include_server_side_tool_invocations", "ToolConfig.retrievalConfig", "ToolConfig.retrieval_config"], "quoted_roles": ["\"user\"", "\"model\""], "sample_size": 5}
WITH requests AS (
  SELECT CAST(`key` AS STRING) AS key, `request` AS request
  FROM `proj.ds.requests`
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
  SELECT p.key, p.part, p.path, k AS name, LOWER(REPLACE(k, '_', '')) AS field
  FROM parts AS p,
    UNNEST(IF(JSON_TYPE(p.part) = 'object', JSON_KEYS(p.part, 1), ARRAY<STRING>[])) AS k
  WHERE k IN UNNEST(@data_fields)
),
blobs AS (
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
