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

Failed-row retry rounds (``round_1``, ``round_2``; Param ``max_row_retries``), as in
gemini_batch_bigquery: each round's input is a JSONL file of exactly the day's lines whose key
the previous round left in errors with a retryable status, streamed from the day's file
(round_files.py), validated and sharded like the day's.
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
    MAX_COST_PARAM,
    RESULTS_ASSET,
    check_failed_rows,
    pipeline_job_task,
    work_scope,
)
from gemini_batch.pipeline.rounds import MAX_ROW_RETRIES, ROUNDS_PARAM, round_group_id

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
        "max_row_retries": Param(
            MAX_ROW_RETRIES, type="integer", minimum=0, maximum=MAX_ROW_RETRIES, description=ROUNDS_PARAM
        ),
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

    def day_prefix(checked: dict) -> str:
        """The day's run files (shards, rounds), relative to the bucket, named by content."""
        return f"runs/gemini_batch_gcs/{checked['day']}/{checked['fingerprint']}"

    @task
    def shard_input(checked: dict) -> list[dict]:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import shard_gcs_input

        # Named by the input's content: every run of the same file writes (and names) the same shards.
        prefix = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID).gcs(day_prefix(checked))
        return shard_gcs_input(checked["scan"], prefix, gcp_conn_id=DEFAULT_GCP_CONN_ID)

    # Runs when every shard's job task is done and one succeeded (see gemini_batch_bigquery); one
    # load for the day's jobs (round 0) and each round's, always against the day's whole input.
    @task(
        multiple_outputs=True, outlets=[RESULTS_ASSET, COSTS_ASSET], trigger_rule="all_done_min_one_success"
    )
    def load_results(
        manifests: list, round_number: int = 0, ti: Any = None, outlet_events: Any = None
    ) -> dict:
        from gemini_batch.pipeline.loader import InputKeys
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import load_results as load

        checked = {key: ti.xcom_pull(task_ids="validate_input", key=key) for key in ("day", "scan")}
        shards_from = f"{round_group_id(round_number)}.select_rows" if round_number else "shard_input"
        return load(
            list(manifests),
            settings=PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            logical_date=checked["day"],
            input_keys=InputKeys.from_gcs(checked["scan"]["source"]).to_dict(),
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
            outlet_events=outlet_events,
            shards=[shard["src"] for shard in ti.xcom_pull(task_ids=shards_from)],
            round=round_number,
        )

    # Returns the round's shards (a mapped task maps over a return value only); its work scope
    # goes to XCom under its own key.
    @task
    def select_rows(checked: dict, round_number: int, params: Any = None, ti: Any = None) -> list:
        from gemini_batch.pipeline.round_tasks import select_gcs_round
        from gemini_batch.pipeline.settings import PipelineSettings

        settings = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID)
        selection = select_gcs_round(
            settings,
            day=checked["day"],
            day_input=checked["scan"]["source"],
            day_fingerprint=checked["fingerprint"],
            day_prefix=settings.gcs(day_prefix(checked)),
            day_scope=checked["work_scope"],
            round_number=round_number,
            max_row_retries=params["max_row_retries"],
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
        )
        ti.xcom_push(key="work_scope", value=selection.pop("work_scope"))
        ti.xcom_push(key="selection", value=selection)
        return selection["shards"]

    checked = validate_input()
    run_job = pipeline_job_task(
        "run_job",
        display_name="gemini_batch_gcs",
        settings_task="validate_input",
        scope_task="validate_input",
        max_failed_ratio=1.0,
    ).expand_kwargs(shard_input(checked))
    loaded = load_results(run_job.output)
    # The rounds, unrolled (see gemini_batch_bigquery).
    for number in range(1, MAX_ROW_RETRIES + 1):
        group = round_group_id(number)
        with TaskGroup(group_id=group):
            selected = select_rows(checked, number)
            round_job = pipeline_job_task(
                "run_job",
                display_name="gemini_batch_gcs",
                settings_task="validate_input",
                scope_task=f"{group}.select_rows",
                max_failed_ratio=1.0,
            )
            round_loaded = load_results(round_job.expand_kwargs(selected).output, number)
        loaded >> selected
        loaded = round_loaded
    check_failed_rows(checked["day"]) << loaded
