"""task_state.py: the task instance's state, read with a bound, decides whether on_kill cancels."""

from __future__ import annotations

import asyncio
import time as real_time
from types import SimpleNamespace

import pytest

from gemini_batch import task_state
from gemini_batch.exceptions import GeminiBatchJobNotFound
from gemini_batch.identity import WorkIdentity
from gemini_batch.task_state import read_ti_state, ti_state_async, ti_state_blocking


@pytest.fixture
def task_states(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    def answer(value):
        monkeypatch.setattr(task_runner.RuntimeTaskInstance, "get_task_states", staticmethod(value))

    return answer


@pytest.mark.parametrize(
    ("identity", "states", "expected"),
    [
        (WorkIdentity("d", "t", "r"), {"r": {"t": "failed"}}, (True, "failed")),
        (
            WorkIdentity("d", "t", "r", 3),
            {"r": {"t_3": SimpleNamespace(value="success"), "t": "running"}},
            (True, "success"),
        ),
        (WorkIdentity("d", "t", "r"), {"r": {"t": None}}, (True, None)),
        (WorkIdentity("d", "t", "r"), {"r": {"t_0": "failed"}}, (False, None)),
        (WorkIdentity("d", "t", "r"), None, (False, None)),
    ],
)
def test_read_ti_state(task_states, identity, states, expected):
    task_states(lambda **kw: states)
    assert read_ti_state(identity) == expected


def test_ti_state_blocking_gives_up_instead_of_hanging(task_states):
    task_states(lambda **kw: real_time.sleep(1) or {})
    assert ti_state_blocking(WorkIdentity("d", "t", "r"), timeout=0.05) == (False, None)
    task_states(lambda **kw: {"r": {"t_3": "failed"}})
    assert ti_state_blocking(WorkIdentity("d", "t", "r", 3), timeout=5) == (True, "failed")
    assert ti_state_blocking(None, timeout=5) == (False, None)


def test_an_error_reads_as_unknown(task_states):
    def broken(**kw):
        raise RuntimeError("supervisor gone")

    task_states(broken)
    log = SimpleNamespace(warning=lambda *a: None)
    assert ti_state_blocking(WorkIdentity("d", "t", "r"), timeout=5) == (False, None)
    assert asyncio.run(ti_state_async(WorkIdentity("d", "t", "r"), 5, log)) == (False, None)


# ---------------------------------------------------------------------------- bounded on_kill


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message, *args):
        self.lines.append(message % args)

    warning = info


