"""Every fault switch of the admin API, switched on and observed through the SDK."""

from __future__ import annotations

import json

import pytest
from emulator_helpers import admin_states, user_request, wait_for_job
from google.genai import errors, types

from local_stack.admin import AdminError

pytestmark = pytest.mark.integration

S = types.JobState


@pytest.fixture
def small_input(upload_jsonl):
    """A gs:// JSONL input of ``n`` distinct requests."""
    return lambda n: upload_jsonl(f"in-{n}.jsonl", [{"request": user_request(f"q{i}")} for i in range(n)])


def test_job_failure_fails_jobs_created_while_it_is_set(
    vertex_client, gemini_client, stack_admin, small_input
) -> None:
    src = small_input(3)
    with stack_admin.faults_set(job_failure="Quota exceeded for aiplatform.googleapis.com"):
        vertex_job = vertex_client.batches.create(model="gemini-2.5-flash", src=src)
        gemini_job = gemini_client.batches.create(
            model="gemini-2.5-flash", src=[{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
        )
    healthy = vertex_client.batches.create(model="gemini-2.5-flash", src=src)

    failed = wait_for_job(vertex_client, vertex_job.name)
    assert failed.state == S.JOB_STATE_FAILED
    assert failed.error.message == "Quota exceeded for aiplatform.googleapis.com"
    assert wait_for_job(gemini_client, gemini_job.name).state == S.JOB_STATE_FAILED
    assert wait_for_job(vertex_client, healthy.name).state == S.JOB_STATE_SUCCEEDED


def test_row_failure_ratio_fails_a_deterministic_share_of_rows(
    vertex_client, stack_admin, small_input, gcs_client
) -> None:
    src = small_input(200)
    stack_admin.set_faults(row_failure_ratio=0.25)

    first = wait_for_job(vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=src).name)
    second = wait_for_job(vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=src).name)

    stats = first.completion_stats
    assert first.state == S.JOB_STATE_SUCCEEDED
    assert 25 <= stats.failed_count <= 75 and stats.failed_count + stats.successful_count == 200
    assert second.completion_stats.failed_count == stats.failed_count  # same rows fail again
    bucket, _, prefix = first.output_info.gcs_output_directory[5:].partition("/")
    lines = [
        json.loads(x)
        for x in gcs_client.bucket(bucket)
        .blob(f"{prefix}/predictions.jsonl")
        .download_as_bytes()
        .splitlines()
    ]
    failed = [line for line in lines if line["status"]]
    assert len(failed) == stats.failed_count
    assert all("RESOURCE_EXHAUSTED" in line["status"] and "response" not in line for line in failed)


def test_partial_success_state_ends_a_job_with_failed_rows_partially_succeeded(
    vertex_client, gemini_client, stack_admin, small_input
) -> None:
    stack_admin.set_faults(row_failure_ratio=0.5, partial_success_state=True)
    vertex_job = vertex_client.batches.create(model="gemini-2.5-flash", src=small_input(20))
    gemini_job = gemini_client.batches.create(
        model="gemini-2.5-flash",
        src=[{"contents": [{"role": "user", "parts": [{"text": str(i)}]}]} for i in range(20)],
    )

    partial = wait_for_job(vertex_client, vertex_job.name)

    assert partial.state == S.JOB_STATE_PARTIALLY_SUCCEEDED
    assert partial.done is False  # the SDK's `done` does not count it: a `while not done` loop never ends
    assert (
        wait_for_job(gemini_client, gemini_job.name).state == S.JOB_STATE_SUCCEEDED
    )  # no such Gemini API state


@pytest.mark.parametrize(("code", "error_type"), [(429, errors.ClientError), (503, errors.ServerError)])
def test_api_error_ratio_answers_that_share_of_api_calls_with_the_given_codes(
    local_stack, vertex_client, stack_admin, small_input, code, error_type
) -> None:
    from conftest import make_vertex_client

    job = vertex_client.batches.create(model="gemini-2.5-flash", src=small_input(1))
    stack_admin.set_faults(api_error_ratio=0.5, api_error_codes=[code])

    outcomes = []
    for _ in range(6):
        try:
            vertex_client.batches.get(name=job.name)
            outcomes.append("ok")
        except error_type as exc:
            assert exc.code == code and "injected" in exc.message
            outcomes.append(code)
    retrying = make_vertex_client(
        local_stack, retry_options=types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.05)
    )

    assert outcomes.count(code) == 3 and outcomes.count("ok") == 3
    assert retrying.batches.get(name=job.name).name == job.name  # the SDK's retry rides it out
    assert stack_admin.health()["service"] == "gemini-batch-emulator"  # admin calls are never hit


