"""The schema checker (pipeline/structured.py): one table of cases per rule, both dialects."""

from __future__ import annotations

from typing import Any

import pytest

from gemini_batch.pipeline.row_retry import RowRetryPolicy
from gemini_batch.pipeline.structured import Problem, SchemaChecker, check_answer, parse_answer

PERSON_OPENAPI = {
    "type": "OBJECT",
    "properties": {
        "name": {"type": "STRING"},
        "age": {"type": "INTEGER", "nullable": True},
        "kind": {"type": "STRING", "enum": ["cat", "dog"]},
        "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "1", "maxItems": 3},
        "address": {
            "type": "OBJECT",
            "properties": {"city": {"type": "STRING"}, "zip": {"type": "STRING"}},
            "required": ["city"],
        },
    },
    "required": ["name", "kind"],
    "propertyOrdering": ["name", "age", "kind", "tags", "address"],
}

# (schema, dialect, value, expected problem as text or None)
CASES: list[tuple[Any, str, Any, str | None]] = [
    # types, both dialects
    ({"type": "STRING"}, "openapi", "x", None),
    ({"type": "string"}, "openapi", 1, "$: expected string, got integer"),
    ({"type": "INTEGER"}, "openapi", 3, None),
    ({"type": "INTEGER"}, "openapi", 3.0, None),
    ({"type": "INTEGER"}, "openapi", 3.5, "$: expected integer, got number"),
    ({"type": "INTEGER"}, "openapi", True, "$: expected integer, got boolean"),
    ({"type": "NUMBER"}, "openapi", 3, None),
    ({"type": "NUMBER"}, "openapi", "3", "$: expected number, got string"),
    ({"type": "BOOLEAN"}, "openapi", False, None),
    ({"type": "BOOLEAN"}, "openapi", 0, "$: expected boolean, got integer"),
    ({"type": "ARRAY"}, "openapi", {}, "$: expected array, got object"),
    ({"type": "OBJECT"}, "openapi", [], "$: expected object, got array"),
    ({"type": "TYPE_UNSPECIFIED"}, "openapi", [], None),
    ({"type": "integer"}, "json_schema", 2, None),
    ({"type": "INTEGER"}, "json_schema", "x", None),  # not a JSON Schema type name: no constraint
    ({"type": ["string", "null"]}, "json_schema", None, None),
    ({"type": ["string", "null"]}, "json_schema", 1, "$: expected string or null, got integer"),
    ({"type": "null"}, "json_schema", 0, "$: expected null, got integer"),
    # nullable (OpenAPI only)
    ({"type": "STRING", "nullable": True}, "openapi", None, None),
    ({"type": "STRING"}, "openapi", None, "$: expected string, got null"),
    ({"type": "string", "nullable": True}, "json_schema", None, "$: expected string, got null"),
    # enum and const
    ({"type": "STRING", "enum": ["a", "b"]}, "openapi", "b", None),
    ({"type": "STRING", "enum": ["a", "b"]}, "openapi", "c", '$: "c" is not one of ["a", "b"]'),
    ({"enum": [1, "1"]}, "json_schema", 1.0, None),
    ({"enum": [1]}, "json_schema", True, "$: true is not one of [1]"),
    ({"const": False}, "json_schema", 0, "$: 0 is not the constant false"),
    ({"const": {"a": [1]}}, "json_schema", {"a": [1]}, None),
    # required and nesting
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "cat"}, None),
    (PERSON_OPENAPI, "openapi", {"kind": "cat"}, "$.name: required field missing"),
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "cat", "age": None}, None),
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "cat", "age": "9"}, "$.age: expected integer or null, got string"),
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "cow"}, '$.kind: "cow" is not one of ["cat", "dog"]'),
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "dog", "address": {"zip": "1"}},
     "$.address.city: required field missing"),
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "dog", "address": {"city": 7}},
     "$.address.city: expected string, got integer"),
    # the first problem in schema order: name before kind
    (PERSON_OPENAPI, "openapi", {"name": 1, "kind": "cow"}, "$.name: expected string, got integer"),
    # arrays
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "dog", "tags": ["a", 2]}, "$.tags[1]: expected string, got integer"),
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "dog", "tags": []}, "$.tags: has 0 items, fewer than minItems 1"),
    (PERSON_OPENAPI, "openapi", {"name": "n", "kind": "dog", "tags": ["a"] * 4},
     "$.tags: has 4 items, more than maxItems 3"),
    ({"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "string"}}, "json_schema", [1, "a"], None),
    ({"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "string"}}, "json_schema", ["a"],
     "$[0]: expected integer, got string"),
    ({"type": "array", "prefixItems": [{"type": "integer"}], "items": False}, "json_schema", [1, 2],
     "$[1]: item not allowed by the schema"),
    # extra fields
    ({"type": "object", "properties": {"a": {}}, "additionalProperties": False}, "json_schema", {"a": 1, "b": 2},
     "$.b: field not allowed by the schema"),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, "json_schema", {"a": "x"},
     "$.a: expected integer, got string"),
    ({"type": "OBJECT", "properties": {"a": {}}}, "openapi", {"a": 1, "b": 2}, None),
    ({"type": "object", "required": ["odd key"]}, "json_schema", {}, '$["odd key"]: required field missing'),
    # bounds
    ({"type": "NUMBER", "minimum": 0, "maximum": 1}, "openapi", 1, None),
    ({"type": "NUMBER", "minimum": 0, "maximum": 1}, "openapi", 1.5, "$: 1.5 is outside maximum 1"),
    ({"type": "NUMBER", "minimum": 0}, "openapi", -1, "$: -1 is outside minimum 0"),
    ({"type": "number", "exclusiveMinimum": 0}, "json_schema", 0, "$: 0 is outside exclusiveMinimum 0"),
    ({"type": "number", "exclusiveMaximum": 5}, "json_schema", 5, "$: 5 is outside exclusiveMaximum 5"),
    ({"type": "STRING", "minLength": 2}, "openapi", "a", "$: has 1 characters, fewer than minLength 2"),
    ({"type": "string", "maxLength": 2}, "json_schema", "abc", "$: has 3 characters, more than maxLength 2"),
    # combinations and references
    ({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}, "openapi", 1, None),
    ({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}, "openapi", 1.5,
     "$: matches none of the 2 anyOf choices (first: $: expected string, got number)"),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, "json_schema", 1,
     "$: matches 2 of the 2 oneOf choices, not exactly one"),
    ({"oneOf": [{"type": "number"}, {"type": "string"}]}, "json_schema", 1, None),
    ({"allOf": [{"type": "integer"}, {"minimum": 3}]}, "json_schema", 2, "$: 2 is outside minimum 3"),
    ({"$defs": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/$defs/n"}}, "json_schema", [1, "x"],
     "$[1]: expected integer, got string"),
    ({"$ref": "#"}, "json_schema", 1, None),  # a cycle that never descends: stops, constrains nothing
]  # fmt: skip


@pytest.mark.parametrize(("schema", "dialect", "value", "expected"), CASES)
def test_first_problem_of_a_value(schema: Any, dialect: Any, value: Any, expected: str | None) -> None:
    problem = SchemaChecker(schema, dialect).check(value)
    assert (str(problem) if problem else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', None),
        (" [1, 2] ", None),
        ("{'a': 1}", "$: not valid JSON (Expecting property name enclosed in double quotes)"),
        ('{"a": 1} tail', "$: not valid JSON (Extra data)"),
        ("NaN", "$: not valid JSON (NaN is not JSON)"),
        ("[Infinity]", "$: not valid JSON (Infinity is not JSON)"),
        ("", "$: not valid JSON (Expecting value)"),
        (None, "$: no answer text"),
    ],
)
def test_answer_text_must_be_strict_json(text: str | None, expected: str | None) -> None:
    _, problem = parse_answer(text)
    assert (str(problem) if problem else None) == expected


