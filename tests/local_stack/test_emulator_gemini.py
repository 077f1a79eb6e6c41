"""Gemini API batches and the Files API against the emulator, through the unmodified SDK."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
from emulator_helpers import jsonl, user_request, wait_for_job, wait_for_job_async
from google.genai import errors, types

pytestmark = pytest.mark.integration

S = types.JobState


def sdk_request(text: str, **config: object) -> dict:
    """An inlined request in the SDK's own (snake_case) form."""
    request: dict = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if config:
        request["config"] = config
    return request


def test_an_inline_batch_returns_responses_in_order_with_schema_json(gemini_client, stack_admin) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"label": {"type": "STRING", "enum": ["spam", "ham"]}, "score": {"type": "NUMBER"}},
        "required": ["label", "score"],
    }
    requests = [sdk_request(f"mail {i}") for i in range(5)]
    requests.append(sdk_request("json please", response_mime_type="application/json", response_schema=schema))
    requests.append({"contents": [{"role": "user", "parts": []}]})

    job = gemini_client.batches.create(
        model="gemini-2.5-flash", src=requests, config={"display_name": "inline"}
    )
    assert job.name.startswith("batches/") and job.state == S.JOB_STATE_PENDING
    done = wait_for_job(gemini_client, job.name)

    assert done.state == S.JOB_STATE_SUCCEEDED
    assert done.display_name == "inline" and done.model == "models/gemini-2.5-flash"
    answers = done.dest.inlined_responses
    assert [a.response.text.rsplit("] ", 1)[-1] for a in answers[:5]] == [f"mail {i}" for i in range(5)]
    structured = json.loads(answers[5].response.text)
    assert structured["label"] in ("spam", "ham") and isinstance(structured["score"], float)
    assert answers[5].response.usage_metadata.total_token_count > 0
    assert answers[6].response is None and answers[6].error.code == 400


def test_a_file_batch_reads_an_uploaded_file_and_writes_a_results_file(gemini_client, stack_admin) -> None:
    lines = [{"key": f"k{i}", "request": user_request(f"line {i}")} for i in range(10)]
    lines.append({"key": "broken", "request": {"contents": "nope"}})
    uploaded = gemini_client.files.upload(
        file=io.BytesIO(jsonl(lines)), config={"mime_type": "application/jsonl", "display_name": "requests"}
    )
    assert uploaded.name.startswith("files/") and uploaded.size_bytes == len(jsonl(lines))

    done = wait_for_job(
        gemini_client, gemini_client.batches.create(model="gemini-2.5-flash-lite", src=uploaded.name).name
    )

    assert done.state == S.JOB_STATE_SUCCEEDED
    results = [json.loads(x) for x in gemini_client.files.download(file=done.dest.file_name).splitlines()]
    by_key = {r["key"]: r for r in results}
    assert set(by_key) == {f"k{i}" for i in range(10)} | {"broken"}
    assert by_key["k4"]["response"]["candidates"][0]["content"]["parts"][0]["text"].endswith("] line 4")
    assert set(by_key["broken"]["error"]) == {"code", "message"}  # a google.rpc.Status: no "status"
    assert by_key["broken"]["error"]["code"] == 400
    assert gemini_client.files.get(name=done.dest.file_name).source == types.FileSource.GENERATED


def test_the_files_api_uploads_lists_gets_downloads_and_deletes(gemini_client, stack_admin, tmp_path) -> None:
    path = tmp_path / "big.jsonl"
    payload = b"x" * (9 * 1024 * 1024) + b"\n"  # more than one 8 MiB chunk
    path.write_bytes(payload)
    big = gemini_client.files.upload(file=path, config={"mime_type": "application/jsonl"})
    small = gemini_client.files.upload(
        file=io.BytesIO(b"{}\n"), config={"mime_type": "text/plain", "name": "my-file"}
    )

    assert small.name == "files/my-file"
    assert gemini_client.files.get(name="my-file").size_bytes == 3
    assert gemini_client.files.download(file=big.name) == payload
    pager = gemini_client.files.list(config={"page_size": 1})
    assert sorted(f.name for f in pager) == sorted([big.name, small.name])
    gemini_client.files.delete(name=small.name)
    with pytest.raises(errors.ClientError) as info:
        gemini_client.files.get(name=small.name)
    assert info.value.code == 403  # the real service's answer for a missing file
    with pytest.raises(errors.ClientError):
        gemini_client.files.upload(
            file=io.BytesIO(b"{}"), config={"mime_type": "text/plain", "name": "Bad_Name"}
        )


