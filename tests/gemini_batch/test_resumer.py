"""resumer.py through the create operator: records, lookups, landed creates and metrics against a fake service."""

from __future__ import annotations

from typing import Any

import pytest

from gemini_batch.exceptions import GeminiBatchJobFailed
from gemini_batch.job_record import STATE_KEY
from gemini_batch.operators import GeminiBatchCreateJobOperator
from tests.gemini_batch.fakes import FakeTaskStateStore, FakeTI, api_error, make_context

SUCCEEDED = [{"state": "JOB_STATE_SUCCEEDED"}]


def op(**kwargs: Any) -> GeminiBatchCreateJobOperator:
    kwargs.setdefault("task_id", "task")
    kwargs.setdefault("src", "bq://p.d.t")
    kwargs.setdefault("model", "gemini-2.5-flash")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 1)
    return GeminiBatchCreateJobOperator(**kwargs)


def try_(number: int, store: FakeTaskStateStore) -> dict[str, Any]:
    return make_context(FakeTI(try_number=number), store)


def test_after_the_inputs_change_a_create_that_did_not_land_never_adopts_the_old_job(vertex, sleeps):
    """The old job (same model and source, other dest) is all a lookup after the failed create finds."""
    store = FakeTaskStateStore()
    vertex.default_script = SUCCEEDED
    old = op().execute(try_(1, store))["job_name"]
    vertex.fail("create", api_error(429), times=1)

    manifest = op(dest="bq://p.out").execute(try_(2, store))

    assert manifest["job_name"] != old
    assert vertex.count("create") == 3  # the first job, the failed create, the create that landed
    assert len(vertex.jobs) == 2
    assert store.data[STATE_KEY]["job_name"] == manifest["job_name"]


def test_a_submission_cut_short_after_an_input_change_never_adopts_the_old_job(vertex, sleeps):
    """The ``submitting`` record lists the jobs that existed before it; a later try skips them."""
    store = FakeTaskStateStore()
    vertex.default_script = SUCCEEDED
    old = op().execute(try_(1, store))["job_name"]
    vertex.fail("create", api_error(400, "quota check failed"))
    with pytest.raises(Exception, match="quota check failed"):
        op(dest="bq://p.out").execute(try_(2, store))
    assert store.data[STATE_KEY]["phase"] == "submitting"
    assert store.data[STATE_KEY]["previous_jobs"] == [old]

    manifest = op(dest="bq://p.out").execute(try_(3, store))

    assert manifest["job_name"] != old
    assert len(vertex.jobs) == 2


def test_an_unreadable_record_is_logged_with_its_reason_and_the_job_is_looked_up(vertex, sleeps, capsys):
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}] * 5
    running = op(wait_for_completion=False).execute(try_(1, store))["job_name"]
    store.data[STATE_KEY] = {**store.data[STATE_KEY], "v": 99}
    lists = vertex.count("list")
    capsys.readouterr()

    manifest = op(wait_for_completion=False).execute(try_(2, store))

    logs = capsys.readouterr().out
    assert "retry record in the task state store is unreadable: unknown record version 99" in logs
    (lookup,) = [
        line for line in logs.splitlines() if "Looking up this work's batch jobs by identity" in line
    ]
    assert "warning" in lookup and "the retry record is unreadable: unknown record version 99" in lookup
    assert vertex.count("list") == lists + 1
    assert manifest["job_name"] == running
    assert vertex.count("create") == 1
    assert store.data[STATE_KEY]["v"] == 2  # rewritten in the current version


def test_a_version_1_record_of_in_flight_work_is_re_attached_without_a_lookup(vertex, sleeps):
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}] * 5
    running = op(wait_for_completion=False).execute(try_(1, store))["job_name"]
    written = store.data[STATE_KEY]
    store.data[STATE_KEY] = {  # exactly what the operator wrote before version 2
        "v": 1,
        "work_id": written["work_id"],
        "backend": "vertex",
        "fingerprint": "3038505bbd1681dd",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "phase": "submitted",
        "job_name": running,
        "submissions": 1,
    }
    lists = vertex.count("list")

    manifest = op(wait_for_completion=False).execute(try_(2, store))

    assert manifest["job_name"] == running
    assert vertex.count("list") == lists
    assert vertex.count("create") == 1


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    from airflow.sdk.observability import stats

    counted: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        stats.Stats, "incr", staticmethod(lambda name, *a, tags=None, **k: counted.append((name, tags)))
    )
    return counted


def test_outcomes_are_counted_with_the_resumable_job_metrics(vertex, sleeps, metrics):
    store = FakeTaskStateStore()
    tags = {"operator": "GeminiBatchCreateJobOperator"}
    vertex.default_script = [{"state": "JOB_STATE_FAILED"}]
    with pytest.raises(GeminiBatchJobFailed):
        op().execute(try_(1, store))
    assert metrics == [("resumable_job.fresh_submit", tags)]

    metrics.clear()
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}, {"state": "JOB_STATE_SUCCEEDED"}]
    op().execute(try_(2, store))
    assert metrics == [("resumable_job.reconnect_attempt", tags), ("resumable_job.terminal_resubmit", tags)]

    metrics.clear()
    op().execute(try_(3, store))
    assert metrics == [("resumable_job.reconnect_attempt", tags), ("resumable_job.already_succeeded", tags)]


def test_a_reattach_is_counted_and_tagged_with_the_team(vertex, sleeps, metrics):
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}] * 5
    op(wait_for_completion=False).execute(try_(1, store))
    ti = FakeTI(try_number=2)
    ti.stats_tags = {"dag_id": "dag", "task_id": "task", "team_name": "ml"}  # type: ignore[attr-defined]
    metrics.clear()
    op(wait_for_completion=False).execute(make_context(ti, store))
    team = {"operator": "GeminiBatchCreateJobOperator", "team_name": "ml"}
    assert metrics == [("resumable_job.reconnect_attempt", team), ("resumable_job.reconnect_success", team)]
