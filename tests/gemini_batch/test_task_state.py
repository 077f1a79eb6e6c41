"""task_state.py: the task instance's state, read with a bound, decides whether on_kill cancels."""

from __future__ import annotations

import asyncio
import time as real_time
from types import SimpleNamespace

import pytest

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