def test_row_latency_ms_slows_every_row(vertex_client, stack_admin, small_input) -> None:
    stack_admin.set_faults(row_latency_ms=25)
    done = wait_for_job(
        vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=small_input(20)).name
    )
    assert (done.end_time - done.start_time).total_seconds() >= 0.45


def test_queue_delay_s_keeps_a_job_pending(vertex_client, stack_admin, small_input) -> None:
    stack_admin.set_faults(queue_delay_s=1.0)
    job = vertex_client.batches.create(model="gemini-2.5-flash", src=small_input(1))
    assert vertex_client.batches.get(name=job.name).state == S.JOB_STATE_PENDING
    done = wait_for_job(vertex_client, job.name)
    assert (done.start_time - done.create_time).total_seconds() >= 0.95


def test_pause_s_pauses_a_job_half_way(vertex_client, stack_admin, small_input) -> None:
    stack_admin.set_faults(pause_s=0.5, row_latency_ms=5)
    job = vertex_client.batches.create(model="gemini-2.5-flash", src=small_input(40))

    paused = wait_for_job(vertex_client, job.name, states={S.JOB_STATE_PAUSED})
    done = wait_for_job(vertex_client, job.name)

    assert 0 < paused.completion_stats.successful_count < 40
    assert done.state == S.JOB_STATE_SUCCEEDED
    assert admin_states(stack_admin, job.name) == [
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_PAUSED",
        "JOB_STATE_RUNNING",
        "JOB_STATE_SUCCEEDED",
    ]


def test_expire_after_s_expires_a_job_that_is_not_done_in_time(
    vertex_client, stack_admin, small_input
) -> None:
    stack_admin.set_faults(expire_after_s=0.3, queue_delay_s=10)
    done = wait_for_job(
        vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=small_input(1)).name
    )
    assert done.state == S.JOB_STATE_EXPIRED
    assert done.output_info is None


def test_the_admin_api_validates_restores_and_resets_faults(stack_admin) -> None:
    with pytest.raises(AdminError) as bad:
        stack_admin.set_faults(row_failure_ratio=1.5)
    assert bad.value.status == 400
    with pytest.raises(AdminError):
        stack_admin.set_faults(no_such_switch=True)
    with stack_admin.faults_set(queue_delay_s=3, api_error_codes=[500]):
        assert stack_admin.faults()["queue_delay_s"] == 3
    assert stack_admin.faults()["queue_delay_s"] == 0 and stack_admin.faults()["api_error_codes"] == [
        429,
        503,
    ]
    stack_admin.set_faults(pause_s=1)
    assert stack_admin.reset_faults()["pause_s"] == 0


def test_admin_jobs_lists_every_job_ever_created_and_reset_forgets_them(
    vertex_client, gemini_client, stack_admin, small_input
) -> None:
    src = small_input(1)
    done = wait_for_job(
        vertex_client,
        vertex_client.batches.create(
            model="gemini-2.5-flash", src=src, config={"http_options": {"extra_body": {"labels": {"k": "v"}}}}
        ).name,
    )
    vertex_client.batches.delete(name=done.name)
    gemini_client.batches.create(model="gemini-2.5-flash", src=[{"contents": [{"parts": [{"text": "x"}]}]}])

    jobs = stack_admin.jobs()

    assert [(j["backend"], j["deleted"]) for j in jobs] == [("vertex", True), ("gemini_api", False)]
    first = jobs[0]
    assert first["labels"] == {"k": "v"} and first["state"] == "JOB_STATE_SUCCEEDED"
    assert first["counts"] == {"succeeded": 1, "failed": 0, "incomplete": 0, "total": 1}
    assert {"name", "display_name", "create_time"} <= set(first)
    stack_admin.reset()
    assert stack_admin.jobs() == []
    assert stack_admin.health()["jobs"] == 0
