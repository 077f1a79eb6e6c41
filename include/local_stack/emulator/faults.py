"""Fault switches: what the admin API sets, what a job snapshots, what the API layer injects.

Invariants: a job copies the job-level switches (:data:`JOB_LEVEL`) when it is created and
never sees later changes; ``api_error_ratio`` applies live to every API call (never to admin
calls or upload chunks) and is deterministic: with ratio r, call number n fails exactly when
``floor(n*r) > floor((n-1)*r)``, so 0.5 fails every second call and 1.0 every call.

Row failures, as the real services give them (canonical codes, :func:`~.errors.row_error`):

* ``row_failure_ratio`` picks the rows that get a transient 429 ``RESOURCE_EXHAUSTED`` by a
  hash of the row's content. With ``row_failure_tries`` null (the default) a picked row fails in
  every job: a quota that never recovers. With ``row_failure_tries: N`` a picked row content fails
  in at most N jobs of this stack (counted per job by :class:`RowFailureLedger`, since the stack
  started or was reset), then is answered, as a per-row 429 clears on a later try of the real
  service. Why a count and not a hash salted by the job: a test can then rely on it (with N = 1
  every row that failed in the first job is answered by the second, whatever the job ids), and
  the same rows fail whichever backend or input format carries them.
* ``row_permanent_failure_ratio`` picks, by a hash with its own salt (independent of the two
  other ratios), the rows the service refuses: a 400 ``INVALID_ARGUMENT`` row error in every job.
  It wins over a transient failure: a refused row never gets an answer.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .errors import STATUS_BY_CODE, row_error

#: Fields a job snapshots at create time.
JOB_LEVEL: tuple[str, ...] = (
    "job_failure",
    "row_failure_ratio",
    "row_failure_tries",
    "row_permanent_failure_ratio",
    "row_latency_ms",
    "queue_delay_s",
    "pause_s",
    "expire_after_s",
    "partial_success_state",
    "structured_break_ratio",
)

#: How a broken structured answer is broken (:meth:`JobFaults.structured_break`).
BREAK_KINDS: tuple[str, ...] = ("bad_json", "missing_required", "wrong_type")

#: HTTP status -> message for injected API errors; the status name is always the canonical
#: one for the code (:data:`~.errors.STATUS_BY_CODE`), never chosen here.
API_ERROR_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission.",
    404: "Requested entity was not found.",
    408: "Request timed out.",
    409: "The operation was aborted.",
    429: "Resource exhausted. Please try again later.",
    500: "Internal error encountered.",
    502: "Bad gateway.",
    503: "The service is currently unavailable.",
    504: "Deadline exceeded.",
}
API_ERRORS: dict[int, tuple[str, str]] = {
    code: (STATUS_BY_CODE[code], message) for code, message in API_ERROR_MESSAGES.items()
}


class FaultError(ValueError):
    """An admin request set a fault to a value it cannot take."""


@dataclass(frozen=True)
class Faults:
    """The fault switches (defaults: no faults).

    :param job_failure: Optional. Jobs created while set fail (FAILED) with this message once
        they leave the queue.
    :param row_failure_ratio: Optional. 0..1: the share of rows that fail with a 429
        ``RESOURCE_EXHAUSTED`` row error, chosen by a hash of the row's request.
    :param row_failure_tries: Optional. None (default): those rows fail in every job. N >= 1: a
        row content fails in at most N jobs of this stack, then is answered (transient).
    :param row_permanent_failure_ratio: Optional. 0..1: the share of rows the service refuses
        with a 400 ``INVALID_ARGUMENT`` row error in every job (independent hash).
    :param api_error_ratio: Optional. 0..1: the share of API calls answered with an error.
    :param api_error_codes: Optional. HTTP codes used in turn for injected API errors.
    :param row_latency_ms: Optional. Extra time each row takes.
    :param queue_delay_s: Optional. How long a job stays PENDING.
    :param pause_s: Optional. When > 0, a job is PAUSED for this long once half its rows are done.
    :param expire_after_s: Optional. A job not finished this long after create becomes EXPIRED.
    :param partial_success_state: Optional. A job with failed rows ends PARTIALLY_SUCCEEDED
        (Vertex) instead of SUCCEEDED.
    :param structured_break_ratio: Optional. 0..1: the share of structured answers (JSON with
        a schema) that break their schema: bad JSON, a missing required field or a wrong type,
        chosen by a hash of the row's request.
    """

    job_failure: str | None = None
    row_failure_ratio: float = 0.0
    row_failure_tries: int | None = None
    row_permanent_failure_ratio: float = 0.0
    structured_break_ratio: float = 0.0
    api_error_ratio: float = 0.0
    api_error_codes: tuple[int, ...] = (429, 503)
    row_latency_ms: float = 0.0
    queue_delay_s: float = 0.0
    pause_s: float = 0.0
    expire_after_s: float | None = None
    partial_success_state: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the admin API returns."""
        data = asdict(self)
        data["api_error_codes"] = list(self.api_error_codes)
        return data

    def updated(self, changes: dict[str, Any]) -> Faults:
        """A copy with ``changes`` applied (a partial update); raises :class:`FaultError`."""
        if not isinstance(changes, dict):
            raise FaultError("the body must be a JSON object of fault fields")
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FaultError(f"unknown fault fields {unknown}; known: {sorted(known)}")
        values = {name: _coerce(name, value) for name, value in changes.items()}
        return replace(self, **values)

    def for_job(self) -> JobFaults:
        """The job-level snapshot."""
        return JobFaults(**{name: getattr(self, name) for name in JOB_LEVEL})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """The inverse of :meth:`to_dict` (unknown keys ignored)."""
        return cls().updated({k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


def _ratio(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise FaultError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isinf(value):
        raise FaultError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _coerce(name: str, value: Any) -> Any:
    if name == "job_failure":
        if value is not None and not (isinstance(value, str) and value):
            raise FaultError(f"job_failure must be a non-empty string or null, got {value!r}")
        return value
    if name in (
        "row_failure_ratio",
        "row_permanent_failure_ratio",
        "api_error_ratio",
        "structured_break_ratio",
    ):
        return _ratio(name, value)
    if name == "row_failure_tries":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise FaultError(f"row_failure_tries must be an integer >= 1 or null, got {value!r}")
        return value
    if name == "api_error_codes":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(c, int) and not isinstance(c, bool) and c in API_ERRORS for c in value)
        ):
            raise FaultError(f"api_error_codes must be a non-empty list drawn from {sorted(API_ERRORS)}")
        return tuple(value)
    if name == "expire_after_s":
        return None if value is None else _non_negative(name, value)
    if name == "partial_success_state":
        if not isinstance(value, bool):
            raise FaultError(f"partial_success_state must be true or false, got {value!r}")
        return value
    return _non_negative(name, value)


@dataclass(frozen=True)
class JobFaults:
    """The job-level switches as one job saw them at create time (see :class:`Faults`)."""

    job_failure: str | None = None
    row_failure_ratio: float = 0.0
    row_failure_tries: int | None = None
    row_permanent_failure_ratio: float = 0.0
    row_latency_ms: float = 0.0
    queue_delay_s: float = 0.0
    pause_s: float = 0.0
    expire_after_s: float | None = None
    partial_success_state: bool = False
    structured_break_ratio: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored with the job."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobFaults:
        """The inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in data.items() if k in JOB_LEVEL})

    def row_fails(self, row_bytes: bytes) -> bool:
        """Whether the row with this canonical content fails under ``row_failure_ratio``."""
        if self.row_failure_ratio <= 0:
            return False
        if self.row_failure_ratio >= 1:
            return True
        bucket = int.from_bytes(hashlib.blake2b(row_bytes, digest_size=8).digest(), "big") / 2**64
        return bucket < self.row_failure_ratio

    def row_refused(self, row_bytes: bytes) -> bool:
        """Whether the row is refused (400) under ``row_permanent_failure_ratio``; its own salt."""
        if self.row_permanent_failure_ratio <= 0:
            return False
        digest = hashlib.blake2b(row_bytes, digest_size=8, person=b"permanent").digest()
        return int.from_bytes(digest, "big") / 2**64 < self.row_permanent_failure_ratio

    def row_error(self, row_bytes: bytes, job_id: str, ledger: RowFailureLedger) -> dict[str, Any] | None:
        """The injected error of this row in job ``job_id``, or None: ONE decision for the runner.

        A refused row gets :data:`ROW_REFUSED_ERROR`; a row picked by ``row_failure_ratio`` gets
        :data:`ROW_FAILURE_ERROR` while ``ledger`` lets it fail (``row_failure_tries``).
        """
        if self.row_refused(row_bytes):
            return ROW_REFUSED_ERROR
        if self.row_fails(row_bytes) and ledger.fails_in(row_bytes, job_id, self.row_failure_tries):
            return ROW_FAILURE_ERROR
        return None

    def structured_break(self, row_bytes: bytes) -> str | None:
        """How this row's structured answer breaks under ``structured_break_ratio`` (one of
        :data:`BREAK_KINDS`), or None. Hashed with its own salt: independent of ``row_fails``."""
        if self.structured_break_ratio <= 0:
            return None
        digest = hashlib.blake2b(row_bytes, digest_size=8, person=b"structured").digest()
        bucket = int.from_bytes(digest, "big") / 2**64
        if bucket >= self.structured_break_ratio:
            return None
        return BREAK_KINDS[digest[-1] % len(BREAK_KINDS)]


ROW_FAILURE_ERROR: dict[str, Any] = row_error(
    429, "Resource exhausted. Please try again later. (injected by the local emulator: row_failure_ratio)"
)
ROW_REFUSED_ERROR: dict[str, Any] = row_error(
    400,
    "Request contains an invalid argument. (injected by the local emulator: row_permanent_failure_ratio)",
)


@dataclass
class RowFailureLedger:
    """Which jobs each transiently failing row content has failed in (``row_failure_tries``).

    Kept in memory by the service, per stack: a reset (``POST /admin/reset``) or a restart
    forgets it. A job counts once per row content however often it processes it (a job run
    again after a restart fails the same rows again, not new ones).
    """

    _jobs: dict[bytes, list[str]] = field(default_factory=dict, repr=False)

    def fails_in(self, row_bytes: bytes, job_id: str, tries: int | None) -> bool:
        """Whether a picked row fails in this job: always without ``tries``; else in its first
        ``tries`` jobs (recorded here), and answered in every later one."""
        if tries is None:
            return True
        key = hashlib.blake2b(row_bytes, digest_size=16).digest()
        jobs = self._jobs.setdefault(key, [])
        if job_id in jobs:
            return True
        if len(jobs) >= tries:
            return False
        jobs.append(job_id)
        return True


@dataclass
class ApiErrorInjector:
    """Decides, call by call, whether an API call gets an injected error (see module doc)."""

    calls: int = 0
    injected: int = 0
    _last_ratio: float = field(default=0.0, repr=False)

    def next_error(self, faults: Faults) -> int | None:
        """The HTTP code to answer this call with, or None to serve it."""
        ratio = faults.api_error_ratio
        if ratio != self._last_ratio:
            self.calls = 0
            self._last_ratio = ratio
        if ratio <= 0:
            return None
        self.calls += 1
        if math.floor(self.calls * ratio) <= math.floor((self.calls - 1) * ratio):
            return None
        code = faults.api_error_codes[self.injected % len(faults.api_error_codes)]
        self.injected += 1
        return code
