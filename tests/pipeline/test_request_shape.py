"""The rules of one request, and of a list of inline requests (shape, keys, size)."""

from __future__ import annotations

import pytest

from gemini_batch.pipeline.findings import InputValidationError
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.request_shape import check_request, validate_inline_requests


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, []),
        (
            {
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "system_instruction": {"parts": [{"text": "Be brief"}]},
                "generation_config": {
                    "temperature": 0.2,
                    "response_mime_type": "application/json",
                    "response_schema": {"type": "OBJECT"},
                },
                "labels": {"gemini_batch_key": "k-1", "team": "data_eng"},
            },
            [],
        ),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]}]}, []),
        (
            {"contents": [{"parts": [{"text": "hi"}]}], "labels": {"1team": "x"}},
            ["label key '1team' is invalid: Vertex AI label keys start with a lowercase letter"],
        ),
    ],
)
def test_check_request_accepts_both_spellings_and_names_problems(request_body: dict, expected: list) -> None:
    problems = check_request(request_body)
    assert len(problems) == len(expected)
    for problem, fragment in zip(problems, expected, strict=False):
        assert fragment in problem


def test_inline_requests_are_checked_for_shape_keys_and_size() -> None:
    good = {"request": {"contents": [{"parts": [{"text": "hi"}]}]}, "metadata": {"key": "a"}}
    assert validate_inline_requests([good]).requests == 1
    bad = [good, dict(good), {"request": {"contents": []}, "metadata": {"key": "b"}}]
    with pytest.raises(InputValidationError) as caught:
        validate_inline_requests(bad)
    text = str(caught.value)
    assert "inline requests[1]: duplicate key" in text
    assert "inline requests[2]: request.contents must be a non-empty list" in text
    big = [
        {"request": {"contents": [{"parts": [{"text": "x" * 1000}]}]}, "metadata": {"key": str(i)}}
        for i in range(30)
    ]
    with pytest.raises(
        InputValidationError, match="exceed the Gemini API inline batch limit of 20,000 bytes"
    ):
        validate_inline_requests(
            big, limits=JobLimits(max_requests=100, max_bytes=20_000, name="Gemini API inline batch")
        )


def _request(*parts: object, role: object = "user", **fields: object) -> dict:
    return {"contents": [{"role": role, "parts": list(parts)}], **fields}


TEXT = {"text": "hi"}

