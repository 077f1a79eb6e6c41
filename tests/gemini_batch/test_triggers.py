"""triggers.py: waits only, async only, backs off, one small event; on_kill tells mark-failed from clear."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from google.genai import types

from gemini_batch import hooks, task_state
from gemini_batch.identity import WorkIdentity
from gemini_batch.task_state import kill_decision
from gemini_batch.triggers import GeminiBatchJobTrigger, JobEvent
from tests.gemini_batch.conftest import run_trigger
from tests.gemini_batch.fakes import api_error, script_gets

CLASSPATH = "gemini_batch.triggers.GeminiBatchJobTrigger"


def make(name: str, backend: str = "vertex", **kwargs) -> GeminiBatchJobTrigger:
    kwargs.setdefault("poll_interval", 5)
    return GeminiBatchJobTrigger(job_name=name, backend=backend, **kwargs)


def test_serialize_holds_names_ids_and_numbers_only():
    trigger = GeminiBatchJobTrigger(
        job_name="projects/p/locations/l/batchPredictionJobs/1",
        backend="vertex",
        conn_id="gcp",
        project_id="p",
        location="l",
        impersonation_chain=("sa@p.iam.gserviceaccount.com",),
        poll_interval=10,
        deadline=1_800_000_000.5,
        cancel_on_kill=False,
        error_budget=3,
    )
    assert trigger.serialize() == (
        CLASSPATH,
        {
            "job_name": "projects/p/locations/l/batchPredictionJobs/1",
            "backend": "vertex",
            "conn_id": "gcp",
            "project_id": "p",
            "location": "l",
            "impersonation_chain": ["sa@p.iam.gserviceaccount.com"],
            "poll_interval": 10.0,
            "deadline": 1_800_000_000.5,
            "cancel_on_kill": False,
            "error_budget": 3,
        },
    )
    classpath, kwargs = trigger.serialize()
    assert GeminiBatchJobTrigger(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("final", "counts", "status"),
    [
        ("JOB_STATE_SUCCEEDED", None, "succeeded"),
        ("JOB_STATE_SUCCEEDED", {"successful_count": 9, "failed_count": 1}, "partial"),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", None, "partial"),
        ("JOB_STATE_FAILED", None, "failed"),
        ("JOB_STATE_CANCELLED", None, "failed"),
        ("JOB_STATE_EXPIRED", None, "failed"),
    ],
)
def test_one_event_per_terminal_state(vertex, sleeps, final, counts, status):
    step = {"state": final}
    if counts:
        step["completion_stats"] = types.CompletionStats(**counts)
    name = vertex.add_job(script=[{"state": "JOB_STATE_QUEUED"}, {"state": "JOB_STATE_RUNNING"}, step])
    events = run_trigger(make(name))
    assert len(events) == 1
    assert events[0].payload["status"] == status
    assert events[0].payload["state"] == final
    assert events[0].payload["job_name"] == name
    assert set(events[0].payload) == {"status", "job_name", "state", "message"}
    assert vertex.count("get") == 3
    assert vertex.count("create") == 0


def test_failed_event_carries_the_jobs_error_message(vertex, sleeps):
    name = vertex.add_job(
        script=[{"state": "JOB_STATE_FAILED", "error": types.JobError(code=3, message="bad input row 7")}]
    )
    (event,) = run_trigger(make(name))
    assert "bad input row 7" in event.payload["message"]


def test_paused_is_logged_and_waited_through(vertex, sleeps, capsys):
    name = vertex.add_job(
        script=[
            {"state": "JOB_STATE_RUNNING"},
            {"state": "JOB_STATE_PAUSED"},
            {"state": "JOB_STATE_PAUSED"},
            {"state": "JOB_STATE_SUCCEEDED"},
        ]
    )
    (event,) = run_trigger(make(name))
    assert event.payload["status"] == "succeeded"
    assert "PAUSED; still waiting" in capsys.readouterr().out


def test_progress_is_logged_only_when_something_changed(vertex, sleeps, capsys):
    stats = types.CompletionStats(successful_count=4198, failed_count=12, incomplete_count=5790)
    name = vertex.add_job(
        script=[
            {"state": "JOB_STATE_RUNNING", "completion_stats": stats},
            {"state": "JOB_STATE_RUNNING", "completion_stats": stats},
            {"state": "JOB_STATE_RUNNING", "completion_stats": stats},
            {
                "state": "JOB_STATE_SUCCEEDED",
                "completion_stats": types.CompletionStats(successful_count=9988, failed_count=12),
            },
        ]
    )
    run_trigger(make(name))
    assert capsys.readouterr().out.count("RUNNING 4,210/10,000 rows (42%), 12 failed") == 1


def test_transient_errors_back_off_with_growing_delays_then_succeed(vertex, sleeps):
    name = vertex.add_job(script=[{"state": "JOB_STATE_SUCCEEDED"}])
    vertex.fail("get", api_error(429), times=2)
    vertex.fail("get", api_error(503), times=1)
    (event,) = run_trigger(make(name, poll_interval=1))
    assert event.payload["status"] == "succeeded"
    first_poll, *backoffs = sleeps
    assert 0 <= first_poll <= 1
    assert len(backoffs) == 3
    assert backoffs[0] < backoffs[2]  # 1-2 s, then 4-8 s


def test_the_error_budget_ends_the_wait(vertex, sleeps):
    name = vertex.add_job()
    vertex.fail("get", api_error(503), times=5)
    (event,) = run_trigger(make(name, error_budget=3))
    assert event.payload["status"] == "error"
    assert "after 4 consecutive transient errors" in event.payload["message"]
    assert "re-attaches" in event.payload["message"]


def test_consecutive_means_consecutive(vertex, sleeps):
    script = []
    for _ in range(3):
        script.append({"state": "JOB_STATE_RUNNING"})
    name = vertex.add_job(script=[*script, {"state": "JOB_STATE_SUCCEEDED"}])
    trigger = make(name, error_budget=1)
    # one failure before each successful poll never exhausts a budget of 1
    original_get = vertex.get
    calls = {"n": 0}

    def flaky_get(*, name):
        calls["n"] += 1
        if calls["n"] % 2 == 1:
            vertex.calls.append(("get", name))
            raise api_error(503)
        return original_get(name=name)

    vertex.get = flaky_get
    (event,) = run_trigger(trigger)
    assert event.payload["status"] == "succeeded"


def test_trigger_delays_are_exact(vertex, sleeps, exact_jitter):
    name = vertex.add_job(script=[])
    script_gets(
        vertex,
        ["JOB_STATE_RUNNING", api_error(429), api_error(503), "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"],
    )
    (event,) = run_trigger(make(name, poll_interval=10))
    assert event.payload["status"] == "succeeded"
    # the first poll spread over one interval (its ceiling here), +10% between polls, backoff 2 then 4 s
    assert sleeps == [10.0, 11.0, 2.0, 4.0, 11.0]


def test_a_401_in_the_middle_of_the_wait_rebuilds_the_client_and_the_wait_goes_on(
    vertex, sleeps, exact_jitter, monkeypatch
):
    builds = []
    build = hooks.GeminiBatchHook._build_entry
    monkeypatch.setattr(hooks.GeminiBatchHook, "_build_entry", lambda self: builds.append(1) or build(self))
    name = vertex.add_job(script=[])
    script_gets(vertex, ["JOB_STATE_RUNNING", api_error(401), "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"])
    (event,) = run_trigger(make(name, poll_interval=10))
    assert event.payload["status"] == "succeeded"
    assert len(builds) == 2
    assert sleeps == [10.0, 11.0, 2.0, 11.0]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"status": "succeeded", "job_name": "j", "state": "JOB_STATE_SUCCEEDED", "message": "m"},
            ("succeeded", "m"),
        ),
        (
            {"status": "success", "job_name": "j", "state": "JOB_STATE_SUCCEEDED", "message": "m"},
            ("succeeded", "m"),
        ),
        ({"status": "partial", "job_name": "j", "state": None, "message": "m"}, ("partial", "m")),
        ({"status": "failed", "job_name": "j", "state": None, "message": "m"}, ("failed", "m")),
        ({"status": "timeout", "job_name": "j", "state": None, "message": "m"}, ("timeout", "m")),
        ({"status": "error", "job_name": "j", "state": None, "message": "m"}, ("error", "m")),
        (
            {"status": "weird", "job_name": "j", "state": None, "message": "m"},
            ("error", "Unknown trigger event status 'weird': m"),
        ),
        ({"job_name": "j"}, ("error", "Unknown trigger event status 'None': ")),
    ],
)
def test_events_of_this_and_earlier_versions_are_read(payload, expected):
    event = JobEvent.from_payload(payload)
    assert (event.status, event.message) == expected
    assert event.job_name == "j"
    assert JobEvent.from_payload(event.payload()) == event


@pytest.mark.parametrize("code", [400, 403])
def test_non_transient_errors_end_the_wait_at_once(vertex, sleeps, code):
    name = vertex.add_job()
    vertex.fail("get", api_error(code))
    (event,) = run_trigger(make(name))
    assert event.payload["status"] == "error"
    assert str(code) in event.payload["message"]
    assert vertex.count("get") == 1


def test_a_deleted_job_ends_the_wait(vertex, sleeps):
    (event,) = run_trigger(make("projects/local-project/locations/us-central1/batchPredictionJobs/999"))
    assert event.payload["status"] == "error"
    assert "was not found" in event.payload["message"]


def test_the_wall_clock_deadline_ends_the_wait(vertex, sleeps):
    name = vertex.add_job(script=[{"state": "JOB_STATE_RUNNING"}] * 100)
    (event,) = run_trigger(make(name, deadline=time.time() - 1))
    assert event.payload["status"] == "timeout"
    assert vertex.count("get") == 0


def test_the_first_poll_is_spread_over_one_interval(vertex, sleeps):
    name = vertex.add_job(script=[{"state": "JOB_STATE_SUCCEEDED"}])
    for _ in range(20):
        vertex.jobs[name].script = [{"state": "JOB_STATE_SUCCEEDED"}]
        run_trigger(make(name, poll_interval=10))
    assert all(0 <= s <= 10 for s in sleeps)
    assert len(set(sleeps)) == 20


def test_sleeps_never_overshoot_the_deadline(vertex, sleeps):
    name = vertex.add_job(script=[{"state": "JOB_STATE_RUNNING"}] * 3 + [{"state": "JOB_STATE_SUCCEEDED"}])
    run_trigger(make(name, poll_interval=3600, deadline=time.time() + 60))
    assert all(s <= 60 for s in sleeps)


def test_a_trigger_rebuilt_from_its_serialized_form_only_reads(vertex, sleeps):
    name = vertex.add_job(
        script=[
            {"state": "JOB_STATE_RUNNING"},
            {"state": "JOB_STATE_RUNNING"},
            {"state": "JOB_STATE_SUCCEEDED"},
        ]
    )
    first = make(name)

    async def one_poll_then_stop():
        agen = first.run()
        task = asyncio.ensure_future(agen.__anext__())
        while vertex.count("get") < 1:
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(one_poll_then_stop())
    classpath, kwargs = first.serialize()
    (event,) = run_trigger(GeminiBatchJobTrigger(**kwargs))
    assert event.payload["status"] == "succeeded"
    assert vertex.count("create") == 0


class SyncForbidden:
    def __getattr__(self, item):
        raise AssertionError(f"sync client.batches.{item} called inside the event loop")


def test_run_uses_only_the_async_client(vertex, sleeps):
    name = vertex.add_job()
    trigger = make(name)
    trigger.hook.get_conn().batches = SyncForbidden()
    (event,) = run_trigger(trigger)
    assert event.payload["status"] == "succeeded"


def test_gemini_api_jobs_too(gemini, sleeps):
    name = gemini.add_job()
    (event,) = run_trigger(make(name, backend="gemini_api"))
    assert event.payload["status"] == "succeeded"


# ---------------------------------------------------------------------------- on_kill


@pytest.mark.parametrize(
    ("ti_state", "decision"),
    [
        ("failed", "cancel"),
        ("success", "cancel"),
        ("skipped", "cancel"),
        ("upstream_failed", "cancel"),
        ("removed", "cancel"),
        (None, "keep"),
        ("scheduled", "keep"),
        ("queued", "keep"),
        ("running", "keep"),
        ("deferred", "keep"),
        ("up_for_retry", "keep"),
        ("restarting", "keep"),
        (SimpleNamespace(value="failed"), "cancel"),
    ],
)
def test_kill_decision(ti_state, decision):
    assert kill_decision(ti_state) == decision


def kill(trigger: GeminiBatchJobTrigger, known: bool, ti_state: str | None) -> list:
    """Run the trigger's on_kill with the task-state lookup answering (known, ti_state); return what was asked."""
    asked = []

    async def state(identity, timeout, log):
        asked.append((identity, timeout))
        return known, ti_state

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task_state, "ti_state_async", state)
        asyncio.run(trigger.on_kill())
    return asked


