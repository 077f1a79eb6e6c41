"""Embedding batches against the running emulator, through the unmodified google-genai SDK.

Gemini API: ``client.batches.create_embeddings`` (inline and ``files/`` input) runs to
SUCCEEDED with vectors of the model's dimension, the same vectors for the same text in every
batch, and the raw operation fits the API reference. Vertex AI: ``client.batches.create`` with
a text-embedding model reads ``{"content"}`` instances from GCS or BigQuery and writes the
documented layouts. A model that does not embed (or does not exist) is refused before a job
exists.
"""

from __future__ import annotations

import io
import json
import urllib.request
import warnings
from typing import Any

import pytest
from emulator_helpers import jsonl, predictions, wait_for_job
from google.genai import errors, types
from test_emulator_embeddings import _operation_problems

from local_stack.emulator.embedding import embedding_values

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:batches.create_embeddings\\(\\) is experimental"),
]

S = types.JobState
TEXTS = ["The cat sat on the mat.", "Rivers run to the sea.", "Batch jobs cost half."]


def _inline(texts: list[str], **config: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"contents": [{"parts": [{"text": text}]} for text in texts]}
    if config:
        source["config"] = config
    return {"inlined_requests": source}


def _vectors(job: types.BatchJob) -> list[list[float]]:
    return [item.response.embedding.values for item in job.dest.inlined_embed_content_responses]


def _embed(client: Any, model: str, src: Any, **kwargs: Any) -> types.BatchJob:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return client.batches.create_embeddings(model=model, src=src, **kwargs)


def _raw_operation(stack: Any, name: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{stack.gemini_url}/v1beta/{name}", headers={"x-goog-api-key": stack.api_key}
    )
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


# --- Gemini API ---------------------------------------------------------------------------------


def test_an_inline_embeddings_batch_succeeds_with_one_full_size_vector_per_text_in_order(
    gemini_client, stack_admin, local_stack
) -> None:
    job = _embed(gemini_client, "gemini-embedding-001", _inline(TEXTS), config={"display_name": "docs"})

    done = wait_for_job(gemini_client, job.name)

    assert done.state == S.JOB_STATE_SUCCEEDED
    assert done.display_name == "docs" and done.model == "models/gemini-embedding-001"
    assert [len(v) for v in _vectors(done)] == [3072, 3072, 3072]
    assert _vectors(done) == [embedding_values("gemini-embedding-001", text) for text in TEXTS]
    raw = _raw_operation(local_stack, done.name)
    assert _operation_problems(raw) == []
    assert raw["metadata"]["batchStats"] == {
        "requestCount": "3",
        "successfulRequestCount": "3",
        "failedRequestCount": "0",
        "pendingRequestCount": "0",
    }
    assert raw["response"]["inlinedResponses"]["inlinedResponses"][1]["response"]["usageMetadata"] == {
        "promptTokenCount": 6
    }


def test_the_same_text_gets_the_same_vector_in_every_batch_and_output_dimensionality_is_honoured(
    gemini_client, stack_admin
) -> None:
    first = wait_for_job(gemini_client, _embed(gemini_client, "gemini-embedding-001", _inline(TEXTS)).name)
    again = wait_for_job(
        gemini_client, _embed(gemini_client, "gemini-embedding-001", _inline(TEXTS[::-1])).name
    )
    small = wait_for_job(
        gemini_client,
        _embed(gemini_client, "gemini-embedding-001", _inline(TEXTS, output_dimensionality=256)).name,
    )

    assert _vectors(again) == _vectors(first)[::-1]
    assert [len(v) for v in _vectors(small)] == [256, 256, 256]
    assert _vectors(small) == [vector[:256] for vector in _vectors(first)]


def test_a_file_embeddings_batch_writes_a_responses_file_of_keyed_lines(
    gemini_client, stack_admin, local_stack
) -> None:
    lines = [
        {
            "key": f"doc-{i}",
            "request": {"content": {"parts": [{"text": text}]}, "taskType": "RETRIEVAL_DOCUMENT"},
        }
        for i, text in enumerate(TEXTS)
    ]
    lines.append({"key": "empty", "request": {"content": {"parts": [{"text": " "}]}}})
    uploaded = gemini_client.files.upload(
        file=io.BytesIO(jsonl(lines)), config={"mime_type": "application/jsonl"}
    )

    done = wait_for_job(
        gemini_client, _embed(gemini_client, "gemini-embedding-001", {"file_name": uploaded.name}).name
    )

    assert done.state == S.JOB_STATE_SUCCEEDED
    results = {
        row["key"]: row
        for row in map(json.loads, gemini_client.files.download(file=done.dest.file_name).splitlines())
    }
    assert set(results) == {"doc-0", "doc-1", "doc-2", "empty"}
    assert results["doc-2"]["response"]["embedding"]["values"] == embedding_values(
        "gemini-embedding-001", TEXTS[2], task_type="RETRIEVAL_DOCUMENT"
    )
    assert results["empty"]["error"]["code"] == 400 and "response" not in results["empty"]
    raw = _raw_operation(local_stack, done.name)
    assert _operation_problems(raw) == []
    assert raw["metadata"]["inputConfig"] == {"fileName": uploaded.name}
    assert raw["response"]["responsesFile"] == done.dest.file_name


