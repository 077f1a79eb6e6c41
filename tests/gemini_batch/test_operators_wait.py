"""The create operator's waits: the non-deferrable wait runs the polling core; resuming after an event."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from gemini_batch import hooks
from gemini_batch.exceptions import (
    GeminiBatchJobNotFound,
    GeminiBatchPollingError,
    GeminiBatchTooManyFailedRows,
)
from gemini_batch.operators import GeminiBatchCreateJobOperator
from tests.gemini_batch.fakes import api_error, make_context, script_gets

RUNNING, SUCCEEDED = "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"


def op(**kwargs: Any) -> GeminiBatchCreateJobOperator:
    kwargs.setdefault("task_id", "task")
    kwargs.setdefault("src", "bq://p.d.t")
    kwargs.setdefault("model", "gemini-2.5-flash")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 10)
    return GeminiBatchCreateJobOperator(**kwargs)


@pytest.fixture
def builds(vertex, monkeypatch) -> list[str]:
    """Every client build (connection lookup + credentials), by connection id."""
    seen: list[str] = []
    build = hooks.GeminiBatchHook._build_entry
    monkeypatch.setattr(
        hooks.GeminiBatchHook, "_build_entry", lambda self: seen.append(self.conn_id) or build(self)
    )
    return seen


def test_sync_wait_delays_are_exact(vertex, sleeps, exact_jitter):
    script_gets(vertex, [RUNNING, api_error(429), api_error(503), RUNNING, SUCCEEDED])
    assert op().execute(make_context())["outcome"] == "succeeded"
    # no spread before the first read, poll_interval +10% between reads, backoff 2 then 4 s
    assert sleeps == [0.0, 11.0, 2.0, 4.0, 11.0]


def test_sync_wait_budget_ends_at_budget_plus_one(vertex, sleeps, exact_jitter):
    script_gets(vertex, [RUNNING] + [api_error(503)] * 3)
    with pytest.raises(GeminiBatchPollingError, match="gave up after 3 consecutive transient errors"):
        op(error_budget=2).execute(make_context())
    assert sleeps == [0.0, 11.0, 2.0, 4.0]


def test_a_401_in_the_middle_of_a_sync_wait_rebuilds_the_client_and_the_wait_goes_on(
    builds, vertex, sleeps, exact_jitter
):
    script_gets(vertex, [RUNNING, api_error(401), RUNNING, SUCCEEDED])
    assert op().execute(make_context())["outcome"] == "succeeded"
    assert builds == ["google_cloud_default", "google_cloud_default"]
    assert vertex.count("get") == 4


def test_a_job_deleted_during_the_sync_wait_fails_with_not_found(vertex, sleeps):
    script_gets(vertex, [RUNNING, api_error(404)])
    with pytest.raises(GeminiBatchJobNotFound):
        op().execute(make_context())


def event(status: str, name: str) -> dict[str, Any]:
    return {"status": status, "job_name": name, "state": SUCCEEDED, "message": "m"}


@pytest.mark.parametrize(
    ("status", "read_as"),
    [("succeeded", "succeeded"), ("partial", "partial"), ("failed", "failed"), ("success", "succeeded")],
)
def test_an_event_whose_job_reads_as_not_terminal_fails_the_task(vertex, status, read_as):
    name = vertex.add_job(state=RUNNING, script=[])
    with pytest.raises(
        GeminiBatchPollingError, match=f"reported batch job .* as {read_as}, but it reads JOB_STATE_RUNNING"
    ):
        op().execute_complete(make_context(), event(status, name))


def test_an_event_of_an_earlier_version_is_still_read(vertex):
    name = vertex.add_job(state=SUCCEEDED, script=[])
    manifest = op().execute_complete(make_context(), event("success", name))
    assert (manifest["job_name"], manifest["outcome"]) == (name, "succeeded")


def test_the_event_is_checked_against_a_fresh_read_of_the_job(vertex):
    stats = types.CompletionStats(successful_count=9, failed_count=1)
    name = vertex.add_job(state=SUCCEEDED, script=[], completion_stats=stats)
    with pytest.raises(GeminiBatchTooManyFailedRows):
        op().execute_complete(make_context(), event("succeeded", name))
