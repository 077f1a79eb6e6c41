"""gemini_batch_bigquery: every day, the prompts of the data interval through a Vertex AI batch job.

prompts table -> build_requests (SQL, in BigQuery) -> validate_requests -> shard_requests ->
run_job (one bq:// job per shard, mapped; bq:// output) -> load_results (MERGE, reconcile).

Backfills and re-runs are safe: each run reads exactly its interval, the job task re-attaches to
its job on retry, and the results are MERGEd on (key, logical_date), so a re-run of a day
replaces its rows. ``airflow backfill create --dag-id gemini_batch_bigquery --from-date
2026-01-01 --to-date 2026-01-03``.

One job per data interval: the requests table is named by its content's fingerprint, and the job
task's identity is the data interval and that fingerprint, so every run of a day (scheduled,
manual, backfill, the run made by unpausing) shares one job per shard while the prompts are
unchanged; changed prompts get a new job, and the day's rows become exactly the new keys. The
Param ``fresh_job: true`` makes a run submit its own jobs. A manual run without a logical date
processes the last whole day before it was triggered.

Partial shards: when a shard's job fails, load_results still loads and reconciles the others,
then fails; clearing the failed run_job task (or re-running the day) resubmits only that shard.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from gemini_batch import GeminiBatchCreateJobOperator
from gemini_batch.backends import DEFAULT_GCP_CONN_ID
from gemini_batch.pipeline.dag_config import (
    COSTS_ASSET,
    DEFAULT_ARGS,
    FRESH_JOB_PARAM,
    INCLUDE_DIR,
    MAX_COST_PARAM,
    RESULTS_ASSET,
    job_task_kwargs,
    run_tag,
    work_scope,
)

MODEL_PARAM = "Gemini model of the jobs; empty: the Variable gemini_batch_model (default gemini-2.5-flash)"

with DAG(
    dag_id="gemini_batch_bigquery",
    description="Daily Gemini batch prediction: BigQuery prompts in, typed BigQuery results out",
    # One run per day, its data interval that day (logical date = interval start), also in backfills.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=3,
    default_args=DEFAULT_ARGS,
    params={
        "model": Param(None, type=["null", "string"], description=MODEL_PARAM),
        "max_estimated_cost": MAX_COST_PARAM,
        "fresh_job": Param(False, type="boolean", description=FRESH_JOB_PARAM),
    },
    tags=["gemini-batch", "bigquery"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def build_requests(
        params: Any = None,
        data_interval_start: Any = None,
        data_interval_end: Any = None,
        run_id: Any = None,
        dag_run: Any = None,
    ) -> dict:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import build_requests_table, check_settings, day_interval

        checked = check_settings(DEFAULT_GCP_CONN_ID, model=params["model"], buckets=False)
        start, end = day_interval(data_interval_start, data_interval_end, getattr(dag_run, "run_after", None))
        built = build_requests_table(
            PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            interval_start=start,
            interval_end=end,
            table=f"requests_{start:%Y%m%d}",
            run_tag=run_tag(run_id),
            source_sql_path=INCLUDE_DIR / "sql" / "prompts_for_interval.sql",
            template_path=INCLUDE_DIR / "templates" / "request.json",
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
        )
        scope = work_scope(
            start.isoformat(), end.isoformat(), built["fingerprint"], fresh=params["fresh_job"]
        )
        return {**built, "model": checked["model"], "location": checked["location"], "work_scope": scope}

    @task(multiple_outputs=True)
    def validate_requests(built: dict) -> dict:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import validate_requests_table

        project = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID).project
        return validate_requests_table(built["table"], gcp_conn_id=DEFAULT_GCP_CONN_ID, project=project)

    @task
    def shard_requests(built: dict, scan: dict) -> list[str]:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import shard_requests_table

        project = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID).project
        return shard_requests_table(built["table"], gcp_conn_id=DEFAULT_GCP_CONN_ID, project=project)

    # Runs when every shard's job task is done and one succeeded: the finished shards are loaded
    # even if another failed. Its only upstream is run_job, so a failed build skips it; the
    # day's table and shards come from XCom.
    @task(
        multiple_outputs=True, outlets=[RESULTS_ASSET, COSTS_ASSET], trigger_rule="all_done_min_one_success"
    )
    def load_results(manifests: list, ti: Any = None, outlet_events: Any = None) -> dict:
        from gemini_batch.pipeline.loader import InputKeys
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import load_results as load

        return load(
            list(manifests),
            settings=PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            logical_date=ti.xcom_pull(task_ids="build_requests", key="day"),
            input_keys=InputKeys.from_table(ti.xcom_pull(task_ids="build_requests", key="table")).to_dict(),
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
            outlet_events=outlet_events,
            shards=ti.xcom_pull(task_ids="shard_requests"),
        )

    built = build_requests()
    shards = shard_requests(built, validate_requests(built))
    run_job = GeminiBatchCreateJobOperator.partial(
        task_id="run_job",
        model="{{ ti.xcom_pull(task_ids='build_requests', key='model') }}",
        location="{{ ti.xcom_pull(task_ids='build_requests', key='location') }}",
        display_name="gemini_batch_bigquery",
        work_scope="{{ ti.xcom_pull(task_ids='build_requests', key='work_scope') }}",
        **job_task_kwargs(),
    ).expand(src=shards)
    load_results(run_job.output)
