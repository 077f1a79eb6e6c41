"""Exceptions of the gemini_batch package.

Invariants: every message says what happened and what to change; none carries a secret.
Errors a retry cannot fix (bad arguments, too many failed rows on a finished job, inline
results above the cap) derive from ``AirflowFailException`` so Airflow does not retry them;
errors a retry can fix (a FAILED job, a timeout, an exhausted poll budget) are plain
``AirflowException`` subclasses.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class GeminiBatchError(AirflowException):
    """Base class of every gemini_batch error."""


class GeminiBatchConfigError(AirflowFailException, GeminiBatchError, ValueError):
    """An argument or connection is wrong; the message names the argument and the fix.

    Raised at DAG parse time when the value is known then, otherwise at the start of
    ``execute`` before any network call. Also a ``ValueError``, so plain Python callers can
    catch it as one.
    """


class GeminiBatchJobNotFound(GeminiBatchError):
    """The service has no job of that name (never existed, or deleted)."""

    def __init__(self, job_name: str, detail: str = "") -> None:
        self.job_name = job_name
        super().__init__(f"Gemini batch job {job_name!r} was not found{': ' + detail if detail else ''}.")


class GeminiBatchJobFailed(GeminiBatchError):
    """The job ended FAILED, CANCELLED or EXPIRED. A new try submits a new job.

    :param manifest: the manifest of the failed job (also pushed to XCom under
        ``gemini_batch_manifest``), for post-mortems.
    """

    def __init__(self, message: str, *, manifest: dict[str, Any] | None = None) -> None:
        self.manifest = manifest
        super().__init__(message)


class GeminiBatchTooManyFailedRows(AirflowFailException, GeminiBatchError):
    """The job finished, but more rows failed than ``max_failed_ratio`` allows.

    Not retried: the finished job is kept, so a retry would find the same counts. The
    message names the counts and where the successful rows are.
    """

    def __init__(self, message: str, *, manifest: dict[str, Any] | None = None) -> None:
        self.manifest = manifest
        super().__init__(message)


class GeminiBatchInlineResultsTooLarge(AirflowFailException, GeminiBatchError):
    """Inline results exceed the XCom cap; use a ``files/...`` source so results go to a file."""


class GeminiBatchJobFailedPermanently(AirflowFailException, GeminiBatchJobFailed):
    """The job ended FAILED for a reason a new job would meet again (its error code is
    INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION...): not retried.

    Fix what the message names, then clear the task: the first try after a clear submits anew.
    """


class GeminiBatchRejected(AirflowFailException, GeminiBatchError):
    """The service refused to create the job for a reason a retry would meet again (HTTP 400, 403,
    404...: a bad argument, a missing permission, model or source). No job exists; not retried."""


class GeminiBatchPreflightError(GeminiBatchConfigError):
    """A check before any create failed (a missing source, an existing dest, an unknown model, a
    cross-project source...). No job exists; the message names what to change. Not retried."""


class GeminiBatchTimeout(GeminiBatchError):
    """The wall-clock deadline passed before the job ended. The job keeps running; a retry re-attaches."""


class GeminiBatchPollingError(GeminiBatchError):
    """Polling gave up: a non-transient API error, or the budget of consecutive transient errors ran out."""
