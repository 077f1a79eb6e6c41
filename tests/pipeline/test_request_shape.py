"""The rules of one request, and of a list of inline requests (shape, keys, size)."""

from __future__ import annotations

from typing import Any, Optional, Union

import pytest
from pydantic import BaseModel

from gemini_batch.backends import inline_request_bytes
from gemini_batch.pipeline.findings import InputValidationError
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.request_shape import (
    FieldSpec,
    _build_schema,
    _field_spec,
    _snake_names,
    check_request,
    validate_inline_requests,
)


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


# The schema is built once, at import; these build it afresh, so they test the builder itself.
class _Leaf(BaseModel):
    x: int | None = None


@pytest.mark.parametrize(
    ("annotation", "shape", "model"),
    [
        (Optional[_Leaf], "object", "_Leaf"),  # noqa: UP045 (typing.Union, as the SDK writes it)
        (_Leaf | None, "object", "_Leaf"),
        (_Leaf, "object", "_Leaf"),
        (Optional[list[_Leaf]], "list", "_Leaf"),  # noqa: UP045
        (list[_Leaf], "list", "_Leaf"),
        (Optional[list[str]], "list", None),  # noqa: UP045
        (list[_Leaf | str], "list", None),
        (Optional[dict[str, _Leaf]], "map", "_Leaf"),  # noqa: UP045
        (dict[str, str], "any", None),
        (tuple[_Leaf], "any", None),
        (Optional[dict[str, Any]], "any", None),  # noqa: UP045
        (Optional[str], "any", None),  # noqa: UP045
        (int, "any", None),
        (Any, "any", None),
        (_Leaf | str | None, "any", None),
        (Union[list[_Leaf], str], "any", None),  # noqa: UP007
    ],
)
def test_a_field_shape_follows_its_sdk_annotation(annotation: Any, shape: str, model: str | None) -> None:
    found: dict[str, type] = {}
    assert _field_spec("wireName", annotation, found) == FieldSpec("wireName", shape, model)  # type: ignore[arg-type]
    assert found == ({"_Leaf": _Leaf} if model else {})


REQUEST_FIELDS = {
    "contents": FieldSpec("contents", "list", "Content"),
    "systemInstruction": FieldSpec("systemInstruction", "object", "Content"),
    "generationConfig": FieldSpec("generationConfig", "object", "GenerationConfig"),
    "safetySettings": FieldSpec("safetySettings", "list", "SafetySetting"),
    "tools": FieldSpec("tools", "list", "Tool"),
    "toolConfig": FieldSpec("toolConfig", "object", "ToolConfig"),
    "labels": FieldSpec("labels", "any"),
    "cachedContent": FieldSpec("cachedContent", "any"),
    "model": FieldSpec("model", "any"),
}
INLINE_FIELDS = {
    "model": FieldSpec("model", "any"),
    "contents": FieldSpec("contents", "any"),
    "metadata": FieldSpec("metadata", "any"),
    "config": FieldSpec("config", "object", "GenerateContentConfig"),
}
SNAKE = {
    "systemInstruction": "system_instruction",
    "generationConfig": "generation_config",
    "safetySettings": "safety_settings",
    "toolConfig": "tool_config",
    "cachedContent": "cached_content",
}


def test_the_request_fields_are_the_rest_references_in_both_spellings() -> None:
    schema = _build_schema()
    assert schema["GenerateContentRequest"] == {
        **REQUEST_FIELDS,
        **{SNAKE[name]: spec for name, spec in REQUEST_FIELDS.items() if name in SNAKE},
    }
    assert schema["InlinedRequest"] == INLINE_FIELDS


def test_every_sdk_type_reachable_from_a_request_is_in_the_schema_in_both_spellings() -> None:
    from google.genai import types

    schema = _build_schema()
    referenced = {spec.model for fields in schema.values() for spec in fields.values() if spec.model}
    assert referenced <= set(schema)  # every level down
    assert {"Part", "Blob", "FileData", "Schema", "ThinkingConfig", "FunctionDeclaration"} <= referenced
    for name in set(schema) - {"GenerateContentRequest", "InlinedRequest"}:
        sdk_fields = getattr(types, name).model_fields
        expected = {}
        for field_name, info in sdk_fields.items():
            expected[field_name] = expected[info.alias] = _field_spec(info.alias, info.annotation, {})
        assert schema[name] == expected, name
    assert schema["Part"]["inline_data"] == FieldSpec("inlineData", "object", "Blob")
    assert schema["Schema"]["any_of"] == FieldSpec("anyOf", "list", "Schema")