def test_check_answer_parses_then_checks() -> None:
    assert check_answer('{"name": "n", "kind": "cat"}', PERSON_OPENAPI, "openapi") is None
    assert check_answer('{"kind": "cat"}', PERSON_OPENAPI, "openapi") == Problem(
        "$.name", "required field missing"
    )
    assert check_answer("{", PERSON_OPENAPI, "openapi") == Problem(
        "$", "not valid JSON (Expecting property name enclosed in double quotes)"
    )


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schema dialect"):
        SchemaChecker({}, "xml")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "retry_invalid_output", "expected"),
    [
        ("RESOURCE_EXHAUSTED", False, True),
        ("UNAVAILABLE", False, True),
        ("INTERNAL", False, True),
        ("DEADLINE_EXCEEDED", False, True),
        ("RESOURCE_EXHAUSTED: Quota exceeded for aiplatform", False, True),
        ("missing", False, True),
        ("INVALID_ARGUMENT", False, False),
        ("INVALID_ARGUMENT", True, False),
        ("invalid_output", False, False),
        ("invalid_output", True, True),
        ("blocked", True, False),
    ],
)
def test_which_failed_rows_a_retry_round_may_resubmit(
    status: str, retry_invalid_output: bool, expected: bool
) -> None:
    assert RowRetryPolicy(retry_invalid_output=retry_invalid_output).retryable(status) is expected


def test_invalid_output_is_not_retried_by_default() -> None:
    assert RowRetryPolicy().retryable("invalid_output") is False


def test_retryable_rows_are_counted_by_status() -> None:
    failures = [("RESOURCE_EXHAUSTED", 3), ("INVALID_ARGUMENT", 5), ("invalid_output", 7), ("UNAVAILABLE", 1)]
    assert RowRetryPolicy().count_retryable(failures) == 4
    assert RowRetryPolicy(retry_invalid_output=True).count_retryable(failures) == 11
