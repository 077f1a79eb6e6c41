"""sensors.py: waits on a job by name, shares the trigger and the manifest."""

from __future__ import annotations

import pytest
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred
from google.genai import types

from gemini_batch import hooks, polling, task_state
from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchJobFailed,
    GeminiBatchJobNotFound,
    GeminiBatchPollingError,
    GeminiBatchTooManyFailedRows,
)
from gemini_batch.sensors import GeminiBatchJobSensor
from gemini_batch.triggers import GeminiBatchJobTrigger
from tests.gemini_batch.conftest import run_trigger
from tests.gemini_batch.fakes import api_error, make_context, script_gets


def sensor(name: str, **kwargs) -> GeminiBatchJobSensor:
    kwargs.setdefault("deferrable", False)
    return GeminiBatchJobSensor(task_id="wait", job_name=name, poke_interval=5, **kwargs)


def test_poke_waits_then_returns_the_manifest(vertex):
    name = vertex.add_job(script=[{"state": "JOB_STATE_RUNNING"}, {"state": "JOB_STATE_SUCCEEDED"}])
    waiting = sensor(name)
    context = make_context()
    assert waiting.poke(context) is False
    done = waiting.poke(context)
    assert isinstance(done, PokeReturnValue) and done.is_done
    assert done.xcom_value["job_name"] == name
    assert done.xcom_value["outcome"] == "succeeded"
    assert vertex.count("create") == 0


def test_poke_treats_transient_errors_as_not_yet(vertex):
    name = vertex.add_job()
    vertex.fail("get", api_error(503))
    assert sensor(name).poke(make_context()) is False


def test_a_failed_job_fails_the_sensor(vertex):
    name = vertex.add_job(script=[{"state": "JOB_STATE_EXPIRED"}])
    with pytest.raises(GeminiBatchJobFailed, match="ended EXPIRED"):
        sensor(name).poke(make_context())


NINE_OF_TEN = types.CompletionStats(successful_count=9, failed_count=1)


@pytest.mark.parametrize(("ratio", "ok"), [(0.2, True), (0.1, True), (0.09, False), (0.0, False)])
def test_poke_applies_max_failed_ratio(vertex, ratio, ok):
    name = vertex.add_job(script=[{"state": "JOB_STATE_SUCCEEDED", "completion_stats": NINE_OF_TEN}])
    waiting = sensor(name, max_failed_ratio=ratio)
    if ok:
        assert waiting.poke(make_context()).xcom_value["outcome"] == "partial"
        return
    context = make_context()
    with pytest.raises(GeminiBatchTooManyFailedRows, match="1 of 10 rows failed"):
        waiting.poke(context)
    assert context["ti"].xcom["gemini_batch_manifest"]["outcome"] == "partial"


@pytest.mark.parametrize(("ratio", "ok"), [(0.2, True), (0.0, False)])
def test_deferred_sensor_applies_max_failed_ratio(vertex, sleeps, ratio, ok):
    name = vertex.add_job(
        script=[
            {"state": "JOB_STATE_RUNNING"},
            {"state": "JOB_STATE_SUCCEEDED", "completion_stats": NINE_OF_TEN},
        ]
    )
    waiting = sensor(name, deferrable=True, max_failed_ratio=ratio, timeout=3600)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute(make_context())
    (event,) = run_trigger(deferred.value.trigger)
    assert event.payload["status"] == "partial"
    if ok:
        assert waiting.execute_complete(make_context(), event.payload)["outcome"] == "partial"
        return
    with pytest.raises(GeminiBatchTooManyFailedRows, match="1 of 10 rows failed"):
        waiting.execute_complete(make_context(), event.payload)


@pytest.mark.parametrize("status", ["succeeded", "success", "failed"])
def test_an_event_whose_job_reads_as_not_terminal_fails_the_sensor(vertex, status):
    name = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    with pytest.raises(GeminiBatchPollingError, match="but it reads JOB_STATE_RUNNING"):
        sensor(name, deferrable=True).execute_complete(
            make_context(), {"status": status, "job_name": name, "state": None, "message": "m"}
        )


@pytest.fixture
def clock(monkeypatch) -> dict[str, float]:
    """The polling core's wall clock, moved by the test."""
    now = {"t": 1000.0}
    monkeypatch.setattr(polling, "now", lambda: now["t"])
    return now


def test_poke_honours_the_backoff_delay_one_read_per_poke(vertex, clock, exact_jitter):
    name = vertex.add_job(script=[])
    script_gets(vertex, [api_error(503), api_error(429), "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"])
    waiting = sensor(name)
    context = make_context()
    gets = []
    for t in (1000.0, 1001.0, 1002.0, 1005.9, 1006.0, 1007.0):
        clock["t"] = t
        done = waiting.poke(context)
        gets.append(vertex.count("get"))
    # 503 at 1000: next read not before 1002; 429 at 1002: not before 1006; then one read per poke
    assert gets == [1, 1, 2, 2, 3, 4]
    assert done.xcom_value["outcome"] == "succeeded"


