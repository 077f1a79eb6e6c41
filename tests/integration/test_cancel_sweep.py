"""The cancel sweep in real Airflow (``dag.test()``) against the local stack.

Task instances are real rows in the metadata DB (made by running a DAG), the sweep is the
``gemini_batch_cancel_sweep`` DAG of dags/, its lookups go through the Task SDK to the execution
API, and its list and cancel calls through google-genai to the emulator; the emulator's job list
is the proof.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import time
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"
RUNNING = {"JOB_STATE_PENDING", "JOB_STATE_QUEUED", "JOB_STATE_RUNNING"}


@pytest.fixture(autouse=True)
def _fresh_clients() -> Any:
    from gemini_batch.hooks import clear_client_cache

    clear_client_cache()
    yield
    clear_client_cache()


@pytest.fixture
def gcs_source(gcs_bucket: Any) -> str:
    line = json.dumps({"request": {"contents": [{"role": "user", "parts": [{"text": "Name a colour."}]}]}})
    gcs_bucket.blob("in/requests.jsonl").upload_from_string(line + "\n")
    return f"gs://{gcs_bucket.name}/in/requests.jsonl"


def owner_dag(src: str) -> Any:
    """One create task that hands its job on (wait_for_completion=False): the job outlives the task."""
    from airflow.sdk import DAG

    from gemini_batch import GeminiBatchCreateJobOperator

    with DAG(
        dag_id=f"it_sweep_{uuid.uuid4().hex[:10]}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
    ) as dag:
        GeminiBatchCreateJobOperator(task_id="batch", src=src, model=MODEL, wait_for_completion=False)
    return dag


def set_state(dag_run: Any, state: str | None) -> None:
    """What mark-failed (state) or a clear (None) does to the task instance's row."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).one()
        ti.state = state


def job_of(admin: Any, dag_run: Any) -> dict[str, Any]:
    from gemini_batch.identity import WorkIdentity

    tag = WorkIdentity(dag_run.dag_id, "batch", dag_run.run_id).tag
    (job,) = [j for j in admin.jobs() if (j.get("display_name") or "").endswith(tag)]
    return job


def test_the_sweep_cancels_the_job_of_a_marked_failed_task_only(run_dag, stack_admin, gcs_source):
    stack_admin.set_faults(queue_delay_s=600)  # every job stays queued while the test runs
    dag = owner_dag(gcs_source)
    days = [dt.datetime(2026, 2, day, tzinfo=dt.timezone.utc) for day in (1, 2, 3)]
    marked_failed, cleared, handed_on = (run_dag(dag, logical_date=d, run_after=d) for d in days)
    assert {run.state for run in (marked_failed, cleared, handed_on)} == {"success"}
    set_state(marked_failed, "failed")
    set_state(cleared, None)

    sweep_dag = importlib.import_module("gemini_batch_cancel_sweep").dag
    sweep_run = run_dag(sweep_dag)

    assert sweep_run.state == "success"
    assert job_of(stack_admin, marked_failed)["state"] in {"JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"}
    assert job_of(stack_admin, cleared)["state"] in RUNNING
    assert job_of(stack_admin, handed_on)["state"] in RUNNING
    swept = sweep_run.get_task_instance("sweep_vertex").xcom_pull(task_ids="sweep_vertex")
    actions = {result["job_name"]: (result["action"], result["cancelled"]) for result in swept}
    assert actions == {
        job_of(stack_admin, marked_failed)["name"]: ("cancel", True),
        job_of(stack_admin, cleared)["name"]: ("keep", False),
        job_of(stack_admin, handed_on)["name"]: ("keep", False),
    }
    # The sweep lists only what it may act on: the Vertex AI list filter (our work-id label, a
    # state that is not final), applied by the stack's AIP-160 filter, gives the unfinished jobs of
    # ours and leaves out a finished one.
    from gemini_batch.backends import DEFAULT_GCP_CONN_ID
    from gemini_batch.cancel_sweep import sweep_filter
    from gemini_batch.hooks import GeminiBatchHook
    from gemini_batch.identity import WORK_ID_LABEL
    from gemini_batch.states import TERMINAL_STATES

    stack_admin.set_faults(queue_delay_s=0)
    day = dt.datetime(2026, 2, 4, tzinfo=dt.timezone.utc)
    finished = run_dag(dag, logical_date=day, run_after=day)
    deadline = time.monotonic() + 60
    while job_of(stack_admin, finished)["state"] not in TERMINAL_STATES:
        assert time.monotonic() < deadline, job_of(stack_admin, finished)
        time.sleep(0.2)
    hook = GeminiBatchHook("vertex", DEFAULT_GCP_CONN_ID)
    listed = {job.name for job in hook.iter_jobs(filter=sweep_filter("vertex"))}
    unfinished = {
        job["name"]
        for job in stack_admin.jobs()
        if job["backend"] == "vertex"
        and not job["deleted"]
        and WORK_ID_LABEL in (job.get("labels") or {})
        and job["state"] not in TERMINAL_STATES
    }
    cancelling = job_of(stack_admin, marked_failed)["name"]  # may finish cancelling meanwhile
    assert listed - {cancelling} == unfinished - {cancelling}
    assert job_of(stack_admin, finished)["name"] not in listed
    assert {job_of(stack_admin, run)["name"] for run in (cleared, handed_on)} <= listed
