"""Which failed rows a failed-row retry round may resubmit (the rounds themselves come later).

Invariants: one pure decision, :meth:`RowRetryPolicy.retryable`, from an errors-table row's
``status`` (the service's canonical status name, Vertex's status text, or the loader's own
``invalid_output``); a row missing from a job's output is always retryable; ``invalid_output``
is retryable only when the user asked for it (``retry_invalid_output``, off by default: a
model that broke the schema once may well break it again, and each retry is paid for).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["INVALID_OUTPUT", "MISSING", "RETRYABLE_STATUSES", "RowRetryPolicy"]

#: The errors-table status of an answer that is not JSON or does not match its schema.
INVALID_OUTPUT = "invalid_output"
#: The status of an input key the job's output does not have.
MISSING = "missing"
#: Service statuses a later round may succeed on (quota, overload, transient server faults).
RETRYABLE_STATUSES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"})


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
        # Vertex writes a status text such as "RESOURCE_EXHAUSTED: Quota exceeded"; the Gemini
        # API writes the bare name.
        return status.split(":", 1)[0].strip().upper() in RETRYABLE_STATUSES

    def count_retryable(self, failures: Iterable[tuple[str, int]]) -> int:
        """How many of the failed rows, given as (status, count) pairs, are retryable."""
        return sum(count for status, count in failures if self.retryable(status))
