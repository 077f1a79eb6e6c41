"""gemini_batch_gcs: every day, the JSONL requests landed in GCS for the day, through Vertex AI.

``gs://<bucket>/inputs/<YYYY-MM-DD>/requests.jsonl`` -> validate_input (streamed, every line) ->
shard_input (under 200,000 requests and 1 GB per job) -> run_job (one gs:// job per shard,
mapped) -> load_results (all shards into the same results; MERGE, reconcile).

Input lines are ``{"request": {...}}`` with the key in ``request.labels.gemini_batch_key``
(``python -m local_stack.seed`` writes them for the local stack). A bad file fails
validate_input with the file and line of each problem, before any job exists.

One job per data interval: the shards are named by the input object's content fingerprint (its
checksums) and the job task's identity is the data interval and that fingerprint, so every run of
a day shares one job per shard while the file is unchanged; a changed file gets new jobs, and the
day's rows become exactly its keys. The Param ``fresh_job: true`` makes a run submit its own jobs.
Partial shards: the finished shards are loaded even when one failed; clearing the failed run_job
task (or re-running the day) resubmits only that shard.
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
    MAX_COST_PARAM,
    RESULTS_ASSET,
    job_task_kwargs,
    work_scope,
)

MODEL_PARAM = "Gemini model of the jobs; empty: the Variable gemini_batch_model (default gemini-2.5-flash)"

with DAG(
    dag_id="gemini_batch_gcs",
    description="Daily Gemini batch prediction: JSONL in GCS, sharded, typed BigQuery results out",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=3,
    default_args=DEFAULT_ARGS,
    params={
        "model": Param(None, type=["null", "string"], description=MODEL_PARAM),
        "max_estimated_cost": MAX_COST_PARAM,
        "input_path": Param(
            "inputs/{day}/requests.jsonl",
            type="string",
            description="The day's input, relative to the pipelines' bucket; {day} is YYYY-MM-DD",
        ),
        "fresh_job": Param(False, type="boolean", description=FRESH_JOB_PARAM),
    },  # fmt: skip
    tags=["gemini-batch", "gcs"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def validate_input(
        params: Any = None,
        data_interval_start: Any = None,
        data_interval_end: Any = None,
        dag_run: Any = None,
    ) -> dict:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import (
            check_settings,
            day_interval,
            gcs_input_fingerprint,
            validate_gcs_input,
        )

        checked = check_settings(DEFAULT_GCP_CONN_ID, model=params["model"])
        start, end = day_interval(data_interval_start, data_interval_end, getattr(dag_run, "run_after", None))
        day = start.date().isoformat()
        uri = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID).gcs(params["input_path"].format(day=day))
        scan = validate_gcs_input(uri, gcp_conn_id=DEFAULT_GCP_CONN_ID)
        fingerprint = gcs_input_fingerprint(uri, gcp_conn_id=DEFAULT_GCP_CONN_ID)
        return {
            "day": day,
            "scan": scan,
            "fingerprint": fingerprint,
            "work_scope": work_scope(
                start.isoformat(), end.isoformat(), fingerprint, fresh=params["fresh_job"]
            ),
            "model": checked["model"],
            "location": checked["location"],
        }

    @task
    def shard_input(checked: dict) -> list[dict]:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import shard_gcs_input

        # Named by the input's content: every run of the same file writes (and names) the same shards.
        prefix = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID).gcs(
            f"runs/gemini_batch_gcs/{checked['day']}/{checked['fingerprint']}"
        )
        return shard_gcs_input(checked["scan"], prefix, gcp_conn_id=DEFAULT_GCP_CONN_ID)

    # Runs when every shard's job task is done and one succeeded (see gemini_batch_bigquery).
    @task(
        multiple_outputs=True, outlets=[RESULTS_ASSET, COSTS_ASSET], trigger_rule="all_done_min_one_success"
    )
    def load_results(manifests: list, ti: Any = None, outlet_events: Any = None) -> dict:
        from gemini_batch.pipeline.loader import InputKeys
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import load_results as load

        checked = {key: ti.xcom_pull(task_ids="validate_input", key=key) for key in ("day", "scan")}
        return load(
            list(manifests),
            settings=PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            logical_date=checked["day"],
            input_keys=InputKeys.from_gcs(checked["scan"]["source"]).to_dict(),
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
            outlet_events=outlet_events,
            shards=[shard["src"] for shard in ti.xcom_pull(task_ids="shard_input")],
        )

    checked = validate_input()
    run_job = GeminiBatchCreateJobOperator.partial(
        task_id="run_job",
        model="{{ ti.xcom_pull(task_ids='validate_input', key='model') }}",
        location="{{ ti.xcom_pull(task_ids='validate_input', key='location') }}",
        display_name="gemini_batch_gcs",
        work_scope="{{ ti.xcom_pull(task_ids='validate_input', key='work_scope') }}",
        **job_task_kwargs(),
    ).expand_kwargs(shard_input(checked))
    load_results(run_job.output)
