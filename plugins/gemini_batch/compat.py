"""What google-genai does not expose publicly, in one place: a Gemini API batch read that keeps
``metadata.batchStats`` (the row counts) and the batch operation's ``error`` (why it failed).

google-genai 2.x drops both when it converts a Gemini API batch (and reads an embedding's token
count from an older field than the API's ``usageMetadata.promptTokenCount``, filled in here too).
We read the raw body through the client's own transport (same auth, endpoint, timeouts:
``client._api_client.request`` / ``async_request``) and convert it with the SDK's own converter (``batches._BatchJob_from_mldev``
and ``types.BatchJob._from_response``), then add the two fields back. There is no maintained
library for this: the SDK is the library, and these are its private names.

Invariants:
- The private surface is probed ONCE per process (:func:`probe`): the names exist, take the
  arguments we pass, and convert a sample body.
- ANY failure of the private path (probe failed; AttributeError, ImportError, TypeError from a
  changed signature, ValueError/KeyError from a body we do not understand) falls back to the
  public ``client.batches.get`` / ``client.aio.batches.get`` (row counts then unknown), and is
  logged once per process.
- Errors of the service itself (404, 429, 5xx, transport errors) are never swallowed: they
  propagate exactly as from the public get.
- Importing this module imports neither Airflow nor google-genai.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.genai import types

log = logging.getLogger(__name__)

#: Failures of the private path that mean "the SDK changed" (or the body is not what we expect).
FALLBACK_ERRORS: tuple[type[BaseException], ...] = (
    AttributeError,
    ImportError,
    TypeError,
    ValueError,
    KeyError,
)

#: A body as the Gemini API returns it for a failed batch with row counts (the probe converts it).
SAMPLE_BODY: dict[str, Any] = {
    "name": "batches/probe",
    "metadata": {
        "state": "BATCH_STATE_FAILED",
        "batchStats": {"requestCount": "3", "successfulRequestCount": "1", "failedRequestCount": "2"},
    },
    "done": True,
    "error": {"code": 3, "message": "probe"},
}

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(reason: str) -> None:
    """Log, once per process, that the public get is used (and why)."""
    with _warned_lock:
        if reason in _warned:
            return
        _warned.add(reason)
    log.warning(
        "google-genai's private batch read is not usable (%s); using the public client.batches.get: "
        "Gemini API row counts and batch errors will be unknown",
        reason,
    )


@dataclass(frozen=True)
class Probe:
    """Whether the private surface is usable, and if not, why."""

    ok: bool
    reason: str = ""


def job_from_body(body: dict[str, Any]) -> types.BatchJob:
    """An SDK ``BatchJob`` from a raw Gemini API batch body, with the row counts and error the SDK drops.

    :raises AttributeError, ImportError, TypeError, ValueError, KeyError: the SDK changed or the
        body is not a batch.
    """
    from google.genai import batches as sdk_batches
    from google.genai import types

    if not isinstance(body, dict):
        raise ValueError(f"a batch body is a JSON object, got {type(body).__name__}")
    token_counts = _raw_prompt_token_counts(body)  # before the SDK's converter changes the body
    job = types.BatchJob._from_response(response=sdk_batches._BatchJob_from_mldev(body), kwargs={})
    _fill_embedding_token_counts(job, token_counts)
    error = body.get("error")
    if isinstance(error, dict) and job.error is None:
        job.error = types.JobError(code=error.get("code"), message=error.get("message"))
    stats = (body.get("metadata") or {}).get("batchStats") or {}
    if stats:
        job.completion_stats = types.CompletionStats(
            successful_count=int(stats.get("successfulRequestCount") or 0),
            failed_count=int(stats.get("failedRequestCount") or 0),
            incomplete_count=int(stats.get("pendingRequestCount") or 0),
        )
    return job


def _raw_prompt_token_counts(body: dict[str, Any]) -> list[int | None]:
    """Each inline response's ``usageMetadata.promptTokenCount`` in a raw batch body, in input order.

    Read before the SDK's converter runs: it renames the inline list and drops ``usageMetadata``
    from the body's own dicts.
    """
    output = (body.get("metadata") or {}).get("output") or {}
    items = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
    counts: list[int | None] = []
    for item in items:
        response = item.get("response") if isinstance(item, dict) else None
        usage = (response or {}).get("usageMetadata") or {}
        count = usage.get("promptTokenCount")
        counts.append(int(count) if count is not None else None)
    return counts


def _fill_embedding_token_counts(job: types.BatchJob, counts: list[int | None]) -> None:
    """Give each inline embedding response the token count the API sent.

    The SDK reads an older ``tokenCount``; the API sends ``usageMetadata.promptTokenCount``, so
    ``response.token_count`` would always be None. Responses and counts are in input order.
    """
    embedded = getattr(job.dest, "inlined_embed_content_responses", None) if job.dest else None
    for item, count in zip(embedded or [], counts, strict=False):
        if item.response is not None and item.response.token_count is None and count is not None:
            item.response.token_count = count


@functools.cache
def probe() -> Probe:
    """Check once per process that the private names exist with the signatures we call."""
    try:
        from google.genai import _api_client, types
        from google.genai import batches as sdk_batches

        for method in (_api_client.BaseApiClient.request, _api_client.BaseApiClient.async_request):
            inspect.signature(method).bind(None, "get", "batches/probe", {}, None)
        inspect.signature(sdk_batches._BatchJob_from_mldev).bind({})
        inspect.signature(types.BatchJob._from_response).bind(response={}, kwargs={})
        job = job_from_body(SAMPLE_BODY)
        if job.completion_stats is None or job.completion_stats.failed_count != 2 or job.error is None:
            raise ValueError("the converted sample lost its row counts or error")
        if "FAILED" not in str(getattr(job.state, "value", job.state)):
            raise ValueError(f"the converted sample has state {job.state!r}")
    except Exception as exc:
        return Probe(False, f"{type(exc).__name__}: {exc}")
    return Probe(True)


def _path(name: str) -> str:
    return f"batches/{name.rsplit('/', 1)[-1]}"


def _body(response: Any) -> dict[str, Any]:
    raw = getattr(response, "body", None)
    return json.loads(raw) if raw else {}


def get_gemini_batch(client: Any, name: str) -> types.BatchJob:
    """Read a Gemini API batch with its row counts and error when the SDK allows, else publicly.

    :param client: a ``google.genai.Client`` (Gemini API).
    :param name: ``batches/ID`` or ``ID``.
    """
    checked = probe()
    if checked.ok:
        try:
            request = client._api_client.request
            response = request("get", _path(name), {}, None)
            return job_from_body(_body(response))
        except FALLBACK_ERRORS as exc:
            warn_once(f"{type(exc).__name__}: {exc}")
    else:
        warn_once(checked.reason)
    return client.batches.get(name=name)


async def aget_gemini_batch(client: Any, name: str) -> types.BatchJob:
    """As :func:`get_gemini_batch`, on the async client."""
    checked = probe()
    if checked.ok:
        try:
            request = client.aio._api_client.async_request
            response = await request("get", _path(name), {}, None)
            return job_from_body(_body(response))
        except FALLBACK_ERRORS as exc:
            warn_once(f"{type(exc).__name__}: {exc}")
    else:
        warn_once(checked.reason)
    return await client.aio.batches.get(name=name)