# (id, request, fragment of the JSONL/inline message, fragment of the BigQuery message): the same
# rule through both paths (tests/pipeline/test_bigquery_checks.py runs the SQL column).
SHAPE_CASES = [
    ("request-not-object", [TEXT], "request must be a JSON object", "must be a JSON object"),
    ("no-contents", {"generationConfig": {}}, "request.contents is missing", "has no contents"),
    ("empty-contents", {"contents": []}, "non-empty list of contents", "has no contents"),
    ("contents-string", {"contents": "hi"}, "request.contents must be a non-empty list", "has no contents"),
    (
        "content-not-object",
        {"contents": ["hi"]},
        "contents[0] must be a JSON object (Content)",
        "contents[] must be a JSON object",
    ),
    (
        "no-parts",
        {"contents": [{"role": "user"}]},
        "contents[0].parts must be a non-empty list",
        "contents[].parts must be",
    ),
    ("empty-parts", _request(), "contents[0].parts must be a non-empty list", "contents[].parts must be"),
    (
        "parts-object",
        {"contents": [{"parts": TEXT}]},
        "contents[0].parts must be a non-empty list",
        "contents[].parts must be",
    ),
    ("empty-part", _request({}), "parts[0] has no data", "contents[].parts[] has no data"),
    ("null-text", _request({"text": None}), "parts[0] has no data", "contents[].parts[]"),
    (
        "part-string",
        _request("hi"),
        "parts[0] must be a JSON object (Part)",
        "contents[].parts[] must be a JSON object",
    ),
    ("empty-text", _request({"text": ""}), "parts[0].text: text is empty or blank", "text is empty or blank"),
    ("blank-text", _request({"text": " \n\t"}), "text is empty or blank", "text is empty or blank"),
    (
        "second-part-blank",
        _request(TEXT, {"text": " "}),
        "parts[1].text: text is empty",
        "text is empty or blank",
    ),
    (
        "second-content-blank",
        {"contents": [{"role": "user", "parts": [TEXT]}, {"role": "model", "parts": [{"text": ""}]}]},
        "contents[1].parts[0].text",
        "text is empty or blank",
    ),
    ("text-number", _request({"text": 3}), "text must be a string, got a number", "text must be a string"),
    (
        "text-object",
        _request({"text": {"a": 1}}),
        "text must be a string, got an object",
        "text must be a string",
    ),
    (
        "two-data-fields",
        _request({"text": "a", "fileData": {"mimeType": "a/b", "fileUri": "gs://b/o"}}),
        "has several data fields",
        "has several data fields",
    ),
    (
        "inline-data-string",
        _request({"inlineData": "AAAA"}),
        "inlineData must be a JSON object (Blob)",
        "inlineData must be",
    ),
    (
        "inline-data-list",
        _request({"inlineData": []}),
        "inlineData must be a JSON object (Blob)",
        "inlineData must be",
    ),
    (
        "inline-data-no-mime",
        _request({"inlineData": {"data": "AA=="}}),
        "inlineData needs mimeType and data",
        "inlineData must be an object with mimeType",
    ),
    (
        "inline-data-no-data",
        _request({"inlineData": {"mimeType": "image/png"}}),
        "data missing or empty",
        "inlineData must be an object",
    ),
    (
        "inline-data-empty-data",
        _request({"inlineData": {"mimeType": "image/png", "data": ""}}),
        "data missing or empty",
        "inlineData must be an object",
    ),
    (
        "inline-data-snake",
        _request({"inline_data": {"mime_type": "image/png"}}),
        "parts[0].inlineData needs mimeType and data",
        "inlineData must be an object",
    ),
    (
        "file-data-string",
        _request({"fileData": "gs://b/o"}),
        "fileData must be a JSON object (FileData)",
        "fileData must be",
    ),
    (
        "file-data-no-uri",
        _request({"fileData": {"mimeType": "image/png"}}),
        "fileUri missing or empty",
        "fileData must be an object with mimeType and fileUri",
    ),
    (
        "file-data-no-mime",
        _request({"fileData": {"fileUri": "gs://b/o.png"}}),
        "mimeType missing or empty",
        "fileData must be an object",
    ),
    (
        "file-data-typo",
        _request({"fileData": {"mimeType": "a/b", "fileUri": "gs://b/o", "fileUrl": "x"}}),
        "fileUrl is not a field of FileData",
        "fileUrl is not a field of FileData",
    ),
    ("role-assistant", _request(TEXT, role="assistant"), "role is 'assistant'", 'role is "assistant"'),
    ("role-system", _request(TEXT, role="system"), "role is 'system'", 'role is "system"'),
    ("role-upper", _request(TEXT, role="USER"), "role is 'USER'", 'role is "USER"'),
    ("role-number", _request(TEXT, role=1), "role is 1", "role is 1"),
    (
        "part-typo",
        _request({"txt": "hi"}),
        "parts[0].txt is not a field of Part (did you mean 'text'?)",
        "contents[].parts[].txt is not a field of Part (did you mean 'text'?)",
    ),
    (
        "content-typo",
        {"contents": [{"role": "user", "part": [TEXT]}]},
        "contents[0].part is not a field of Content (did you mean 'parts'?)",
        "contents[].part is not a field of Content (did you mean 'parts'?)",
    ),
    (
        "request-typo",
        _request(TEXT, generation_configs={}),
        "generation_configs is not a field of GenerateContentRequest (did you mean 'generationConfig'?)",
        "generation_configs is not a field of GenerateContentRequest",
    ),
    (
        "request-unknown",
        _request(TEXT, prompt="x"),
        "request.prompt is not a field of GenerateContentRequest",
        "prompt is not a field of GenerateContentRequest",
    ),
    (
        "config-typo",
        _request(TEXT, generationConfig={"temprature": 0.5}),
        "generationConfig.temprature is not a field of GenerationConfig (did you mean 'temperature'?)",
        "generationConfig.temprature is not a field of GenerationConfig (did you mean 'temperature'?)",
    ),
    (
        "config-snake-typo",
        _request(TEXT, generationConfig={"max_output_token": 5}),
        "did you mean 'maxOutputTokens'?",
        "did you mean 'maxOutputTokens'?",
    ),
    (
        "config-not-object",
        _request(TEXT, generationConfig=[]),
        "generationConfig must be a JSON object (GenerationConfig)",
        "generationConfig must be a JSON object",
    ),
    (
        "system-instruction-text",
        _request(TEXT, systemInstruction={"text": "Be brief"}),
        "systemInstruction.text is not a field of Content",
        "systemInstruction.text is not a field of Content",
    ),
    (
        "system-instruction-blank",
        _request(TEXT, systemInstruction={"parts": [{"text": ""}]}),
        "systemInstruction.parts[0].text: text is empty",
        "text is empty or blank",
    ),
    (
        "system-instruction-string",
        _request(TEXT, systemInstruction="Be brief"),
        "systemInstruction must be a JSON object (Content)",
        "systemInstruction must be a JSON object",
    ),
    (
        "safety-setting-typo",
        _request(TEXT, safetySettings=[{"category": "HARM_CATEGORY_HATE_SPEECH", "treshold": "BLOCK_NONE"}]),
        "safetySettings[0].treshold is not a field of SafetySetting (did you mean 'threshold'?)",
        "safetySettings[].treshold is not a field of SafetySetting",
    ),
    (
        "safety-settings-object",
        _request(TEXT, safetySettings={"category": "x"}),
        "safetySettings must be a non-empty list of SafetySetting objects",
        "safetySettings",
    ),
    (
        "tool-typo",
        _request(TEXT, tools=[{"googleSerch": {}}]),
        "tools[0].googleSerch is not a field of Tool (did you mean 'googleSearch'?)",
        "tools[].googleSerch is not a field of Tool",
    ),
    (
        "tool-config-typo",
        _request(TEXT, toolConfig={"functionCallingConfg": {}}),
        "toolConfig.functionCallingConfg is not a field of ToolConfig",
        "toolConfig.functionCallingConfg is not a field of ToolConfig",
    ),
]