@pytest.mark.parametrize(
    ("model", "create"),
    [
        ("gemini-embedding-009", "embed"),  # no such model
        ("gemini-2.5-flash", "embed"),  # a generative model does not embed
        ("text-embedding-005", "embed"),  # a Vertex-only model
        ("gemini-embedding-001", "generate"),  # an embedding model does not generate
    ],
)
def test_a_model_that_does_not_serve_the_method_is_refused_before_a_job_exists(
    gemini_client, stack_admin, model, create
) -> None:
    with pytest.raises(errors.ClientError) as refused:
        if create == "embed":
            _embed(gemini_client, model, _inline(["x"]))
        else:
            gemini_client.batches.create(
                model=model, src=[{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
            )

    method = "asyncBatchEmbedContent" if create == "embed" else "batchGenerateContent"
    assert refused.value.code == 404
    assert f"models/{model} is not found" in refused.value.message and method in refused.value.message
    assert stack_admin.jobs() == []


def test_the_models_lookup_answers_for_an_embedding_model(gemini_client, vertex_client) -> None:
    gemini = gemini_client.models.get(model="gemini-embedding-001")
    vertex = vertex_client.models.get(model="text-embedding-005")

    assert "asyncBatchEmbedContent" in gemini.supported_actions
    assert vertex.name.endswith("text-embedding-005")


# --- Vertex AI ----------------------------------------------------------------------------------


def test_a_vertex_embeddings_job_from_gcs_writes_instance_predictions_and_status(
    vertex_client, stack_admin, upload_jsonl, gcs_client
) -> None:
    src = upload_jsonl(
        "docs.jsonl",
        [{"content": text} for text in TEXTS]
        + [{"content": "a query", "task_type": "RETRIEVAL_QUERY"}, {"text": "wrong field"}],
    )

    done = wait_for_job(vertex_client, vertex_client.batches.create(model="text-embedding-005", src=src).name)

    assert done.state == S.JOB_STATE_SUCCEEDED, done.error
    assert done.completion_stats.successful_count == 4 and done.completion_stats.failed_count == 1
    lines = {
        json.dumps(line["instance"], sort_keys=True): line
        for line in predictions(gcs_client, done.output_info.gcs_output_directory)
    }
    first = lines[json.dumps({"content": TEXTS[0]})]
    assert set(first) == {"instance", "predictions", "status"} and first["status"] == ""
    [prediction] = first["predictions"]
    assert prediction["embeddings"]["statistics"] == {"token_count": 6, "truncated": False}
    assert prediction["embeddings"]["values"] == embedding_values("text-embedding-005", TEXTS[0])
    assert len(prediction["embeddings"]["values"]) == 768
    query = lines[json.dumps({"content": "a query", "task_type": "RETRIEVAL_QUERY"}, sort_keys=True)]
    assert query["predictions"][0]["embeddings"]["values"] == embedding_values(
        "text-embedding-005", "a query", task_type="RETRIEVAL_QUERY"
    )
    bad = lines[json.dumps({"text": "wrong field"})]
    assert "predictions" not in bad and bad["status"].startswith("Bad Request: ")


def test_a_vertex_embeddings_job_from_bigquery_writes_the_prediction_column(
    vertex_client, stack_admin, bq_client, bq_dataset
) -> None:
    from google.cloud import bigquery

    table_id = f"{bq_client.project}.{bq_dataset.dataset_id}.documents"
    schema = [bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("content", "STRING")]
    bq_client.create_table(bigquery.Table(table_id, schema=schema))
    rows = "".join(json.dumps({"id": i, "content": text}) + "\n" for i, text in enumerate(TEXTS))
    config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
    bq_client.load_table_from_file(io.BytesIO(rows.encode()), table_id, job_config=config).result()
    dest = f"bq://{bq_client.project}.{bq_dataset.dataset_id}.embedded"

    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(
            model="publishers/google/models/text-embedding-005", src=f"bq://{table_id}", config={"dest": dest}
        ).name,
    )

    assert done.state == S.JOB_STATE_SUCCEEDED, done.error
    table = bq_client.get_table(dest[len("bq://") :])
    assert {f.name: f.field_type for f in table.schema} == {
        "id": "INT64",
        "content": "STRING",
        "predictions": "STRING",
        "status": "STRING",
    }
    out = {row["id"]: row for row in bq_client.list_rows(table)}
    assert sorted(out) == [0, 1, 2]
    [prediction] = json.loads(out[1]["predictions"])
    assert out[1]["status"] == "" and out[1]["content"] == TEXTS[1]
    assert prediction["embeddings"]["values"] == embedding_values("text-embedding-005", TEXTS[1])


def test_vertex_model_parameters_set_the_dimension_and_bad_ones_are_refused_at_create(
    vertex_client, stack_admin, upload_jsonl, gcs_client
) -> None:
    src = upload_jsonl("one.jsonl", [{"content": TEXTS[0]}])
    body = {"modelParameters": {"outputDimensionality": 64}}

    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(
            model="gemini-embedding-001", src=src, config={"http_options": {"extra_body": body}}
        ).name,
    )
    with pytest.raises(errors.ClientError) as refused:
        vertex_client.batches.create(
            model="text-embedding-005",
            src=src,
            config={"http_options": {"extra_body": {"modelParameters": {"outputDimensionality": 1024}}}},
        )

    [line] = predictions(gcs_client, done.output_info.gcs_output_directory)
    assert (
        line["predictions"][0]["embeddings"]["values"]
        == embedding_values("gemini-embedding-001", TEXTS[0])[:64]
    )
    assert refused.value.code == 400 and "between 1 and 768" in refused.value.message
    assert len(stack_admin.jobs()) == 1
