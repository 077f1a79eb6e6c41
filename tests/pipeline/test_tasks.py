"""The task bodies' pure parts, the DAGs' shared configuration, housekeeping's choice, ad-hoc shapes."""

from __future__ import annotations

import datetime as dt

import pytest

from gemini_batch.pipeline.adhoc import prepare_adhoc, sdk_inline_request
from gemini_batch.pipeline.builder import RequestTemplate
from gemini_batch.pipeline.dag_config import job_limits, job_task_kwargs, run_tag
from gemini_batch.pipeline.findings import InputValidationError, ValidationIssue
from gemini_batch.pipeline.housekeeping import select_expired_jobs
from gemini_batch.pipeline.results import LoadCounts, ReconciliationError
from gemini_batch.pipeline.settings import PipelineSettings
from gemini_batch.pipeline.tasks import day_interval, fail_fast

UTC = dt.timezone.utc


def test_day_interval_keeps_real_intervals_and_widens_empty_ones() -> None:
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC)
    assert day_interval(start, end) == (start, end)
    moment = dt.datetime(2026, 1, 5, 13, 30, tzinfo=UTC)
    assert day_interval(moment, moment) == (
        dt.datetime(2026, 1, 5, tzinfo=UTC),
        dt.datetime(2026, 1, 6, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "error",
    [
        InputValidationError("gs://b/f.jsonl", [ValidationIssue("gs://b/f.jsonl:3", "invalid JSON")]),
        ReconciliationError(LoadCounts("2026-01-01", 1, 9, 10, 9, 0, 1, 0, 0, 0), ["k9"]),
    ],
)
def test_errors_a_retry_cannot_fix_fail_the_task_at_once(error: Exception) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    def task() -> None:
        raise error

    with pytest.raises(AirflowFailException) as caught:
        fail_fast(task)()
    assert str(caught.value) == str(error)
    assert caught.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("reset"),
        TimeoutError("slow"),
        RuntimeError("a bug"),
        pytest.param("503", id="ServiceUnavailable"),
        pytest.param("429", id="TooManyRequests"),
    ],
)
def test_other_errors_keep_their_type_so_retries_happen(error: Exception | str) -> None:
    from google.api_core import exceptions

    if isinstance(error, str):
        error = exceptions.from_http_status(int(error), "busy")

    def task() -> None:
        raise error

    with pytest.raises(type(error)):
        fail_fast(task)()


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ValueError("give either prompts or input_file"), "give either prompts or input_file"),
        ("404", "NotFound"),
        ("403", "Forbidden"),
        ("400", "BadRequest"),
    ],
)
def test_bad_user_input_and_permanent_refusals_fail_at_once(error: Exception | str, words: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from google.api_core import exceptions

    if isinstance(error, str):
        error = exceptions.from_http_status(int(error), "no such object gs://b/in.jsonl")

    def task() -> None:
        raise error

    with pytest.raises(AirflowFailException, match=words) as caught:
        fail_fast(task)()
    assert caught.value.__cause__ is error


def test_job_limits_can_only_be_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_BATCH_MAX_REQUESTS_PER_JOB", "10")
    monkeypatch.setenv("GEMINI_BATCH_MAX_BYTES_PER_JOB", str(5 * 10**9))
    limits = job_limits()
    assert (limits.max_requests, limits.max_bytes) == (10, 1_000_000_000)


def test_job_tasks_are_deferrable_retried_and_accept_a_few_failed_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_BATCH_POLL_INTERVAL", "2")
    kwargs = job_task_kwargs()
    assert (kwargs["deferrable"], kwargs["retries"], kwargs["poll_interval"]) == (True, 3, 2.0)
    assert 0 < kwargs["max_failed_ratio"] < 1


def test_run_tag_is_short_stable_and_name_safe() -> None:
    tag = run_tag("manual__2026-01-01T00:00:00+00:00")
    assert (
        tag == run_tag("manual__2026-01-01T00:00:00+00:00") != run_tag("scheduled__2026-01-01T00:00:00+00:00")
    )
    assert len(tag) == 8 and tag.isalnum() and tag.islower()


def test_settings_default_the_bucket_from_the_project_and_resolve_from_variables(monkeypatch) -> None:
    settings = PipelineSettings(project="p")
    assert (settings.bucket, settings.results.uri, settings.gcs("inputs/x")) == (
        "p-gemini-batch",
        "bq://p.gemini_batch.results",
        "gs://p-gemini-batch/inputs/x",
    )
    monkeypatch.setenv("AIRFLOW_VAR_GEMINI_BATCH_PROJECT", "from-variable")
    monkeypatch.setenv("AIRFLOW_VAR_GEMINI_BATCH_DATASET", "ds")
    resolved = PipelineSettings.resolve("no_such_connection")
    assert (resolved.project, resolved.dataset, resolved.bucket) == (
        "from-variable",
        "ds",
        "from-variable-gemini-batch",
    )


NOW = dt.datetime(2026, 3, 1, tzinfo=UTC)


def job(name: str, state: str, days_old: int, airflow: bool = True) -> dict:
    return {
        "job_name": name,
        "state": state,
        "display_name": "gemini_batch_bigquery awid-0123abcd" if airflow else "someone else's job",
        "create_time": (NOW - dt.timedelta(days=days_old)).isoformat(),
    }


def test_housekeeping_chooses_old_terminal_airflow_jobs_and_nothing_in_a_dry_run() -> None:
    jobs = [
        job("batches/old-done", "JOB_STATE_SUCCEEDED", 40),
        job("batches/old-failed", "JOB_STATE_FAILED", 31),
        job("batches/old-running", "JOB_STATE_RUNNING", 90),
        job("batches/new-done", "JOB_STATE_SUCCEEDED", 3),
        job("batches/not-ours", "JOB_STATE_SUCCEEDED", 60, airflow=False),
    ]
    chosen = select_expired_jobs(jobs, older_than=dt.timedelta(days=30), now=NOW, dry_run=False)
    assert chosen == ["batches/old-done", "batches/old-failed"]
    everyone = select_expired_jobs(
        jobs, older_than=dt.timedelta(days=30), now=NOW, dry_run=False, only_airflow_jobs=False
    )
    assert everyone == ["batches/old-done", "batches/old-failed", "batches/not-ours"]
    assert select_expired_jobs(jobs, older_than=dt.timedelta(days=30), now=NOW) == []


def test_inline_requests_take_the_sdk_shape() -> None:
    template = RequestTemplate.from_dict(
        {"systemInstruction": {"parts": [{"text": "Be brief"}]}, "generationConfig": {"temperature": 0.3}}
    )
    item = sdk_inline_request(template.render("Hi", key="k1"), "k1")
    assert item == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "config": {"temperature": 0.3, "systemInstruction": {"parts": [{"text": "Be brief"}]}},
        "metadata": {"key": "k1"},
    }
    from google.genai import types

    types.InlinedRequest.model_validate(item)  # what the SDK does with it


