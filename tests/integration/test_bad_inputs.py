"""Bad inputs through the real code path, against the local stack: each is refused before any job.

The same tables of bad requests (tests/pipeline/test_request_shape.py, test_jsonl_scan.py) go
through each path as users meet it:

* JSONL files uploaded to the GCS emulator, checked by the pipeline's validate-GCS-input task;
* BigQuery tables in the BigQuery emulator, checked by the pipeline's requests-table task (the
  request-shape rules in SQL, over every row);
* inline requests given to the create operator (``src=[...]``), checked when it is built.

For each: the task fails with ``AirflowFailException`` (one try, no Airflow retry), the message
names the location (file and line, table column, or ``src[i]`` and the field path) and what to
do, and the Gemini emulator's job list is unchanged. Inputs the service accepts pass.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest

from tests.pipeline.test_jsonl_scan import ACCEPTED_FILES, STRICT_JSON_CASES
from tests.pipeline.test_request_shape import ACCEPTED_REQUESTS, INLINE_CASES, SHAPE_CASES

pytestmark = pytest.mark.integration

GCP_CONN_ID = "google_cloud_default"
GOOD_REQUEST = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def _vertex_line(key: str, request: object) -> str:
    if isinstance(request, dict):
        request = {**request, "labels": {**request.get("labels", {}), "gemini_batch_key": key}}
    return json.dumps({"request": request})


def _upload(bucket, name: str, data: bytes) -> str:
    bucket.blob(name).upload_from_file(io.BytesIO(data), size=len(data))
    return f"gs://{bucket.name}/{name}"


def _refused(call, stack_admin) -> str:
    """Run ``call``; assert it fails for good (no retry) and creates no job; return the message."""
    from airflow.sdk.exceptions import AirflowFailException

    before = stack_admin.jobs()
    with pytest.raises(AirflowFailException) as caught:
        call()
    assert stack_admin.jobs() == before
    return str(caught.value)


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [(case[1], case[2]) for case in SHAPE_CASES],
    ids=[f"jsonl-{case[0]}" for case in SHAPE_CASES],
)
def test_a_bad_request_in_a_jsonl_file_is_refused_naming_file_and_line(
    gcs_bucket, stack_admin, request_body: object, fragment: str
) -> None:
    from gemini_batch.pipeline.tasks import validate_gcs_input

    data = (_vertex_line("k0", GOOD_REQUEST) + "\n" + _vertex_line("k1", request_body) + "\n").encode()
    uri = _upload(gcs_bucket, "in/requests.jsonl", data)
    message = _refused(lambda: validate_gcs_input(uri, gcp_conn_id=GCP_CONN_ID), stack_admin)
    assert f"{uri}:2: " in message and fragment in message, message
    assert f"{uri}:1" not in message


@pytest.mark.parametrize(
    ("line", "fragment"),
    [case[1:] for case in STRICT_JSON_CASES],
    ids=[f"jsonl-{case[0]}" for case in STRICT_JSON_CASES],
)
def test_json_the_service_refuses_is_refused_with_line_and_column(
    gcs_bucket, stack_admin, line: str, fragment: str
) -> None:
    from gemini_batch.pipeline.tasks import validate_gcs_input

    data = (_vertex_line("k0", GOOD_REQUEST) + "\n" + line + "\n").encode()
    uri = _upload(gcs_bucket, "in/requests.jsonl", data)
    message = _refused(lambda: validate_gcs_input(uri, gcp_conn_id=GCP_CONN_ID), stack_admin)
    assert f"{uri}:2: invalid JSON at column " in message and fragment in message, message


@pytest.mark.parametrize(
    ("content", "requests"), [case[1:] for case in ACCEPTED_FILES], ids=[case[0] for case in ACCEPTED_FILES]
)
def test_jsonl_files_the_service_accepts_pass(gcs_bucket, content: str, requests: int) -> None:
    from gemini_batch.pipeline.tasks import validate_gcs_input

    uri = _upload(gcs_bucket, "in/my requests.jsonl", content.encode())  # a space in the name
    assert validate_gcs_input(uri, gcp_conn_id=GCP_CONN_ID)["requests"] == requests


def _requests_table(bq_client, bq_dataset, rows: list[dict]) -> str:
    from google.cloud import bigquery

    name = f"requests_{uuid.uuid4().hex[:8]}"
    table_id = f"{bq_dataset.project}.{bq_dataset.dataset_id}.{name}"
    schema = [bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON")]
    body = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
    bq_client.create_table(bigquery.Table(table_id, schema=schema))
    bq_client.load_table_from_file(io.BytesIO(body), table_id, job_config=config).result()
    return f"bq://{table_id}"


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [(case[1], case[3]) for case in SHAPE_CASES],
    ids=[f"table-{case[0]}" for case in SHAPE_CASES],
)
def test_a_bad_request_in_a_table_is_refused_naming_the_column_and_field(
    bq_client, bq_dataset, stack_admin, request_body: object, fragment: str
) -> None:
    from gemini_batch.pipeline.tasks import validate_requests_table

    rows = [{"key": "good", "request": GOOD_REQUEST}, {"key": "bad", "request": request_body}]
    uri = _requests_table(bq_client, bq_dataset, rows)
    message = _refused(
        lambda: validate_requests_table(uri, gcp_conn_id=GCP_CONN_ID, project=bq_dataset.project), stack_admin
    )
    assert f"{uri} column `request`: 1 requests: " in message and fragment in message, message
    assert "(sample keys: bad)" in message and "good" not in message


def test_tables_the_service_accepts_pass(bq_client, bq_dataset) -> None:
    from gemini_batch.pipeline.tasks import validate_requests_table

    rows = [{"key": f"k{index}", "request": request} for index, request in enumerate(ACCEPTED_REQUESTS)]
    uri = _requests_table(bq_client, bq_dataset, rows)
    scan = validate_requests_table(uri, gcp_conn_id=GCP_CONN_ID, project=bq_dataset.project)
    assert scan["requests"] == len(ACCEPTED_REQUESTS)


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [*INLINE_CASES, *[({"contents": case[1]["contents"]}, case[2]) for case in SHAPE_CASES[5:17]]],
    ids=[f"inline-{index}" for index in range(len(INLINE_CASES) + 12)],
)
def test_a_bad_inline_request_is_refused_by_the_operator(
    stack_admin, request_body: dict, fragment: str
) -> None:
    from gemini_batch.operators import GeminiBatchCreateJobOperator

    good = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    message = _refused(
        lambda: GeminiBatchCreateJobOperator(
            task_id="create", model="gemini-2.5-flash", src=[good, request_body]
        ),
        stack_admin,
    )
    fragment = fragment.replace("src[0]", "src[1]").replace("request.", "src[1].")
    assert "src[1]" in message and fragment in message, message
