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

Failed-row retry rounds (rounds.py): after the day's load, ``round_1`` and ``round_2`` each
select the rows the previous round left in the errors table with a retryable status
(RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED), build their requests table in
BigQuery, run one job of exactly those rows (``round_N.run_job``) and load it against the day's
whole input. A round with nothing to retry is skipped, and so are the later ones. The Param
``max_row_retries`` (0..2, default 2) lowers the number of rounds. Rows refused for good, or still
failing after the last round, stay in the errors table with their status and ``round``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TaskGroup, task

from gemini_batch.backends import DEFAULT_GCP_CONN_ID
from gemini_batch.pipeline.dag_config import (
    COSTS_ASSET,
    DEFAULT_ARGS,
    FRESH_JOB_PARAM,
    INCLUDE_DIR,
    MAX_COST_PARAM,
    RESULTS_ASSET,
    check_failed_rows,
    pipeline_job_task,
    run_tag,
    work_scope,
)
from gemini_batch.pipeline.rounds import MAX_ROW_RETRIES, ROUNDS_PARAM, round_group_id

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
        "max_row_retries": Param(
            MAX_ROW_RETRIES, type="integer", minimum=0, maximum=MAX_ROW_RETRIES, description=ROUNDS_PARAM
        ),
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
    # even if another failed. Its only upstream is its run_job, so a failed build skips it; the
    # day's table and the shards come from XCom. One load for the day's jobs (round 0) and for
    # each round's (round_N.load_results): always against the day's whole input.
    @task(
        multiple_outputs=True, outlets=[RESULTS_ASSET, COSTS_ASSET], trigger_rule="all_done_min_one_success"
    )
    def load_results(
        manifests: list, round_number: int = 0, ti: Any = None, outlet_events: Any = None
    ) -> dict:
        from gemini_batch.pipeline.loader import InputKeys
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import load_results as load

        if round_number:
            shards = ti.xcom_pull(task_ids=f"{round_group_id(round_number)}.select_rows")
        else:
            shards = ti.xcom_pull(task_ids="shard_requests")
        return load(
            list(manifests),
            settings=PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            logical_date=ti.xcom_pull(task_ids="build_requests", key="day"),
            input_keys=InputKeys.from_table(ti.xcom_pull(task_ids="build_requests", key="table")).to_dict(),
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
            outlet_events=outlet_events,
            shards=shards,
            round=round_number,
        )

    # Returns the round's shards (what its run_job maps over: a mapped task maps over a return
    # value only); the work scope and the selection's figures go to XCom under their own keys.
    @task
    def select_rows(
        built: dict, round_number: int, params: Any = None, run_id: Any = None, ti: Any = None
    ) -> list:
        from gemini_batch.pipeline.round_tasks import select_round
        from gemini_batch.pipeline.settings import PipelineSettings

        selection = select_round(
            PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            day=built["day"],
            day_table=built["table"],
            day_scope=built["work_scope"],
            round_number=round_number,
            max_row_retries=params["max_row_retries"],
            run_tag=run_tag(run_id),
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
        )
        ti.xcom_push(key="work_scope", value=selection.pop("work_scope"))
        ti.xcom_push(key="selection", value=selection)
        return selection["shards"]

    built = build_requests()
    shards = shard_requests(built, validate_requests(built))
    run_job = pipeline_job_task(
        "run_job",
        display_name="gemini_batch_bigquery",
        settings_task="build_requests",
        scope_task="build_requests",
        max_failed_ratio=1.0,
    ).expand(src=shards)
    loaded = load_results(run_job.output)
    # The rounds, unrolled: round N's task ids and work scope carry N, so a retry, a clear or a
    # triggerer restart re-attaches round by round. No job checks max_failed_ratio (a later round
    # may answer its failed rows): check_failed_rows does, for the day, after the last round.
    for number in range(1, MAX_ROW_RETRIES + 1):
        group = round_group_id(number)
        with TaskGroup(group_id=group):
            selected = select_rows(built, number)
            round_job = pipeline_job_task(
                "run_job",
                display_name="gemini_batch_bigquery",
                settings_task="build_requests",
                scope_task=f"{group}.select_rows",
                max_failed_ratio=1.0,
            )
            round_loaded = load_results(round_job.expand(src=selected).output, number)
        loaded >> selected
        loaded = round_loaded
    check_failed_rows(built["day"]) << loaded