@pytest.mark.parametrize(
    ("request_body", "fragment"), [case[1:3] for case in SHAPE_CASES], ids=[case[0] for case in SHAPE_CASES]
)
def test_every_shape_rule_names_the_field_path(request_body: object, fragment: str) -> None:
    problems = check_request(request_body)
    assert [problem for problem in problems if fragment in problem], problems


DEEP_CASES = [
    (
        _request(TEXT, generationConfig={"thinkingConfig": {"thinkingBudgt": 5}}),
        "generationConfig.thinkingConfig.thinkingBudgt is not a field of ThinkingConfig (did you mean 'thinkingBudget'?)",
    ),
    (
        _request(TEXT, tools=[{"functionDeclarations": [{"name": "f", "paramters": {}}]}]),
        "tools[0].functionDeclarations[0].paramters is not a field of FunctionDeclaration (did you mean 'parameters'?)",
    ),
    (
        _request({"functionCall": {"name": "f", "argz": {}}}),
        "parts[0].functionCall.argz is not a field of FunctionCall (did you mean 'args'?)",
    ),
    (
        _request(
            TEXT,
            generationConfig={
                "responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT", "properties": {"a": {"typ": "STRING"}}},
            },
        ),
        "responseSchema.properties.a.typ is not a field of Schema (did you mean 'type'?)",
    ),
    (_request(TEXT, generationConfig={"temperature": 3}), "temperature must be a number from 0 to 2, got 3"),
    (_request(TEXT, generationConfig={"topK": 0}), "topK must be a positive integer, got 0"),
    (
        _request(TEXT, generationConfig={"responseSchema": {"type": "OBJECT"}}),
        "responseSchema needs responseMimeType",
    ),
    (_request(TEXT, labels={"Team": "x"}), "label key 'Team' is invalid"),
    (_request(TEXT, labels=["x"]), "labels must be an object of string labels, got a list"),
]


@pytest.mark.parametrize(("request_body", "fragment"), DEEP_CASES)
def test_rules_reach_every_level_of_the_sdk_schema(request_body: dict, fragment: str) -> None:
    problems = check_request(request_body)
    assert [problem for problem in problems if fragment in problem], problems


ACCEPTED_REQUESTS = [
    _request(TEXT, role="model"),
    {"contents": [{"parts": [TEXT]}]},
    _request({"inline_data": {"mime_type": "image/png", "data": "AA=="}}),
    _request({"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/my file.pdf"}}, TEXT),
    _request({"text": "thinking", "thought": True}, {"text": "x", "thoughtSignature": "AA=="}),
    _request({"functionCall": {"name": "f", "args": {"free": {"form": 1}}}}),
    _request({"functionResponse": {"name": "f", "response": {"anything": [1, {"goes": True}]}}}),
    _request(TEXT, safetySettings=[{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]),
    _request(TEXT, tools=[{"googleSearch": {}}], toolConfig={"functionCallingConfig": {"mode": "AUTO"}}),
    _request(
        TEXT,
        generationConfig={
            "temperature": 0,
            "topP": 1,
            "maxOutputTokens": 5,
            "thinking_config": {"thinking_budget": 0},
            "responseMimeType": "application/json",
            "responseJsonSchema": {"anyKey": "free-form JSON schema"},
        },
    ),
    _request(TEXT, cachedContent="cachedContents/1", model="publishers/google/models/gemini-2.5-flash"),
]


