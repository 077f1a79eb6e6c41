"""providers-google's own ``GenAIGeminiCreateEmbeddingsBatchJobOperator`` against the local stack.

Real Airflow DAG runs (``dag.test()``), the operator unmodified: its hook builds a plain
``genai.Client(api_key=...)``, which reaches the emulator through the stack's
``GOOGLE_GEMINI_BASE_URL``. Inline input (waiting in the task, and deferred to its trigger) and
a ``files/`` input whose results file the operator downloads; the emulator's job list proves
one job per task.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from local_stack.emulator.embedding import embedding_values

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:batches.create_embeddings\\(\\) is experimental"),
]

MODEL = "gemini-embedding-001"
TEXTS = ["first document", "second document"]


def _dag(**operator_kwargs: Any) -> Any:
    from airflow.providers.google.cloud.operators.gen_ai import GenAIGeminiCreateEmbeddingsBatchJobOperator
    from airflow.sdk import DAG

    with DAG(
        dag_id=f"it_pg_embed_{uuid.uuid4().hex[:10]}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
    ) as dag:
        GenAIGeminiCreateEmbeddingsBatchJobOperator(
            task_id="embed",
            project_id="local-project",
            location="us-central1",
            model=MODEL,
            gemini_api_key="local-gemini-api-key",
            retrieve_result=True,
            polling_interval=1,
            **operator_kwargs,
        )
    return dag


def _xcom(dag_run: Any, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id="embed", key=key)
            .one()
        )
        return XComModel.deserialize_value(row)


@pytest.mark.parametrize("deferrable", [False, True], ids=["wait", "deferrable"])
def test_the_operator_embeds_inline_requests_and_pushes_the_vectors(run_dag, stack_admin, deferrable) -> None:
    source = {
        "contents": [{"parts": [{"text": text}]} for text in TEXTS],
        "config": {"output_dimensionality": 32},
    }

    dag_run = run_dag(_dag(input_source=source, wait_until_complete=True, deferrable=deferrable))

    assert dag_run.state == "success"
    vectors = [item["values"] for item in _xcom(dag_run, "job_results")]
    assert vectors == [embedding_values(MODEL, text)[:32] for text in TEXTS]
    [job] = stack_admin.jobs()
    assert job["state"] == "JOB_STATE_SUCCEEDED" and job["model"] == f"models/{MODEL}"


def test_the_operator_embeds_a_files_input_and_saves_the_results_file(
    run_dag, stack_admin, local_stack, tmp_path
) -> None:
    from google import genai

    lines = "".join(
        json.dumps({"key": f"doc-{i}", "request": {"content": {"parts": [{"text": text}]}}}) + "\n"
        for i, text in enumerate(TEXTS)
    )
    client = genai.Client(api_key=local_stack.api_key, http_options={"base_url": local_stack.gemini_url})
    uploaded = client.files.upload(file=io.BytesIO(lines.encode()), config={"mime_type": "application/jsonl"})

    dag_run = run_dag(
        _dag(input_source=uploaded.name, wait_until_complete=True, results_folder=str(tmp_path))
    )

    assert dag_run.state == "success"
    saved = _xcom(dag_run, "job_results")
    results = {row["key"]: row for row in map(json.loads, Path(saved).read_text().splitlines())}
    assert results["doc-1"]["response"]["embedding"]["values"] == embedding_values(MODEL, TEXTS[1])
    assert [job["state"] for job in stack_admin.jobs()] == ["JOB_STATE_SUCCEEDED"]