@pytest.mark.parametrize("ti_state", ["failed", "success"])
def test_mark_failed_or_success_cancels_the_job(vertex, ti_state):
    name = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    kill(make(name), True, ti_state)
    assert vertex.count("cancel") == 1


@pytest.mark.parametrize("ti_state", [None, "scheduled", "queued", "running", "deferred", "restarting"])
def test_a_clear_keeps_the_job_for_the_new_try(vertex, ti_state):
    name = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    kill(make(name), True, ti_state)
    assert vertex.count("cancel") == 0


def test_unknown_task_state_keeps_the_job_and_says_the_sweep_will_decide(vertex, capsys):
    name = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    kill(make(name), False, None)
    assert vertex.count("cancel") == 0
    assert "cancel sweep" in capsys.readouterr().out


def test_cancel_on_kill_false_never_cancels(vertex):
    name = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    kill(make(name, cancel_on_kill=False), True, "failed")
    assert vertex.count("cancel") == 0


def test_a_finished_or_missing_job_ends_on_kill_quietly(vertex, capsys):
    done = vertex.add_job(state="JOB_STATE_SUCCEEDED", script=[])
    kill(make(done), True, "failed")  # one cancel call, no read first: the budget is one second
    kill(make("projects/local-project/locations/us-central1/batchPredictionJobs/404"), True, "failed")
    assert vertex.count("get") == 0
    assert "no longer exists" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("ti", "identity"),
    [
        (
            SimpleNamespace(dag_id="dag", task_id="task", run_id="run", map_index=2),
            WorkIdentity("dag", "task", "run", 2),
        ),
        (None, None),
    ],
)
def test_on_kill_asks_for_its_own_task_instance_within_the_lookup_bound(vertex, ti, identity):
    trigger = make(vertex.add_job(state="JOB_STATE_RUNNING", script=[]))
    trigger.task_instance = ti
    assert kill(trigger, True, "running") == [(identity, task_state.ON_KILL_LOOKUP_S)]
