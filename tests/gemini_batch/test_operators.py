"""operators.py: arguments, sources, outcomes, both wait paths, retry safety, secrets."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from google.genai import types

from gemini_batch import operators, task_state
from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchInlineResultsTooLarge,
    GeminiBatchJobFailed,
    GeminiBatchJobNotFound,
    GeminiBatchPollingError,
    GeminiBatchTimeout,
    GeminiBatchTooManyFailedRows,
)
from gemini_batch.finish import FAILED_MANIFEST_XCOM_KEY
from gemini_batch.identity import WorkIdentity
from gemini_batch.job_operators import (
    GeminiBatchCancelJobOperator,
    GeminiBatchDeleteJobOperator,
    GeminiBatchGetJobOperator,
    GeminiBatchListJobsOperator,
)
from gemini_batch.links import XCOM_KEY as LINK_KEY
from gemini_batch.operators import GeminiBatchCreateJobOperator
from gemini_batch.triggers import GeminiBatchJobTrigger
from tests.gemini_batch.conftest import run_trigger
from tests.gemini_batch.fakes import FakeService, FakeTaskStateStore, FakeTI, api_error, make_context

INLINE = [{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}]
DESIGN_MANIFEST_KEYS = {
    "job_name", "backend", "model", "state", "task", "outcome", "source", "display_name", "work_id",
    "gcs_output_directory", "bigquery_output_table", "bigquery_output_dataset", "file_name",
    "inline_responses", "counts", "tokens", "estimated_cost_usd", "prices_retrieved", "create_time", "start_time", "end_time", "console_url", "error",
}  # fmt: skip


def op(**kwargs: Any) -> GeminiBatchCreateJobOperator:
    kwargs.setdefault("task_id", "task")
    kwargs.setdefault("src", "bq://p.d.t")
    kwargs.setdefault("model", "gemini-2.5-flash")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 1)
    return GeminiBatchCreateJobOperator(**kwargs)


def run(operator: GeminiBatchCreateJobOperator, context: dict) -> dict:
    """Run like Airflow does: execute, and if deferred, the trigger (rebuilt from its kwargs) then resume."""
    try:
        return operator.execute(context)
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        assert classpath == "gemini_batch.triggers.GeminiBatchJobTrigger"
        (event,) = run_trigger(GeminiBatchJobTrigger(**kwargs))
        assert getattr(operator, deferred.method_name) == operator.execute_complete
        return operator.execute_complete(context, event.payload)


@pytest.fixture(params=[False, True], ids=["sync", "deferrable"])
def deferrable(request) -> bool:
    return request.param


# ---------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"src": "s3://b/r.jsonl"}, "unknown scheme 's3://'"),
        ({"src": "bq://project.table"}, "bq://PROJECT.DATASET.TABLE"),
        ({"src": "gs://bkt/dir/"}, "is a folder"),
        ({"src": "gs://bkt/r.json"}, "is not a .jsonl file"),
        ({"src": [*INLINE, "files/abc"]}, "not both"),
        ({"src": "bq://p.d.t", "backend": "gemini_api"}, "The Gemini API has no BigQuery source"),
        ({"src": INLINE, "backend": "vertex"}, "takes no inline requests"),
        ({"backend": "openai"}, "backend must be one of"),
        ({"src": INLINE, "labels": {"team": "ml"}}, "labels apply to Vertex AI jobs only"),
        ({"labels": {"Team": "ml"}}, "Label key 'Team' is invalid"),
        ({"src": INLINE, "dest": "gs://bkt/out"}, "applies to Vertex AI only"),
        ({"dest": "s3://x"}, "unknown scheme"),
        ({"create_config": {"labels": {}}}, "create_config has unknown fields ['labels']"),
        ({"create_config": {"dest": "gs://bkt/x"}, "dest": "gs://bkt/y"}, "dest is given twice"),
        ({"create_config": "x"}, "must be a dict"),
        ({"model": ""}, "model must be a model name"),
        ({"max_failed_ratio": 1.5}, "max_failed_ratio must be in [0, 1]"),
        ({"max_failed_ratio": "x"}, "must be a number"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"poll_interval": -1}, "poll_interval must be positive"),
    ],
)
def test_bad_arguments_fail_at_parse_time_with_the_fix(kwargs, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        op(**kwargs)
    assert message in str(error.value)
    assert isinstance(error.value, AirflowFailException)


def test_templated_arguments_are_checked_at_execute_start_before_any_call(vertex):
    operator = op(src="{{ params.src }}", dest="{{ params.dest }}")
    operator.src = "bq://only.two"
    with pytest.raises(GeminiBatchConfigError, match="bq://PROJECT.DATASET.TABLE"):
        operator.execute(make_context())
    assert vertex.calls == []


def test_a_missing_connection_fails_at_execute_start():
    operator = op(gcp_conn_id="no_such_conn")
    with pytest.raises(GeminiBatchConfigError, match="Airflow connection 'no_such_conn' is not defined"):
        operator.execute(make_context())


def test_template_fields_cover_what_a_dag_author_templates():
    assert set(GeminiBatchCreateJobOperator.template_fields) >= {
        "src", "model", "backend", "dest", "display_name", "labels", "create_config", "project_id", "location",
    }  # fmt: skip


def test_templates_render(vertex):
    from airflow.sdk import DAG

    with DAG("dag", schedule=None, start_date=dt.datetime(2026, 1, 1), params={"table": "t1"}):
        operator = op(
            src="bq://p.d.{{ params.table }}",
            display_name="score {{ ds }}",
            labels={"day": "{{ ds_nodash }}"},
        )
    context = {"params": {"table": "t1"}, "ds": "2026-01-02", "ds_nodash": "20260102"}
    operator.render_template_fields(context)
    assert operator.src == "bq://p.d.t1"
    assert operator.display_name == "score 2026-01-02"
    assert operator.labels == {"day": "20260102"}


def test_deferrable_defaults_to_the_config(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert GeminiBatchCreateJobOperator(task_id="t", src="bq://p.d.t", model="m").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert GeminiBatchCreateJobOperator(task_id="t", src="bq://p.d.t", model="m").deferrable is False


# ---------------------------------------------------------------------------- sources and backends


@pytest.mark.parametrize(
    ("src", "backend", "dest_prefix"),
    [
        ("bq://p.d.requests", "vertex", "bq://p.d.requests_predictions_"),
        ("gs://bkt/in/requests.jsonl", "vertex", "gs://bkt/gemini-batch-output/dag/task/"),
        ("files/abc123", "gemini_api", None),
        (INLINE, "gemini_api", None),
    ],
)
def test_each_source_kind_goes_to_its_backend(install, sleeps, deferrable, src, backend, dest_prefix):
    service = FakeService(backend)
    install(**{backend: service})
    manifest = run(op(src=src, deferrable=deferrable), make_context())
    (create,) = [args for method, args in service.calls if method == "create"]
    identity = WorkIdentity("dag", "task", "manual__2026-01-01")
    assert create["src"] == src
    assert create["config"]["display_name"] == f"dag.task awid-{identity.work_id}"
    if backend == "vertex":
        assert create["config"]["dest"].startswith(dest_prefix)
        assert create["config"]["dest"].endswith(identity.work_id)
        assert create["config"]["http_options"]["extra_body"]["labels"]["airflow-work-id"] == identity.work_id
    else:
        assert "dest" not in create["config"] and "http_options" not in create["config"]
    assert manifest["backend"] == backend
    assert manifest["outcome"] == "succeeded"
    assert manifest["work_id"] == identity.work_id
    assert set(manifest) == DESIGN_MANIFEST_KEYS
    json.dumps(manifest)


def test_user_dest_display_name_labels_and_create_config_pass_through(vertex, sleeps):
    run(
        op(
            src="gs://bkt/r.jsonl",
            dest="gs://out-bkt/x",
            display_name="nightly",
            labels={"team": "ml"},
            create_config={"http_options": {"timeout": 60_000}},
        ),
        make_context(),
    )
    config = created(vertex)["config"]
    assert config["dest"] == "gs://out-bkt/x"
    assert config["display_name"].startswith("nightly awid-")
    assert config["http_options"]["timeout"] == 60_000
    assert config["http_options"]["extra_body"]["labels"]["team"] == "ml"


def test_dest_and_display_name_may_come_from_create_config(vertex, sleeps):
    run(op(create_config={"dest": "bq://p.out", "display_name": "cfg"}), make_context())
    config = created(vertex)["config"]
    assert config["dest"] == "bq://p.out"
    assert config["display_name"].startswith("cfg awid-")


# ---------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize("final", ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"])
def test_failed_cancelled_and_expired_jobs_fail_the_task(vertex, sleeps, deferrable, final):
    vertex.default_script = [
        {"state": "JOB_STATE_RUNNING"},
        {"state": final, "error": types.JobError(message="quota")},
    ]
    context = make_context()
    with pytest.raises(GeminiBatchJobFailed) as error:
        run(op(deferrable=deferrable), context)
    assert f"ended {final.removeprefix('JOB_STATE_')}: quota" in str(error.value)
    assert "submits a new job" in str(error.value)
    assert context["ti"].xcom[FAILED_MANIFEST_XCOM_KEY]["state"] == final
    assert not isinstance(error.value, AirflowFailException)  # a retry resubmits


@pytest.mark.parametrize(
    ("final", "stats", "ratio", "ok"),
    [
        ("JOB_STATE_SUCCEEDED", (98, 2), 0.05, True),
        ("JOB_STATE_SUCCEEDED", (98, 2), 0.0, False),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", (90, 10), 0.1, True),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", (80, 20), 0.1, False),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", None, 0.5, False),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", None, 1.0, True),
    ],
)
def test_partial_results_are_checked_against_max_failed_ratio(
    vertex, sleeps, deferrable, final, stats, ratio, ok
):
    step: dict[str, Any] = {"state": final}
    if stats:
        step["completion_stats"] = types.CompletionStats(successful_count=stats[0], failed_count=stats[1])
    step["output_info"] = types.BatchJobOutputInfo(gcs_output_directory="gs://bkt/out/prediction-model-1")
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}, step]
    operator = op(deferrable=deferrable, max_failed_ratio=ratio)
    if ok:
        manifest = run(operator, make_context())
        assert manifest["outcome"] == "partial"
        return
    with pytest.raises(GeminiBatchTooManyFailedRows) as error:
        run(operator, make_context())
    message = str(error.value)
    if stats:
        assert f"{stats[1]:,} of {stats[0] + stats[1]:,} rows failed" in message
    else:
        assert "no row counts" in message
    assert "gs://bkt/out/prediction-model-1" in message


def test_wait_for_completion_false_returns_the_running_jobs_manifest(vertex, sleeps):
    manifest = op(wait_for_completion=False).execute(make_context())
    assert manifest["state"] == "JOB_STATE_PENDING"
    assert manifest["outcome"] is None
    assert vertex.count("get") == 0


def test_an_already_terminal_job_is_not_deferred(vertex, sleeps):
    store = FakeTaskStateStore()
    name = op(wait_for_completion=False).execute(make_context(store=store))["job_name"]
    vertex.jobs[name].script = [{"state": "JOB_STATE_SUCCEEDED"}]
    manifest = op(deferrable=True).execute(make_context(FakeTI(try_number=2), store))
    assert manifest["job_name"] == name
    assert manifest["outcome"] == "succeeded"


def test_paused_waits_in_the_sync_path(vertex, sleeps, capsys):
    vertex.default_script = [
        {"state": "JOB_STATE_PAUSED"},
        {"state": "JOB_STATE_PAUSED"},
        {"state": "JOB_STATE_SUCCEEDED"},
    ]
    assert run(op(), make_context())["outcome"] == "succeeded"
    assert capsys.readouterr().out.count("is PAUSED; still waiting") == 1


def test_transient_errors_while_waiting_are_retried_in_the_sync_path(vertex, sleeps):
    vertex.fail("get", api_error(429), times=3)
    assert run(op(), make_context())["outcome"] == "succeeded"


def test_the_error_budget_fails_the_task_in_both_paths(vertex, sleeps, deferrable):
    vertex.fail("get", api_error(503), times=50)
    with pytest.raises(GeminiBatchPollingError, match="consecutive transient errors"):
        run(op(deferrable=deferrable, error_budget=2), make_context())


def test_timeout_fails_the_task_and_leaves_the_job_running(vertex, sleeps, deferrable, monkeypatch):
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}] * 1000
    clock = {"now": 1_000_000.0}

    def fake_time() -> float:
        clock["now"] += 30
        return clock["now"]

    monkeypatch.setattr(operators.time, "time", fake_time)
    monkeypatch.setattr("gemini_batch.polling.now", fake_time)
    with pytest.raises(GeminiBatchTimeout) as error:
        run(op(deferrable=deferrable, timeout=dt.timedelta(minutes=5)), make_context())
    assert "re-attaches" in str(error.value)
    assert vertex.count("cancel") == 0


def test_trigger_error_event_fails_the_task():
    operator = op()
    with pytest.raises(GeminiBatchPollingError, match="boom"):
        operator.execute_complete(
            make_context(), {"status": "error", "job_name": "1", "state": None, "message": "boom"}
        )


def test_deferral_hands_the_trigger_only_ids(vertex):
    with pytest.raises(TaskDeferred) as deferred:
        op(deferrable=True, poll_interval=45, timeout=600, cancel_on_kill=False).execute(make_context())
    classpath, kwargs = deferred.value.trigger.serialize()
    assert kwargs["job_name"] == next(iter(vertex.jobs))
    assert kwargs["backend"] == "vertex"
    assert kwargs["conn_id"] == "google_cloud_default"
    assert kwargs["poll_interval"] == 45
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["deadline"] > 0
    assert deferred.value.method_name == "execute_complete"


def test_the_console_link_is_stored_before_deferring(vertex, monkeypatch):
    monkeypatch.delenv("GOOGLE_VERTEX_BASE_URL", raising=False)  # a stack's override: links open the view
    context = make_context()
    with pytest.raises(TaskDeferred):
        op(deferrable=True).execute(context)
    assert (
        context["ti"]
        .xcom[LINK_KEY]
        .startswith("https://console.cloud.google.com/vertex-ai/locations/us-central1/")
    )


# ---------------------------------------------------------------------------- inline results


def _inline_job_step(n: int, text: str) -> dict:
    responses = [
        types.InlinedResponse(
            response=types.GenerateContentResponse(
                candidates=[
                    types.Candidate(content=types.Content(role="model", parts=[types.Part(text=text)]))
                ],
                usage_metadata=types.GenerateContentResponseUsageMetadata(
                    prompt_token_count=3, candidates_token_count=5, total_token_count=8
                ),
            )
        )
        for _ in range(n)
    ]
    responses.append(types.InlinedResponse(error=types.JobError(code=13, message="internal")))
    return {"state": "JOB_STATE_SUCCEEDED", "dest": types.BatchJobDestination(inlined_responses=responses)}


def test_small_inline_results_travel_in_the_manifest(gemini, sleeps):
    gemini.default_script = [_inline_job_step(3, "ok")]
    manifest = run(op(src=INLINE, max_failed_ratio=0.5), make_context())
    assert len(manifest["inline_responses"]) == 4
    assert manifest["counts"] == {"succeeded": 3, "failed": 1, "incomplete": 0, "total": 4}
    assert manifest["tokens"] == {"prompt": 9, "candidates": 15, "thoughts": 0, "total": 24}
    # By hand: gemini-2.5-flash list prices 0.30 / 2.50 USD per 1M, batch half: (9 x 0.3 + 15 x 2.5) / 2e6
    assert manifest["estimated_cost_usd"] == pytest.approx(20.1e-6)
    assert manifest["outcome"] == "partial"


def test_large_inline_results_fail_and_say_to_use_a_file(gemini, sleeps):
    gemini.default_script = [_inline_job_step(50, "x" * 10_000)]
    with pytest.raises(GeminiBatchInlineResultsTooLarge) as error:
        run(op(src=INLINE, max_failed_ratio=1.0), make_context())
    assert "files/NAME" in str(error.value)
    assert "XCom cap of 262,144 bytes" in str(error.value)


# ---------------------------------------------------------------------------- retry safety


def created(service: FakeService) -> dict:
    (create,) = [args for method, args in service.calls if method == "create"]
    return create


def record(store: FakeTaskStateStore) -> dict:
    return store.data[GeminiBatchCreateJobOperator.STATE_KEY]


def test_first_try_submits_one_job_and_records_it_in_two_phases(vertex, sleeps):
    store = FakeTaskStateStore()
    run(op(), make_context(store=store))
    assert vertex.count("create") == 1
    assert vertex.count("list") == 1  # one label-filtered lookup: was this work submitted already?
    phases = [value["phase"] for _, value in store.sets]
    assert phases == ["submitting", "submitted"]
    assert record(store)["job_name"] == next(iter(vertex.jobs))


def test_retry_after_a_crash_after_submit_reattaches(vertex, sleeps, deferrable):
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}] * 3 + [{"state": "JOB_STATE_SUCCEEDED"}]
    with pytest.raises(TaskDeferred):
        op(deferrable=True).execute(make_context(store=store))  # the worker then dies
    manifest = run(op(deferrable=deferrable), make_context(FakeTI(try_number=2), store))
    assert vertex.count("create") == 1
    assert manifest["outcome"] == "succeeded"


class DiesBeforeRecording(FakeTaskStateStore):
    """The worker dies after the create call returned, before the job name is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.die = True

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        if value.get("phase") == "submitted" and self.die:
            self.die = False
            raise RuntimeError("worker died between submit and record")
        super().set(key, value, **kwargs)


