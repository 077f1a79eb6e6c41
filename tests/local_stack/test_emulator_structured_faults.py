"""The emulator's structured_break_ratio fault: which answers break, and how.

The emulator breaks answers from the generator's side (it never checks them); these tests
show each break is a real one, and that the product's checker catches every one of them.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from gemini_batch.pipeline.structured import check_answer
from local_stack.emulator.faults import BREAK_KINDS, FaultError, Faults, JobFaults
from local_stack.emulator.model import answer_text, broken_json

SCHEMA = {
    "type": "OBJECT",
    "properties": {"label": {"type": "STRING"}, "score": {"type": "INTEGER"}},
    "required": ["score"],
}


def structured_request(prompt: str, **config: Any) -> dict[str, Any]:
    return {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseMimeType": "application/json", **config},
    }


def test_the_switch_is_a_job_level_ratio() -> None:
    faults = Faults().updated({"structured_break_ratio": 0.05})
    assert faults.for_job() == JobFaults(structured_break_ratio=0.05)
    assert JobFaults.from_dict(faults.for_job().to_dict()).structured_break_ratio == 0.05
    with pytest.raises(FaultError):
        Faults().updated({"structured_break_ratio": 1.5})


def test_breaks_are_deterministic_close_to_the_ratio_and_of_every_kind() -> None:
    faults = JobFaults(structured_break_ratio=0.2)
    rows = [f'{{"key": "k{i}"}}'.encode() for i in range(3000)]
    kinds = [faults.structured_break(row) for row in rows]
    assert kinds == [faults.structured_break(row) for row in rows]
    broken = Counter(kind for kind in kinds if kind)
    assert 0.17 < sum(broken.values()) / len(rows) < 0.23
    assert set(broken) == set(BREAK_KINDS)
    assert min(broken.values()) > 0.2 * sum(broken.values())
    assert JobFaults().structured_break(rows[0]) is None


def test_the_broken_rows_are_not_the_failed_rows() -> None:
    faults = JobFaults(structured_break_ratio=0.5, row_failure_ratio=0.5)
    rows = [f"row {i}".encode() for i in range(400)]
    both = sum(1 for row in rows if faults.row_fails(row) and faults.structured_break(row))
    assert 60 < both < 140  # independent: about a quarter, not a half


@pytest.mark.parametrize(
    ("value", "schema", "kind", "expected"),
    [
        ({"label": "a", "score": 3}, SCHEMA, "missing_required", {"label": "a"}),
        ({"label": "a", "score": 3}, SCHEMA, "wrong_type", {"label": 12345, "score": 3}),
        ({"score": 3}, {"type": "OBJECT", "properties": {"score": {"type": "INTEGER"}}}, "missing_required",
         {"score": "wrong-type"}),
        ("x", {"type": "STRING"}, "wrong_type", 12345),
        ([1], {"type": "ARRAY"}, "missing_required", "wrong-type"),
    ],
)  # fmt: skip
def test_each_break_changes_the_value_as_documented(
    value: Any, schema: Any, kind: str, expected: Any
) -> None:
    assert json.loads(broken_json(value, schema, kind)) == expected


@pytest.mark.parametrize("value", [{"label": "a", "score": 3}, "x", 7, [1, 2], {}])
def test_bad_json_does_not_parse(value: Any) -> None:
    with pytest.raises(ValueError):
        json.loads(broken_json(value, {}, "bad_json"))


@pytest.mark.parametrize("kind", BREAK_KINDS)
@pytest.mark.parametrize(
    "config",
    [
        {"responseSchema": SCHEMA},
        {
            "responseJsonSchema": {
                "type": "object",
                "properties": {"n": {"type": "number"}},
                "required": ["n"],
            }
        },
    ],
)
def test_the_products_checker_catches_every_break(kind: str, config: dict[str, Any]) -> None:
    request = structured_request("classify this", **config)
    dialect = "json_schema" if "responseJsonSchema" in config else "openapi"
    schema = config.get("responseJsonSchema") or config["responseSchema"]
    assert check_answer(answer_text("gemini-2.5-flash", request), schema, dialect) is None
    assert check_answer(answer_text("gemini-2.5-flash", request, kind), schema, dialect) is not None


def test_answers_without_a_schema_are_never_broken() -> None:
    plain = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    assert answer_text("gemini-2.5-flash", plain, "bad_json") == answer_text("gemini-2.5-flash", plain)
    free_json = structured_request("hello")
    assert answer_text("gemini-2.5-flash", free_json, "wrong_type") == answer_text(
        "gemini-2.5-flash", free_json
    )