def test_the_snake_spellings_are_only_those_that_differ() -> None:
    snake = _snake_names()
    assert snake["inlineData"] == "inline_data" and snake["systemInstruction"] == "system_instruction"
    assert "text" not in snake and "contents" not in snake


GOOD_REQUEST = {"contents": [{"parts": [TEXT]}]}


def refusal(requests: list, **kwargs: Any) -> InputValidationError:
    with pytest.raises(InputValidationError) as caught:
        validate_inline_requests(requests, **kwargs)
    return caught.value


def messages(error: InputValidationError) -> list[str]:
    return [str(issue) for issue in error.issues]


def test_each_inline_item_is_named_by_its_position_with_what_is_wrong() -> None:
    error = refusal(
        [
            "hi",
            {"request": ["x"], "metadata": {"key": "a"}},
            {"request": GOOD_REQUEST},  # no metadata: keyed by its position, as a bare request
            {"request": GOOD_REQUEST, "metadata": {"key": 5}},
            {"request": GOOD_REQUEST, "metadata": {"key": ""}},
        ],
        source="src",
    )
    assert error.source == "src"
    assert messages(error) == [
        "src[0]: must be an object, got a string",
        "src[1]: request must be a JSON object (a GenerateContentRequest), got a list",
        "src[3]: metadata.key must be a non-empty string, got 5",
        "src[4]: metadata.key must be a non-empty string, got ''",
    ]


def test_a_bare_request_is_keyed_by_its_position_and_scanned_as_one_shard() -> None:
    from types import MappingProxyType

    from gemini_batch.backends import inline_request_bytes
    from gemini_batch.pipeline.findings import InputScan, ShardSpan
    from gemini_batch.pipeline.limits import GEMINI_API_INLINE_LIMITS

    requests = [
        GOOD_REQUEST,
        MappingProxyType(GOOD_REQUEST),
        {"request": GOOD_REQUEST, "metadata": {"key": "2"}},
    ]
    total = inline_request_bytes(requests)
    assert validate_inline_requests(requests) == InputScan(
        "inline requests",
        "gemini_inline",
        3,
        total,
        GEMINI_API_INLINE_LIMITS,
        (ShardSpan(0, 0, total, 3, 1),),
    )
    with pytest.raises(InputValidationError) as caught:
        validate_inline_requests([GOOD_REQUEST, {"request": GOOD_REQUEST, "metadata": {"key": "0"}}])
    assert messages(caught.value) == ["inline requests[1]: duplicate key: the same metadata.key is at [0]"]


def test_a_bare_request_with_inlined_metadata_is_told_the_field_is_unknown() -> None:
    # The SDK's InlinedRequest form ({"contents", "metadata"}) without the "request" wrapper.
    item = {**GOOD_REQUEST, "metadata": {"key": "a"}}
    error = refusal([item, item])
    assert [issue.location for issue in error.issues] == ["inline requests[0]", "inline requests[1]"]
    assert all("request.metadata is not a field of GenerateContentRequest" in m for m in messages(error))


def test_no_inline_requests_is_refused() -> None:
    error = refusal([], source="src")
    assert messages(error) == ["src: no requests; a batch job needs at least one"]


def test_the_inline_limits_hold_up_to_and_including_the_limit() -> None:
    requests = [{"request": GOOD_REQUEST, "metadata": {"key": str(i)}} for i in range(1001)]
    total = inline_request_bytes(requests[:1000])
    limits = JobLimits(max_requests=1000, max_bytes=total, name="Test inline")
    assert validate_inline_requests(requests[:1000], limits=limits).bytes == total
    error = refusal(requests, limits=limits)
    over = inline_request_bytes(requests)
    assert messages(error) == [
        "inline requests: 1,001 requests exceed the Test inline limit of 1,000; submit a file instead",
        f"inline requests: {over:,} bytes of inline requests exceed the Test inline limit of {total:,} "
        f"bytes; upload them as a JSONL file (Files API) instead",
    ]


def test_inline_problems_are_listed_up_to_25_and_the_rest_counted() -> None:
    error = refusal(["x"] * 30)
    assert (len(error.issues), error.more) == (25, 5)


