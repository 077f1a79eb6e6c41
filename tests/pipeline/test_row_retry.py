"""Every form a failed row's status takes in the errors table, read as one canonical name."""

from __future__ import annotations

import json

import pytest

from gemini_batch.pipeline.row_retry import RowRetryPolicy, canonical_status


def vertex(code: int, status: str | None, reason: str = "Too Many Requests") -> str:
    """A Vertex output row's status text: a reason phrase and the HTTP error JSON."""
    error = {"code": code, "message": "Resource exhausted: retry later."}
    if status:
        error["status"] = status
    return f"{reason}: {json.dumps({'error': error})}"


@pytest.mark.parametrize(
    ("status", "canonical", "retryable"),
    [
        ("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED", True),
        ("resource_exhausted", "RESOURCE_EXHAUSTED", True),
        ("UNAVAILABLE: the service is overloaded", "UNAVAILABLE", True),
        ("DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED", True),
        ("INTERNAL", "INTERNAL", True),
        ("INVALID_ARGUMENT", "INVALID_ARGUMENT", False),
        (vertex(429, "RESOURCE_EXHAUSTED"), "RESOURCE_EXHAUSTED", True),
        (vertex(400, "INVALID_ARGUMENT", "Bad Request"), "INVALID_ARGUMENT", False),
        (vertex(503, None, "Service Unavailable"), "UNAVAILABLE", True),  # no name: the HTTP code
        (vertex(400, None, "Bad Request"), "INVALID_ARGUMENT", False),
        ("code 429", "RESOURCE_EXHAUSTED", True),  # a Gemini API error with an HTTP code only
        ("code 8", "RESOURCE_EXHAUSTED", True),  # ... or a google.rpc code
        ("code 14", "UNAVAILABLE", True),
        ("code 504", "DEADLINE_EXCEEDED", True),
        ("code 500", "INTERNAL", True),
        ("code 3", "INVALID_ARGUMENT", False),
        ("code 400", "INVALID_ARGUMENT", False),
        ("code 0", None, False),  # OK is no failure
        ("code 999", None, False),
        ("ERROR", None, False),  # the loader's stand-in for a row without a status
        ("blocked", None, False),
        ("Bad Request: {not json", None, False),
        ("Bad Request: [1, 2]", None, False),
        ("", None, False),
        ("missing", None, True),
        ("invalid_output", None, False),
    ],
)
def test_each_status_form_reads_as_its_canonical_name(
    status: str, canonical: str | None, retryable: bool
) -> None:
    assert canonical_status(status) == canonical
    assert RowRetryPolicy().retryable(status) is retryable


def test_retryable_statuses_are_the_distinct_retryable_ones_sorted() -> None:
    statuses = [
        "code 429",
        "INVALID_ARGUMENT",
        "code 429",
        vertex(429, "RESOURCE_EXHAUSTED"),
        "invalid_output",
    ]
    assert RowRetryPolicy().retryable_statuses(statuses) == sorted(
        {"code 429", vertex(429, "RESOURCE_EXHAUSTED")}
    )
    assert "invalid_output" in RowRetryPolicy(retry_invalid_output=True).retryable_statuses(statuses)
    assert RowRetryPolicy().retryable_statuses([]) == []
