"""The typed reading (msgspec) proves common requests fine and declines the rest, never refusing.

Its agreement with the exact reading on generated lines is in test_jsonl_fast_path.py; here, the
cases it must decide fast (so the speed holds), the ones it must leave to the rules, and that its
Structs are the wire schema's fields.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from gemini_batch.pipeline import jsonl_scan, typed_reading
from gemini_batch.pipeline.request_shape import DATA_FIELDS, KEY_LABEL, WIRE_SCHEMA
from gemini_batch.pipeline.typed_reading import TYPED_MODELS, typed_line_key

TEXT = {"parts": [{"text": "Summarize: the report"}]}


@pytest.fixture(autouse=True)
def structs_built_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read with Structs and decoders built for the test (the module builds its own at import), so
    these tests check the builders too."""
    monkeypatch.setattr(typed_reading, "_STRUCTS", typed_reading._build_structs())
    monkeypatch.setattr(
        typed_reading,
        "_DECODERS",
        {name: typed_reading._line_decoder(name) for name in ("vertex_jsonl", "gemini_jsonl")},
    )


def line(request: dict, **top: object) -> bytes:
    return json.dumps({**top, "request": request}).encode()


def vertex(**fields: object) -> dict:
    return {"contents": [{"role": "user", **TEXT}], "labels": {KEY_LABEL: "row-1"}, **fields}


DECIDED = {
    "plain": vertex(),
    "system instruction, config, safety": vertex(
        systemInstruction=TEXT,
        generationConfig={"temperature": 0, "topP": 1, "maxOutputTokens": 8, "topK": 40, "candidateCount": 1},
        safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
    ),
    "chat": {
        **vertex(),
        "contents": [{"role": "user", **TEXT}, {"role": "model", **TEXT}, {"role": "user", **TEXT}],
    },
    "image by URI": {
        **vertex(),
        "contents": [
            {
                "parts": [
                    {"text": "What is it?"},
                    {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/i.png"}},
                ]
            }
        ],
    },
    "inline image": {
        **vertex(),
        "contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "aGk="}}]}],
    },
    "json answer": vertex(
        generationConfig={
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]},
            "thinkingConfig": {"thinkingBudget": 0},
        }
    ),
    "at the bounds": vertex(
        generationConfig={"temperature": 2, "topP": 0.0, "maxOutputTokens": 1, "topK": 1, "candidateCount": 1}
    ),
    "escaped text": {**vertex(), "contents": [{"parts": [{"text": 'Say "hi"\n\tand go: \\ ok'}]}]},
    "enum answer": vertex(
        generationConfig={
            "responseMimeType": "text/x.enum",
            "responseSchema": {"type": "STRING", "enum": ["a"]},
        }
    ),
    "labels beside the key": {**vertex(), "labels": {KEY_LABEL: "row-1", "team": "data-eng_2", "empty": ""}},
}

# Fine requests the typed reading leaves to the rules (the exact reading accepts each).
DECLINED = {
    "snake_case names": vertex(system_instruction=TEXT),
    "tools": vertex(tools=[{"codeExecution": {}}]),
    "a function call part": {
        **vertex(),
        "contents": [{"role": "model", "parts": [{"functionCall": {"name": "f"}}]}],
    },
    "an explicit null": {**vertex(), "contents": [{"role": None, **TEXT}]},
}