def test_a_crash_between_submit_and_record_is_recovered_by_identity(vertex, sleeps, deferrable):
    store = DiesBeforeRecording()
    with pytest.raises(RuntimeError, match="between submit and record"):
        op(deferrable=deferrable).execute(make_context(store=store))
    assert record(store)["phase"] == "submitting"
    manifest = run(op(deferrable=deferrable), make_context(FakeTI(try_number=2), store))
    assert vertex.count("create") == 1
    assert vertex.count("list") >= 1
    assert manifest["outcome"] == "succeeded"
    assert record(store)["phase"] == "submitted"


def test_a_succeeded_job_is_returned_on_a_new_try_without_resubmitting(vertex, sleeps):
    store = FakeTaskStateStore()
    first = run(op(), make_context(store=store))
    again = run(op(), make_context(FakeTI(try_number=2), store))
    assert vertex.count("create") == 1
    assert again["job_name"] == first["job_name"]


@pytest.mark.parametrize("final", ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"])
def test_a_failed_job_is_resubmitted_on_the_next_try_into_a_fresh_dest(vertex, sleeps, final):
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": final}]
    with pytest.raises(GeminiBatchJobFailed):
        run(op(), make_context(store=store))
    vertex.default_script = [{"state": "JOB_STATE_SUCCEEDED"}]
    manifest = run(op(), make_context(FakeTI(try_number=2), store))
    creates = [args for method, args in vertex.calls if method == "create"]
    assert len(creates) == 2
    assert creates[1]["config"]["dest"] == creates[0]["config"]["dest"] + "_2"
    assert record(store)["submissions"] == 2
    assert manifest["outcome"] == "succeeded"


def test_running_the_operator_twice_makes_one_job(vertex, sleeps):
    store = FakeTaskStateStore()
    vertex.default_script = [{"state": "JOB_STATE_RUNNING"}] * 10 + [{"state": "JOB_STATE_SUCCEEDED"}]
    op(wait_for_completion=False).execute(make_context(store=store))
    op(wait_for_completion=False).execute(make_context(store=store))
    run(op(), make_context(store=store))
    assert vertex.count("create") == 1


def test_a_clear_after_success_with_the_store_wiped_finds_the_job_by_identity(vertex, sleeps):
    run(op(), make_context())
    manifest = run(op(), make_context(FakeTI(try_number=3), FakeTaskStateStore()))
    assert vertex.count("create") == 1
    assert manifest["outcome"] == "succeeded"


def test_without_a_task_state_store_the_identity_tag_still_prevents_a_second_job(vertex, sleeps):
    context = {"ti": FakeTI()}
    run(op(), context)
    run(op(), {"ti": FakeTI()})
    assert vertex.count("create") == 1


def test_a_run_recreated_with_the_same_run_id_finds_its_job(vertex, sleeps):
    run(op(), make_context())
    manifest = run(op(), make_context(FakeTI(try_number=1), FakeTaskStateStore()))
    assert vertex.count("create") == 1
    assert manifest["outcome"] == "succeeded"


def test_a_job_of_this_work_for_another_model_or_source_is_not_adopted(vertex, sleeps):
    run(op(model="gemini-2.0-flash"), make_context())
    run(op(model="gemini-2.5-flash"), make_context(FakeTI(try_number=2), FakeTaskStateStore()))
    assert vertex.count("create") == 2
    identity = WorkIdentity("dag", "task", "manual__2026-01-01")
    for name in list(vertex.jobs):
        vertex.jobs[name].job = vertex.jobs[name].job.model_copy(
            update={"src": types.BatchJobSource(format="bigquery", bigquery_uri="bq://p.d.other")}
        )
    run(op(), make_context(FakeTI(try_number=3), FakeTaskStateStore()))
    assert vertex.count("create") == 3
    assert all(identity.owns(f.job) for f in vertex.jobs.values())


def test_each_map_index_is_its_own_work(vertex, sleeps):
    run(op(), make_context(FakeTI(map_index=0)))
    run(op(), make_context(FakeTI(map_index=1)))
    run(op(), make_context(FakeTI(map_index=0, try_number=2)))
    assert vertex.count("create") == 2


def test_changed_inputs_make_a_new_job(vertex, sleeps):
    store = FakeTaskStateStore()
    run(op(src="bq://p.d.v1"), make_context(store=store))
    run(op(src="bq://p.d.v2"), make_context(FakeTI(try_number=2), store))
    assert vertex.count("create") == 2


def test_a_deleted_recorded_job_is_resubmitted(vertex, sleeps):
    store = FakeTaskStateStore()
    run(op(), make_context(store=store))
    vertex.jobs.clear()
    run(op(), make_context(FakeTI(try_number=2), store))
    assert vertex.count("create") == 2


def test_a_create_that_landed_before_its_error_is_not_repeated(vertex, sleeps):
    vertex.create_lands_then_fails = 1
    run(op(), make_context())
    assert vertex.count("create") == 1
    assert len(vertex.jobs) == 1


def test_a_create_that_did_not_land_is_tried_again(vertex, sleeps):
    vertex.fail("create", api_error(429))
    run(op(), make_context())
    assert vertex.count("create") == 2
    assert len(vertex.jobs) == 1


def test_a_rejected_create_is_not_retried(vertex, sleeps):
    vertex.fail("create", api_error(400, "model not found"))
    with pytest.raises(Exception, match="model not found"):
        run(op(), make_context())
    assert vertex.count("create") == 1


def test_transient_errors_on_the_record_lookup_are_retried(vertex, sleeps):
    store = FakeTaskStateStore()
    run(op(), make_context(store=store))
    vertex.fail("get", api_error(503), times=2)
    run(op(), make_context(FakeTI(try_number=2), store))
    assert vertex.count("create") == 1


# ---------------------------------------------------------------------------- on_kill (sync path)


@pytest.mark.parametrize(
    ("ti_state", "cancelled"), [("failed", 1), ("success", 1), ("restarting", 0), ("running", 0)]
)
def test_sync_on_kill_cancels_only_after_mark_failed_or_success(
    vertex, sleeps, monkeypatch, ti_state, cancelled
):
    operator = op(wait_for_completion=False)
    operator.execute(make_context())
    monkeypatch.setattr(task_state, "ti_state_blocking", lambda identity, timeout: (True, ti_state))
    operator.on_kill()
    assert vertex.count("cancel") == cancelled


def test_sync_on_kill_with_an_unknown_state_or_cancel_on_kill_off_keeps_the_job(vertex, sleeps, monkeypatch):
    operator = op(wait_for_completion=False)
    operator.execute(make_context())
    monkeypatch.setattr(task_state, "ti_state_blocking", lambda identity, timeout: (False, None))
    operator.on_kill()
    quiet = op(wait_for_completion=False, cancel_on_kill=False)
    quiet.execute(make_context())
    monkeypatch.setattr(task_state, "ti_state_blocking", lambda identity, timeout: (True, "failed"))
    quiet.on_kill()
    op().on_kill()  # never started: nothing to do
    assert vertex.count("cancel") == 0


# ---------------------------------------------------------------------------- get, list, cancel, delete


def test_get_operator_returns_the_manifest_of_any_job(vertex):
    name = vertex.add_job(state="JOB_STATE_FAILED", script=[])
    manifest = GeminiBatchGetJobOperator(task_id="g", job_name=name).execute(make_context())
    assert manifest["state"] == "JOB_STATE_FAILED"
    assert manifest["outcome"] == "failed"


def test_job_names_from_another_project_use_that_project_and_location(install):
    service = FakeService("vertex", project="other", location="europe-west4")
    install(vertex=service)
    name = service.add_job(script=[])
    manifest = GeminiBatchGetJobOperator(task_id="g", job_name=name, location="us-central1").execute(
        make_context()
    )
    assert "locations/europe-west4/" in manifest["console_url"] and "project=other" in manifest["console_url"]


def test_list_operator_pages_through_everything(vertex):
    for i in range(5):
        vertex.add_job(display_name=f"j{i}", state="JOB_STATE_RUNNING", script=[])
    result = GeminiBatchListJobsOperator(task_id="l", backend="vertex", page_size=2).execute(make_context())
    assert [r["display_name"] for r in result] == [f"j{i}" for i in range(5)]
    assert {r["state"] for r in result} == {"JOB_STATE_RUNNING"}
    assert vertex.count("list") == 3
    limited = GeminiBatchListJobsOperator(task_id="l", backend="vertex", page_size=2, limit=3).execute(
        make_context()
    )
    assert len(limited) == 3
    json.dumps(result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"backend": None}, "backend is required"), ({"backend": "gemini_api", "filter": "x"}, "cannot filter")],
)
def test_list_operator_arguments(kwargs, message):
    with pytest.raises(GeminiBatchConfigError, match=message):
        GeminiBatchListJobsOperator(task_id="l", **kwargs)


