"""Embedding jobs of the create operator on the Gemini API, in real Airflow runs against the local
stack: inline and ``files/`` sources through ``batches.create_embeddings``, the manifest's vectors
and tokens (read from the raw body, compat.py), and a results file loaded into the embeddings table.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from local_stack.emulator.embedding import embedding_values
from tests.integration.test_batch_operators import API_KEY, build_dag, jobs_of, manifest_of, states

pytestmark = [pytest.mark.integration]

MODEL = "gemini-embedding-001"
TEXTS = ["The cat sat on the mat.", "Rivers run to the sea.", "Batch jobs cost half."]


@pytest.fixture(autouse=True)
def _fresh_clients() -> Any:
    from gemini_batch.hooks import clear_client_cache

    clear_client_cache()
    yield
    clear_client_cache()


@pytest.fixture(params=[False, True], ids=["sync", "deferrable"])
def deferrable(request: pytest.FixtureRequest) -> bool:
    return request.param


def _genai(local_stack: Any) -> Any:
    from google import genai

    return genai.Client(api_key=API_KEY, http_options={"base_url": local_stack.gemini_url})


def test_inline_embeddings_come_back_in_order_with_their_tokens(run_dag, stack_admin, deferrable):
    src = [{"contents": [{"parts": [{"text": text}]}]} for text in TEXTS]

    dag_run = run_dag(build_dag(src=src, model=MODEL, deferrable=deferrable))

    assert dag_run.state == "success", states(dag_run)
    manifest = manifest_of(dag_run)
    assert (manifest["task"], manifest["backend"], manifest["outcome"]) == (
        "embed",
        "gemini_api",
        "succeeded",
    )
    vectors = [item["response"]["embedding"]["values"] for item in manifest["inline_responses"]]
    assert vectors == [embedding_values(MODEL, text) for text in TEXTS]
    assert manifest["tokens"]["prompt"] == sum(math.ceil(len(text) / 4) for text in TEXTS)
    (job,) = jobs_of(stack_admin, manifest["work_id"])
    assert (job["task"], job["name"]) == ("embed", manifest["job_name"])


def test_a_files_source_embeds_into_a_results_file_that_loads_into_the_embeddings_table(
    run_dag, stack_admin, local_stack, tmp_path, bq_client, bq_dataset, gcs_client, gcs_bucket
):
    from gemini_batch.pipeline.loader import InputKeys, ResultsLoader

    client = _genai(local_stack)
    path = tmp_path / "documents.jsonl"
    lines = [
        {"key": f"d{i}", "request": {"content": {"parts": [{"text": text}]}}} for i, text in enumerate(TEXTS)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    uploaded = client.files.upload(file=str(path), config={"mime_type": "application/jsonl"})

    dag_run = run_dag(build_dag(src=uploaded.name, model=MODEL, deferrable=True))

    assert dag_run.state == "success", states(dag_run)
    manifest = manifest_of(dag_run)
    assert manifest["task"] == "embed" and manifest["file_name"]
    assert manifest["counts"] == {"succeeded": 3, "failed": 0, "incomplete": 0, "total": 3}
    table = f"bq://{bq_dataset.project}.{bq_dataset.dataset_id}"
    counts = ResultsLoader(
        bigquery_client=bq_client,
        storage_client=gcs_client,
        genai_client=client,
        staging_gcs=f"gs://{gcs_bucket.name}/staging",
    ).load(
        [manifest],
        logical_date="2026-01-01",
        input_keys=InputKeys.from_keys([line["key"] for line in lines]),
        results_table=f"{table}.embeddings",
        errors_table=f"{table}.embedding_errors",
    )
    assert (counts.succeeded, counts.failed, counts.missing) == (3, 0, 0)
    rows = {row["key"]: row for row in bq_client.query(f"SELECT * FROM `{table[5:]}.embeddings`").result()}
    for line, text in zip(lines, TEXTS, strict=True):
        row = rows[line["key"]]
        assert list(row["embedding"]) == embedding_values(MODEL, text)
        assert (row["dimension"], row["token_count"], row["model"]) == (3072, math.ceil(len(text) / 4), MODEL)


def test_an_inline_embeddings_job_is_priced_and_budgeted_by_its_texts(run_dag, stack_admin, capfd, caplog):
    """gemini-embedding-001 on the Gemini API, by hand from prices.json: 0.15 USD per 1M input
    tokens, half in batch; an embedding has no output tokens, so the estimate is its texts' / 4."""
    src = [{"contents": [{"parts": [{"text": text}]}]} for text in TEXTS]
    tokens = sum(math.ceil(len(text) / 4) for text in TEXTS)
    usd = tokens * 0.15 / 2 / 1e6
    jobs_before = len(jobs_of(stack_admin))  # the stack is shared by the session's tests

    refused = run_dag(build_dag(src=src, model=MODEL, deferrable=False, max_estimated_cost=usd / 2))

    assert states(refused)["batch"] == "failed"
    assert len(jobs_of(stack_admin)) == jobs_before  # no job was created
    logs = capfd.readouterr().out + caplog.text
    assert (
        f"its estimated cost {usd:.9f} USD is above max_estimated_cost={usd / 2} (3 request(s), about "
        f"{tokens} input and 0 output tokens at batch prices of {MODEL} retrieved 2026-12-06;"
    ) in logs, logs[-3000:]

    dag_run = run_dag(build_dag(src=src, model=MODEL, deferrable=False, max_estimated_cost=usd))

    assert dag_run.state == "success", states(dag_run)
    manifest = manifest_of(dag_run)
    assert manifest["tokens"] == {"prompt": tokens, "candidates": 0, "thoughts": 0, "total": tokens}
    assert manifest["estimated_cost_usd"] == pytest.approx(usd, abs=1e-15)
    assert manifest["prices_retrieved"] == "2026-12-06"
