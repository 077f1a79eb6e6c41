"""Real Airflow DAG runs (``dag.test()``) of the gemini_batch operators against the local stack.

Every claim about jobs is proven with the emulator's own job list (``stack_admin.jobs()``),
which records every job ever created, deleted or not: "one job" means one job was created.
Crashes, restarts and user actions are injected in-process (dag.test runs tasks and triggers
in this process), each at the exact point the scenario names.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"
PROMPTS = ["Name a colour.", "Name a fruit.", "Name a river.", "Name a planet."]
API_KEY = "local-gemini-api-key"


def _request(prompt: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


# ---------------------------------------------------------------------------- inputs per source kind


@pytest.fixture
def gcs_source(gcs_bucket: Any) -> str:
    lines = "".join(json.dumps({"request": _request(p)}) + "\n" for p in PROMPTS)
    gcs_bucket.blob("in/requests.jsonl").upload_from_string(lines)
    return f"gs://{gcs_bucket.name}/in/requests.jsonl"


@pytest.fixture
def bq_source(bq_dataset: Any, bq_client: Any) -> str:
    from google.cloud import bigquery

    table_id = f"{bq_dataset.project}.{bq_dataset.dataset_id}.requests"
    table = bigquery.Table(
        table_id, schema=[bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("request", "JSON")]
    )
    bq_client.create_table(table)
    rows = [{"id": i, "request": json.dumps(_request(p))} for i, p in enumerate(PROMPTS)]
    errors = bq_client.insert_rows_json(table_id, rows, retry=bigquery.DEFAULT_RETRY.with_deadline(30))
    assert not errors, errors
    return f"bq://{table_id}"


@pytest.fixture
def file_source(local_stack: Any, tmp_path: Any) -> str:
    from google import genai

    path = tmp_path / "requests.jsonl"
    path.write_text(
        "".join(json.dumps({"key": f"k{i}", "request": _request(p)}) + "\n" for i, p in enumerate(PROMPTS))
    )
    client = genai.Client(api_key=API_KEY, http_options={"base_url": local_stack.gemini_url})
    uploaded = client.files.upload(file=str(path), config={"mime_type": "application/jsonl"})
    return uploaded.name


@pytest.fixture
def sources(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    def get(kind: str) -> Any:
        if kind == "inline":
            return [_request(p) for p in PROMPTS]
        return request.getfixturevalue(f"{kind}_source")

    return get


# ---------------------------------------------------------------------------- DAGs


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Clients are cached per process; a test must not reuse one bound to another test's endpoint."""
    from gemini_batch.hooks import clear_client_cache

    clear_client_cache()
    yield
    clear_client_cache()


def build_dag(*, retries: int = 0, check: Callable[[dict], None] | None = None, **task_kwargs: Any) -> Any:
    """One GeminiBatchCreateJobOperator (task ``batch``), optionally followed by a ``check`` task."""
    from airflow.sdk import DAG, task

    from gemini_batch import GeminiBatchCreateJobOperator

    task_kwargs.setdefault("model", MODEL)
    task_kwargs.setdefault("poll_interval", 0.2)
    with DAG(
        dag_id=f"it_batch_{uuid.uuid4().hex[:10]}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        default_args={"retries": retries, "retry_delay": dt.timedelta(seconds=0)},
    ) as dag:
        batch = GeminiBatchCreateJobOperator(task_id="batch", **task_kwargs)
        if check is not None:

            @task
            def verify(manifest: dict) -> None:
                check(manifest)

            verify(batch.output)
    return dag


def states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def batch_ti(dag_run: Any) -> Any:
    return dag_run.get_task_instance("batch")


def manifest_of(dag_run: Any) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id="batch")
            .all()
        )
        values = {row.key: XComModel.deserialize_value(row) for row in rows}
    return values.get("return_value") or values.get("gemini_batch_manifest") or {}


def jobs_of(admin: Any, work_id: str | None = None) -> list[dict[str, Any]]:
    jobs = admin.jobs()
    if work_id is None:
        return jobs
    return [j for j in jobs if (j.get("display_name") or "").endswith(f"awid-{work_id}")]


@pytest.fixture(params=[False, True], ids=["sync", "deferrable"])
def deferrable(request: pytest.FixtureRequest) -> bool:
    return request.param


# ---------------------------------------------------------------------------- every source kind