# Requests both refuse (the typed reading declines; the rules name the problem).
REFUSED = {
    "assistant role": {**vertex(), "contents": [{"role": "assistant", **TEXT}]},
    "blank text": {**vertex(), "contents": [{"parts": [{"text": " \u2003"}]}]},
    "empty text": {**vertex(), "contents": [{"parts": [{"text": ""}]}]},
    "blank system instruction": vertex(systemInstruction={"parts": [{"text": " "}]}),
    "system instruction without parts": vertex(systemInstruction={"parts": []}),
    "no inline data": {**vertex(), "contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]},
    "blank file URI": {
        **vertex(),
        "contents": [{"parts": [{"fileData": {"mimeType": "image/png", "fileUri": "\t"}}]}],
    },
    "temperature below 0": vertex(generationConfig={"temperature": -0.1}),
    "topP above 1": vertex(generationConfig={"topP": 1.5}),
    "zero candidates": vertex(generationConfig={"candidateCount": 0}),
    "role as a number": {**vertex(), "contents": [{"role": 1, **TEXT}]},
    "two data fields": {
        **vertex(),
        "contents": [
            {"parts": [{"text": "x", "fileData": {"mimeType": "image/png", "fileUri": "gs://b/i"}}]}
        ],
    },
    "no data field": {**vertex(), "contents": [{"parts": [{}]}]},
    "no parts": {**vertex(), "contents": [{"role": "user", "parts": []}]},
    "no contents": {**vertex(), "contents": []},
    "blank mime type": {
        **vertex(),
        "contents": [{"parts": [{"inlineData": {"mimeType": " ", "data": "aGk="}}]}],
    },
    "no file URI": {**vertex(), "contents": [{"parts": [{"fileData": {"mimeType": "image/png"}}]}]},
    "temperature above 2": vertex(generationConfig={"temperature": 2.5}),
    "topP as a boolean": vertex(generationConfig={"topP": True}),
    "topK as a fraction": vertex(generationConfig={"topK": 40.5}),
    "zero output tokens": vertex(generationConfig={"maxOutputTokens": 0}),
    "schema without JSON": vertex(generationConfig={"responseSchema": {"type": "STRING"}}),
    "unknown schema field": vertex(
        generationConfig={
            "responseMimeType": "application/json",
            "responseSchema": {"type": "STRING", "typo": 1},
        }
    ),
    "unknown field": vertex(generationConfg={}),
    "upper-case label": {**vertex(), "labels": {KEY_LABEL: "Row-1"}},
    "upper-case label key": {**vertex(), "labels": {KEY_LABEL: "row-1", "Team": "x"}},
    "text as a number": {**vertex(), "contents": [{"parts": [{"text": 3}]}]},
    "no file MIME type": {**vertex(), "contents": [{"parts": [{"fileData": {"fileUri": "gs://b/i.png"}}]}]},
    "blank file MIME type": {
        **vertex(),
        "contents": [{"parts": [{"fileData": {"mimeType": "", "fileUri": "gs://b/i.png"}}]}],
    },
    "unknown safety setting field": vertex(
        safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "treshold": "BLOCK_NONE"}]
    ),
    "stop sequences as a string": vertex(generationConfig={"stopSequences": "END"}),
    "unknown field in a property's schema": vertex(
        generationConfig={
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"a": {"typ": "STRING"}}},
        }
    ),
    "label with a newline": {**vertex(), "labels": {KEY_LABEL: "row-1\n"}},
    "no key": {**vertex(), "labels": {}},
    "empty key": {**vertex(), "labels": {KEY_LABEL: ""}},
}


@pytest.mark.parametrize("name", DECIDED)
def test_common_requests_are_decided_by_the_typed_reading(name: str) -> None:
    content = line(DECIDED[name])
    assert typed_line_key(content, "vertex_jsonl", KEY_LABEL) == "row-1"
    assert jsonl_scan._examine_line(content, "vertex_jsonl", KEY_LABEL, True) == ([], "row-1")


@pytest.mark.parametrize("name", DECLINED)
def test_other_fine_requests_are_left_to_the_rules(name: str) -> None:
    content = line(DECLINED[name])
    assert typed_line_key(content, "vertex_jsonl", KEY_LABEL) is None
    assert jsonl_scan._check_line(content, "vertex_jsonl", KEY_LABEL, True) == ([], "row-1")


