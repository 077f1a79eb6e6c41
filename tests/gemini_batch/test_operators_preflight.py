"""The create operator fails before it pays: pre-flight, permanent create errors, permanent job failures."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from google.genai import types

from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchJobFailed,
    GeminiBatchJobFailedPermanently,
    GeminiBatchPreflightError,
    GeminiBatchRejected,
)
from gemini_batch.identity import WorkIdentity
from gemini_batch.job_record import STATE_KEY
from gemini_batch.operators import GeminiBatchCreateJobOperator
from tests.gemini_batch.fakes import FakeTaskStateStore, FakeTI, api_error, make_context


def op(**kwargs: Any) -> GeminiBatchCreateJobOperator:
    kwargs.setdefault("task_id", "task")
    kwargs.setdefault("src", "bq://p.d.t")
    kwargs.setdefault("model", "gemini-2.5-flash")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 1)
    kwargs.setdefault("retries", 3)
    return GeminiBatchCreateJobOperator(**kwargs)


def test_a_missing_source_fails_before_any_create_and_is_not_retried(vertex, sleeps, preflight_reads):
    preflight_reads.missing_tables.add("p.d.t")
    store = FakeTaskStateStore()
    with pytest.raises(GeminiBatchPreflightError, match="source table bq://p.d.t does not exist") as caught:
        op().execute(make_context(store=store))
    assert isinstance(caught.value, AirflowFailException)
    assert vertex.count("create") == 0
    assert STATE_KEY not in store.data  # nothing recorded: no job was intended


def test_an_existing_dest_table_fails_before_any_create(vertex, sleeps, preflight_reads):
    preflight_reads.existing_tables.add("p.d.out")
    with pytest.raises(GeminiBatchPreflightError, match="dest table bq://p.d.out already exists"):
        op(dest="bq://p.d.out").execute(make_context())
    assert vertex.count("create") == 0


def test_the_checks_read_the_destination_of_this_submission(vertex, sleeps, preflight_reads):
    op().execute(make_context())
    work_id = WorkIdentity("dag", "task", "manual__2026-01-01").work_id
    assert ("table", f"p.d.t_predictions_{work_id}") in preflight_reads.reads
    assert ("table", "p.d.t") in preflight_reads.reads
    assert ("model", "gemini-2.5-flash") in preflight_reads.reads


def test_a_typod_model_fails_before_any_create(vertex, sleeps, preflight_reads):
    preflight_reads.models["gemini-2.5-flsh"] = "not_found"
    with pytest.raises(GeminiBatchPreflightError, match="model 'gemini-2.5-flsh' does not exist"):
        op(model="gemini-2.5-flsh").execute(make_context())
    assert vertex.count("create") == 0


def test_cross_project_sources_are_refused_unless_allowed(vertex, sleeps, preflight_reads):
    preflight_reads.allow_cross_project = False
    with pytest.raises(GeminiBatchPreflightError, match="allow_cross_project=True"):
        op(src="bq://other.d.t").execute(make_context())
    assert vertex.count("create") == 0
    op(src="bq://other.d.t", allow_cross_project=True).execute(make_context())
    assert vertex.count("create") == 1


def test_preflight_checks_can_be_turned_off(vertex, sleeps, preflight_reads):
    preflight_reads.missing_tables.add("p.d.t")
    op(preflight_checks=False).execute(make_context())
    assert vertex.count("create") == 1
    assert preflight_reads.reads == []


def test_no_check_runs_before_a_reattach(vertex, sleeps, preflight_reads):
    """The job may have written its dest table already: a retry re-attaches without looking."""
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}] * 3 + [{"state": "JOB_STATE_SUCCEEDED"}]
    op(wait_for_completion=False).execute(make_context(store=store))
    preflight_reads.reads.clear()
    preflight_reads.existing_tables.add(
        f"p.d.t_predictions_{WorkIdentity('dag', 'task', 'manual__2026-01-01').work_id}"
    )
    op().execute(make_context(FakeTI(try_number=2), store))
    assert preflight_reads.reads == []
    assert vertex.count("create") == 1


@pytest.mark.parametrize("code", [400, 403, 404])
def test_a_permanent_create_error_fails_without_retries(vertex, sleeps, code):
    vertex.fail("create", api_error(code, "model not found"))
    with pytest.raises(GeminiBatchRejected, match=f"HTTP {code}.*model not found") as caught:
        op().execute(make_context())
    assert isinstance(caught.value, AirflowFailException)
    assert vertex.count("create") == 1


def test_a_transient_create_error_stays_retryable(vertex, sleeps):
    vertex.fail("create", api_error(503), times=3)
    with pytest.raises(Exception) as caught:
        op().execute(make_context())
    assert not isinstance(caught.value, AirflowFailException)


@pytest.mark.parametrize(
    ("final", "code", "permanent"),
    [
        ("JOB_STATE_FAILED", 3, True),  # INVALID_ARGUMENT
        ("JOB_STATE_FAILED", 7, True),  # PERMISSION_DENIED
        ("JOB_STATE_FAILED", 13, False),  # INTERNAL
        ("JOB_STATE_FAILED", 8, False),  # RESOURCE_EXHAUSTED
        ("JOB_STATE_CANCELLED", 3, False),
        ("JOB_STATE_EXPIRED", 3, False),
    ],
)
def test_a_job_failed_for_a_permanent_reason_fails_without_retries(vertex, sleeps, final, code, permanent):
    vertex.default_script = [{"state": final, "error": types.JobError(code=code, message="bad row")}]
    with pytest.raises(GeminiBatchJobFailed) as caught:
        op().execute(make_context())
    assert isinstance(caught.value, GeminiBatchJobFailedPermanently) is permanent
    assert isinstance(caught.value, AirflowFailException) is permanent


def test_an_automatic_retry_does_not_resubmit_a_permanently_failed_job_but_a_clear_does(vertex, sleeps):
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": "JOB_STATE_FAILED", "error": types.JobError(code=3, message="bad")}]
    with pytest.raises(GeminiBatchJobFailedPermanently):
        op().execute(make_context(FakeTI(try_number=1, max_tries=3), store))
    with pytest.raises(GeminiBatchJobFailedPermanently, match="does not submit one"):
        op().execute(make_context(FakeTI(try_number=2, max_tries=3), store))
    assert vertex.count("create") == 1
    vertex.default_script = [{"state": "JOB_STATE_SUCCEEDED"}]
    manifest = op().execute(make_context(FakeTI(try_number=3, max_tries=5), store))  # a clear: 2 + 3
    assert vertex.count("create") == 2
    assert manifest["outcome"] == "succeeded"


@pytest.mark.parametrize(("count", "ok"), [(61, True), (62, False)])
def test_user_labels_leave_room_for_the_three_the_operator_adds(count, ok):
    labels = {f"k{i}": "v" for i in range(count)}
    if ok:
        op(labels=labels)
        return
    with pytest.raises(GeminiBatchConfigError, match="keep at most 61"):
        op(labels=labels)


def test_a_user_label_named_like_an_operator_label_counts_once():
    op(labels={"airflow-dag": "mine", **{f"k{i}": "v" for i in range(61)}})


@pytest.mark.parametrize(("code", "permanent"), [(403, True), (400, True), (503, False)])
def test_a_refused_preflight_read_fails_without_retries_a_transient_one_retries(
    vertex, sleeps, preflight_reads, monkeypatch, code, permanent
):
    def refuse(table: Any) -> bool:
        raise api_error(code, "caller lacks bigquery.tables.get")

    monkeypatch.setattr(preflight_reads, "table_exists", refuse)
    with pytest.raises(Exception, match="bigquery.tables.get") as caught:
        op().execute(make_context())
    assert isinstance(caught.value, GeminiBatchPreflightError) is permanent
    assert isinstance(caught.value, AirflowFailException) is permanent
    assert vertex.count("create") == 0


def test_transient_errors_of_the_checks_are_retried_before_submitting(
    vertex, sleeps, preflight_reads, monkeypatch
):
    answers = [api_error(503), api_error(429), True]

    def flaky(table: Any) -> bool:
        answer = answers.pop(0) if answers else True
        if isinstance(answer, BaseException):
            raise answer
        return "_predictions_" not in str(table)

    monkeypatch.setattr(preflight_reads, "table_exists", flaky)
    op().execute(make_context())
    assert vertex.count("create") == 1
    assert answers == []