@pytest.mark.parametrize("kind", ["gcs", "bq", "file", "inline"])
def test_each_source_kind_runs_to_success(run_dag, stack_admin, sources, deferrable, kind):
    src = sources(kind)

    def check(manifest: dict) -> None:
        assert manifest["state"] == "JOB_STATE_SUCCEEDED"

    dag_run = run_dag(build_dag(src=src, deferrable=deferrable, check=check))

    assert dag_run.state == "success", states(dag_run)
    manifest = manifest_of(dag_run)
    assert manifest["outcome"] == "succeeded"
    assert manifest["counts"]["total"] == len(PROMPTS)
    assert manifest["counts"]["succeeded"] == len(PROMPTS)
    location = {
        "gcs": manifest["gcs_output_directory"],
        "bq": manifest["bigquery_output_table"],
        "file": manifest["file_name"],
        "inline": manifest["inline_responses"],
    }[kind]
    assert location, manifest
    if kind == "bq":
        assert manifest["bigquery_output_dataset"] == manifest["bigquery_output_table"].rsplit(".", 1)[0]
    (job,) = jobs_of(stack_admin, manifest["work_id"])
    assert job["name"] == manifest["job_name"]
    if job["backend"] == "vertex":
        assert job["labels"]["airflow-work-id"] == manifest["work_id"]


# ---------------------------------------------------------------------------- retry safety


def test_a_retry_after_a_crash_after_submit_makes_no_second_job(
    run_dag, stack_admin, gcs_source, deferrable, monkeypatch
):
    from gemini_batch.operators import GeminiBatchCreateJobOperator

    original = GeminiBatchCreateJobOperator._attach_or_submit
    crashed = []

    def crash_once(self, context, plan, hook):
        job = original(self, context, plan, hook)
        if not crashed:
            crashed.append(job.name)
            raise RuntimeError("worker lost right after submitting (injected)")
        return job

    monkeypatch.setattr(GeminiBatchCreateJobOperator, "_attach_or_submit", crash_once)
    stack_admin.set_faults(queue_delay_s=0.5)

    dag_run = run_dag(build_dag(src=gcs_source, deferrable=deferrable, retries=1))

    assert dag_run.state == "success", states(dag_run)
    assert batch_ti(dag_run).try_number == 2
    (job,) = jobs_of(stack_admin)
    assert job["name"] == crashed[0] == manifest_of(dag_run)["job_name"]


def test_a_crash_between_submit_and_record_makes_no_second_job(
    run_dag, stack_admin, sources, deferrable, monkeypatch
):
    from gemini_batch.job_record import RecordStore

    original = RecordStore.write
    died = []

    def die_before_recording(self, record):
        if record.phase == "submitted" and not died:
            died.append(True)
            raise RuntimeError("worker lost between submit and record (injected)")
        return original(self, record)

    monkeypatch.setattr(RecordStore, "write", die_before_recording)

    dag_run = run_dag(build_dag(src=sources("inline"), deferrable=deferrable, retries=1))

    assert dag_run.state == "success", states(dag_run)
    assert died and batch_ti(dag_run).try_number == 2
    assert len(jobs_of(stack_admin)) == 1


def test_running_the_dag_twice_for_the_same_run_makes_one_job(run_dag, stack_admin, sources, deferrable):
    """dag.test() for the same date deletes and re-creates the run (same run_id, its task state
    store rows deleted with it): the second run finds the first run's job by its identity tag."""
    dag = build_dag(src=sources("inline"), deferrable=deferrable)
    logical_date = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)

    first = run_dag(dag, logical_date=logical_date, run_after=logical_date)
    second = run_dag(dag, logical_date=logical_date, run_after=logical_date)

    assert first.run_id == second.run_id
    assert first.state == second.state == "success"
    assert len(jobs_of(stack_admin)) == 1
    assert manifest_of(second)["job_name"] == stack_admin.jobs()[0]["name"]


def test_a_trigger_recreated_from_its_serialized_form_mid_wait_makes_no_second_job(
    run_dag, stack_admin, gcs_source, monkeypatch
):
    from gemini_batch.triggers import GeminiBatchJobTrigger

    original_run = GeminiBatchJobTrigger.run
    restarts: list[dict] = []

    async def run_then_restart(self):
        if restarts:
            async for event in original_run(self):
                yield event
            return
        # First incarnation: wait until the job is visibly RUNNING, then the triggerer "dies".
        first = original_run(self)
        pending = asyncio.ensure_future(first.__anext__())
        for _ in range(600):
            if stack_admin.job(self.job_name)["state"] == "JOB_STATE_RUNNING" or pending.done():
                break
            await asyncio.sleep(0.05)
        assert not pending.done(), "the job ended before the restart could be injected"
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await first.aclose()
        classpath, kwargs = self.serialize()
        restarts.append(kwargs)
        reborn = GeminiBatchJobTrigger(**json.loads(json.dumps(kwargs)))  # what the triggerer stores
        async for event in reborn.run():
            yield event

    monkeypatch.setattr(GeminiBatchJobTrigger, "run", run_then_restart)
    stack_admin.set_faults(row_latency_ms=300)

    dag_run = run_dag(build_dag(src=gcs_source, deferrable=True))

    assert dag_run.state == "success", states(dag_run)
    assert len(restarts) == 1
    (job,) = jobs_of(stack_admin)
    assert job["state"] == "JOB_STATE_SUCCEEDED"