class Clock:
    """Each reading is ``step`` seconds after the previous one: the lookup 'took' ``step``."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now - self.step


def blocking_lookup(monkeypatch, events, known, state):
    def lookup(identity, timeout):
        events.append(("lookup", timeout))
        return known, state

    monkeypatch.setattr(task_state, "ti_state_blocking", lookup)


def bounded_calls(monkeypatch, events):
    original = task_state._call_bounded

    def record(call, timeout):
        events.append(("bound", timeout))
        return original(call, timeout)

    monkeypatch.setattr(task_state, "_call_bounded", record)


@pytest.mark.parametrize(
    ("known", "state", "outcome", "cancels"),
    [
        (True, "failed", "cancelled", 1),
        (True, "success", "cancelled", 1),
        (True, None, "kept", 0),
        (True, "restarting", "kept", 0),
        (False, None, "unknown", 0),
    ],
)
def test_kill_job_blocking_looks_up_then_cancels_once_within_the_budget(
    monkeypatch, known, state, outcome, cancels
):
    events: list = []
    blocking_lookup(monkeypatch, events, known, state)
    bounded_calls(monkeypatch, events)
    log = Log()

    result = task_state.kill_job_blocking(
        "jobs/1", WorkIdentity("d", "t", "r"), lambda: events.append(("cancel",)), log, clock=Clock(0.25)
    )

    assert result == outcome
    assert events[0] == ("lookup", task_state.ON_KILL_LOOKUP_S)
    # the cancel gets what the lookup left of the budget, and is called once, never retried
    expected = [("bound", pytest.approx(task_state.ON_KILL_BUDGET_S - 0.25)), ("cancel",)] if cancels else []
    assert events[1:] == expected
    assert task_state.ON_KILL_BUDGET_S < 1.0
    assert task_state.ON_KILL_LOOKUP_S < task_state.ON_KILL_BUDGET_S
    if cancels:
        assert (
            log.lines[0] == f"Cancelling batch job jobs/1 because the task was ended (task instance {state})"
        )
        assert log.lines[-1] == "Cancelled batch job jobs/1"
    if not known:
        assert "the cancel sweep" in log.lines[0]


def test_a_lookup_that_used_the_budget_leaves_no_time_not_a_negative_one(monkeypatch):
    events: list = []
    blocking_lookup(monkeypatch, events, True, "failed")
    bounded_calls(monkeypatch, events)
    task_state.kill_job_blocking("jobs/1", None, lambda: None, Log(), clock=Clock(5.0))
    assert events[1] == ("bound", 0.0)


@pytest.mark.parametrize(
    ("error", "outcome", "says"),
    [
        (None, "late", "Could not cancel batch job jobs/1 in time; the cancel sweep"),
        (RuntimeError("503"), "failed", "Could not cancel batch job jobs/1 (RuntimeError: 503)"),
        (GeminiBatchJobNotFound("gone"), "cancelled", "Batch job jobs/1 no longer exists"),
    ],
)
def test_a_cancel_that_fails_or_is_late_is_logged(monkeypatch, error, outcome, says):
    events: list = []
    blocking_lookup(monkeypatch, events, True, "failed")
    monkeypatch.setattr(task_state, "_call_bounded", lambda call, timeout: (error is not None, error))
    log = Log()
    assert task_state.kill_job_blocking("jobs/1", None, lambda: None, log) == outcome
    assert log.lines[-1].startswith(says)


def test_call_bounded_returns_the_error_or_gives_up():
    def boom():
        raise RuntimeError("x")

    finished, error = task_state._call_bounded(boom, 5)
    assert finished and isinstance(error, RuntimeError)
    assert task_state._call_bounded(lambda: None, 5) == (True, None)
    assert task_state._call_bounded(lambda: real_time.sleep(1), 0.01) == (False, None)


@pytest.mark.parametrize(
    ("known", "state", "cancel_error", "outcome"),
    [
        (True, "failed", None, "cancelled"),
        (True, "deferred", None, "kept"),
        (False, None, None, "unknown"),
        (True, "failed", RuntimeError("503"), "failed"),
        (True, "failed", asyncio.TimeoutError(), "late"),
    ],
)
def test_kill_job_async_looks_up_then_cancels_once_within_the_budget(
    monkeypatch, known, state, cancel_error, outcome
):
    events: list = []

    async def lookup(identity, timeout, log):
        events.append(("lookup", timeout))
        return known, state

    async def cancel():
        events.append(("cancel",))

    real_wait_for = asyncio.wait_for

    async def wait_for(awaitable, timeout):
        events.append(("bound", timeout))
        if cancel_error is not None:
            awaitable.close()
            raise cancel_error
        return await real_wait_for(awaitable, timeout)

    monkeypatch.setattr(task_state, "ti_state_async", lookup)
    monkeypatch.setattr(task_state.asyncio, "wait_for", wait_for)
    log = Log()

    result = asyncio.run(task_state.kill_job_async("jobs/1", None, cancel, log, clock=Clock(0.25)))

    assert result == outcome
    assert events[0] == ("lookup", task_state.ON_KILL_LOOKUP_S)
    if known and state == "failed":
        assert events[1] == ("bound", pytest.approx(task_state.ON_KILL_BUDGET_S - 0.25))
        assert events[2:] == ([] if cancel_error else [("cancel",)])
    else:
        assert events[1:] == []