def test_adhoc_needs_prompts_or_a_file_and_validates_before_staging() -> None:
    template = RequestTemplate.from_dict({})
    with pytest.raises(ValueError, match="either prompts or input_file"):
        prepare_adhoc(backend="gemini_api", template=template, tag="t", prompts=[], input_file=None)
    batch = prepare_adhoc(backend="gemini_api", template=template, tag="t", prompts=["a", " ", "b"])
    assert [r["metadata"]["key"] for r in batch.src] == ["adhoc-t-00000", "adhoc-t-00001"]
    assert batch.input_keys == {
        "kind": "keys",
        "table": None,
        "key_column": "key",
        "request_column": "request",
        "uris": [],
        "keys": ["adhoc-t-00000", "adhoc-t-00001"],
    }


@pytest.mark.parametrize(
    ("run_after", "day"),
    [
        (
            dt.datetime(2026, 1, 5, 10, 30, tzinfo=dt.timezone.utc),
            dt.datetime(2026, 1, 4, tzinfo=dt.timezone.utc),
        ),
        (dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 4, tzinfo=dt.timezone.utc)),
    ],
)
def test_a_run_without_a_data_interval_processes_the_day_before_it_ran(run_after, day) -> None:
    assert day_interval(None, None, run_after) == (day, day + dt.timedelta(days=1))
    with pytest.raises(ValueError, match="run_after"):
        day_interval(None, None)


def test_the_work_scope_is_the_interval_and_the_content_unless_fresh() -> None:
    from gemini_batch.pipeline.dag_config import work_scope

    scope = work_scope("2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00", "abc", fresh=False)
    assert scope == "2026-01-01T00:00:00+00:00--2026-01-02T00:00:00+00:00/abc"
    assert work_scope("2026-01-01", "2026-01-02", "abd", fresh=False) != work_scope(
        "2026-01-01", "2026-01-02", "abc", fresh=False
    )
    assert work_scope("2026-01-01", "2026-01-02", "abc", fresh=True) == ""
