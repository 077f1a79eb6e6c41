"""The local embedding model and the embedding batch views, without a running emulator.

The vectors: deterministic, of each model's dimension, unit length at full size, a reduced
dimension is the full vector's prefix. The requests: what the real API refuses row by row is
refused with its wording. The views: the Gemini API operation of an embedding batch fits the
API reference's ``EmbedContentBatch`` (``schemas/generativelanguage.v1beta.embed.json``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from discovery import problems

from local_stack.emulator import embedding, states
from local_stack.emulator.embedding import EMBEDDING_MODELS, VertexParameters
from local_stack.emulator.model import InvalidRequest

GEMINI_API = "generativelanguage.v1beta.embed"


def _request(text: str, **fields: Any) -> dict[str, Any]:
    return {"content": {"parts": [{"text": text}]}, **fields}


# --- vectors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "dimension"), [(m, spec.dimension) for m, spec in EMBEDDING_MODELS.items()]
)
def test_a_full_vector_has_the_models_dimension_and_unit_length(model_id: str, dimension: int) -> None:
    values = embedding.embedding_values(model_id, "a document")

    assert len(values) == dimension
    assert math.isclose(math.sqrt(sum(v * v for v in values)), 1.0, rel_tol=1e-5)


def test_the_published_dimensions() -> None:
    assert {m: spec.dimension for m, spec in EMBEDDING_MODELS.items()} == {
        "gemini-embedding-001": 3072,
        "gemini-embedding-2": 3072,
        "text-embedding-005": 768,
        "text-embedding-004": 768,
        "text-multilingual-embedding-002": 768,
    }


def test_vectors_are_deterministic_and_differ_by_text_model_task_and_title() -> None:
    base = embedding.embedding_values("gemini-embedding-001", "x")

    assert embedding.embedding_values("gemini-embedding-001", "x") == base
    others = [
        embedding.embedding_values("gemini-embedding-001", "y"),
        embedding.embedding_values("gemini-embedding-001", "x", task_type="RETRIEVAL_QUERY"),
        embedding.embedding_values("gemini-embedding-001", "x", title="t"),
        embedding.embedding_values("text-embedding-005", "x"),
    ]
    assert all(other[:8] != base[:8] for other in others)


def test_a_reduced_dimension_is_the_prefix_of_the_full_vector() -> None:
    full = embedding.embed_content("gemini-embedding-001", _request("doc"))["embedding"]["values"]
    small = embedding.embed_content("gemini-embedding-001", _request("doc", outputDimensionality=16))

    assert small["embedding"]["values"] == full[:16]


# --- Gemini API requests -----------------------------------------------------------------------


def test_an_embed_content_response_has_the_vector_and_the_token_count() -> None:
    answer = embedding.embed_content("gemini-embedding-001", _request("twelve chars"))

    assert set(answer) == {"embedding", "usageMetadata"}
    assert len(answer["embedding"]["values"]) == 3072
    assert answer["usageMetadata"] == {"promptTokenCount": 3}
    assert problems(answer, "EmbedContentResponse", api=GEMINI_API) == []


@pytest.mark.parametrize(
    "request_body",
    [
        _request("doc", output_dimensionality=8, task_type="RETRIEVAL_DOCUMENT", title="T"),
        _request(
            "doc",
            embedContentConfig={"outputDimensionality": 8, "taskType": "RETRIEVAL_DOCUMENT", "title": "T"},
        ),
        _request(
            "doc",
            outputDimensionality=8,
            taskType="RETRIEVAL_DOCUMENT",
            title="T",
            model="models/gemini-embedding-001",
        ),
    ],
    ids=["snake_case", "embed_content_config", "camelCase"],
)
def test_every_spelling_of_the_options_gives_the_same_answer(request_body: dict[str, Any]) -> None:
    expected = embedding.embedding_values(
        "gemini-embedding-001", "doc", task_type="RETRIEVAL_DOCUMENT", title="T"
    )[:8]

    assert embedding.embed_content("gemini-embedding-001", request_body)["embedding"]["values"] == expected


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ("text", "must be a JSON object"),
        ({"contents": [{"parts": [{"text": "x"}]}]}, 'Unknown name "contents"'),
        ({}, "content is not specified"),
        ({"content": {"parts": []}}, "content is not specified"),
        (_request(""), "empty text parameter"),
        ({"content": {"parts": [{"inlineData": {"data": "AA==", "mimeType": "image/png"}}]}}, "no text part"),
        (_request("x", outputDimensionality=0), "between 1 and 3072"),
        (_request("x", outputDimensionality=3073), "between 1 and 3072"),
        (_request("x", outputDimensionality="8"), "expected an integer"),
        (_request("x", taskType="SEARCH"), "not a TaskType"),
        (_request("x", model="models/text-embedding-004"), "must be the batch's model"),
        (
            _request("x", embedContentConfig={"dimensions": 8}),
            "Unknown name \"dimensions\" at 'embed_content_config'",
        ),
        ({"content": {"parts": [{"text": "x"}], "rol": "user"}}, 'Unknown name "rol"'),
    ],
)
def test_a_request_the_real_api_refuses_is_a_row_error(request_body: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        embedding.embed_content("gemini-embedding-001", request_body)


# --- Vertex instances ---------------------------------------------------------------------------


def test_a_vertex_prediction_has_the_documented_layout() -> None:
    prediction = embedding.vertex_prediction(
        "text-embedding-005", {"content": "Best recipe for banana bread:"}, VertexParameters()
    )

    assert list(prediction) == ["embeddings"]
    assert prediction["embeddings"]["statistics"] == {"token_count": 8, "truncated": False}
    assert len(prediction["embeddings"]["values"]) == 768


def test_vertex_parameters_reduce_the_dimension_and_truncate_long_inputs() -> None:
    parameters = embedding.vertex_parameters("text-embedding-005", {"output_dimensionality": 4})
    long_text = "w" * (2048 * 4 + 40)

    short = embedding.vertex_prediction("text-embedding-005", {"content": "doc"}, parameters)
    cut = embedding.vertex_prediction("text-embedding-005", {"content": long_text}, VertexParameters())

    assert short["embeddings"]["values"] == embedding.embedding_values("text-embedding-005", "doc")[:4]
    assert cut["embeddings"]["statistics"] == {"token_count": 2048, "truncated": True}
    with pytest.raises(InvalidRequest, match="autoTruncate"):
        embedding.vertex_prediction(
            "text-embedding-005", {"content": long_text}, VertexParameters(auto_truncate=False)
        )


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ("text", "must be a JSON object"),
        ({"text": "x"}, 'Unknown name "text"'),
        ({"content": ""}, "non-empty"),
        ({"content": 3}, "non-empty"),
        ({"content": "x", "task_type": "NOPE"}, "not a TaskType"),
    ],
)
def test_a_vertex_instance_the_service_refuses_is_a_row_error(instance: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        embedding.vertex_prediction("text-embedding-005", instance, VertexParameters())


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ([], "must be an object"),
        ({"dimensions": 3}, 'Unknown name "dimensions"'),
        ({"outputDimensionality": 769}, "between 1 and 768"),
        ({"autoTruncate": "no"}, "must be a boolean"),
    ],
)
def test_bad_vertex_model_parameters_are_refused(parameters: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        embedding.vertex_parameters("text-embedding-005", parameters)


def test_which_backend_serves_which_model() -> None:
    assert embedding.embedding_model("gemini-embedding-001", "gemini_api") is not None
    assert embedding.embedding_model("gemini-embedding-001", "vertex") is not None
    assert embedding.embedding_model("text-embedding-005", "gemini_api") is None
    assert embedding.embedding_model("gemini-2.5-flash", "gemini_api") is None


# --- the Gemini API operation of an embedding batch -----------------------------------------------


def _gemini_job(**changes: Any) -> Any:
    from test_emulator_units import make_job

    values: dict[str, Any] = {
        "id": "b123",
        "backend": "gemini_api",
        "name": "batches/b123",
        "model": "models/gemini-embedding-001",
        "model_id": "gemini-embedding-001",
        "source": {"kind": "inline", "count": 2},
        "destination": {"kind": "inline"},
        "input_config": None,
        "output_config": None,
        "labels": {},
        "project": None,
        "location": None,
        "task": "embed",
    }
    return make_job(**{**values, **changes})


def _operation_problems(operation: dict[str, Any]) -> list[str]:
    found = problems(operation, "Operation", api=GEMINI_API)
    batch = dict(operation["metadata"])
    if batch.pop("@type") != "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch":
        found.append("metadata.@type is not EmbedContentBatch")
    found += problems(batch, "EmbedContentBatch", "$.metadata", api=GEMINI_API)
    if "response" in operation:
        output = dict(operation["response"])
        if (
            output.pop("@type")
            != "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput"
        ):
            found.append("response.@type is not EmbedContentBatchOutput")
        found += problems(output, "EmbedContentBatchOutput", "$.response", api=GEMINI_API)
    return found


def test_the_checker_reports_what_the_embed_schema_does_not_allow() -> None:
    assert problems({"inlinedEmbedContentResponses": {}}, "EmbedContentBatchOutput", api=GEMINI_API) != []
    assert problems({"batchStats": {"requestCount": 2}}, "EmbedContentBatch", api=GEMINI_API) != []


def test_every_embedding_batch_view_fits_the_api_reference() -> None:
    pending = _gemini_job()
    answered = {
        "response": embedding.embed_content("gemini-embedding-001", _request("a")),
        "metadata": {"k": 1},
    }
    failed_row = {"error": {"code": 400, "message": "bad"}}
    done = _gemini_job()
    done.move_to(states.RUNNING)
    done.total, done.succeeded, done.failed = 2, 1, 1
    done.move_to(states.SUCCEEDED)
    from_file = _gemini_job(source={"kind": "file", "name": "files/in"}, destination={"kind": "file"})
    from_file.move_to(states.RUNNING)
    from_file.total = 0
    from_file.move_to(states.SUCCEEDED)
    from_file.responses_file = "files/batch-b123"

    views = {
        "pending": pending.gemini_view(),
        "inline": done.gemini_view([answered, failed_row]),
        "file": from_file.gemini_view(),
    }

    assert {name: _operation_problems(view) for name, view in views.items()} == {
        "pending": [],
        "inline": [],
        "file": [],
    }
    assert views["inline"]["metadata"]["output"]["inlinedResponses"]["inlinedResponses"][0] == answered


def test_a_jobs_task_and_model_parameters_survive_a_restart_and_old_records_generate() -> None:
    from local_stack.emulator.jobs import Job

    job = _gemini_job(backend="vertex", model_parameters={"outputDimensionality": 8})
    record = job.to_record()
    old_record = {key: value for key, value in record.items() if key not in ("task", "model_parameters")}

    restored = Job.from_record(record)

    assert (restored.task, restored.model_parameters) == ("embed", {"outputDimensionality": 8})
    assert restored.vertex_view()["modelParameters"] == {"outputDimensionality": 8}
    assert Job.from_record(old_record).task == "generate"
