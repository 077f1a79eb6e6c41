"""sensors.py: waits on a job by name, shares the trigger and the manifest."""

from __future__ import annotations

import pytest
from google.genai import types

from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred
from gemini_batch import sensors
from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchJobFailed, GeminiBatchPollingError
from gemini_batch.sensors import GeminiBatchJobSensor
from gemini_batch.triggers import GeminiBatchJobTrigger
from tests.gemini_batch.conftest import run_trigger
from tests.gemini_batch.fakes import api_error, make_context


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


def test_partial_results_use_max_failed_ratio(vertex):
    stats = types.CompletionStats(successful_count=9, failed_count=1)
    name = vertex.add_job(script=[{"state": "JOB_STATE_SUCCEEDED", "completion_stats": stats}])
    assert sensor(name, max_failed_ratio=0.2).poke(make_context()).xcom_value["outcome"] == "partial"


def test_deferrable_sensor_defers_with_the_shared_trigger_and_resumes(vertex, sleeps):
    name = vertex.add_job(script=[{"state": "JOB_STATE_RUNNING"}, {"state": "JOB_STATE_RUNNING"}, {"state": "JOB_STATE_SUCCEEDED"}])
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
        waiting.execute_complete(make_context(), {"status": "timeout", "job_name": "batches/x", "state": None, "message": "m"})
    with pytest.raises(GeminiBatchPollingError):
        waiting.execute_complete(make_context(), {"status": "error", "job_name": "batches/x", "state": None, "message": "m"})


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
    monkeypatch.setattr(sensors, "ti_state_blocking", lambda identity, timeout: (True, ti_state))
    waiting.on_kill()
    assert vertex.count("cancel") == cancelled
    other = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    default = sensor(other)  # cancel_on_kill defaults to False: the job was created elsewhere
    default.poke(make_context())
    default.on_kill()
    assert vertex.count("cancel") == cancelled
