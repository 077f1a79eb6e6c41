"""Helpers shared by the emulator's integration tests (imported by module name; no fixtures)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from typing import Any

from google.genai import types

#: States where a job stops changing (the SDK's ``done`` misses PARTIALLY_SUCCEEDED).
FINAL_STATES = frozenset(
    {
        types.JobState.JOB_STATE_SUCCEEDED,
        types.JobState.JOB_STATE_PARTIALLY_SUCCEEDED,
        types.JobState.JOB_STATE_FAILED,
        types.JobState.JOB_STATE_CANCELLED,
        types.JobState.JOB_STATE_EXPIRED,
    }
)
POLL_S = 0.05


def predictions(gcs_client: Any, directory: str) -> list[dict[str, Any]]:
    """The lines of ``<directory>/predictions.jsonl`` (a Vertex AI job's GCS output)."""
    bucket, _, prefix = directory[len("gs://") :].partition("/")
    data = gcs_client.bucket(bucket).blob(f"{prefix}/predictions.jsonl").download_as_bytes()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def user_request(text: str, **generation_config: Any) -> dict[str, Any]:
    """A GenerateContentRequest with one user text part (REST camelCase)."""
    request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if generation_config:
        request["generationConfig"] = generation_config
    return request


def jsonl(lines: list[Any]) -> bytes:
    """JSON Lines bytes."""
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def wait_for_job(
    client: Any,
    name: str,
    *,
    states: Collection[types.JobState] = FINAL_STATES,
    timeout: float = 30.0,
    seen: list[types.JobState] | None = None,
) -> types.BatchJob:
    """Poll ``client.batches.get`` until the job's state is in ``states`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.batches.get(name=name)
        if seen is not None and (not seen or seen[-1] != job.state):
            seen.append(job.state)
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still {job.state} after {timeout} s")
        time.sleep(POLL_S)


async def wait_for_job_async(
    client: Any, name: str, *, states: Collection[types.JobState] = FINAL_STATES, timeout: float = 30.0
) -> types.BatchJob:
    """``wait_for_job`` with the SDK's async client."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        job = await client.aio.batches.get(name=name)
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still {job.state} after {timeout} s")
        await asyncio.sleep(POLL_S)


def wait_until(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Return ``condition()`` once truthy; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def admin_states(admin: Any, name: str) -> list[str]:
    """The state history the admin API recorded for a job."""
    return [entry["state"] for entry in admin.job(name)["history"]]
