"""gemini_batch_housekeeping: delete finished batch jobs older than N days (dry run by default).

list_vertex_jobs + list_gemini_api_jobs -> select_jobs (terminal, older than ``older_than_days``,
made by Airflow unless ``only_airflow_jobs`` is off) -> delete_job (mapped; skipped in a dry run).
Deleting a job removes the job resource only: its results in GCS, BigQuery or the Files API stay.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Param, task

from gemini_batch import GeminiBatchDeleteJobOperator, GeminiBatchListJobsOperator
from gemini_batch.backends import BACKENDS, DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID
from gemini_batch.pipeline.dag_config import DEFAULT_ARGS, JOB_RETRIES

#: Most jobs listed per backend and run (the list travels as XCom); older ones go on the next run.
MAX_JOBS_LISTED = 1000
JOB_TASK = {
    "retries": JOB_RETRIES,
    "gcp_conn_id": DEFAULT_GCP_CONN_ID,
    "gemini_api_conn_id": DEFAULT_GEMINI_API_CONN_ID,
}

with DAG(
    dag_id="gemini_batch_housekeeping",
    description="Delete finished Gemini batch jobs older than N days",
    schedule="@weekly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "older_than_days": Param(30, type="integer", minimum=0, title="Older than (days)"),
        "dry_run": Param(
            True, type="boolean", title="Dry run", description="Only list what would be deleted"
        ),
        "only_airflow_jobs": Param(
            True,
            type="boolean",
            title="Only jobs made by Airflow",
            description="Jobs whose display name carries an Airflow work id",
        ),
    },  # fmt: skip
    tags=["gemini-batch", "housekeeping"],
    doc_md=__doc__,
) as dag:
    listed = [
        GeminiBatchListJobsOperator(task_id=f"list_{backend}_jobs", backend=backend,
                                    limit=MAX_JOBS_LISTED, **JOB_TASK)
        for backend in BACKENDS
    ]  # fmt: skip

    @task
    def select_jobs(vertex: list, gemini_api: list, params: Any = None) -> list[str]:
        from gemini_batch.pipeline.housekeeping import select_expired_jobs

        return select_expired_jobs(
            [*vertex, *gemini_api],
            older_than=dt.timedelta(days=params["older_than_days"]),
            now=dt.datetime.now(dt.timezone.utc),
            only_airflow_jobs=params["only_airflow_jobs"],
            dry_run=params["dry_run"],
        )

    selected = select_jobs(listed[0].output, listed[1].output)
    GeminiBatchDeleteJobOperator.partial(task_id="delete_job", **JOB_TASK).expand(job_name=selected)