def test_batches_list_paginates_cancel_and_delete(gemini_client, stack_admin) -> None:
    stack_admin.set_faults(queue_delay_s=60)
    names = [
        gemini_client.batches.create(model="gemini-2.5-flash", src=[sdk_request(str(i))]).name
        for i in range(3)
    ]

    assert [b.name for b in gemini_client.batches.list(config={"page_size": 2})] == names[::-1]
    gemini_client.batches.cancel(name=names[0])
    cancelled = wait_for_job(gemini_client, names[0])
    gemini_client.batches.delete(name=names[1])  # still pending: the batch is stopped and gone

    assert cancelled.state == S.JOB_STATE_CANCELLED
    with pytest.raises(errors.ClientError) as info:
        gemini_client.batches.get(name=names[1])
    assert info.value.code == 404
    assert [b.name for b in gemini_client.batches.list()] == [names[2], names[0]]
    with pytest.raises(ValueError):
        gemini_client.batches.list(config={"filter": 'display_name="x"'})  # the SDK refuses filters here


async def test_the_async_client_uploads_creates_gets_lists_and_cancels(local_stack, stack_admin) -> None:
    from conftest import make_gemini_client

    client = make_gemini_client(local_stack)
    uploaded = await client.aio.files.upload(
        file=io.BytesIO(jsonl([{"key": "a", "request": user_request("async file")}])),
        config={"mime_type": "application/jsonl"},
    )
    from_file = await client.aio.batches.create(model="gemini-2.5-flash", src=uploaded.name)
    done = await wait_for_job_async(client, from_file.name)
    stack_admin.set_faults(queue_delay_s=60)
    waiting = await client.aio.batches.create(model="gemini-2.5-flash", src=[sdk_request("later")])
    listed = [b.name async for b in await client.aio.batches.list(config={"page_size": 1})]
    await client.aio.batches.cancel(name=waiting.name)
    cancelled = await wait_for_job_async(client, waiting.name)
    await client.aio.batches.delete(name=done.name)
    data = await client.aio.files.download(file=done.dest.file_name)

    assert done.state == S.JOB_STATE_SUCCEEDED
    assert json.loads(data)["key"] == "a"
    assert listed == [waiting.name, from_file.name]
    assert cancelled.state == S.JOB_STATE_CANCELLED


def test_the_v1_api_version_is_served_too(local_stack, stack_admin) -> None:
    from conftest import make_gemini_client

    client = make_gemini_client(local_stack, api_version="v1")
    done = wait_for_job(client, client.batches.create(model="gemini-2.5-flash", src=[sdk_request("v1")]).name)
    assert done.state == S.JOB_STATE_SUCCEEDED


def test_a_wrong_api_key_gets_400_api_key_invalid_and_a_missing_one_403(local_stack, stack_admin) -> None:
    from conftest import make_gemini_client

    client = make_gemini_client(local_stack, api_key="not-the-key")  # keep a reference: see wire note
    with pytest.raises(errors.ClientError) as wrong:
        client.batches.list()
    assert wrong.value.code == 400 and wrong.value.status == "INVALID_ARGUMENT"
    assert wrong.value.message == "API key not valid. Please pass a valid API key."
    info = [d for d in wrong.value.details["error"]["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert info == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ]
    try:
        urllib.request.urlopen(f"{local_stack.gemini_url}/v1beta/batches")
        raise AssertionError("expected 403")
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        assert exc.code == 403 and body["error"]["status"] == "PERMISSION_DENIED"
        assert "unregistered callers" in body["error"]["message"] and "details" not in body["error"]
    with urllib.request.urlopen(f"{local_stack.gemini_url}/v1beta/batches?key={local_stack.api_key}") as ok:
        assert ok.status == 200


def test_unknown_models_and_missing_input_files_are_rejected_at_create(gemini_client, stack_admin) -> None:
    with pytest.raises(errors.ClientError) as model:
        gemini_client.batches.create(model="gemini-1.0-banana", src=[sdk_request("x")])
    with pytest.raises(errors.ClientError) as missing:
        gemini_client.batches.create(model="gemini-2.5-flash", src="files/does-not-exist")

    assert model.value.code == 404 and "models/gemini-1.0-banana is not found" in model.value.message
    assert missing.value.code == 403
    assert stack_admin.jobs() == []