@pytest.mark.parametrize("name", REFUSED)
def test_bad_requests_are_never_accepted(name: str) -> None:
    content = line(REFUSED[name])
    assert typed_line_key(content, "vertex_jsonl", KEY_LABEL) is None
    problems, _ = jsonl_scan._check_line(content, "vertex_jsonl", KEY_LABEL, True)
    assert problems, name


def test_gemini_lines_carry_a_non_empty_string_key() -> None:
    request = {"contents": [TEXT]}
    assert typed_line_key(line(request, key="k1"), "gemini_jsonl", KEY_LABEL) == "k1"
    assert typed_line_key(line(request, key="k"), "gemini_jsonl", KEY_LABEL) == "k"
    for key in ("", 7, None):
        assert typed_line_key(line(request, key=key), "gemini_jsonl", KEY_LABEL) is None
    assert typed_line_key(line(request), "gemini_jsonl", KEY_LABEL) is None
    assert typed_line_key(line(request, key="k1", extra=1), "gemini_jsonl", KEY_LABEL) is None


def test_a_duplicate_member_is_never_accepted() -> None:
    text = line(vertex()).decode().replace('"role": "user"', '"role": "user", "role": "model"')
    assert typed_line_key(text.encode(), "vertex_jsonl", KEY_LABEL) is None


def test_the_structs_hold_the_wire_schema_fields_of_the_typed_models() -> None:
    for model in TYPED_MODELS:
        typed = {field.name for field in msgspec.structs.fields(typed_reading._STRUCTS[model])}
        schema = {spec.name for spec in WIRE_SCHEMA[model].values()}
        untyped = {
            spec.name for spec in WIRE_SCHEMA[model].values() if spec.model and spec.model not in TYPED_MODELS
        }
        assert typed == schema - untyped, model
    part_data = {field.name for field in msgspec.structs.fields(typed_reading._STRUCTS["Part"])} & set(
        DATA_FIELDS
    )
    assert part_data == {"text", "inlineData", "fileData"}  # what _check_part counts


# A part's text as raw JSON: whether the typed reading takes it, and whether the exact reading does.
RAW_TEXTS = {
    b'"hi"': True,
    b'" x"': True,  # first character blank, a later one not: decoded, then found fine
    b'"\\u3000x"': True,
    b'"\\ud83d\\ude00"': True,  # a surrogate pair
    b'"   "': False,
    b'"\\u0020"': False,
    b'"\\u3000"': False,  # ideographic space, escaped
    b'"\xe3\x80\x80"': False,  # the same, as UTF-8
    b'"\\n\\t"': False,
    b'""': False,
    b'"\xff"': False,  # not UTF-8, which msgspec does not check in a raw value
    b'"a\xff"': False,
    b'"\xed\xa0\x80"': False,  # an encoded surrogate
    b'"\\ud83d"': False,  # a lone surrogate escape
    b"5": False,
    b"null": False,
    b'["a"]': False,
    b'{"a": 1}': False,
}


@pytest.mark.parametrize("text", RAW_TEXTS, ids=repr)
def test_a_text_is_taken_only_when_it_is_a_non_blank_string(text: bytes) -> None:
    content = b'{"request": {"contents": [{"parts": [{"text": %s}]}], "labels": {"%s": "row-1"}}}' % (
        text,
        KEY_LABEL.encode(),
    )
    fine = RAW_TEXTS[text]
    assert typed_line_key(content, "vertex_jsonl", KEY_LABEL) == ("row-1" if fine else None)
    problems, _ = jsonl_scan._examine_line(content, "vertex_jsonl", KEY_LABEL, True)
    assert not problems if fine else problems


def test_a_part_with_a_text_and_a_file_is_never_taken() -> None:
    part = {"text": "hi", "fileData": {"mimeType": "image/png", "fileUri": "gs://b/i.png"}}
    assert (
        typed_line_key(line({**vertex(), "contents": [{"parts": [part]}]}), "vertex_jsonl", KEY_LABEL) is None
    )
