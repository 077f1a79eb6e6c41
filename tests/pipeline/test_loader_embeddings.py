"""Embedding outputs through the one loader into the embeddings table, against the emulators.

The layouts are the services' (include/local_stack/README.md, "Embeddings"): Vertex AI's BigQuery
output (input columns plus ``predictions``, the JSON text of a list, and ``status``), Gemini API
results files (``{"key", "response": EmbedContentResponse}``) and inline responses (input order,
so the key is the position).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest

from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader

from .conftest import FakeGenai, Layouts, jsonl

DATE = "2026-01-01"
#: Vectors exact in binary (no float rounding to argue about), of different lengths per key.
VECTORS = {f"doc{i}": [0.5 * (i + 1), -0.25, 0.125 * i, 1.0][: 2 + i % 3] for i in range(5)}
FAILED = "doc3"


def manifest(job: str, **output: Any) -> dict[str, Any]:
    base = {
        "job_name": job, "backend": "vertex", "model": "publishers/google/models/text-embedding-005", "task": "embed",
        "state": "JOB_STATE_SUCCEEDED", "outcome": "partial", "end_time": "2026-01-01T11:00:00Z",
    }  # fmt: skip
    return {**base, **output}


def loader(bq_client, gcs_client, genai=None, bucket=None) -> ResultsLoader:
    return ResultsLoader(
        bigquery_client=bq_client,
        storage_client=gcs_client,
        genai_client=genai,
        staging_gcs=f"gs://{bucket.name}/staging" if bucket is not None else None,
    )


def vertex_embeddings_table(layouts: Layouts, name: str = "embedded") -> str:
    """Vertex AI's BigQuery output of a text-embedding job: key, content, predictions, status."""
    from google.cloud import bigquery

    schema = [
        bigquery.SchemaField(column, "STRING") for column in ("key", "content", "predictions", "status")
    ]
    ref = layouts.table(name).removeprefix("bq://")
    layouts.bq.create_table(bigquery.Table(ref, schema=schema))
    rows = []
    for key, values in VECTORS.items():
        if key == FAILED:
            rows.append(
                {"key": key, "content": "", "predictions": None, "status": "Bad Request: empty content"}
            )
            continue
        prediction = {
            "embeddings": {"statistics": {"token_count": len(values), "truncated": False}, "values": values}
        }
        rows.append(
            {"key": key, "content": f"text of {key}", "predictions": json.dumps([prediction]), "status": ""}
        )
    config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
    layouts.bq.load_table_from_file(io.BytesIO(jsonl(rows)), ref, job_config=config).result()
    return f"bq://{ref}"


def tables(layouts: Layouts) -> dict[str, str]:
    return {"results_table": layouts.table("embeddings"), "errors_table": layouts.table("errors")}


def check_vectors(layouts: Layouts, *, job: str, keys: dict[str, str] | None = None) -> None:
    """Each answered key has its vector in order, its dimension and tokens; the failed one is in errors."""
    keys = keys or {key: key for key in VECTORS}
    embeddings = layouts.rows(layouts.table("embeddings"))
    errors = layouts.rows(layouts.table("errors"))
    assert set(embeddings) == {keys[k] for k in VECTORS if k != FAILED}
    assert set(errors) == {keys[FAILED]}
    for key, values in VECTORS.items():
        if key == FAILED:
            continue
        got = embeddings[keys[key]]
        assert list(got["embedding"]) == values
        assert (got["dimension"], got["token_count"], got["status"]) == (
            len(values),
            len(values),
            "succeeded",
        )
        assert got["model"] in ("text-embedding-005", "gemini-embedding-001")  # the bare id
        assert (got["job_name"], got["logical_date"]) == (job, dt.date.fromisoformat(DATE))