def test_cancel_operator_is_idempotent(vertex):
    running = vertex.add_job(state="JOB_STATE_RUNNING", script=[])
    done = vertex.add_job(state="JOB_STATE_SUCCEEDED", script=[])
    assert GeminiBatchCancelJobOperator(task_id="c", job_name=running).execute(make_context())["state"] in (
        "JOB_STATE_CANCELLING",
        "JOB_STATE_CANCELLED",
    )
    assert GeminiBatchCancelJobOperator(task_id="c", job_name=done).execute(make_context()) == {
        "job_name": done,
        "state": "JOB_STATE_SUCCEEDED",
    }
    assert vertex.count("cancel") == 1


def test_delete_operator(gemini):
    name = gemini.add_job(script=[])
    GeminiBatchDeleteJobOperator(task_id="d", job_name=name).execute(make_context())
    GeminiBatchDeleteJobOperator(task_id="d", job_name=name).execute(make_context())
    with pytest.raises(GeminiBatchJobNotFound):
        GeminiBatchDeleteJobOperator(task_id="d", job_name=name, ignore_missing=False).execute(make_context())


@pytest.mark.parametrize(
    "cls", [GeminiBatchGetJobOperator, GeminiBatchCancelJobOperator, GeminiBatchDeleteJobOperator]
)
def test_job_operators_reject_bad_names_at_parse_time(cls):
    with pytest.raises(GeminiBatchConfigError, match="neither"):
        cls(task_id="x", job_name="jobs/1")
    with pytest.raises(GeminiBatchConfigError, match="backend"):
        cls(task_id="x", job_name="batches/1", backend="vertex")
    cls(task_id="x", job_name="{{ ti.xcom_pull('create')['job_name'] }}")


