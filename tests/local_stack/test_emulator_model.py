"""The local model: deterministic text, token counts, JSON that matches schemas, row validation."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

from local_stack.emulator.model import (
    KNOWN_MODELS,
    InvalidRequest,
    SchemaValueGenerator,
    answer_text,
    generate_content,
    is_known_model,
    prompt_text,
    response_text,
)


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"text": text}]}


def test_response_text_is_the_documented_function_of_model_and_last_user_text() -> None:
    request = {"contents": [user("first"), {"role": "model", "parts": [{"text": "x"}]}, user("What is 2+2?")]}

    text = response_text("gemini-2.5-flash", request)

    assert text.startswith("[gemini-2.5-flash ")
    assert text.endswith("] What is 2+2?")
    assert text == response_text("gemini-2.5-flash", request)
    assert text != response_text("gemini-2.5-pro", request)


def test_prompt_text_ignores_model_turns_and_non_text_parts() -> None:
    request = {
        "contents": [
            user("question"),
            {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]},
            {"role": "model", "parts": [{"text": "answer"}]},
        ]
    }
    assert prompt_text(request) == "question"


def test_generate_content_has_candidates_usage_and_model_version() -> None:
    request = {"contents": [user("a" * 41)], "systemInstruction": {"parts": [{"text": "bbbb"}]}}

    response = generate_content("gemini-2.5-flash", request)

    candidate = response["candidates"][0]
    text = candidate["content"]["parts"][0]["text"]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["role"] == "model"
    usage = response["usageMetadata"]
    assert usage["promptTokenCount"] == math.ceil(45 / 4)
    assert usage["candidatesTokenCount"] == math.ceil(len(text) / 4)
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert response["modelVersion"] == "gemini-2.5-flash"


_OK = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ("not an object", "must be a JSON object"),
        ({}, "contents is not specified"),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user"}]}, "contents.parts must not be empty"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
        ({"contents": [{"role": "user", "parts": [{}]}]}, "required oneof field 'data'"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "valid role"),
        # unknown fields, at every level the service parses, with the parser's wording and path
        ({**_OK, "generationConfg": {}}, 'Unknown name "generationConfg": Cannot find field'),
        ({**_OK, "prompt": "x"}, 'Unknown name "prompt": Cannot find field'),
        (
            {**_OK, "generationConfig": {"temprature": 0.2}},
            "Unknown name \"temprature\" at 'generation_config': Cannot find field",
        ),
        (
            {**_OK, "generation_config": {"thinking_config": {"budget": 1}}},
            "Unknown name \"budget\" at 'generation_config.thinking_config'",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"text": "x"}], "author": "me"}]},
            "Unknown name \"author\" at 'contents\\[0\\]'",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}, {"parts": [{"text": "y", "txt": "y"}]}]},
            "Unknown name \"txt\" at 'contents\\[1\\].parts\\[0\\]'",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "a/b", "data": "", "uri": "x"}}]}]},
            "Unknown name \"uri\" at 'contents\\[0\\].parts\\[0\\].inline_data'",
        ),
        (
            {"contents": [{"parts": [{"fileData": {"fileUri": "gs://b/o", "mime": "a/b"}}]}]},
            "Unknown name \"mime\" at 'contents\\[0\\].parts\\[0\\].file_data'",
        ),
        (
            {**_OK, "systemInstruction": {"parts": [{"text": "x"}], "rolee": "x"}},
            "Unknown name \"rolee\" at 'system_instruction'",
        ),
        (
            {**_OK, "safetySettings": [{"category": "X", "threshold": "Y", "level": 1}]},
            "Unknown name \"level\" at 'safety_settings\\[0\\]'",
        ),
        # empty or blank text, in the contents or the system instruction
        ({"contents": [{"parts": [{"text": ""}]}]}, "empty text parameter"),
        ({"contents": [{"parts": [{"text": " \n\t"}]}]}, "empty text parameter"),
        ({"contents": [{"parts": [{"text": "ok"}, {"text": "  "}]}]}, "empty text parameter"),
        ({**_OK, "system_instruction": {"parts": [{"text": ""}]}}, "empty text parameter"),
        # part data of the wrong JSON type
        ({"contents": [{"parts": [{"text": 3}]}]}, "expected a string"),
        ({"contents": [{"parts": [{"inlineData": "abc"}]}]}, "inline_data': expected an object"),
        ({"contents": [{"parts": [{"thought": True}]}]}, "required oneof field 'data'"),
    ],
)
def test_invalid_requests_raise_a_row_error_with_the_real_wording(request_body: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        generate_content("gemini-2.5-flash", request_body)
    assert info.value.to_error() == {"code": 400, "message": str(info.value)}  # a google.rpc.Status


@pytest.mark.parametrize(
    "request_body",
    [
        _OK,
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "labels": {"row": "1"}},
        {"contents": [{"parts": [{"text": "hi"}]}], "model": "models/gemini-2.5-flash"},
        {
            "contents": [{"parts": [{"text": "hi", "thought": False}]}],
            "system_instruction": {"parts": [{"text": "be brief"}]},
            "generation_config": {"temperature": 0.2, "thinking_config": {"thinking_budget": 0}},
            "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
            "tools": [{"googleSearch": {}}],
        },
        {
            "contents": [
                {"parts": [{"inline_data": {"mime_type": "image/png", "data": "aGk="}}, {"text": "what?"}]},
                {"role": "model", "parts": [{"fileData": {"fileUri": "gs://b/o", "mimeType": "a/b"}}]},
                {"parts": [{"text": "and?"}]},
            ],
            "generationConfig": {"responseMimeType": "application/json", "_responseJsonSchema": {}},
        },
    ],
)
def test_requests_the_service_accepts_get_an_answer(request_body: dict[str, object]) -> None:
    assert generate_content("gemini-2.5-flash", request_body)["candidates"][0]["finishReason"] == "STOP"


JSON_SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": 40},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}, "minItems": 1},
            "when": {"type": "string", "format": "date-time"},
            "maybe": {"type": ["string", "null"]},
        },
        "required": ["title", "score", "ok"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3},
    {"enum": ["positive", "negative", "neutral"]},
    {
        "$defs": {"item": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
        "required": ["items"],
    },
    {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"x": {"const": 7}}, "required": ["x"]}]},
]


@pytest.mark.parametrize("schema", JSON_SCHEMAS)
def test_json_mode_with_a_json_schema_returns_json_that_validates(schema: dict) -> None:
    request = {
        "contents": [user("classify me")],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema},
    }

    value = json.loads(answer_text("gemini-2.5-flash", request))

    jsonschema.validate(value, schema)
    assert answer_text("gemini-2.5-flash", request) == answer_text("gemini-2.5-flash", request)


def test_json_mode_accepts_the_openapi_response_schema_in_snake_case() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "sentiment": {"type": "STRING", "enum": ["pos", "neg"]},
            "confidence": {"type": "NUMBER", "minimum": 0, "maximum": 1},
            "count": {"type": "INTEGER"},
            "labels": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
        "required": ["sentiment", "confidence"],
        "propertyOrdering": ["confidence", "sentiment"],
    }
    request = {
        "contents": [user("great")],
        "generation_config": {"response_mime_type": "application/json", "response_schema": schema},
    }

    value = json.loads(answer_text("gemini-2.5-flash", request))

    assert list(value)[:2] == ["confidence", "sentiment"]
    assert value["sentiment"] in ("pos", "neg")
    assert 0 <= value["confidence"] <= 1
    assert isinstance(value["count"], int)
    assert all(isinstance(label, str) for label in value["labels"])


def test_json_mode_without_a_schema_wraps_the_text() -> None:
    request = {"contents": [user("hi")], "generationConfig": {"responseMimeType": "application/json"}}
    assert json.loads(answer_text("gemini-2.5-flash", request)) == {
        "response": response_text("gemini-2.5-flash", request)
    }


def test_enum_mime_type_answers_one_of_the_values() -> None:
    request = {
        "contents": [user("pick")],
        "generationConfig": {
            "responseMimeType": "text/x.enum",
            "responseSchema": {"type": "STRING", "enum": ["A", "B"]},
        },
    }
    assert answer_text("gemini-2.5-flash", request) in ("A", "B")


def test_schema_values_differ_between_prompts_but_not_between_calls() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 10**6}}}
    first = SchemaValueGenerator("aa" * 32, schema).value()
    assert first == SchemaValueGenerator("aa" * 32, schema).value()
    assert first != SchemaValueGenerator("bb" * 32, schema).value()


@pytest.mark.parametrize(
    ("model_id", "known"),
    [
        *[(model, True) for model in KNOWN_MODELS],
        ("gemini-2.5-flash-001", True),
        ("gemini-3.1-pro-preview", True),
        ("gemini-2.5-flash-preview-05-2025", True),
        ("gemini-2.5-flsh", False),
        ("gemini-9-banana", False),
        ("gpt-4o", False),
        ("text-embedding-004", False),
        ("", False),
    ],
)
def test_known_models_are_the_documented_list_or_pattern(model_id: str, known: bool) -> None:
    assert is_known_model(model_id) is known
