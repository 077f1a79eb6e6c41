"""gemini_batch_adhoc: a batch on demand, from the trigger form: prompts or a file, either backend.

Trigger it with the form (model, backend, prompts one per line or a gs:// JSONL file,
temperature). Prompts travel as a staged file (Files API upload, or a JSONL in GCS for Vertex
AI); only its name goes through XCom, unless the form asks for inline requests. Manual only, so
the DAG starts unpaused. prepare (validate, stage) -> run_job (Gemini API inline or file, or Vertex AI
gs://) -> load_results (into the same results table, dated by the run).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Param, task

from gemini_batch import GeminiBatchCreateJobOperator
from gemini_batch.backends import DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID
from gemini_batch.pipeline.dag_config import (
    COSTS_ASSET,
    DEFAULT_ARGS,
    INCLUDE_DIR,
    MAX_COST_PARAM,
    RESULTS_ASSET,
    job_task_kwargs,
    run_tag,
)

#: What the form accepts as a file: a gs:// JSONL object (checked in the browser, before a run).
INPUT_FILE_PATTERN = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/.+\.jsonl$"

with DAG(
    dag_id="gemini_batch_adhoc",
    description="Gemini batch on demand: prompts or a file from the trigger form, results in BigQuery",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    # Manual only (no schedule), so unpaused is safe: the form works right after `make airflow`.
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS,
    params={
        "model": Param(
            None,
            type=["null", "string"],
            title="Model",
            description="The Gemini model that answers, e.g. gemini-2.5-flash; empty: the Variable gemini_batch_model (default gemini-2.5-flash)",
        ),
        "backend": Param(
            "gemini_api",
            type="string",
            enum=["gemini_api", "vertex"],
            values_display={
                "gemini_api": "Gemini API (API key)",
                "vertex": "Vertex AI (Google Cloud project)",
            },
            title="Backend",
            description="Where the batch job runs.",
        ),
        "prompts": Param(
            ["Explain batch prediction in one sentence."],
            type=["null", "array"],
            items={"type": "string"},
            title="Prompts",
            description="One prompt per line, one request each. Leave empty to use a file instead.",
        ),
        "input_file": Param(
            None,
            type=["null", "string"],
            pattern=INPUT_FILE_PATTERN,
            title="Or a file of requests",
            description='A gs://bucket/path.jsonl file, instead of prompts: {"request"} lines with the '
            'gemini_batch_key label (Vertex AI) or {"key", "request"} lines (Gemini API).',
        ),
        "gemini_input": Param(
            "file",
            type="string",
            enum=["file", "inline"],
            values_display={
                "file": "A staged file (uploaded with the Files API)",
                "inline": "Inline in the request (small batches: the prompts pass through XCom)",
            },
            title="Gemini API input",
            description="How prompts reach the Gemini API (ignored on Vertex AI). A staged file keeps "
            "them out of Airflow's database; inline suits a handful of prompts.",
        ),
        "temperature": Param(
            0.2,
            type="number",
            minimum=0,
            maximum=2,
            title="Temperature",
            description="0 for the most repeatable answers, up to 2 for the most varied.",
        ),
        "max_estimated_cost": MAX_COST_PARAM,
    },  # fmt: skip
    tags=["gemini-batch", "adhoc"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def prepare(
        params: Any = None, run_id: Any = None, logical_date: Any = None, dag_run: Any = None
    ) -> dict:
        from gemini_batch.pipeline.adhoc import prepare_adhoc
        from gemini_batch.pipeline.builder import RequestTemplate
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import check_settings, fail_fast, genai_client, storage_client

        inline_only = (
            params["backend"] == "gemini_api"
            and not params["input_file"]
            and params["gemini_input"] == "inline"
        )
        checked = check_settings(DEFAULT_GCP_CONN_ID, model=params["model"], buckets=not inline_only)
        settings = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID)
        template = RequestTemplate.from_file(INCLUDE_DIR / "templates" / "request.json")
        uses_gemini_files = params["backend"] == "gemini_api" and (
            params["input_file"] or params["gemini_input"] == "file"
        )
        batch = fail_fast(prepare_adhoc)(
            backend=params["backend"],
            template=template.with_generation_config(temperature=params["temperature"]),
            tag=run_tag(run_id),
            prompts=params["prompts"],
            input_file=params["input_file"],
            gemini_input=params["gemini_input"],
            bucket=settings.bucket,
            storage_client=storage_client(DEFAULT_GCP_CONN_ID),
            genai_client=genai_client(DEFAULT_GEMINI_API_CONN_ID) if uses_gemini_files else None,
        )
        day = (logical_date or dag_run.run_after).date().isoformat()
        return {**batch.to_dict(), "day": day, "model": checked["model"], "location": checked["location"]}

    @task(multiple_outputs=True, outlets=[RESULTS_ASSET, COSTS_ASSET])
    def load_results(manifest: dict, input_keys: dict, day: str, outlet_events: Any = None) -> dict:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import load_results as load

        return load(
            [manifest],
            settings=PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            logical_date=day,
            input_keys=input_keys,
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
            gemini_api_conn_id=DEFAULT_GEMINI_API_CONN_ID,
            outlet_events=outlet_events,
        )

    batch = prepare()
    run_job = GeminiBatchCreateJobOperator(
        task_id="run_job",
        src=batch["src"],
        model="{{ ti.xcom_pull(task_ids='prepare', key='model') }}",
        location="{{ ti.xcom_pull(task_ids='prepare', key='location') }}",
        backend="{{ params.backend }}",
        display_name="gemini_batch_adhoc",
        **job_task_kwargs(),
    )
    load_results(run_job.output, batch["input_keys"], batch["day"])

    @task(multiple_outputs=False, trigger_rule="all_done")
    def delete_unsubmitted_inputs(params: Any = None, ti: Any = None, dag_run: Any = None) -> dict:
        """Nothing left behind: a run that failed before or at submit deletes what prepare staged."""
        from gemini_batch.pipeline.tasks import delete_unsubmitted_inputs as delete

        return delete(
            ti.xcom_pull(task_ids="prepare", key="staged"),
            job_task={
                "dag_id": dag_run.dag_id,
                "task_id": "run_job",
                "run_id": dag_run.run_id,
                "map_index": -1,
            },
            backend=params["backend"],
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
            gemini_api_conn_id=DEFAULT_GEMINI_API_CONN_ID,
        )

    run_job >> delete_unsubmitted_inputs()