# ---------------------------------------------------------------------------- secrets


SECRET = "sk-never-leak-9f8e7d6c5b4a"


def test_the_api_key_never_reaches_arguments_trigger_kwargs_xcom_templates_or_logs(
    monkeypatch, sleeps, capsys
):
    """Scan operator arguments, trigger kwargs, XCom values, rendered template fields and log lines."""
    from google import genai

    from gemini_batch import hooks

    service = FakeService("gemini_api")
    service.default_script = [{"state": "JOB_STATE_RUNNING"}, _inline_job_step(2, "ok")]
    made: list[dict] = []

    def client(**kwargs):
        made.append(kwargs)
        return service.client()

    hooks.clear_client_cache()
    monkeypatch.setattr(genai, "Client", client)
    monkeypatch.setenv(
        "AIRFLOW_CONN_GEMINI_API_DEFAULT",
        json.dumps(
            {"conn_type": "gemini_api", "password": SECRET, "extra": {"genai_base_url": "http://127.0.0.1:1"}}
        ),
    )
    operator = op(src=INLINE, deferrable=True, max_failed_ratio=1.0, display_name="{{ ds }}")
    context = make_context()
    operator.render_template_fields({"ds": "2026-01-01"})
    rendered = {field: getattr(operator, field) for field in operator.template_fields}
    arguments = {k: v for k, v in vars(operator).items() if not k.startswith("_")}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger_kwargs = deferred.value.trigger.serialize()[1]
    (event,) = run_trigger(GeminiBatchJobTrigger(**trigger_kwargs))
    manifest = operator.execute_complete(context, event.payload)
    hooks.clear_client_cache()

    assert made and made[0]["api_key"] == SECRET  # the key did reach the client, and only the client
    scanned = {
        "operator arguments": repr(arguments),
        "trigger kwargs": json.dumps(trigger_kwargs, default=str),
        "trigger event": json.dumps(event.payload),
        "xcom": json.dumps([manifest, context["ti"].xcom], default=str),
        "rendered template fields": json.dumps(rendered, default=str),
        "logs": "".join(capsys.readouterr()),
    }
    for where, text in scanned.items():
        assert SECRET not in text, where
    assert "Gemini API client for connection gemini_api_default" in scanned["logs"]


def test_work_scope_names_the_work_across_runs_and_is_templated() -> None:
    assert "work_scope" in GeminiBatchCreateJobOperator.template_fields
    scheduled = {"ti": FakeTI(run_id="scheduled__2026-01-02", map_index=1)}
    manual = {"ti": FakeTI(run_id="manual__2026-01-03", map_index=1)}
    scoped = op(work_scope="2026-01-01--2026-01-02/abc")
    assert scoped._plan(scheduled).identity.work_id == scoped._plan(manual).identity.work_id
    assert scoped._plan(manual).identity.run_id == "manual__2026-01-03"  # the TI, for on_kill
    unscoped = op()
    assert unscoped._plan(scheduled).identity.work_id != unscoped._plan(manual).identity.work_id
    assert op(work_scope="")._plan(manual).identity == unscoped._plan(manual).identity
