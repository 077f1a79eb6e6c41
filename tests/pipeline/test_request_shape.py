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