INLINE_EXACT = [
    (3, "inline[0] must be an object like {'contents': [...]}, got a number"),
    ({}, "inline[0].contents is missing: every request needs at least one content with parts"),
    ({"contents": 3}, "inline[0].contents must be a list of contents or a string, got a number"),
    ({"contents": [3]}, "inline[0].contents[0] must be a content object or a string, got a number"),
    # A dict with a role is a Content (not a Part), even without its parts.
    (
        {"contents": [{"role": "user"}]},
        'inline[0].contents[0].parts must be a non-empty list of parts such as {"text": "..."}, got null',
    ),
    # One content given as an object, not in a list.
    (
        {"contents": {"role": "assistant", "parts": [TEXT]}},
        "inline[0].contents.role is 'assistant': role must be 'user' or 'model' (not 'assistant' or "
        "'system'); use systemInstruction for instructions",
    ),
    (
        {"contents": "hi", "config": {"systemInstruction": " "}},
        "inline[0].config.systemInstruction: text is empty or blank; the service rejects it: remove the "
        "part or give text (an empty prompt in the prompts table gives one: filter them out)",
    ),
    (
        {"contents": "hi", "config": {"systemInstruction": {"parts": []}}},
        'inline[0].config.systemInstruction.parts must be a non-empty list of parts such as {"text": "..."}, '
        "got a list",
    ),
]


@pytest.mark.parametrize(("request_body", "message"), INLINE_EXACT)
def test_inline_messages_name_the_path_the_problem_and_the_fix(request_body: object, message: str) -> None:
    from gemini_batch.pipeline.request_shape import check_inline_request

    assert check_inline_request(request_body) == [message]


EXACT = [
    (
        _request({"text": "a", "fileData": {"mimeType": "a/b", "fileUri": "gs://b/o"}}),
        "request.contents[0].parts[0] has several data fields; give one per part and split the rest "
        "(text, fileData)",
    ),
    (
        _request({"inlineData": {"mimeType": " "}}),
        "request.contents[0].parts[0].inlineData needs mimeType and data as non-empty strings; "
        "mimeType, data missing or empty",
    ),
    (
        {"contents": [{"parts": None}]},
        'request.contents[0].parts must be a non-empty list of parts such as {"text": "..."}, got null',
    ),
    (
        {"contents": [{"parts": [TEXT], "rol": "user"}]},
        "request.contents[0].rol is not a field of Content (did you mean 'role'?); fix the spelling or "
        "remove it (known: parts, role)",
    ),
    ("hi", "request must be a JSON object (a GenerateContentRequest), got a string"),
    (
        _request(TEXT, generationConfig=[]),
        "request.generationConfig must be a JSON object (GenerationConfig), got a list",
    ),
    (
        _request(TEXT, generationConfig={"stopSequences": "END"}),
        "request.generationConfig.stopSequences must be a non-empty list, got a string",
    ),
    (
        _request(TEXT, safetySettings=3),
        "request.safetySettings must be a non-empty list of SafetySetting objects, got a number",
    ),
    ({"contents": ["hi"]}, "request.contents[0] must be a JSON object (Content), got a string"),
    (True, "request must be a JSON object (a GenerateContentRequest), got a boolean"),
]


@pytest.mark.parametrize(("request_body", "message"), EXACT)
def test_messages_name_the_path_the_problem_and_the_fix(request_body: object, message: str) -> None:
    assert check_request(request_body) == [message]


def test_an_unknown_field_lists_the_first_twelve_known_names() -> None:
    from gemini_batch.pipeline.request_shape import WIRE_SCHEMA, _walk, wire_names

    for model in WIRE_SCHEMA:
        problems: list[str] = []
        _walk({"zzz": 1}, model, "x", problems)
        listed = problems[0].split("(known: ", 1)[1].removesuffix(")")
        names = wire_names(model)
        if len(names) > 12:
            assert listed == ", ".join(names[:12]) + ", ...", model
        else:
            assert listed == ", ".join(names), model


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        ({}, "an object"),
        ([], "a list"),
        ("", "a string"),
        (False, "a boolean"),
        (0, "a number"),
        (1.5, "a number"),
        (b"x", "bytes"),
    ],
)
def test_json_type_names_the_json_type(value: object, name: str) -> None:
    from gemini_batch.pipeline.request_shape import json_type

    assert json_type(value) == name


def test_every_field_is_checked_after_an_unknown_one_and_nulls_are_absent_fields() -> None:
    request = {
        "prompt": "x",
        "systemInstruction": None,
        **_request(TEXT, generationConfig={"temperature": 3}),
    }
    assert check_request(request) == [
        "request.prompt is not a field of GenerateContentRequest; fix the spelling or remove it (known: "
        "cachedContent, contents, generationConfig, labels, model, safetySettings, systemInstruction, "
        "toolConfig, tools)",
        "request.generationConfig.temperature must be a number from 0 to 2, got 3",
    ]
