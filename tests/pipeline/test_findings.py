"""findings.py: issue collection with a cap, the one error message, the duplicate-key index."""

from __future__ import annotations

import pytest

from gemini_batch.pipeline import findings
from gemini_batch.pipeline.findings import InputValidationError, Issues, KeyIndex, ShardSpan, ValidationIssue


@pytest.fixture
def blake2b_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest of a platform whose ``hash`` is narrower than 64 bits: deterministic, unlike ``hash``."""
    monkeypatch.setattr(findings, "_digest", findings._blake2b_digest)


@pytest.mark.parametrize(
    ("keys", "duplicates"),
    [
        ([], []),
        (["a"], []),
        (["a", "b", "c"], []),
        (["a", "a"], [(2, 1)]),
        (["a", "b", "a", "b", "a"], [(3, 1), (4, 2), (5, 1)]),
        (["x", "y", "y"], [(3, 2)]),
        (["é", "e", "é"], [(3, 1)]),
    ],
)
def test_duplicates_name_the_later_line_and_the_first(keys, duplicates):
    index = KeyIndex()
    for line, key in enumerate(keys, start=1):
        index.add(key, line)
    assert list(index.duplicates()) == duplicates


def test_line_numbers_need_not_be_consecutive():
    index = KeyIndex()
    for key, line in (("k", 10), ("j", 20), ("k", 30)):
        index.add(key, line)
    assert list(index.duplicates()) == [(30, 10)]


def test_issues_keep_up_to_the_cap_and_count_the_rest():
    issues = Issues(max_issues=2)
    assert not issues
    issues.raise_if_any("src")  # nothing to raise
    for n in range(5):
        issues.add(f"f:{n}", f"bad {n}")
    assert bool(issues)
    assert issues.items == [ValidationIssue("f:0", "bad 0"), ValidationIssue("f:1", "bad 1")]
    assert issues.more == 3
    with pytest.raises(InputValidationError) as caught:
        issues.raise_if_any("gs://b/in.jsonl")
    assert str(caught.value) == (
        "5 problem(s) in gs://b/in.jsonl; nothing was submitted:\n"
        "  - f:0: bad 0\n"
        "  - f:1: bad 1\n"
        "  ... and 3 more"
    )
    assert (caught.value.source, caught.value.more) == ("gs://b/in.jsonl", 3)


def test_an_error_without_more_has_no_tail_line():
    error = InputValidationError("inline", [ValidationIssue("inline[0]", "empty")])
    assert str(error) == "1 problem(s) in inline; nothing was submitted:\n  - inline[0]: empty"
    assert error.issues == (ValidationIssue("inline[0]", "empty"),)


def test_a_span_counts_its_bytes():
    assert ShardSpan(index=0, start=10, end=25, requests=2, first_line=3).bytes == 15


def test_a_digest_whose_bits_spell_a_float_nan_is_still_compared_as_an_integer(blake2b_digests):
    index = KeyIndex()
    index.add("k670", 1)  # blake2b-64 of "k670", read as a float64, is a NaN (NaN != NaN)
    index.add("k670", 2)
    assert list(index.duplicates()) == [(2, 1)]


def test_blake2b_digests_of_many_keys_find_every_duplicate(blake2b_digests):
    """Half of all 64-bit digests have the top bit set: each must fit the index's signed slots."""
    index = KeyIndex()
    keys = [f"k{i}" for i in range(200)]
    for line, key in enumerate(keys + keys[:3], start=1):
        index.add(key, line)
    assert list(index.duplicates()) == [(201, 1), (202, 2), (203, 3)]


def test_line_numbers_up_to_32_bits_are_kept():
    index = KeyIndex()
    index.add("k", 1)
    index.add("k", 2**32 - 1)
    assert list(index.duplicates()) == [(2**32 - 1, 1)]