def _user_action_mid_wait(
    monkeypatch: pytest.MonkeyPatch, stack_admin: Any, new_ti_state: str | None
) -> list:
    """While the trigger waits, set the task instance's state as a user action would, then run
    ``on_kill`` as the triggerer does for a user action (same trigger, real state lookup)."""
    from types import SimpleNamespace

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from gemini_batch import task_state
    from gemini_batch.identity import WorkIdentity
    from gemini_batch.task_state import ti_state_async
    from gemini_batch.triggers import GeminiBatchJobTrigger

    # The decision with a real lookup, not the one-second budget: dag.test's in-process lookup
    # may take longer on a loaded machine (the budget is unit-tested; the deployment test runs it).
    monkeypatch.setattr(task_state, "ON_KILL_LOOKUP_S", 15.0)
    monkeypatch.setattr(task_state, "ON_KILL_BUDGET_S", 30.0)
    original_run = GeminiBatchJobTrigger.run
    seen: list = []

    async def run_with_user_action(self):
        for _ in range(600):
            if stack_admin.job(self.job_name)["state"] in (
                "JOB_STATE_PENDING",
                "JOB_STATE_RUNNING",
                "JOB_STATE_QUEUED",
            ):
                break
            await asyncio.sleep(0.05)
        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(task_id="batch")
                .order_by(TaskInstance.start_date.desc())
                .first()
            )
            identity = SimpleNamespace(
                dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index
            )
            ti.state = new_ti_state
            session.merge(ti)
        self.task_instance = identity
        seen.append(await ti_state_async(WorkIdentity.from_context({"ti": identity}), 15, self.log))
        await self.on_kill()
        # put the instance back as dag.test expects it, then wait as usual
        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(dag_id=identity.dag_id, run_id=identity.run_id, task_id="batch")
                .one()
            )
            ti.state = "queued"
        async for event in original_run(self):
            yield event

    monkeypatch.setattr(GeminiBatchJobTrigger, "run", run_with_user_action)
    return seen


def test_mark_failed_cancels_the_job(run_dag, stack_admin, gcs_source, monkeypatch):
    seen = _user_action_mid_wait(monkeypatch, stack_admin, "failed")
    stack_admin.set_faults(queue_delay_s=2, row_latency_ms=200)

    dag_run = run_dag(build_dag(src=gcs_source, deferrable=True))

    assert seen == [(True, "failed")]
    (job,) = jobs_of(stack_admin)
    assert job["state"] == "JOB_STATE_CANCELLED"
    assert dag_run.state == "failed"
    assert manifest_of(dag_run)["state"] == "JOB_STATE_CANCELLED"


def test_a_clear_does_not_cancel_the_job(run_dag, stack_admin, gcs_source, monkeypatch):
    seen = _user_action_mid_wait(monkeypatch, stack_admin, None)  # a clear resets the state
    stack_admin.set_faults(queue_delay_s=1)

    dag_run = run_dag(build_dag(src=gcs_source, deferrable=True))

    assert seen == [(True, None)]
    (job,) = jobs_of(stack_admin)
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    assert dag_run.state == "success", states(dag_run)


# ---------------------------------------------------------------------------- faults and terminal states


@pytest.mark.parametrize("kind", ["gcs", "inline"])
def test_a_20_percent_429_503_fault_rate_ends_in_success(run_dag, stack_admin, sources, deferrable, kind):
    src = sources(kind)
    stack_admin.set_faults(api_error_ratio=0.2, api_error_codes=[429, 503], row_latency_ms=20)

    dag_run = run_dag(build_dag(src=src, deferrable=deferrable))

    assert dag_run.state == "success", states(dag_run)
    assert len(jobs_of(stack_admin)) == 1
    assert stack_admin.faults()["api_error_ratio"] == 0.2


