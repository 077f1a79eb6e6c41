"""gemini_batch_cancel_sweep: cancel running batch jobs whose task instance a user ended.

Every two minutes, per backend: list the running jobs that carry an Airflow identity tag, find
the task instance that owns each, and cancel the job when that task instance was marked failed
or success (or skipped, upstream_failed, removed) -- never when it runs, waits, retries or was
cleared. The second path behind ``on_kill``, which Airflow 3.3.2 cuts off after about a second
and never calls when no triggerer held the trigger. See gemini_batch.cancel_sweep.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Param, task

from gemini_batch.backends import BACKENDS, DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID
from gemini_batch.pipeline.dag_config import DEFAULT_ARGS

#: How often the sweep runs: the bound on how long a job of an ended task keeps running.
SWEEP_EVERY = dt.timedelta(minutes=2)
CONN_IDS = {"vertex": DEFAULT_GCP_CONN_ID, "gemini_api": DEFAULT_GEMINI_API_CONN_ID}

with DAG(
    dag_id="gemini_batch_cancel_sweep",
    description="Cancel running Gemini batch jobs whose task a user ended",
    schedule=SWEEP_EVERY,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    dagrun_timeout=SWEEP_EVERY * 5,
    default_args={**DEFAULT_ARGS, "retries": 0},
    params={
        "cancel_orphans": Param(
            False,
            type="boolean",
            title="Cancel orphans",
            description="Also cancel jobs whose DAG run was deleted (off: another deployment's look the same)",
        ),
    },
    tags=["gemini-batch", "housekeeping"],
    doc_md=__doc__,
) as dag:

    @task
    def sweep_backend(backend: str, params: Any = None) -> list[dict[str, Any]]:
        import logging

        from gemini_batch.cancel_sweep import sweep

        log = logging.getLogger("gemini_batch.cancel_sweep")
        return sweep(backend, CONN_IDS[backend], log, cancel_orphans=bool(params["cancel_orphans"]))  # type: ignore[arg-type]

    for backend in BACKENDS:
        sweep_backend.override(task_id=f"sweep_{backend}")(backend)
