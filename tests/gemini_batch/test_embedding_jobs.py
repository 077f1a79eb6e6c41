"""Embedding jobs through the create operator: the task from the model or the argument, the
create call per backend, the same retry safety, and the manifest (task, inline vectors, tokens)."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from gemini_batch import compat
from gemini_batch.create_plan import CreateArguments, input_fingerprint, plan_create
from gemini_batch.exceptions import GeminiBatchConfigError
from gemini_batch.identity import WorkIdentity
from gemini_batch.job_task import task_of
from gemini_batch.manifest import build_manifest
from gemini_batch.sources import parse_source
from tests.gemini_batch.fakes import FakeService, FakeTaskStateStore, make_context
from tests.gemini_batch.test_operators import op, run

TEXTS = ["The cat sat on the mat.", "Rivers run to the sea."]
INLINE_EMBED = [
    {"contents": [{"parts": [{"text": text}]}], "config": {"task_type": "RETRIEVAL_DOCUMENT"}}
    for text in TEXTS
]


@pytest.fixture(params=[False, True], ids=["sync", "deferrable"])
def deferrable(request) -> bool:
    return request.param


@pytest.mark.parametrize(
    ("model", "task", "expected"),
    [
        ("text-embedding-005", None, "embed"),
        ("publishers/google/models/text-embedding-004", None, "embed"),
        ("text-multilingual-embedding-002", None, "embed"),
        ("models/gemini-embedding-001", None, "embed"),
        ("gemini-2.5-flash", None, "generate"),
        ("projects/p/locations/l/endpoints/my-tuned-embedder", "embed", "embed"),
        ("text-embedding-005", "generate", "generate"),
    ],
)
def test_the_task_follows_the_model_unless_named(model, task, expected):
    assert task_of(model, task) == expected


def test_an_unknown_task_is_refused():
    with pytest.raises(GeminiBatchConfigError, match="task must be one of"):
        task_of("gemini-2.5-flash", "classify")


def _plan(src: Any, model: str, task: str | None = None):
    return plan_create(CreateArguments(src=src, model=model, task=task), WorkIdentity("dag", "task", "run"))


def test_a_generation_job_keeps_its_fingerprint_and_an_embeddings_job_has_another():
    generation = _plan("bq://p.d.docs", "my-model")
    embedding = _plan("bq://p.d.docs", "my-model", task="embed")

    before_embeddings = input_fingerprint(
        backend="vertex", model="my-model", source=parse_source("bq://p.d.docs"), dest=None, config={}
    )
    assert generation.task == "generate" and generation.fingerprint == before_embeddings
    assert embedding.task == "embed" and embedding.fingerprint != generation.fingerprint


def test_inline_embedding_requests_need_one_content_each_and_one_config():
    with pytest.raises(GeminiBatchConfigError, match="exactly one Content"):
        _plan(
            [{"contents": [{"parts": [{"text": "a"}]}, {"parts": [{"text": "b"}]}]}], "gemini-embedding-001"
        )
    with pytest.raises(GeminiBatchConfigError, match="different 'config's"):
        _plan([INLINE_EMBED[0], {"contents": INLINE_EMBED[1]["contents"]}], "gemini-embedding-001")


def test_inline_requests_of_a_templated_model_are_checked_once_the_task_is_known():
    embedding_config = [
        {"contents": [{"parts": [{"text": "a"}]}], "config": {"task_type": "RETRIEVAL_QUERY"}}
    ]

    op(src=embedding_config, model="{{ params.model }}")  # parses: the model (so the task) is a template

    with pytest.raises(GeminiBatchConfigError, match="task_type is not a field of GenerateContentConfig"):
        op(src=embedding_config, model="gemini-2.5-flash")


def test_a_gemini_api_file_embeds_through_create_embeddings(install, sleeps, deferrable):
    gemini = FakeService("gemini_api")
    install(gemini_api=gemini)

    manifest = run(op(src="files/docs", model="gemini-embedding-001", deferrable=deferrable), make_context())

    assert [method for method, _ in gemini.calls if method.startswith("create")] == ["create_embeddings"]
    (create,) = [args for method, args in gemini.calls if method == "create_embeddings"]
    assert create["model"] == "gemini-embedding-001"
    assert create["src"] == {"file_name": "files/docs"}
    assert manifest["task"] == "embed" and manifest["outcome"] == "succeeded"


def test_inline_embedding_requests_travel_as_contents_with_their_one_config(install, sleeps):
    gemini = FakeService("gemini_api")
    install(gemini_api=gemini)

    run(op(src=INLINE_EMBED, model="gemini-embedding-001"), make_context())

    (create,) = [args for method, args in gemini.calls if method == "create_embeddings"]
    assert create["src"] == {
        "inlined_requests": {
            "contents": [request["contents"][0] for request in INLINE_EMBED],
            "config": {"task_type": "RETRIEVAL_DOCUMENT"},
        }
    }


def test_a_vertex_embedding_model_is_an_ordinary_create_with_the_default_dest(vertex, sleeps, deferrable):
    manifest = run(op(src="bq://p.d.docs", model="text-embedding-005", deferrable=deferrable), make_context())

    (create,) = [args for method, args in vertex.calls if method.startswith("create")]
    assert vertex.count("create_embeddings") == 0
    assert create["model"] == "text-embedding-005" and create["src"] == "bq://p.d.docs"
    assert create["config"]["dest"].startswith("bq://p.d.docs_predictions_")
    assert manifest["task"] == "embed"


def test_a_retry_of_an_embeddings_task_reattaches_instead_of_submitting_again(install, sleeps):
    gemini = FakeService("gemini_api")
    gemini.default_script = [{"state": "JOB_STATE_RUNNING"}] * 3 + [{"state": "JOB_STATE_SUCCEEDED"}]
    install(gemini_api=gemini)
    store = FakeTaskStateStore()

    first = run(
        op(src="files/docs", model="gemini-embedding-001", wait_for_completion=False),
        make_context(store=store),
    )
    second = run(op(src="files/docs", model="gemini-embedding-001"), make_context(store=store))

    assert gemini.count("create_embeddings") == 1 and gemini.count("create") == 0
    assert second["job_name"] == first["job_name"] and second["outcome"] == "succeeded"


def _embedded(values: list[float], tokens: int | None) -> types.InlinedEmbedContentResponse:
    return types.InlinedEmbedContentResponse(
        response=types.SingleEmbedContentResponse(
            embedding=types.ContentEmbedding(values=values), token_count=tokens
        )
    )


def test_the_manifest_carries_inline_vectors_in_order_with_their_prompt_tokens():
    job = types.BatchJob(
        name="batches/e1",
        state="JOB_STATE_SUCCEEDED",
        model="models/gemini-embedding-001",
        dest=types.BatchJobDestination(
            inlined_embed_content_responses=[
                _embedded([0.6, 0.8], 6),
                types.InlinedEmbedContentResponse(error=types.JobError(code=400, message="empty text")),
                _embedded([1.0, 0.0], 5),
            ]
        ),
    )

    manifest = build_manifest(job, backend="gemini_api").as_dict()

    assert manifest["task"] == "embed"
    vectors = [
        item.get("response", {}).get("embedding", {}).get("values") for item in manifest["inline_responses"]
    ]
    assert vectors == [[0.6, 0.8], None, [1.0, 0.0]]
    assert manifest["counts"] == {"succeeded": 2, "failed": 1, "incomplete": 0, "total": 3}
    assert manifest["tokens"] == {"prompt": 11, "candidates": 0, "thoughts": 0, "total": 11}


def test_an_embeddings_job_whose_rows_all_failed_is_read_from_the_generic_inline_list():
    job = types.BatchJob(
        name="batches/e2",
        state="JOB_STATE_SUCCEEDED",
        model="models/gemini-embedding-001",
        dest=types.BatchJobDestination(
            inlined_responses=[types.InlinedResponse(error=types.JobError(code=400, message="no text"))]
        ),
    )

    manifest = build_manifest(job, backend="gemini_api").as_dict()

    assert manifest["task"] == "embed"
    assert manifest["counts"] == {"succeeded": 0, "failed": 1, "incomplete": 0, "total": 1}
    assert manifest["inline_responses"] == [{"error": {"code": 400, "message": "no text"}}]


def test_the_raw_read_gives_embedding_responses_the_token_count_the_api_sent():
    def answered(values: list[float], tokens: int) -> dict[str, Any]:
        return {"response": {"embedding": {"values": values}, "usageMetadata": {"promptTokenCount": tokens}}}

    body = {
        "name": "batches/e3",
        "metadata": {
            "state": "BATCH_STATE_SUCCEEDED",
            "model": "models/gemini-embedding-001",
            "output": {
                "inlinedResponses": {"inlinedResponses": [answered([0.6, 0.8], 6), answered([1.0], 3)]}
            },
        },
        "done": True,
    }

    job = compat.job_from_body(body)

    assert [item.response.token_count for item in job.dest.inlined_embed_content_responses] == [6, 3]
    assert [item.response.embedding.values for item in job.dest.inlined_embed_content_responses] == [
        [0.6, 0.8],
        [1.0],
    ]