def test_an_expired_job_fails_the_task(run_dag, stack_admin, gcs_source, deferrable):
    stack_admin.set_faults(queue_delay_s=5, expire_after_s=0.5)

    dag_run = run_dag(build_dag(src=gcs_source, deferrable=deferrable))

    assert states(dag_run)["batch"] == "failed"
    assert manifest_of(dag_run)["state"] == "JOB_STATE_EXPIRED"
    assert manifest_of(dag_run)["outcome"] == "failed"


def test_a_failed_job_fails_the_task_with_its_message(run_dag, stack_admin, sources, deferrable):
    src = sources("inline")
    stack_admin.set_faults(job_failure="quota exceeded for the project (injected)")

    dag_run = run_dag(build_dag(src=src, deferrable=deferrable))

    assert states(dag_run)["batch"] == "failed"
    manifest = manifest_of(dag_run)
    assert manifest["state"] == "JOB_STATE_FAILED"
    assert "quota exceeded" in (manifest["error"] or "")


def test_a_cancelled_job_fails_the_task(run_dag, stack_admin, gcs_source, deferrable):
    from gemini_batch.hooks import GeminiBatchHook

    stack_admin.set_faults(row_latency_ms=300)

    def cancel_when_running() -> None:
        job = stack_admin.wait_until(
            lambda: next((j for j in stack_admin.jobs() if j["state"] == "JOB_STATE_RUNNING"), None),
            timeout=60,
            what="a RUNNING job",
        )
        GeminiBatchHook("vertex").cancel_job(job["name"])

    canceller = threading.Thread(target=cancel_when_running, daemon=True)
    canceller.start()
    dag_run = run_dag(build_dag(src=gcs_source, deferrable=deferrable))
    canceller.join(timeout=60)

    assert states(dag_run)["batch"] == "failed"
    assert manifest_of(dag_run)["state"] == "JOB_STATE_CANCELLED"
    assert len(jobs_of(stack_admin)) == 1


@pytest.mark.parametrize(("max_failed_ratio", "ends"), [(0.0, "failed"), (1.0, "success")])
def test_a_partially_succeeded_job_is_checked_against_max_failed_ratio(
    run_dag, stack_admin, gcs_source, deferrable, max_failed_ratio, ends
):
    stack_admin.set_faults(row_failure_ratio=0.5, partial_success_state=True)

    dag_run = run_dag(build_dag(src=gcs_source, deferrable=deferrable, max_failed_ratio=max_failed_ratio))

    assert states(dag_run)["batch"] == ends
    manifest = manifest_of(dag_run)
    assert manifest["state"] == "JOB_STATE_PARTIALLY_SUCCEEDED"
    assert manifest["outcome"] == "partial"
    assert manifest["counts"]["failed"] > 0
    assert manifest["gcs_output_directory"]


# ---------------------------------------------------------------------------- sensor, secrets


def test_split_create_and_wait_with_the_sensor(run_dag, stack_admin, sources):
    from airflow.sdk import DAG

    from gemini_batch import GeminiBatchCreateJobOperator, GeminiBatchJobSensor

    with DAG(
        dag_id=f"it_split_{uuid.uuid4().hex[:10]}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    ) as dag:
        create = GeminiBatchCreateJobOperator(
            task_id="batch", src=sources("inline"), model=MODEL, wait_for_completion=False
        )
        wait = GeminiBatchJobSensor(
            task_id="wait",
            job_name="{{ ti.xcom_pull(task_ids='batch')['job_name'] }}",
            deferrable=True,
            poke_interval=0.2,
        )
        create >> wait

    dag_run = run_dag(dag)

    assert dag_run.state == "success", states(dag_run)
    assert len(jobs_of(stack_admin)) == 1


def test_the_api_key_is_in_no_xcom_rendered_field_or_log(run_dag, stack_admin, sources, capsys):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag_run = run_dag(build_dag(src=sources("inline"), deferrable=True, display_name="{{ ds }}"))
    assert dag_run.state == "success", states(dag_run)

    with create_session() as session:
        xcoms = session.query(XComModel).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_run.dag_id).all()
        scanned = {
            "xcom": json.dumps([XComModel.deserialize_value(x) for x in xcoms], default=str),
            "rendered template fields": json.dumps([r.rendered_fields for r in rendered], default=str),
        }
    scanned["logs"] = "".join(capsys.readouterr())
    assert rendered, "no rendered fields stored"
    assert "inline:4 requests" in scanned["xcom"]
    for where, text in scanned.items():
        assert API_KEY not in text, where
