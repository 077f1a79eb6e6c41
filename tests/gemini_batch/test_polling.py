"""polling.py: the decisions of every wait, as a table; backoff; retry_read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from google.genai import types

from gemini_batch import polling
from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchJobNotFound,
    GeminiBatchPollingError,
    GeminiBatchTimeout,
)
from gemini_batch.polling import (
    Backoff,
    Done,
    Fail,
    Poller,
    Wait,
    drive_sync,
    failure_exception,
    raise_failure,
    retry_read,
)
from tests.gemini_batch.conftest import UpperRng
from tests.gemini_batch.fakes import api_error

RUNNING = "JOB_STATE_RUNNING"
PAUSED = "JOB_STATE_PAUSED"
SUCCEEDED = "JOB_STATE_SUCCEEDED"


def job(
    state: str, succeeded: int | None = None, failed: int | None = None, error: str | None = None
) -> types.BatchJob:
    stats = (
        None
        if succeeded is None
        else types.CompletionStats(successful_count=succeeded, failed_count=failed or 0)
    )
    return types.BatchJob(
        name="batches/j",
        state=state,
        completion_stats=stats,
        error=types.JobError(message=error) if error else None,
    )


def summary(decision: polling.Decision) -> tuple:
    if isinstance(decision, Wait):
        return ("wait", round(decision.seconds, 6), decision.reason, decision.rebuild_client)
    if isinstance(decision, Done):
        return ("done", decision.outcome)
    return ("fail", decision.reason)


def poller(**kwargs: Any) -> Poller:
    kwargs.setdefault("subject", "Batch job batches/j")
    kwargs.setdefault("poll_interval", 10.0)
    kwargs.setdefault("error_budget", 2)
    return Poller(rng=UpperRng(), **kwargs)  # type: ignore[arg-type]


E503, E429, E401 = api_error(503), api_error(429), api_error(401)


@pytest.mark.parametrize(
    ("kwargs", "observations", "expected"),
    [
        # terminal states end with their outcome; a waiting state waits poll_interval +10% (the ceiling)
        ({}, [job(SUCCEEDED)], [("done", "succeeded")]),
        ({}, [job(SUCCEEDED, 9, 1)], [("done", "partial")]),
        ({}, [job("JOB_STATE_PARTIALLY_SUCCEEDED")], [("done", "partial")]),
        ({}, [job("JOB_STATE_FAILED")], [("done", "failed")]),
        ({}, [job("JOB_STATE_CANCELLED")], [("done", "failed")]),
        ({}, [job("JOB_STATE_EXPIRED")], [("done", "failed")]),
        ({}, [job(RUNNING), job(SUCCEEDED)], [("wait", 11.0, "poll", False), ("done", "succeeded")]),
        ({}, [job("JOB_STATE_SOMETHING_NEW")], [("wait", 11.0, "poll", False)]),
        # PAUSED waits like any non-terminal state
        (
            {},
            [job(PAUSED), job(PAUSED), job(SUCCEEDED)],
            [("wait", 11.0, "poll", False)] * 2 + [("done", "succeeded")],
        ),
        # transient errors back off 2, 4, ...; the budget ends the wait at exactly budget + 1
        ({}, [E503, E429], [("wait", 2.0, "backoff", False), ("wait", 4.0, "backoff", False)]),
        (
            {},
            [E503, E429, E503],
            [("wait", 2.0, "backoff", False), ("wait", 4.0, "backoff", False), ("fail", "budget")],
        ),
        ({"error_budget": 0}, [E503], [("fail", "budget")]),
        ({}, [httpx.ConnectError("refused")], [("wait", 2.0, "backoff", False)]),
        # a job read resets the count: consecutive means consecutive
        (
            {},
            [E503, E503, job(RUNNING), E503, E503],
            [("wait", 2.0, "backoff", False), ("wait", 4.0, "backoff", False), ("wait", 11.0, "poll", False)]
            + [("wait", 2.0, "backoff", False), ("wait", 4.0, "backoff", False)],
        ),
        # 401: rebuild the client, back off, go on; it counts toward the budget
        ({}, [E401, job(SUCCEEDED)], [("wait", 2.0, "backoff", True), ("done", "succeeded")]),
        (
            {},
            [E401, E401, E401],
            [("wait", 2.0, "backoff", True), ("wait", 4.0, "backoff", True), ("fail", "budget")],
        ),
        # 404 and non-transient errors end the wait at once
        ({}, [api_error(404)], [("fail", "not_found")]),
        ({}, [GeminiBatchJobNotFound("batches/j")], [("fail", "not_found")]),
        ({}, [api_error(400)], [("fail", "fatal")]),
        ({}, [api_error(403)], [("fail", "fatal")]),
        ({}, [GeminiBatchConfigError("no connection")], [("fail", "fatal")]),
        ({}, [ValueError("bug")], [("fail", "fatal")]),
        # the backoff cap is never below the poll interval
        (
            {"poll_interval": 1.0, "backoff_cap": 3.0, "error_budget": 9},
            [E503] * 4,
            [("wait", s, "backoff", False) for s in (2.0, 3.0, 3.0, 3.0)],
        ),
        (
            {"poll_interval": 5.0, "backoff_cap": 3.0, "error_budget": 9},
            [E503] * 4,
            [("wait", s, "backoff", False) for s in (2.0, 4.0, 5.0, 5.0)],
        ),
    ],
)
def test_poller_decisions(kwargs, observations, expected):
    deciding = poller(**kwargs)
    assert [summary(deciding.observe(o, now=1000.0)) for o in observations] == expected


@pytest.mark.parametrize(
    ("deadline", "steps", "expected"),
    [
        # waits are cut to the deadline; at the deadline the job is read once more
        (1005.0, [(job(RUNNING), 1000.0)], [("wait", 5.0, "poll", False)]),
        (
            1005.0,
            [(job(RUNNING), 1000.0), (job(RUNNING), 1005.0)],
            [("wait", 5.0, "poll", False), ("fail", "timeout")],
        ),
        (
            1005.0,
            [(job(RUNNING), 1000.0), (job(SUCCEEDED), 1005.0)],
            [("wait", 5.0, "poll", False), ("done", "succeeded")],
        ),
        (1001.0, [(E503, 1000.0)], [("wait", 1.0, "backoff", False)]),
        (1000.0, [(E503, 1000.0)], [("fail", "timeout")]),
        (None, [(job(RUNNING), 10**12)], [("wait", 11.0, "poll", False)]),
    ],
)
def test_the_deadline(deadline, steps, expected):
    deciding = poller(deadline=deadline)
    assert [summary(deciding.observe(o, now=t)) for o, t in steps] == expected


@pytest.mark.parametrize(
    ("spread", "now", "deadline", "expected"),
    [
        (True, 1000.0, None, ("wait", 10.0, "first_poll", False)),
        (False, 1000.0, None, ("wait", 0.0, "first_poll", False)),
        (True, 1000.0, 1004.0, ("wait", 4.0, "first_poll", False)),
        (True, 1000.0, 1000.0, ("fail", "timeout")),
        (False, 1000.0, 999.0, ("fail", "timeout")),
    ],
)
def test_start(spread, now, deadline, expected):
    assert summary(poller(deadline=deadline).start(now, spread=spread)) == expected


def test_messages_name_the_job_the_counts_and_what_happens_next():
    deciding = poller(deadline=1010.0)
    running = deciding.observe(job(RUNNING, 4, 1), now=1000.0)
    assert [line.message for line in running.logs] == [
        "Batch job batches/j: RUNNING 5/5 rows (100%), 1 failed"
    ]
    timeout = deciding.observe(job(RUNNING, 4, 1), now=1010.0)
    assert isinstance(timeout, Fail) and timeout.state == RUNNING
    assert timeout.message.startswith("Batch job batches/j is still RUNNING at the deadline.")
    assert "re-attaches" in timeout.message
    budget = poller(error_budget=0).observe(E503, now=0.0)
    assert "gave up after 1 consecutive transient errors (error_budget=0)" in budget.message
    assert "re-attaches" in budget.message
    done = poller().observe(job("JOB_STATE_FAILED", error="bad input row 7"), now=0.0)
    assert done.message == "Batch job batches/j ended FAILED: bad input row 7"


def test_progress_is_logged_when_it_changes_and_paused_warned_once_per_pause():
    deciding = poller()
    lines = []
    for state in (RUNNING, RUNNING, PAUSED, PAUSED, RUNNING, PAUSED, SUCCEEDED):
        lines += [(line.level, line.message) for line in deciding.observe(job(state), now=0.0).logs]
    paused_warning = (
        "warning",
        "Batch job batches/j is PAUSED; still waiting (the pause counts toward the timeout)",
    )
    assert lines == [
        ("info", "Batch job batches/j: RUNNING"),
        ("info", "Batch job batches/j: PAUSED"),
        paused_warning,
        ("info", "Batch job batches/j: RUNNING"),
        ("info", "Batch job batches/j: PAUSED"),
        paused_warning,
        ("info", "Batch job batches/j: SUCCEEDED"),
    ]


def test_failure_exceptions():
    missing = GeminiBatchJobNotFound("batches/j")
    assert failure_exception(Fail("not_found", "m", error=missing)) is missing
    assert isinstance(failure_exception(Fail("timeout", "m")), GeminiBatchTimeout)
    assert isinstance(failure_exception(Fail("budget", "m")), GeminiBatchPollingError)
    assert isinstance(failure_exception(Fail("fatal", "m", error=api_error(400))), GeminiBatchPollingError)
    assert isinstance(
        failure_exception(Fail("not_found", "m", error=api_error(404))), GeminiBatchPollingError
    )


def test_raise_failure_chains_the_cause():
    with pytest.raises(GeminiBatchPollingError) as budget:
        raise_failure(Fail("budget", "m", error=E503))
    assert budget.value.__cause__ is E503
    missing = GeminiBatchJobNotFound("batches/j")
    with pytest.raises(GeminiBatchJobNotFound) as not_found:
        raise_failure(Fail("not_found", "m", error=missing))
    assert not_found.value is missing and not_found.value.__cause__ is None


# ---------------------------------------------------------------------------- Backoff


def test_backoff_doubles_from_base_up_to_the_cap():
    backoff = Backoff(base=2.0, cap=120.0, budget=8)
    assert [backoff.delay(n, UpperRng()) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 120, 120, 120]
    assert not backoff.exhausted(8)
    assert backoff.exhausted(9)


# ---------------------------------------------------------------------------- retry_read


class Calls:
    """A read that raises the queued errors, then returns ``value``."""

    def __init__(self, *errors: BaseException, value: Any = "value"):
        self.errors = list(errors)
        self.value = value
        self.count = 0

    def __call__(self) -> Any:
        self.count += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str):
        return lambda message: self.lines.append((level, message))


def test_retry_read_backs_off_exactly_then_returns(sleeps, exact_jitter):
    call = Calls(E429, E503, api_error(500))
    assert retry_read(Log(), "Reading", call, budget=3) == "value"
    assert sleeps == [2.0, 4.0, 8.0]
    assert call.count == 4


def test_retry_read_gives_up_at_budget_plus_one(sleeps, exact_jitter):
    call = Calls(E503, E503, E503, E503)
    with pytest.raises(
        GeminiBatchPollingError, match="Reading: gave up after 3 consecutive transient errors"
    ):
        retry_read(Log(), "Reading", call, budget=2)
    assert sleeps == [2.0, 4.0]
    assert call.count == 3


@pytest.mark.parametrize("error", [GeminiBatchJobNotFound("batches/j"), api_error(400), ValueError("bug")])
def test_retry_read_raises_non_transient_errors_as_they_are(sleeps, error):
    with pytest.raises(type(error)) as raised:
        retry_read(Log(), "Reading", Calls(error), budget=5)
    assert raised.value is error
    assert sleeps == []


def test_retry_read_rebuilds_the_client_after_a_401(sleeps, exact_jitter):
    rebuilt = []
    assert retry_read(Log(), "Reading", Calls(E401), budget=3, rebuild=lambda: rebuilt.append(1)) == "value"
    assert rebuilt == [1]
    assert sleeps == [2.0]


# ---------------------------------------------------------------------------- drive_sync, the real sleeps


@pytest.mark.parametrize(("spread", "first_sleep"), [(False, 0.0), (True, 10.0)])
def test_drive_sync_spreads_its_first_read_only_when_asked(sleeps, spread, first_sleep):
    """A worker that has just read the job asks for a spread first read; one that has not reads at once."""
    result = drive_sync(poller(), lambda: job(SUCCEEDED), rebuild=lambda: None, log=Log(), spread=spread)
    assert summary(result) == ("done", "succeeded")
    assert sleeps == [first_sleep]


def test_the_real_sleeps_wait_the_seconds_asked():
    """Every other test replaces them; these are the waits a deployed worker and trigger really make."""
    started = time.monotonic()
    polling.sleep(0.02)
    asyncio.run(polling.asleep(0.02))
    assert time.monotonic() - started >= 0.04
