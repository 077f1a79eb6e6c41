"""Which failed rows a failed-row retry round may resubmit (the rounds: rounds.py).

Invariants: one pure decision, :meth:`RowRetryPolicy.retryable`, from an errors-table row's
``status`` (the service's canonical status name, Vertex's status text, the Gemini API's
``code N``, or the loader's own ``invalid_output``), read into a canonical (google.rpc) name by
:func:`canonical_status`; a row missing from a job's output is always retryable;
``invalid_output`` is retryable only when the user asked for it (``retry_invalid_output``, off by
default: a model that broke the schema once may well break it again, and each retry is paid for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

__all__ = ["INVALID_OUTPUT", "MISSING", "RETRYABLE_STATUSES", "RowRetryPolicy", "canonical_status"]

#: The errors-table status of an answer that is not JSON or does not match its schema.
INVALID_OUTPUT = "invalid_output"
#: The status of an input key the job's output does not have.
MISSING = "missing"
#: Service statuses a later round may succeed on (quota, overload, transient server faults).
RETRYABLE_STATUSES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"})


@cache
def _names_by_code() -> dict[int, str]:
    """Every canonical status (google/rpc/code.proto, from googleapis-common-protos) by number.

    Imported on first use: DAG files import this module, and parsing them stays cheap.
    """
    from google.rpc import code_pb2

    return {code_pb2.Code.Value(name): name for name in code_pb2.Code.keys()}


#: HTTP status -> canonical name, as code.proto's "HTTP Mapping" lines give it (the generic name
#: where several share a code). Hand-written: no maintained library maps HTTP codes to all of
#: them (google-api-core only for the codes whose exception class names a gRPC code).
_NAME_BY_HTTP = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip
_LEADING_NAME = re.compile(r"^\s*([A-Za-z_]+)\s*(?::|$)")
_CODE = re.compile(r"^\s*code\s+(\d+)\s*$", re.IGNORECASE)


def _name_of_code(code: object) -> str | None:
    """A numeric code as a name: 1-16 are google.rpc codes, 400+ HTTP statuses (never both)."""
    if isinstance(code, bool) or not isinstance(code, int):
        return None
    if 0 < code < 100:
        return _names_by_code().get(code)
    return _NAME_BY_HTTP.get(code)


def canonical_status(status: str | None) -> str | None:
    """The canonical (google.rpc) name of a failed row's status text, or None when it names none.

    Reads every form the loader stores: a bare name (``RESOURCE_EXHAUSTED``, the Gemini API's
    ``error.status``), a name and a message (``UNAVAILABLE: try later``), Vertex's status text (a
    reason phrase and the HTTP error JSON: ``Too Many Requests: {"error": {"code": 429, ...,
    "status": "RESOURCE_EXHAUSTED"}}``), and ``code N`` (a Gemini API error with a code only,
    either a google.rpc code or an HTTP status).
    """
    if not status:
        return None
    leading = _LEADING_NAME.match(status)
    if leading and leading.group(1).upper() in _names_by_code().values():
        return leading.group(1).upper()
    code = _CODE.match(status)
    if code:
        return _name_of_code(int(code.group(1)))
    brace = status.find("{")
    if brace >= 0:
        try:
            body = json.loads(status[brace:])
        except ValueError:
            return None
        error = body.get("error", body) if isinstance(body, dict) else None
        if isinstance(error, dict):
            name = error.get("status")
            if isinstance(name, str) and name.upper() in _names_by_code().values():
                return name.upper()
            return _name_of_code(error.get("code"))
    return None


@dataclass(frozen=True)
class RowRetryPolicy:
    """What the failed-row retry rounds may resubmit.

    :param retry_invalid_output: Optional. Resubmit rows whose answer broke the schema
        (status ``invalid_output``). Default False.
    """

    retry_invalid_output: bool = False

    def retryable(self, status: str) -> bool:
        """Whether a failed row with this status may go into a follow-up job."""
        if status == MISSING:
            return True
        if status == INVALID_OUTPUT:
            return self.retry_invalid_output
        return canonical_status(status) in RETRYABLE_STATUSES

    def retryable_statuses(self, statuses: Iterable[str]) -> list[str]:
        """The retryable ones among distinct status texts, sorted (a query parameter of a round)."""
        return sorted({status for status in statuses if status is not None and self.retryable(status)})

    def count_retryable(self, failures: Iterable[tuple[str, int]]) -> int:
        """How many of the failed rows, given as (status, count) pairs, are retryable."""
        return sum(count for status, count in failures if self.retryable(status))
