"""The emulator's Vertex AI answers against Google's discovery document for aiplatform v1.

Every field the emulator returns must exist in the schema with the right JSON type (int64 as a
string, times in RFC 3339) and every enum value (job states) must be one of the schema's; the
request fields the emulator knows (``model.MESSAGE_FIELDS``) must be the schema's, so it is
neither laxer (a made-up field accepted) nor stricter (a real field refused) than Google.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from discovery import problems, schemas
from emulator_helpers import user_request, wait_for_job

from local_stack.emulator import model, states
from local_stack.emulator.jobs import Job

V1 = "GoogleCloudAiplatformV1"
JOB = f"{V1}BatchPredictionJob"

#: Fields the emulator knows that the Vertex v1 schema does not have: they are the Gemini API's.
GEMINI_API_ONLY = {
    ("GenerateContentRequest", "model"),
    ("Part", "partMetadata"),
    ("GenerationConfig", "enableEnhancedCivicAnswers"),
    ("GenerationConfig", "_responseJsonSchema"),
}
#: Emulator message name -> the discovery schema it mirrors.
MESSAGE_SCHEMAS = {
    "GenerateContentRequest": f"{V1}GenerateContentRequest",
    "Content": f"{V1}Content",
    "Part": f"{V1}Part",
    "Blob": f"{V1}Blob",
    "FileData": f"{V1}FileData",
    "GenerationConfig": f"{V1}GenerationConfig",
    "ThinkingConfig": f"{V1}GenerationConfigThinkingConfig",
    "SafetySetting": f"{V1}SafetySetting",
}


# --- the checker itself can fail ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ({"displayName": "x", "labelz": {}}, "$.labelz: no such field"),
        ({"displayName": 3}, "$.displayName: expected a string"),
        ({"state": "JOB_STATE_DONE"}, "'JOB_STATE_DONE' is not one of the enum values"),
        ({"completionStats": {"successfulCount": 3}}, "$.completionStats.successfulCount: expected a string"),
        ({"completionStats": {"failedCount": "three"}}, "is not an int64"),
        ({"createTime": "2025-01-01 10:00"}, "is not an RFC 3339 time"),
        ({"error": {"code": "5", "message": "m"}}, "$.error.code: expected an integer"),
        ({"error": {"code": 5, "status": "NOT_FOUND"}}, "$.error.status: no such field"),
        ({"labels": {"a": 1}}, "$.labels.a: expected a string"),
        ({"outputInfo": {"bigqueryOutputTable": "t", "gcsDir": "x"}}, "$.outputInfo.gcsDir: no such field"),
        ({"inputConfig": {"gcsSource": {"uris": "gs://b/x"}}}, "uris: expected an array"),
        ([], "$: expected an object"),
    ],
)
def test_the_checker_reports_what_the_schema_does_not_allow(value: Any, complaint: str) -> None:
    assert any(complaint in p for p in problems(value, JOB)), problems(value, JOB)


# --- vocabularies -------------------------------------------------------------------------------


def test_every_state_the_emulator_uses_is_a_vertex_job_state() -> None:
    enum = schemas()[JOB]["properties"]["state"]["enum"]
    assert states.ALL_STATES <= set(enum)


@pytest.mark.parametrize("message", sorted(MESSAGE_SCHEMAS))
def test_the_request_fields_the_emulator_knows_are_googles(message: str) -> None:
    ours = set(model.MESSAGE_FIELDS[message])
    theirs = set(schemas()[MESSAGE_SCHEMAS[message]]["properties"])
    assert theirs - ours == set(), "real fields the emulator would refuse"
    assert ours - theirs == {f for m, f in GEMINI_API_ONLY if m == message}, "fields Vertex does not have"


@pytest.mark.parametrize(
    "request_body",
    [
        user_request("hello"),
        user_request("json", responseMimeType="application/json"),
        user_request(
            "schema",
            responseMimeType="application/json",
            responseSchema={"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}},
        ),
    ],
)
def test_the_model_answer_is_a_generate_content_response(request_body: dict[str, Any]) -> None:
    answer = model.generate_content("gemini-2.5-flash", request_body)
    assert problems(answer, f"{V1}GenerateContentResponse") == []


def _job(**changes: Any) -> Job:
    from test_emulator_units import make_job

    return make_job(**changes)


def _vertex_views() -> list[tuple[str, dict[str, Any]]]:
    pending = _job()
    running = _job()
    running.move_to(states.RUNNING)
    running.total, running.succeeded, running.failed = 5, 2, 1
    failed = _job()
    failed.move_to(states.FAILED)
    failed.error = {"code": 5, "message": "BigQuery table bq://p.d.t does not exist."}
    done = _job(
        destination={"kind": "bigquery", "uri": "bq://p.d"},
        output_config={"predictionsFormat": "bigquery", "bigqueryDestination": {"outputUri": "bq://p.d"}},
    )
    done.move_to(states.RUNNING)
    done.total, done.succeeded = 1, 1
    done.move_to(states.SUCCEEDED)
    done.output_info = {"bigqueryOutputDataset": "bq://p.d", "bigqueryOutputTable": "predictions_x"}
    return [("pending", pending.vertex_view()), ("running", running.vertex_view()),
            ("failed", failed.vertex_view()), ("succeeded", done.vertex_view())]  # fmt: skip


@pytest.mark.parametrize(("label", "view"), _vertex_views(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_job_view_fits_the_batch_prediction_job_schema(label: str, view: dict[str, Any]) -> None:
    assert problems(view, JOB) == []


# --- what the running emulator answers ---------------------------------------------------------


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer local"}
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, method=method, headers=headers)
        ) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _error_problems(body: dict[str, Any]) -> list[str]:
    """A Google error body: ``code`` (the HTTP status), ``message``, ``status``, optional details."""
    from local_stack.emulator.errors import GRPC_CODES

    error = body.get("error", {})
    found = [
        f"error.{key}: not in a Google error" for key in set(error) - {"code", "message", "status", "details"}
    ]
    if error.get("status") not in GRPC_CODES:
        found.append(f"error.status {error.get('status')!r} is not a canonical name")
    return found + problems({k: v for k, v in error.items() if k != "status"}, "GoogleRpcStatus", "$.error")


@pytest.mark.integration
@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_the_emulators_vertex_answers_fit_the_discovery_document(
    local_stack, stack_admin, vertex_client, upload_jsonl, bq_table, bq_dataset, version
) -> None:
    jobs = (
        f"{local_stack.gemini_url}/{version}/projects/{local_stack.project}/locations/{local_stack.location}"
    )
    jobs += "/batchPredictionJobs"
    src = upload_jsonl("in.jsonl", [{"request": user_request("hi")}, {"request": {"contents": []}}])
    table = bq_table("prompts", [{"id": 1, "request": user_request("bq"), "note": "n"}])
    made = {
        "gcs": vertex_client.batches.create(
            model="gemini-2.5-flash",
            src=src,
            config={"http_options": {"extra_body": {"labels": {"team": "ml"}}}},
        ),
        "bigquery": vertex_client.batches.create(
            model="gemini-2.5-flash",
            src=table,
            config={"dest": f"bq://{bq_dataset.project}.{bq_dataset.dataset_id}"},
        ),
        "failed": vertex_client.batches.create(
            model="gemini-2.5-flash", src=src.replace("in.jsonl", "none.jsonl")
        ),
    }
    ids = {kind: job.name.rsplit("/", 1)[-1] for kind, job in made.items()}
    created = _call(f"{jobs}/{ids['gcs']}")[1]  # right after create: PENDING or RUNNING
    for job in made.values():
        wait_for_job(vertex_client, job.name)

    answers = {kind: _call(f"{jobs}/{job_id}") for kind, job_id in ids.items()}
    listed = _call(f"{jobs}?pageSize=2")
    deleted = _call(f"{jobs}/{ids['failed']}", "DELETE")
    errors = [_call(f"{jobs}/999"), _call(f"{jobs}?filter=x~y")]

    assert problems(created, JOB) == []
    assert {kind: status for kind, (status, _) in answers.items()} == {
        "gcs": 200,
        "bigquery": 200,
        "failed": 200,
    }
    assert {kind: problems(body, JOB) for kind, (_, body) in answers.items()} == {
        "gcs": [],
        "bigquery": [],
        "failed": [],
    }
    assert answers["failed"][1]["state"] == "JOB_STATE_FAILED" and answers["failed"][1]["error"]["code"] == 5
    assert listed[0] == 200 and listed[1]["nextPageToken"]
    assert problems(listed[1], f"{V1}ListBatchPredictionJobsResponse") == []
    assert deleted[0] == 200 and problems(deleted[1], "GoogleLongrunningOperation") == []
    metadata = dict(deleted[1]["metadata"])
    assert (
        metadata.pop("@type")
        == f"type.googleapis.com/google.cloud.aiplatform.{version}.DeleteOperationMetadata"
    )
    assert problems(metadata, f"{V1}DeleteOperationMetadata") == []
    assert [status for status, _ in errors] == [404, 400]
    assert [_error_problems(body) for _, body in errors] == [[], []]
