"""The job state machine run in-process (no HTTP, no storage emulators): inline batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from local_stack.emulator import states
from local_stack.emulator.jobs import Job
from local_stack.emulator.service import Service, Settings


def inline_request(text: str) -> dict:
    return {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}]}, "metadata": {"key": text}}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    svc = Service(Settings(state_dir=tmp_path / "state"))
    await svc.start()
    yield svc
    await svc.stop()


def add_inline_job(service: Service, requests: list) -> Job:
    job_id = service.new_gemini_id()
    job = Job(
        id=job_id,
        backend="gemini_api",
        name=f"batches/{job_id}",
        model="models/gemini-2.5-flash",
        model_id="gemini-2.5-flash",
        display_name="unit",
        create_time=time.time(),
        faults=service.faults.for_job(),
        source={"kind": "inline", "count": len(requests)},
        destination={"kind": "inline"},
    )
    service.add(job, inline_requests=requests)
    return job


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


def history(job: Job) -> list[str]:
    return [state for state, _ in job.history]


async def test_an_inline_batch_runs_through_pending_and_running_to_succeeded(service: Service) -> None:
    job = add_inline_job(service, [inline_request(f"q{i}") for i in range(5)] + ["not an object"])

    await wait_for(lambda: job.terminal)

    assert history(job) == [states.PENDING, states.RUNNING, states.SUCCEEDED]
    assert job.counts() == {"succeeded": 5, "failed": 1, "incomplete": 0, "total": 6}
    responses = service.inline_responses(job)
    assert [r["metadata"]["key"] for r in responses[:5]] == [f"q{i}" for i in range(5)]
    assert responses[0]["response"]["candidates"][0]["content"]["parts"][0]["text"].endswith("] q0")
    assert responses[5]["error"]["code"] == 400


async def test_progress_is_published_while_rows_run(service: Service) -> None:
    service.set_faults({"row_latency_ms": 5})
    job = add_inline_job(service, [inline_request(f"q{i}") for i in range(60)])

    await wait_for(lambda: 0 < job.succeeded < 60)
    seen = job.succeeded
    await wait_for(lambda: job.succeeded > seen)
    await wait_for(lambda: job.terminal)

    assert job.state == states.SUCCEEDED


async def test_a_cancelled_batch_passes_through_cancelling_and_keeps_finished_rows(service: Service) -> None:
    service.set_faults({"row_latency_ms": 20})
    job = add_inline_job(service, [inline_request(f"q{i}") for i in range(200)])
    await wait_for(lambda: job.succeeded >= 3)

    service.request_cancel(job)
    assert job.state == states.CANCELLING
    await wait_for(lambda: job.terminal)

    assert job.state == states.CANCELLED
    assert history(job)[-2:] == [states.CANCELLING, states.CANCELLED]
    kept = service.inline_responses(job)
    assert 3 <= len(kept) == job.succeeded < 200
    assert job.counts()["incomplete"] == 200 - job.succeeded


async def test_a_pending_batch_can_be_cancelled_before_it_runs(service: Service) -> None:
    service.set_faults({"queue_delay_s": 30})
    job = add_inline_job(service, [inline_request("q")])
    service.request_cancel(job)
    await wait_for(lambda: job.terminal)
    assert history(job) == [states.PENDING, states.CANCELLING, states.CANCELLED]
    assert job.total is None


async def test_faults_are_snapshotted_when_a_job_is_created(service: Service) -> None:
    service.set_faults({"job_failure": "quota exceeded"})
    failing = add_inline_job(service, [inline_request("q")])
    service.reset_faults()
    healthy = add_inline_job(service, [inline_request("q")])

    await wait_for(lambda: failing.terminal and healthy.terminal)

    assert failing.state == states.FAILED
    assert failing.error["message"] == "quota exceeded"
    assert healthy.state == states.SUCCEEDED


async def test_a_vertex_job_pauses_mid_run_and_can_end_partially_succeeded(service: Service) -> None:
    service.set_faults({"pause_s": 0.3, "row_failure_ratio": 0.5, "partial_success_state": True})
    job = add_inline_job(service, [inline_request(f"q{i}") for i in range(20)])
    job.backend = "vertex"  # the Gemini API has no PARTIALLY_SUCCEEDED; the runner checks the backend

    await wait_for(lambda: job.terminal)

    assert history(job) == [
        states.PENDING,
        states.RUNNING,
        states.PAUSED,
        states.RUNNING,
        states.PARTIALLY_SUCCEEDED,
    ]
    assert job.failed > 0


async def test_a_job_not_done_in_time_expires_with_its_finished_rows(service: Service) -> None:
    service.set_faults({"row_latency_ms": 20, "expire_after_s": 0.3})
    job = add_inline_job(service, [inline_request(f"q{i}") for i in range(100)])

    await wait_for(lambda: job.terminal)

    assert job.state == states.EXPIRED
    assert 0 < job.succeeded < 100
    assert len(service.inline_responses(job)) == job.succeeded


async def test_unfinished_jobs_resume_after_a_restart(tmp_path: Path) -> None:
    first = Service(Settings(state_dir=tmp_path / "state"))
    await first.start()
    first.set_faults({"row_latency_ms": 10})
    job = add_inline_job(first, [inline_request(f"q{i}") for i in range(40)])
    await wait_for(lambda: job.succeeded > 0)
    await first.stop()
    assert not job.terminal

    second = Service(Settings(state_dir=tmp_path / "state"))
    await second.start()
    try:
        resumed = second.jobs[job.id]
        await wait_for(lambda: resumed.terminal)
        assert resumed.state == states.SUCCEEDED
        assert resumed.counts() == {"succeeded": 40, "failed": 0, "incomplete": 0, "total": 40}
        assert len(second.inline_responses(resumed)) == 40
        assert second.faults.row_latency_ms == 10
    finally:
        await second.stop()


async def test_reset_forgets_jobs_files_and_faults(service: Service) -> None:
    service.set_faults({"queue_delay_s": 30})
    add_inline_job(service, [inline_request("q")])
    await service.reset()
    assert service.jobs == {}
    assert service.faults.queue_delay_s == 0
    assert list(service.store.load_jobs()) == []
