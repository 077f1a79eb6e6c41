"""states.py: one classification of every job state, counts and progress lines."""

from __future__ import annotations

import types as pytypes

import pytest
from google.genai import types

from gemini_batch.states import (
    KNOWN_STATES,
    TERMINAL_STATES,
    Counts,
    counts_of,
    is_terminal,
    normalize_state,
    outcome_of,
    progress_line,
    short_state,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (types.JobState.JOB_STATE_RUNNING, "JOB_STATE_RUNNING"),
        ("JOB_STATE_SUCCEEDED", "JOB_STATE_SUCCEEDED"),
        ("BATCH_STATE_RUNNING", "JOB_STATE_RUNNING"),
        ("BATCH_STATE_EXPIRED", "JOB_STATE_EXPIRED"),
        ("paused", "JOB_STATE_PAUSED"),
        (None, "JOB_STATE_UNSPECIFIED"),
    ],
)
def test_normalize_state_accepts_enums_gemini_names_and_bare_names(given, expected):
    assert normalize_state(given) == expected


@pytest.mark.parametrize(
    ("state", "counts", "expected"),
    [
        ("JOB_STATE_SUCCEEDED", None, "succeeded"),
        ("JOB_STATE_SUCCEEDED", Counts(succeeded=10, total=10), "succeeded"),
        ("JOB_STATE_SUCCEEDED", Counts(succeeded=9, failed=1, total=10), "partial"),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", None, "partial"),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", Counts(succeeded=10, total=10), "partial"),
        ("JOB_STATE_FAILED", None, "failed"),
        ("JOB_STATE_CANCELLED", None, "failed"),
        ("JOB_STATE_EXPIRED", None, "failed"),
        ("JOB_STATE_QUEUED", None, None),
        ("JOB_STATE_PENDING", None, None),
        ("JOB_STATE_RUNNING", Counts(succeeded=1, failed=1, total=5), None),
        ("JOB_STATE_CANCELLING", None, None),
        ("JOB_STATE_UPDATING", None, None),
        ("JOB_STATE_PAUSED", None, None),
        ("JOB_STATE_UNSPECIFIED", None, None),
        ("JOB_STATE_SOMETHING_NEW", None, None),
        ("BATCH_STATE_SUCCEEDED", None, "succeeded"),
    ],
)
def test_outcome_of_every_state(state, counts, expected):
    assert outcome_of(state, counts) == expected


def test_every_state_the_sdk_knows_is_classified_on_purpose():
    assert {member.value for member in types.JobState} <= KNOWN_STATES


def test_partially_succeeded_is_terminal_although_the_sdk_says_not_done():
    job = types.BatchJob(name="1", state="JOB_STATE_PARTIALLY_SUCCEEDED")
    assert job.done is False
    assert is_terminal(job.state)
    assert TERMINAL_STATES == {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
    }


def test_progress_line_names_rows_percent_and_failures():
    counts = Counts(succeeded=4198, failed=12, incomplete=5790, total=10000)
    assert progress_line("JOB_STATE_RUNNING", counts) == "RUNNING 4,210/10,000 rows (42%), 12 failed"


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (None, "PENDING"),
        (Counts(total=0), "PENDING"),
        (Counts(succeeded=5, total=10, incomplete=5), "PENDING 5/10 rows (50%)"),
    ],
)
def test_progress_line_without_counts_or_failures(counts, expected):
    assert progress_line("JOB_STATE_PENDING", counts) == expected


def test_counts_from_completion_stats_treat_unknown_incomplete_as_zero():
    stats = types.CompletionStats(successful_count=7, failed_count=2, incomplete_count=-1)
    counts = Counts.from_completion_stats(stats)
    assert counts == Counts(succeeded=7, failed=2, incomplete=0, total=9)
    assert counts.failed_ratio == pytest.approx(2 / 9)
    assert Counts.from_completion_stats(None) is None
    assert Counts.from_completion_stats(types.CompletionStats()) is None
    assert counts_of(types.BatchJob(completion_stats=stats)) == counts


def test_counts_round_trip_through_a_dict():
    counts = Counts(succeeded=1, failed=2, incomplete=3, total=6)
    assert Counts.from_dict(counts.as_dict()) == counts
    assert Counts.from_dict(None) is None
    assert Counts().failed_ratio == 0.0


def test_short_state():
    assert short_state(types.JobState.JOB_STATE_CANCELLING) == "CANCELLING"


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (
            {"successful_count": 2, "incomplete_count": 3},
            Counts(succeeded=2, failed=0, incomplete=3, total=5),
        ),
        (pytypes.SimpleNamespace(failed_count=1), Counts(succeeded=0, failed=1, incomplete=0, total=1)),
        (pytypes.SimpleNamespace(), None),
        ({}, None),
    ],
)
def test_counts_from_a_dict_or_an_object_with_some_fields(stats, expected):
    assert Counts.from_completion_stats(stats) == expected


def test_counts_of_a_job_without_completion_stats():
    assert counts_of(object()) is None


def test_progress_line_of_a_one_row_job():
    assert progress_line("RUNNING", Counts(succeeded=1, total=1)) == "RUNNING 1/1 rows (100%)"
