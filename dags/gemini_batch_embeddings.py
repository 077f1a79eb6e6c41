"""gemini_batch_embeddings: every day, the documents of the data interval embedded by a Vertex AI batch job.

documents table -> build_documents (SQL, in BigQuery: ``key``, ``content``) -> run_job (one bq://
text-embedding job; its output table passes the key through) -> load_embeddings (MERGE into
``embeddings``: one ARRAY<FLOAT64> vector per key and date, its dimension and token count; failed
rows into ``embedding_errors``; reconciled against the day's documents; one ``costs`` row for
the job: its tokens, billable characters and estimated cost at batch prices).

The same rules as gemini_batch_bigquery, through the same operator and loader: the day's input
table is named by its content and the job task's identity is the data interval and that content,
so every run of an unchanged day (scheduled, manual, backfill) shares one job, and a re-run makes
no new job and no new rows; changed documents are new work, and the day's rows become exactly the
new keys. The Param ``fresh_job: true`` makes a run submit its own job; the Param ``max_estimated_cost``
(USD, empty: none) refuses a new job whose estimated cost is above it (the texts' characters / 4
and their billable characters, no output tokens: gemini_batch.budget), before anything is created. The model is an embedding
model (Param ``model``, default ``text-embedding-005``, 768 dimensions): the job task embeds
because the model does (gemini_batch.job_task). Seed sample documents on the local stack with
``python -m local_stack.seed --documents 50``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from gemini_batch.backends import DEFAULT_GCP_CONN_ID
from gemini_batch.pipeline.dag_config import (
    COSTS_ASSET,
    DEFAULT_ARGS,
    EMBEDDINGS_ASSET,
    FRESH_JOB_PARAM,
    INCLUDE_DIR,
    MAX_COST_PARAM,
    pipeline_job_task,
    run_tag,
    work_scope,
)

MODEL_PARAM = "Embedding model of the job (text-embedding-005: 768 dimensions; gemini-embedding-001: 3072)"

with DAG(
    dag_id="gemini_batch_embeddings",
    description="Daily batch embeddings: a BigQuery documents table in, one vector per document out",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=3,
    default_args=DEFAULT_ARGS,
    params={
        "model": Param("text-embedding-005", type="string", minLength=1, description=MODEL_PARAM),
        "max_estimated_cost": MAX_COST_PARAM,
        "fresh_job": Param(False, type="boolean", description=FRESH_JOB_PARAM),
    },
    tags=["gemini-batch", "bigquery", "embeddings"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def build_documents(
        params: Any = None,
        data_interval_start: Any = None,
        data_interval_end: Any = None,
        run_id: Any = None,
        dag_run: Any = None,
    ) -> dict:
        from gemini_batch.pipeline.embeddings import build_documents_table
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import check_settings, day_interval

        checked = check_settings(DEFAULT_GCP_CONN_ID, model=params["model"], buckets=False)
        start, end = day_interval(data_interval_start, data_interval_end, getattr(dag_run, "run_after", None))
        built = build_documents_table(
            PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            interval_start=start,
            interval_end=end,
            table=f"documents_{start:%Y%m%d}",
            run_tag=run_tag(run_id),
            source_sql_path=INCLUDE_DIR / "sql" / "documents_for_interval.sql",
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
        )
        scope = work_scope(
            start.isoformat(), end.isoformat(), built["fingerprint"], fresh=params["fresh_job"]
        )
        return {
            **built,
            "model": checked["model"],
            "location": checked["location"],
            "work_scope": scope,
        }

    # A mapped task maps over a return value only: the day's one job source, as a list.
    @task
    def job_sources(built: dict) -> list[str]:
        return [built["table"]]

    @task(multiple_outputs=True, outlets=[EMBEDDINGS_ASSET, COSTS_ASSET])
    def load_embeddings(manifests: list, ti: Any = None, outlet_events: Any = None) -> dict:
        from gemini_batch.pipeline.embeddings import load_embeddings as load
        from gemini_batch.pipeline.settings import PipelineSettings

        return load(
            list(manifests),
            settings=PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            logical_date=ti.xcom_pull(task_ids="build_documents", key="day"),
            table=ti.xcom_pull(task_ids="build_documents", key="table"),
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
            outlet_events=outlet_events,
        )

    built = build_documents()
    # The one job of the day, as a mapped task over its one source: the same job task (and its
    # identity, resume and polling) as the prompts pipelines' shards.
    run_job = pipeline_job_task(
        "run_job",
        display_name="gemini_batch_embeddings",
        settings_task="build_documents",
        scope_task="build_documents",
    ).expand(src=job_sources(built))
    load_embeddings(run_job.output)