@pytest.mark.integration
def test_a_vertex_bigquery_embeddings_output_loads_one_vector_per_key_and_a_rerun_replaces_them(
    layouts, bq_client, gcs_client
) -> None:
    output = vertex_embeddings_table(layouts)
    load = {
        "logical_date": DATE,
        "input_keys": InputKeys.from_table(output, request_column=None),
        **tables(layouts),
    }

    first = loader(bq_client, gcs_client).load([manifest("jobs/e", bigquery_output_table=output)], **load)
    again = loader(bq_client, gcs_client).load([manifest("jobs/e", bigquery_output_table=output)], **load)

    for counts in (first, again):
        assert (counts.input, counts.succeeded, counts.failed, counts.missing, counts.duplicated) == (
            5,
            4,
            1,
            0,
            0,
        )
    check_vectors(layouts, job="jobs/e")  # rows() fails on a key found twice
    failed = layouts.rows(layouts.table("errors"))[FAILED]
    assert (failed["status"], failed["error"]) == ("Bad Request: empty content",) * 2


@pytest.mark.integration
def test_a_gemini_api_embeddings_results_file_loads_with_its_prompt_token_counts(
    layouts, bq_client, gcs_client, gcs_bucket
) -> None:
    lines = [
        {"key": key, "error": {"code": 400, "message": "empty text", "status": "INVALID_ARGUMENT"}}
        if key == FAILED
        else {
            "key": key,
            "response": {"embedding": {"values": values}, "usageMetadata": {"promptTokenCount": len(values)}},
        }
        for key, values in reversed(VECTORS.items())  # a results file is not in input order
    ]
    genai = FakeGenai(files={"files/batch-e": jsonl(lines)})

    counts = loader(bq_client, gcs_client, genai, gcs_bucket).load(
        [
            manifest(
                "batches/e", backend="gemini_api", model="gemini-embedding-001", file_name="files/batch-e"
            )
        ],
        logical_date=DATE,
        input_keys=InputKeys.from_keys(list(VECTORS)),
        **tables(layouts),
    )

    assert (counts.succeeded, counts.failed, counts.missing) == (4, 1, 0)
    check_vectors(layouts, job="batches/e")
    assert layouts.rows(layouts.table("errors"))[FAILED]["status"] == "INVALID_ARGUMENT"


@pytest.mark.integration
def test_inline_embeddings_are_keyed_by_their_position(layouts, bq_client, gcs_client) -> None:
    from google.genai import types

    inlined = [
        types.InlinedEmbedContentResponse(error=types.JobError(code=400, message="empty text"))
        if key == FAILED
        else types.InlinedEmbedContentResponse(
            response=types.SingleEmbedContentResponse(
                embedding=types.ContentEmbedding(values=values), token_count=len(values)
            )
        )
        for key, values in VECTORS.items()
    ]
    carried = [
        item.model_dump(mode="json", exclude_none=True) for item in inlined
    ]  # as the manifest has them
    positions = {key: str(index) for index, key in enumerate(VECTORS)}

    counts = loader(bq_client, gcs_client).load(
        [manifest("batches/i", backend="gemini_api", model="gemini-embedding-001", inline_responses=carried)],
        logical_date=DATE,
        input_keys=InputKeys.from_keys(list(positions.values())),
        **tables(layouts),
    )

    assert (counts.succeeded, counts.failed, counts.missing) == (4, 1, 0)
    check_vectors(layouts, job="batches/i", keys=positions)


def test_one_load_takes_jobs_of_one_task() -> None:
    jobs = [
        JobOutput("vertex_bigquery", "jobs/a", "bq://p.d.a", task="embed"),
        JobOutput("vertex_bigquery", "jobs/b", "bq://p.d.b"),
    ]
    with pytest.raises(ValueError, match="one load takes jobs of one task"):
        ResultsLoader(bigquery_client=object()).load(
            jobs,
            logical_date=DATE,
            input_keys=InputKeys.from_keys(["a"]),
            results_table="p.d.r",
            errors_table="p.d.e",
        )


@pytest.mark.integration
def test_vertex_embeddings_from_gcs_are_refused_for_want_of_a_key(layouts, bq_client, gcs_client) -> None:
    with pytest.raises(ValueError, match="without a key"):
        loader(bq_client, gcs_client).load(
            [manifest("jobs/g", gcs_output_directory="gs://b/out/prediction-model-x")],
            logical_date=DATE,
            input_keys=InputKeys.from_keys(["a"]),
            **tables(layouts),
        )
