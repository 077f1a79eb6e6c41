"""What a failed call to the batch service means: the one classification of errors.

Invariant: every caller (the hook's job calls, the polling core, ``retry_read``) asks
:func:`error_kind`; none keeps its own list of retryable codes or exception types.

- ``transient``: 408, 429, 5xx, timeouts, connection errors: back off and try again.
- ``auth``: 401: the credentials may have rotated; rebuild the client and try again.
- ``not_found``: 404 (or :class:`~gemini_batch.exceptions.GeminiBatchJobNotFound`): the job
  does not exist (any more).
- ``fatal``: everything else (400, 403, a missing connection, programming errors): stop.

A ``fatal`` or ``not_found`` answer with an HTTP 4xx status is *permanent*
(:func:`is_permanent_error`): the same call fails the same way on every try, so the task fails
without Airflow retries. A job that ended FAILED is classified by its error's canonical
(google.rpc) code (:func:`job_failure_kind`): INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE and UNIMPLEMENTED are permanent; every other
code (RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, UNKNOWN...) and a missing
one are transient, so a new job may succeed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from gemini_batch.exceptions import GeminiBatchJobNotFound

ErrorKind = Literal["transient", "auth", "not_found", "fatal"]
TRANSIENT_HTTP_CODES = frozenset({408, 429, 500, 502, 503, 504})
JobFailureKind = Literal["permanent", "transient"]

#: google.rpc canonical codes (google/rpc/code.proto) a new job would meet again, by name.
PERMANENT_JOB_ERROR_CODES: dict[int, str] = {
    3: "INVALID_ARGUMENT",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    9: "FAILED_PRECONDITION",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
}

#: Transport errors named by module and class, so that neither httpx, aiohttp nor google-auth
#: has to be importable for the classification to work.
TRANSIENT_EXCEPTION_NAMES = frozenset(
    {
        # httpx (sync and async transports of google-genai)
        "httpx.TimeoutException",
        "httpx.TransportError",
        # aiohttp (google-genai's async transport when installed)
        "aiohttp.ClientConnectionError",
        "aiohttp.ClientPayloadError",
        "aiohttp.ServerTimeoutError",
        # google-auth token refresh over the network
        "google.auth.exceptions.TransportError",
    }
)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an API error (google-genai ``APIError.code``, api_core ``.code``), else None."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and 100 <= code <= 599:
        return code
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) else None


def exception_names(exc: BaseException) -> set[str]:
    """``top.Class`` and ``full.module.Class`` of every class in the exception's MRO."""
    names = set()
    for cls in type(exc).__mro__:
        module = cls.__module__
        top = module.split(".")[0]
        names.add(f"{top}.{cls.__name__}")
        names.add(f"{module}.{cls.__name__}")
    return names


def error_kind(exc: BaseException) -> ErrorKind:
    """Classify an exception from a call to the service (see the module docstring)."""
    if isinstance(exc, GeminiBatchJobNotFound):
        return "not_found"
    status = http_status(exc)
    if status is not None:
        if status in TRANSIENT_HTTP_CODES:
            return "transient"
        if status == 401:
            return "auth"
        if status == 404:
            return "not_found"
        return "fatal"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, ConnectionError)):
        return "transient"
    if exception_names(exc) & TRANSIENT_EXCEPTION_NAMES:
        return "transient"
    return "fatal"


def is_transient_error(exc: BaseException) -> bool:
    """True for errors a later attempt may not see (``transient`` and ``auth``)."""
    return error_kind(exc) in ("transient", "auth")


#: The SDK's own validation of a call's arguments (pydantic), before any request: bad input.
PERMANENT_EXCEPTION_NAMES = frozenset({"pydantic_core.ValidationError"})


def is_permanent_error(exc: BaseException) -> bool:
    """True for an answer of the service that a retry would get again: an HTTP 4xx other than
    401 (credentials may rotate), 408 and 429 (see the module docstring); also the SDK's refusal
    of the arguments before any request."""
    status = http_status(exc)
    if status is None:
        return bool(exception_names(exc) & PERMANENT_EXCEPTION_NAMES)
    return 400 <= status < 500 and error_kind(exc) in ("fatal", "not_found")


def job_error_code(job: Any) -> int | None:
    """The canonical code of a job's ``error`` (Vertex ``JobError.code``, a Gemini API operation's
    ``error.code``), else None."""
    error = getattr(job, "error", None)
    code = error.get("code") if isinstance(error, dict) else getattr(error, "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def job_failure_kind(job: Any) -> JobFailureKind:
    """Whether a FAILED job failed for a reason a new job would meet again (see the module docstring)."""
    return "permanent" if job_error_code(job) in PERMANENT_JOB_ERROR_CODES else "transient"
