"""What the pipeline DAGs share: the results Asset, default arguments, job-task settings, paths.

Invariant: importing this module is cheap and touches no network, Variable or connection, so DAG
files that import it stay cheap to parse. Values that may differ per deployment are read from
the environment here (parse time, no I/O) or from Variables inside tasks (settings.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, Param, task

from gemini_batch.backends import DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID
from gemini_batch.pipeline.limits import VERTEX_LIMITS, JobLimits

__all__ = [
    "COSTS_ASSET",
    "DEFAULT_ARGS",
    "EMBEDDINGS_ASSET",
    "INCLUDE_DIR",
    "JOB_RETRIES",
    "MAX_COST_PARAM",
    "MAX_FAILED_RATIO",
    "RESULTS_ASSET",
    "check_failed_rows",
    "job_limits",
    "job_task_kwargs",
    "pipeline_job_task",
    "run_tag",
    "work_scope",
]

#: The pipelines' ``fresh_job`` Param: by default every run of a data interval shares its jobs.
FRESH_JOB_PARAM = (
    "Submit new jobs for this run even if another run of the same data interval and inputs already has "
    "them (default: reuse them)"
)

#: The results table, as an Asset: the pipelines produce it, downstream DAGs are scheduled on it.
#: Each load attaches ``{"table", "errors_table", "logical_date", "counts"}`` to its event (the
#: table's name is a runtime setting). A URI without a scheme: one with a scheme makes Airflow load
#: every provider's URI handlers at parse time (the Google one imports google-cloud-storage).
RESULTS_ASSET = Asset(name="gemini_batch_results", uri="gemini_batch_results")
#: The costs table (one row per job: tokens by kind, estimated cost; costs_table.py), written by
#: every load_results. Each load attaches ``{"table", "logical_date", "tokens",
#: "estimated_cost_usd"}`` to its event.
COSTS_ASSET = Asset(name="gemini_batch_costs", uri="gemini_batch_costs")
#: The embeddings table (one vector per document key and date), written by gemini_batch_embeddings'
#: load; each load attaches ``{"table", "errors_table", "logical_date", "counts"}`` to its event.
EMBEDDINGS_ASSET = Asset(name="gemini_batch_embeddings", uri="gemini_batch_embeddings")

#: include/ of the project (SQL, templates): beside plugins/ in every Airflow project layout.
INCLUDE_DIR = Path(
    os.environ.get("GEMINI_BATCH_INCLUDE_DIR", Path(__file__).resolve().parents[3] / "include")
)

#: Retries of the job task. Safe: a retry re-attaches to the job of the same work, never submits twice.
JOB_RETRIES = 3
#: Largest share of failed rows a job may have and still be loaded (failed rows go to the errors table).
MAX_FAILED_RATIO = float(os.environ.get("GEMINI_BATCH_MAX_FAILED_RATIO", "0.1"))

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-eng",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
}


#: The pipelines' Param ``max_estimated_cost``: the budget of each new batch job of the run, passed
#: to the job operator (budget.py). Per job: a sharded run checks each shard's job against it.
MAX_COST_PARAM = Param(
    None,
    type=["null", "number"],
    minimum=0,
    title="Budget per job (USD)",
    description="Refuse to submit a batch job whose estimated cost at batch prices is above this "
    "many USD (no job is created; the task log names the estimate). Empty: no budget.",
)


def job_task_kwargs() -> dict[str, Any]:
    """Arguments of every job task: deferrable, retried, polled every ``GEMINI_BATCH_POLL_INTERVAL`` s.

    The poll interval comes from the environment (default 30 s) so that local runs can poll fast;
    the budget is the run's Param ``max_estimated_cost`` (:data:`MAX_COST_PARAM`; empty: none).
    """
    return {
        "deferrable": True,
        "retries": JOB_RETRIES,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "poll_interval": float(os.environ.get("GEMINI_BATCH_POLL_INTERVAL", "30")),
        "max_failed_ratio": MAX_FAILED_RATIO,
        "max_estimated_cost": "{{ params.get('max_estimated_cost') }}",
        "gcp_conn_id": DEFAULT_GCP_CONN_ID,
        "gemini_api_conn_id": DEFAULT_GEMINI_API_CONN_ID,
    }


def pipeline_job_task(
    task_id: str, *, display_name: str, settings_task: str, scope_task: str, **overrides: Any
) -> Any:
    """The job operator of a pipeline's day or of one of its rounds, to ``expand`` over its shards.

    :param settings_task: the task that pushed ``model`` and ``location`` to XCom.
    :param scope_task: the task that pushed the jobs' ``work_scope`` (the day's, or the round's).
    :param overrides: operator arguments over :func:`job_task_kwargs`.
    """
    from gemini_batch import GeminiBatchCreateJobOperator

    return GeminiBatchCreateJobOperator.partial(
        task_id=task_id,
        model=f"{{{{ ti.xcom_pull(task_ids='{settings_task}', key='model') }}}}",
        location=f"{{{{ ti.xcom_pull(task_ids='{settings_task}', key='location') }}}}",
        display_name=display_name,
        work_scope=f"{{{{ ti.xcom_pull(task_ids='{scope_task}', key='work_scope') }}}}",
        **{**job_task_kwargs(), **overrides},
    )


# After a day's last round (a skipped round counts as done): the day fails if more of its rows
# still failed than MAX_FAILED_RATIO allows. The pipelines' jobs themselves accept any share of
# failed rows (max_failed_ratio 1.0): a round may still answer them.
@task(multiple_outputs=True, trigger_rule="none_failed")
def check_failed_rows(day: str) -> dict:
    """The day's answered and failed rows after its rounds (round_tasks.check_day_failures)."""
    from gemini_batch.pipeline.round_tasks import check_day_failures
    from gemini_batch.pipeline.settings import PipelineSettings

    return check_day_failures(
        PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
        day=day,
        max_failed_ratio=MAX_FAILED_RATIO,
        gcp_conn_id=DEFAULT_GCP_CONN_ID,
    )


def job_limits() -> JobLimits:
    """The per-job limits shards are cut under: Vertex AI's, or lower ones from the environment.

    ``GEMINI_BATCH_MAX_REQUESTS_PER_JOB`` and ``GEMINI_BATCH_MAX_BYTES_PER_JOB`` can only lower
    them (smaller jobs finish sooner; tests use them to make shards of small inputs).
    """
    requests = int(os.environ.get("GEMINI_BATCH_MAX_REQUESTS_PER_JOB", VERTEX_LIMITS.max_requests))
    size = int(os.environ.get("GEMINI_BATCH_MAX_BYTES_PER_JOB", VERTEX_LIMITS.max_bytes))
    return replace(
        VERTEX_LIMITS,
        max_requests=min(requests, VERTEX_LIMITS.max_requests),
        max_bytes=min(size, VERTEX_LIMITS.max_bytes),
    )


def run_tag(run_id: str) -> str:
    """A short, name-safe tag of a DAG run (for run-scoped tables and GCS prefixes)."""
    return hashlib.blake2b(run_id.encode(), digest_size=4).hexdigest()


def work_scope(interval_start: str, interval_end: str, fingerprint: str, *, fresh: bool) -> str:
    """The job tasks' work scope (identity.py): the data interval and the input's content.

    Every run of the same interval with the same inputs (scheduled, manual, backfill, the run made
    by unpausing) names the same work, so they share one job per shard; changed inputs are new
    work. ``fresh`` (the ``fresh_job`` Param) gives ``""``: the run's own work, new jobs.
    """
    return "" if fresh else f"{interval_start}--{interval_end}/{fingerprint}"