@pytest.mark.parametrize("request_body", ACCEPTED_REQUESTS)
def test_requests_the_service_accepts_are_accepted(request_body: dict) -> None:
    assert check_request(request_body) == []


def test_field_names_come_from_the_sdk_types_in_the_wire_spelling() -> None:
    from google.genai import types

    from gemini_batch.pipeline.request_shape import WIRE_SCHEMA, wire_names

    assert set(wire_names("GenerationConfig")) == {
        f.alias for f in types.GenerationConfig.model_fields.values()
    }
    assert "temperature" in wire_names("GenerationConfig") and "top_p" not in wire_names("GenerationConfig")
    assert WIRE_SCHEMA["GenerationConfig"]["top_p"].name == "topP"  # the proto spelling parses too
    assert WIRE_SCHEMA["Part"]["inlineData"].model == "Blob"
    assert WIRE_SCHEMA["Content"]["parts"].shape == "list"


INLINE_CASES = [
    ({"contents": "  "}, "src[0].contents: text is empty or blank"),
    ({"contents": ["hi", ""]}, "src[0].contents[1]: text is empty or blank"),
    ({"contents": []}, "src[0].contents must be a non-empty list"),
    ({"contents": [{"role": "assistant", "parts": [TEXT]}]}, "src[0].contents[0].role is 'assistant'"),
    ({"contents": [{"parts": [{}]}]}, "src[0].contents[0].parts[0] has no data"),
    ({"contents": [{"text": ""}]}, "src[0].contents[0].text: text is empty"),
    (
        {"contents": [{"parts": [TEXT]}], "config": {"temprature": 1}},
        "src[0].config.temprature is not a field of GenerateContentConfig (did you mean 'temperature'?)",
    ),
    (
        {"contents": [{"parts": [TEXT]}], "config": {"system_instruction": {"parts": []}}},
        "src[0].config.system_instruction.parts must be",
    ),
    (
        {"contents": [{"parts": [TEXT]}], "confg": {}},
        "src[0].confg is not a field of InlinedRequest (did you mean 'config'?)",
    ),
    ({"contents": 3}, "src[0].contents must be a list of contents or a string"),
]


@pytest.mark.parametrize(("request_body", "fragment"), INLINE_CASES)
def test_inline_requests_follow_the_same_rules(request_body: dict, fragment: str) -> None:
    from gemini_batch.pipeline.request_shape import check_inline_request

    problems = check_inline_request(request_body, path="src[0]")
    assert [problem for problem in problems if fragment in problem], problems


@pytest.mark.parametrize(
    "request_body",
    [
        {"contents": "hi"},
        {"contents": ["hi", {"text": "there"}]},
        {
            "contents": [{"role": "user", "parts": [TEXT]}],
            "config": {"temperature": 0.1, "system_instruction": "Be brief"},
        },
        {"contents": [{"parts": [TEXT]}], "metadata": {"key": "a"}, "model": "gemini-2.5-flash"},
    ],
)
def test_inline_forms_the_sdk_takes_are_accepted(request_body: dict) -> None:
    from gemini_batch.pipeline.request_shape import check_inline_request

    assert check_inline_request(request_body) == []


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        ("temprature", ("temperature", "topP"), " (did you mean 'temperature'?)"),
        ("TEMPERATURE", ("temperature", "topP"), " (did you mean 'temperature'?)"),
        ("top_p", ("temperature", "topP"), " (did you mean 'topP'?)"),
        ("colour", ("temperature", "topP"), ""),
        ("tp", ("temperature", "topP"), ""),
    ],
)
def test_suggest_names_a_near_miss_only(name: str, known: tuple[str, ...], expected: str) -> None:
    from gemini_batch.pipeline.request_shape import suggest

    assert suggest(name, known) == expected


def test_the_schema_knows_maps_lists_and_free_form_fields() -> None:
    from gemini_batch.pipeline.request_shape import WIRE_SCHEMA

    assert WIRE_SCHEMA["Schema"]["properties"] == WIRE_SCHEMA["Schema"]["properties"].__class__(
        "properties", "map", "Schema"
    )
    assert WIRE_SCHEMA["GenerateContentRequest"]["safety_settings"].model == "SafetySetting"
    assert WIRE_SCHEMA["FunctionResponse"]["response"].shape == "any"
    assert WIRE_SCHEMA["GenerationConfig"]["stopSequences"].shape == "list"
    assert WIRE_SCHEMA["GenerationConfig"]["stopSequences"].model is None
    assert WIRE_SCHEMA["InlinedRequest"]["config"].model == "GenerateContentConfig"
