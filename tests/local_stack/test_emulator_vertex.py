"""Vertex AI batch prediction against the emulator, through the unmodified google-genai SDK."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from emulator_helpers import (
    admin_states,
    predictions,
    user_request,
    wait_for_job,
    wait_for_job_async,
    wait_until,
)
from google.genai import errors, types

pytestmark = pytest.mark.integration

S = types.JobState


def test_a_gcs_job_round_trips_and_writes_predictions_in_the_vertex_layout(
    vertex_client, stack_admin, upload_jsonl, gcs_client
) -> None:
    lines = [{"request": user_request(f"question {i}")} for i in range(100)] + [{"request": {"contents": []}}]
    src = upload_jsonl("in/requests.jsonl", lines)

    job = vertex_client.batches.create(
        model="gemini-2.5-flash",
        src=src,
        config={"display_name": "gcs-round-trip", "http_options": {"extra_body": {"labels": {"team": "ml"}}}},
    )
    assert job.state == S.JOB_STATE_PENDING
    assert job.name.rsplit("/", 1)[-1].isdigit()
    done = wait_for_job(vertex_client, job.name)

    assert done.state == S.JOB_STATE_SUCCEEDED
    assert done.display_name == "gcs-round-trip"
    assert done.dest.gcs_uri == src[: -len(".jsonl")] + "/dest"
    assert (done.completion_stats.successful_count, done.completion_stats.failed_count) == (100, 1)
    assert done.completion_stats.incomplete_count == 0
    assert done.output_info.gcs_output_directory.startswith(f"{done.dest.gcs_uri}/prediction-model-")
    assert done.start_time and done.end_time and done.create_time <= done.start_time <= done.end_time
    assert admin_states(stack_admin, job.name) == [
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_SUCCEEDED",
    ]
    assert stack_admin.job(job.name)["labels"] == {"team": "ml"}

    rows = predictions(gcs_client, done.output_info.gcs_output_directory)
    assert len(rows) == 101
    assert [r["request"] for r in rows] != [line["request"] for line in lines]  # not in input order
    ok = [r for r in rows if r["status"] == ""]
    failed = [r for r in rows if r["status"]]
    assert len(ok) == 100 and len(failed) == 1
    sample = next(r for r in ok if r["request"] == user_request("question 7"))
    assert list(sample) == ["status", "processed_time", "request", "response"]
    assert sample["response"]["candidates"][0]["content"]["parts"][0]["text"].endswith("] question 7")
    assert sample["response"]["usageMetadata"]["totalTokenCount"] > 0
    assert "contents is not specified" in failed[0]["status"]
    assert "response" not in failed[0]


def test_get_shows_every_state_of_a_job_and_the_progress_growing(
    vertex_client, stack_admin, upload_jsonl
) -> None:
    src = upload_jsonl("in.jsonl", [{"request": user_request(f"q{i}")} for i in range(30)])
    stack_admin.set_faults(queue_delay_s=0.5, row_latency_ms=15)
    job = vertex_client.batches.create(model="gemini-2.5-flash", src=src)

    seen: list[S] = []
    progress: set[int] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = vertex_client.batches.get(name=job.name)
        if not seen or seen[-1] != current.state:
            seen.append(current.state)
        if current.completion_stats and current.state == S.JOB_STATE_RUNNING:
            progress.add(current.completion_stats.successful_count)
        if current.done:
            break

    assert seen == [S.JOB_STATE_PENDING, S.JOB_STATE_RUNNING, S.JOB_STATE_SUCCEEDED]
    assert len(progress) >= 3  # completionStats grows while it runs


def test_a_job_with_an_explicit_gcs_destination_writes_there(
    vertex_client, stack_admin, upload_jsonl, gcs_bucket
) -> None:
    src = upload_jsonl("in.jsonl", [{"request": user_request("hello")}])
    dest = f"gs://{gcs_bucket.name}/custom/out"

    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(model="gemini-2.5-pro", src=src, config={"dest": dest}).name,
    )

    assert done.dest.gcs_uri == dest
    assert done.output_info.gcs_output_directory.startswith(f"{dest}/prediction-model-")
    names = [b.name for b in gcs_bucket.list_blobs(prefix="custom/out/")]
    assert len(names) == 1 and names[0].endswith("/predictions.jsonl")


def test_a_folder_source_without_destination_gets_the_documented_default(
    vertex_client, stack_admin, upload_jsonl, gcs_client
) -> None:
    upload_jsonl("batch/a.jsonl", [{"request": user_request("a")}])
    src = upload_jsonl("batch/b.jsonl", [{"request": user_request("b")}, {"request": user_request("c")}])
    folder = src.rsplit("/", 1)[0] + "/"

    done = wait_for_job(
        vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=folder).name
    )

    assert done.state == S.JOB_STATE_SUCCEEDED
    assert done.dest.gcs_uri == folder + "dest"
    assert done.completion_stats.successful_count == 3
    assert len(predictions(gcs_client, done.output_info.gcs_output_directory)) == 3


def test_a_wildcard_source_reads_every_matching_object(vertex_client, stack_admin, upload_jsonl) -> None:
    upload_jsonl("w/part-1.jsonl", [{"request": user_request("1")}])
    upload_jsonl("w/part-2.jsonl", [{"request": user_request("2")}])
    src = upload_jsonl("w/other.txt", [{"request": user_request("x")}])
    pattern = src.rsplit("/", 1)[0] + "/part-*.jsonl"

    done = wait_for_job(
        vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=pattern).name
    )

    assert done.completion_stats.successful_count == 2


def test_a_bigquery_job_writes_input_columns_plus_response_status_and_processed_time(
    vertex_client, stack_admin, bq_table, bq_client
) -> None:
    src = bq_table(
        "prompts",
        [{"id": i, "request": user_request(f"row {i}"), "note": f"n{i}"} for i in range(20)]
        + [{"id": 99, "request": {"contents": [{"role": "user", "parts": []}]}, "note": "bad"}],
    )

    job = vertex_client.batches.create(model="gemini-2.5-flash", src=src)
    assert job.dest.bigquery_uri.startswith(f"{src}_dest_")
    done = wait_for_job(vertex_client, job.name)

    assert done.state == S.JOB_STATE_SUCCEEDED, done.error
    table = done.dest.bigquery_uri[len("bq://") :]
    assert done.output_info.bigquery_output_table == table.rsplit(".", 1)[-1]
    fields = {f.name: f.field_type for f in bq_client.get_table(table).schema}
    assert fields == {"id": "INT64", "request": "JSON", "note": "STRING", "response": "JSON",
                      "status": "STRING", "processed_time": "TIMESTAMP"}  # fmt: skip
    rows = {row["id"]: row for row in bq_client.list_rows(table)}
    assert len(rows) == 21
    assert rows[3]["note"] == "n3" and rows[3]["status"] == ""
    assert rows[3]["response"]["candidates"][0]["content"]["parts"][0]["text"].endswith("] row 3")
    assert rows[3]["processed_time"] is not None
    assert "contents.parts must not be empty" in rows[99]["status"]
    assert rows[99]["response"] is None


def test_a_bigquery_source_with_a_json_string_column_can_write_to_gcs(
    vertex_client, stack_admin, bq_table, gcs_bucket, gcs_client
) -> None:
    src = bq_table(
        "strings", [{"id": 1, "request": json.dumps(user_request("as string")), "note": "x"}], "STRING"
    )
    dest = f"gs://{gcs_bucket.name}/from-bq"

    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(model="gemini-2.5-flash", src=src, config={"dest": dest}).name,
    )

    [row] = predictions(gcs_client, done.output_info.gcs_output_directory)
    assert row["status"] == "" and row["request"] == user_request("as string")


def test_a_gcs_source_can_write_to_a_bigquery_table(
    vertex_client, stack_admin, upload_jsonl, bq_dataset, bq_client
) -> None:
    src = upload_jsonl("in.jsonl", [{"request": user_request("to bq")}])
    dest = f"bq://{bq_client.project}.{bq_dataset.dataset_id}.results"

    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(model="gemini-2.5-flash", src=src, config={"dest": dest}).name,
    )

    assert done.output_info.bigquery_output_table == "results"
    [row] = list(bq_client.list_rows(f"{bq_client.project}.{bq_dataset.dataset_id}.results"))
    assert row["request"] == user_request("to bq") and row["status"] == ""


def test_a_bigquery_dataset_destination_gets_a_predictions_table(
    vertex_client, stack_admin, bq_table, bq_dataset, bq_client
) -> None:
    src = bq_table("prompts", [{"id": 1, "request": user_request("x"), "note": "n"}])
    dest = f"bq://{bq_client.project}.{bq_dataset.dataset_id}"

    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(model="gemini-2.5-flash", src=src, config={"dest": dest}).name,
    )

    table = done.output_info.bigquery_output_table
    assert table.startswith("predictions_") and table.endswith("Z")
    [row] = list(bq_client.list_rows(f"{bq_client.project}.{bq_dataset.dataset_id}.{table}"))
    assert row["id"] == 1 and row["note"] == "n" and row["status"] == ""


def test_list_paginates_and_filters_by_display_name_labels_and_state(
    vertex_client, stack_admin, upload_jsonl
) -> None:
    src = upload_jsonl("in.jsonl", [{"request": user_request("q")}])
    stack_admin.set_faults(queue_delay_s=60)
    names = []
    for i in range(5):
        labels = {"airflow-work-id": f"w{i % 2}"}
        job = vertex_client.batches.create(
            model="gemini-2.5-flash",
            src=src,
            config={"display_name": f"run-{i}", "http_options": {"extra_body": {"labels": labels}}},
        )
        names.append(job.name)

    pager = vertex_client.batches.list(config={"page_size": 2})
    assert pager.page_size == 2 and len(pager.page) == 2
    assert [j.name for j in pager] == names[::-1]  # every page, newest first

    def listed(filter_: str) -> list[str]:
        return sorted(j.display_name for j in vertex_client.batches.list(config={"filter": filter_}))

    assert listed('display_name="run-3"') == ["run-3"]
    assert listed('labels.airflow-work-id="w0"') == ["run-0", "run-2", "run-4"]
    assert listed('labels.airflow-work-id="w1" AND state=JOB_STATE_PENDING') == ["run-1", "run-3"]
    assert listed("state=JOB_STATE_RUNNING") == []
    with pytest.raises(errors.ClientError) as info:
        listed('unknown_field="x"')
    assert info.value.code == 400


def test_cancel_passes_through_cancelling_and_delete_hides_the_job(
    vertex_client, stack_admin, upload_jsonl
) -> None:
    src = upload_jsonl("in.jsonl", [{"request": user_request("q")}])
    stack_admin.set_faults(queue_delay_s=60)
    job = vertex_client.batches.create(model="gemini-2.5-flash", src=src)

    with pytest.raises(errors.ClientError) as running:
        vertex_client.batches.delete(name=job.name)
    assert running.value.code == 400 and running.value.status == "FAILED_PRECONDITION"
    assert vertex_client.batches.cancel(name=job.name) is None
    assert vertex_client.batches.get(name=job.name).state == S.JOB_STATE_CANCELLING
    done = wait_for_job(vertex_client, job.name)
    assert done.state == S.JOB_STATE_CANCELLED
    with pytest.raises(errors.ClientError) as again:
        vertex_client.batches.cancel(name=job.name)
    assert again.value.status == "FAILED_PRECONDITION"

    deleted = vertex_client.batches.delete(name=job.name)

    assert deleted.done is True and deleted.error is None
    with pytest.raises(errors.ClientError) as gone:
        vertex_client.batches.get(name=job.name)
    assert gone.value.code == 404
    assert job.name not in [j.name for j in vertex_client.batches.list()]
    assert stack_admin.job(job.name)["deleted"] is True


def test_a_running_cancelled_job_keeps_and_writes_the_rows_already_done(
    vertex_client, stack_admin, upload_jsonl, gcs_client
) -> None:
    src = upload_jsonl("in.jsonl", [{"request": user_request(f"q{i}")} for i in range(300)])
    stack_admin.set_faults(row_latency_ms=10)
    job = vertex_client.batches.create(model="gemini-2.5-flash", src=src)
    wait_until(
        lambda: (
            (
                vertex_client.batches.get(name=job.name).completion_stats or types.CompletionStats()
            ).successful_count
        ),
        what="some rows done",
    )

    vertex_client.batches.cancel(name=job.name)
    done = wait_for_job(vertex_client, job.name)

    assert done.state == S.JOB_STATE_CANCELLED
    stats = done.completion_stats
    assert 0 < stats.successful_count < 300
    assert stats.successful_count + stats.incomplete_count == 300
    assert len(predictions(gcs_client, done.output_info.gcs_output_directory)) == stats.successful_count


async def test_the_async_client_creates_gets_lists_cancels_and_deletes(
    local_stack, stack_admin, upload_jsonl
) -> None:
    from conftest import make_vertex_client

    client = make_vertex_client(local_stack)
    src = upload_jsonl("in.jsonl", [{"request": user_request("async")}])
    finished = await client.aio.batches.create(model="gemini-2.5-flash", src=src)
    stack_admin.set_faults(queue_delay_s=60)
    waiting = await client.aio.batches.create(model="gemini-2.5-flash", src=src)

    done = await wait_for_job_async(client, finished.name)
    listed = [job.name async for job in await client.aio.batches.list(config={"page_size": 1})]
    await client.aio.batches.cancel(name=waiting.name)
    cancelled = await wait_for_job_async(client, waiting.name)
    deleted = await client.aio.batches.delete(name=done.name)

    assert done.state == S.JOB_STATE_SUCCEEDED
    assert listed == [waiting.name, finished.name]
    assert cancelled.state == S.JOB_STATE_CANCELLED
    assert deleted.done is True


def test_the_v1_api_version_is_served_too(local_stack, stack_admin, upload_jsonl) -> None:
    from conftest import make_vertex_client

    client = make_vertex_client(local_stack, api_version="v1")
    src = upload_jsonl("in.jsonl", [{"request": user_request("v1")}])
    assert (
        wait_for_job(client, client.batches.create(model="gemini-2.0-flash-001", src=src).name).state
        == S.JOB_STATE_SUCCEEDED
    )


# --- errors ----------------------------------------------------------------------------------


def raw_call(
    url: str, method: str = "GET", body: Any = None, token: str | None = "local"
) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, method=method, headers=headers)
        ) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def jobs_url(stack: Any, version: str = "v1") -> str:
    parent = f"projects/{stack.project}/locations/{stack.location}"
    return f"{stack.gemini_url}/{version}/{parent}/batchPredictionJobs"


def test_create_accepts_snake_case_field_names_as_proto_json_does(local_stack, stack_admin) -> None:
    body = {
        "display_name": "snake",
        "model": "publishers/google/models/gemini-2.5-flash",
        "input_config": {"instances_format": "jsonl", "gcs_source": {"uris": ["gs://b/in.jsonl"]}},
        "labels": {"my_key": "v"},
    }
    status, answer = raw_call(jobs_url(local_stack), "POST", body)
    assert status == 200, answer
    assert answer["displayName"] == "snake" and answer["labels"] == {"my_key": "v"}
    assert answer["outputConfig"]["gcsDestination"]["outputUriPrefix"] == "gs://b/in/dest"


def test_calls_without_a_bearer_token_get_401_in_the_real_error_shape(local_stack, stack_admin) -> None:
    status, body = raw_call(jobs_url(local_stack), token=None)
    assert status == 401
    assert body["error"]["status"] == "UNAUTHENTICATED" and body["error"]["code"] == 401


GOOD_BODY = {
    "displayName": "x",
    "model": "publishers/google/models/gemini-2.5-flash",
    "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": ["gs://b/in.jsonl"]}},
    "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": "gs://b/out"}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": None}, "model is required"),
        ({"displayName": None}, "display_name is required"),
        ({"inputConfig": None}, "input_config is required"),
        (
            {"inputConfig": {"instancesFormat": "csv", "gcsSource": {"uris": ["gs://b/in.csv"]}}},
            "instances format",
        ),
        ({"inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": ["s3://b/in.jsonl"]}}}, "gs://"),
        ({"inputConfig": {"instancesFormat": "bigquery", "bigquerySource": {"inputUri": "p.d.t"}}}, "bq://"),
        (
            {"outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": "/tmp/x"}}},
            "gs://",
        ),
        ({"labels": {"Bad Key": "v"}}, "Label key"),
        ({"lables": {"team": "ml"}}, 'Unknown name "lables"'),
    ],
)
def test_malformed_create_requests_get_400_invalid_argument(
    local_stack, stack_admin, change, message
) -> None:
    body = {k: v for k, v in {**GOOD_BODY, **change}.items() if v is not None}
    status, answer = raw_call(jobs_url(local_stack), "POST", body)
    assert status == 400, answer
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert message in answer["error"]["message"]
    assert stack_admin.jobs() == []


@pytest.mark.parametrize(
    "model", ["gemini-9.0-ultra-max", "gemini-2.5-flsh", "publishers/acme/models/gemini-2.5-flash"]
)
def test_unknown_models_get_404_not_found_at_create(vertex_client, stack_admin, model) -> None:
    with pytest.raises(errors.ClientError) as info:
        vertex_client.batches.create(model=model, src="gs://b/in.jsonl")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"


def test_a_missing_gcs_object_fails_the_job_with_a_clear_error(
    vertex_client, stack_admin, gcs_bucket
) -> None:
    job = vertex_client.batches.create(model="gemini-2.5-flash", src=f"gs://{gcs_bucket.name}/nope.jsonl")
    done = wait_for_job(vertex_client, job.name)
    assert done.state == S.JOB_STATE_FAILED
    assert done.error.code == 5 and f"gs://{gcs_bucket.name}/nope.jsonl" in done.error.message


def test_a_missing_bigquery_table_fails_the_job_with_a_clear_error(
    vertex_client, stack_admin, bq_dataset, bq_client
) -> None:
    src = f"bq://{bq_client.project}.{bq_dataset.dataset_id}.missing"
    done = wait_for_job(vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=src).name)
    assert done.state == S.JOB_STATE_FAILED
    assert src in done.error.message and "does not exist" in done.error.message


def test_an_existing_bigquery_dest_table_fails_the_job_and_is_left_as_it_was(
    vertex_client, stack_admin, upload_jsonl, bq_table, bq_client
) -> None:
    existing = bq_table("results", [{"id": 7, "request": user_request("old"), "note": "keep"}])
    src = upload_jsonl("in.jsonl", [{"request": user_request("new")}])

    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(model="gemini-2.5-flash", src=src, config={"dest": existing}).name,
    )

    assert done.state == S.JOB_STATE_FAILED
    assert done.error.code == 6 and f"{existing} already exists" in done.error.message
    assert done.output_info is None
    rows = list(bq_client.list_rows(existing[len("bq://") :]))
    assert [(row["id"], row["note"]) for row in rows] == [(7, "keep")]  # nothing appended


def test_unknown_fields_and_empty_text_are_row_errors_and_the_batch_goes_on(
    vertex_client, stack_admin, upload_jsonl, gcs_client
) -> None:
    bad = [
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"temprature": 0.1}},
        {"contents": [{"role": "user", "parts": [{"text": "   "}]}]},
    ]
    src = upload_jsonl("in.jsonl", [{"request": user_request("fine")}] + [{"request": r} for r in bad])

    done = wait_for_job(vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=src).name)

    assert done.state == S.JOB_STATE_SUCCEEDED
    assert (done.completion_stats.successful_count, done.completion_stats.failed_count) == (1, 2)
    failed = sorted(
        r["status"] for r in predictions(gcs_client, done.output_info.gcs_output_directory) if r["status"]
    )
    reasons = [status.split(": ", 1) for status in failed]
    assert [reason for reason, _ in reasons] == ["Bad Request", "Bad Request"]
    assert [json.loads(body)["error"] for _, body in reasons] == [
        {
            "code": 400,
            "message": "Invalid JSON payload received. Unknown name \"temprature\" at 'generation_config': "
            "Cannot find field.",
            "status": "INVALID_ARGUMENT",
        },
        {
            "code": 400,
            "message": "Unable to submit request because it has an empty text parameter. "
            "Add a value to the parameter and try again.",
            "status": "INVALID_ARGUMENT",
        },
    ]


def test_jobs_of_another_project_or_location_are_not_found(
    vertex_client, stack_admin, local_stack, upload_jsonl
) -> None:
    stack_admin.set_faults(queue_delay_s=60)
    job = vertex_client.batches.create(
        model="gemini-2.5-flash", src=upload_jsonl("in.jsonl", [{"request": user_request("q")}])
    )
    job_id = job.name.rsplit("/", 1)[-1]
    other = f"{jobs_url(local_stack, 'v1beta1').replace(local_stack.project, 'other')}/{job_id}"
    status, body = raw_call(other)
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