def test_poke_fails_at_budget_plus_one_consecutive_transient_errors(vertex, clock, exact_jitter):
    name = vertex.add_job(script=[])
    script_gets(vertex, [api_error(503)] * 3)
    waiting = sensor(name, error_budget=2)
    for t in (1000.0, 1002.0):
        clock["t"] = t
        assert waiting.poke(make_context()) is False
    clock["t"] = 1006.0
    with pytest.raises(GeminiBatchPollingError, match="gave up after 3 consecutive transient errors"):
        waiting.poke(make_context())


def test_poke_rebuilds_the_client_after_a_401(vertex, clock, exact_jitter, monkeypatch):
    builds = []
    build = hooks.GeminiBatchHook._build_entry
    monkeypatch.setattr(hooks.GeminiBatchHook, "_build_entry", lambda self: builds.append(1) or build(self))
    name = vertex.add_job(script=[])
    script_gets(vertex, [api_error(401), "JOB_STATE_SUCCEEDED"])
    waiting = sensor(name)
    assert waiting.poke(make_context()) is False
    clock["t"] += 2
    assert waiting.poke(make_context()).is_done
    assert len(builds) == 2


@pytest.mark.parametrize(
    ("error", "raised"), [(api_error(404), GeminiBatchJobNotFound), (api_error(400), GeminiBatchPollingError)]
)
def test_poke_fails_at_once_on_a_missing_job_or_a_non_transient_error(vertex, error, raised):
    name = vertex.add_job(script=[])
    script_gets(vertex, [error])
    with pytest.raises(raised):
        sensor(name).poke(make_context())


def test_deferrable_sensor_defers_with_the_shared_trigger_and_resumes(vertex, sleeps):
    name = vertex.add_job(
        script=[
            {"state": "JOB_STATE_RUNNING"},
            {"state": "JOB_STATE_RUNNING"},
            {"state": "JOB_STATE_SUCCEEDED"},
        ]
    )
    waiting = sensor(name, deferrable=True, timeout=3600)
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute(context)
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "gemini_batch.triggers.GeminiBatchJobTrigger"
    assert kwargs["poll_interval"] == 5 and kwargs["cancel_on_kill"] is False
    (event,) = run_trigger(GeminiBatchJobTrigger(**kwargs))
    manifest = waiting.execute_complete(context, event.payload)
    assert manifest["state"] == "JOB_STATE_SUCCEEDED"


def test_deferrable_sensor_on_a_finished_job_does_not_defer(gemini):
    name = gemini.add_job(state="JOB_STATE_SUCCEEDED", script=[])
    assert sensor(name, deferrable=True).execute(make_context())["backend"] == "gemini_api"


def test_trigger_timeout_and_error_events():
    waiting = sensor("batches/x")
    with pytest.raises(AirflowSensorTimeout):
        waiting.execute_complete(
            make_context(), {"status": "timeout", "job_name": "batches/x", "state": None, "message": "m"}
        )
    with pytest.raises(GeminiBatchPollingError):
        waiting.execute_complete(
            make_context(), {"status": "error", "job_name": "batches/x", "state": None, "message": "m"}
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_name": "jobs/1"}, "neither"),
        ({"job_name": "batches/1", "backend": "vertex"}, "backend"),
        ({"job_name": "batches/1", "backend": "x"}, "backend must be one of"),
        ({"job_name": "1", "max_failed_ratio": 2}, "max_failed_ratio"),
    ],
)
def test_bad_sensor_arguments(kwargs, message):
    with pytest.raises(GeminiBatchConfigError, match=message):
        GeminiBatchJobSensor(task_id="wait", **kwargs)


@pytest.mark.parametrize(("ti_state", "cancelled"), [("failed", 1), ("running", 0)])
def test_poke_mode_on_kill_honours_cancel_on_kill(vertex, monkeypatch, ti_state, cancelled):
    name = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    waiting = sensor(name, cancel_on_kill=True)
    waiting.poke(make_context())
    monkeypatch.setattr(task_state, "ti_state_blocking", lambda identity, timeout: (True, ti_state))
    waiting.on_kill()
    assert vertex.count("cancel") == cancelled
    other = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    default = sensor(other)  # cancel_on_kill defaults to False: the job was created elsewhere
    default.poke(make_context())
    default.on_kill()
    assert vertex.count("cancel") == cancelled
