"""polling.py: each decision's fields and words (the task log), and where jitter is drawn from."""

from __future__ import annotations

import asyncio
import types as pytypes
from typing import Any

import pytest

from gemini_batch.exceptions import GeminiBatchJobNotFound, GeminiBatchPollingError
from gemini_batch.polling import Done, Fail, LogLine, Poller, Wait, drive_async, failure_exception, retry_read

SUBJECT = "Batch job batches/j"
RUNNING = "JOB_STATE_RUNNING"


class Coded(Exception):
    """A service error with an HTTP status, as google-genai's APIError carries it."""

    def __init__(self, code: int) -> None:
        super().__init__(f"{code} boom")
        self.code = code


class RecordingRng:
    """Answers ``uniform(a, b)`` with ``b`` and records ``(a, b)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return b


def poller(**kwargs: Any) -> Poller:
    return Poller(
        subject=SUBJECT,
        poll_interval=10.0,
        error_budget=kwargs.pop("error_budget", 2),
        rng=RecordingRng(),
        **kwargs,
    )


def running(p: Poller) -> Poller:
    p.observe(pytypes.SimpleNamespace(state=RUNNING), 0.0)
    return p


def test_jitter_is_drawn_within_one_interval_and_ten_percent():
    p = poller()
    p.start(0.0, spread=True)
    p.observe(pytypes.SimpleNamespace(state=RUNNING), 0.0)
    assert p.rng.calls == [(0, 10.0), (0.9, 1.1)]


def test_a_job_without_state_or_error_attributes_is_read_safely():
    p = poller()
    assert isinstance(p.observe(pytypes.SimpleNamespace(), 0.0), Wait)
    done = p.observe(pytypes.SimpleNamespace(state="JOB_STATE_SUCCEEDED"), 0.0)
    assert isinstance(done, Done) and done.message == f"{SUBJECT} ended SUCCEEDED"


FAILS = [
    ("404", Coded(404), Fail("not_found", f"{SUBJECT} was not found: Coded: 404 boom", RUNNING)),
    (
        "our own not-found",
        GeminiBatchJobNotFound("batches/j"),
        Fail("not_found", "Gemini batch job 'batches/j' was not found.", RUNNING),
    ),
    (
        "fatal",
        ValueError("bug"),
        Fail(
            "fatal",
            f"{SUBJECT}: polling failed: ValueError: bug",
            RUNNING,
            logs=(LogLine("error", f"{SUBJECT}: polling failed: ValueError: bug"),),
        ),
    ),
]


@pytest.mark.parametrize(("error", "expected"), [c[1:] for c in FAILS], ids=[c[0] for c in FAILS])
def test_a_failed_wait_keeps_the_last_state_and_the_error(error, expected):
    fail = running(poller()).observe(error, 0.0)
    assert fail == expected
    assert fail.error is error


def test_the_budget_fail_keeps_the_last_state_the_error_and_logs_it():
    error = Coded(503)
    fail = running(poller(error_budget=0)).observe(error, 0.0)
    message = (
        f"{SUBJECT}: gave up after 1 consecutive transient errors (error_budget=0); last: Coded: 503 boom."
        " The job keeps running; a retry of the task re-attaches to it."
    )
    assert fail == Fail("budget", message, RUNNING, logs=(LogLine("error", message),))
    assert fail.error is error


@pytest.mark.parametrize(
    ("code", "rebuild", "line"),
    [
        (503, False, f"{SUBJECT}: transient error Coded: 503 boom (1/2), next try in 2.0 s"),
        (
            401,
            True,
            f"{SUBJECT}: unauthenticated (Coded: 401 boom); rebuilding the client from its connection (1/2), "
            "next try in 2.0 s",
        ),
    ],
)
def test_a_backoff_says_what_happened_and_when_the_next_try_is(code, rebuild, line):
    wait = poller().observe(Coded(code), 0.0)
    assert wait == Wait(2.0, "backoff", rebuild, (LogLine("warning", line),))


def test_a_wait_never_read_times_out_as_not_terminal():
    message = f"{SUBJECT} is still not terminal at the deadline. The job keeps running; a retry of the task re-attaches to it."
    fail = poller(deadline=5.0).start(5.0, spread=False)
    assert fail == Fail("timeout", message, None, logs=(LogLine("warning", message),))
    assert fail.error is None


def test_a_timeout_exception_carries_the_message():
    assert (
        str(failure_exception(Fail("timeout", "still RUNNING at the deadline")))
        == "still RUNNING at the deadline"
    )


def test_the_trigger_loop_spreads_its_first_poll_by_default(sleeps, exact_jitter):
    async def read() -> Any:
        return pytypes.SimpleNamespace(state="JOB_STATE_SUCCEEDED")

    done = asyncio.run(
        drive_async(
            Poller(subject=SUBJECT, poll_interval=7.0),
            read,
            rebuild=lambda: None,
            log=pytypes.SimpleNamespace(info=lambda m: None),
        )
    )
    assert isinstance(done, Done)
    assert sleeps == [7.0]


def test_retry_read_tolerates_eight_transient_errors_by_default(sleeps, exact_jitter):
    errors = [Coded(503)] * 9
    calls: list[int] = []

    def read() -> str:
        calls.append(1)
        if errors:
            raise errors.pop()
        return "value"

    log = pytypes.SimpleNamespace(warning=lambda m: None, error=lambda m: None)
    with pytest.raises(GeminiBatchPollingError, match="gave up after 9 consecutive transient errors"):
        retry_read(log, "Reading", read)
    assert len(calls) == 9


def test_retry_read_gives_up_without_the_wait_hint_and_rebuilds_only_after_a_401(sleeps, exact_jitter):
    errors = [Coded(503), Coded(503)]
    rebuilt: list[int] = []

    def read() -> str:
        if errors:
            raise errors.pop()
        return "value"

    log = pytypes.SimpleNamespace(warning=lambda m: None, error=lambda m: None)
    with pytest.raises(GeminiBatchPollingError) as caught:
        retry_read(log, "Reading", read, budget=1, rebuild=lambda: rebuilt.append(1))
    assert str(caught.value) == (
        "Reading: gave up after 2 consecutive transient errors (error_budget=1); last: Coded: 503 boom."
    )
    errors.append(Coded(503))
    assert retry_read(log, "Reading", read, budget=1, rebuild=lambda: rebuilt.append(1)) == "value"
    assert rebuilt == []
