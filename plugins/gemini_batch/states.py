"""The one definition of Gemini batch job states, their classes, counts and progress lines.

Invariants: every part of the package (polling core, trigger, operators, sensor, manifest)
classifies a job only through :func:`outcome_of`, and :data:`Outcome` is the one vocabulary of
terminal outcomes: the manifest's ``outcome``, the trigger event's ``status`` and every decision
use these words, so the trigger and the synchronous path cannot disagree. A state nobody knows
yet waits (it is logged), it never ends a job. ``BatchJob.done`` is never consulted: it is False
for PARTIALLY_SUCCEEDED.

- ``succeeded``: SUCCEEDED with no failed rows
- ``partial``: PARTIALLY_SUCCEEDED, or SUCCEEDED with failed rows
- ``failed``: FAILED, CANCELLED, EXPIRED
- no outcome yet (None): QUEUED, PENDING, RUNNING, CANCELLING, UPDATING, PAUSED (logged;
  counts toward the timeout), UNSPECIFIED and anything unknown
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: The terminal outcome of a job: THE vocabulary of the manifest, trigger events and decisions.
Outcome = Literal["succeeded", "partial", "failed"]

JOB_STATE_PREFIX = "JOB_STATE_"

SUCCEEDED = "JOB_STATE_SUCCEEDED"
PARTIALLY_SUCCEEDED = "JOB_STATE_PARTIALLY_SUCCEEDED"
FAILED = "JOB_STATE_FAILED"
CANCELLED = "JOB_STATE_CANCELLED"
EXPIRED = "JOB_STATE_EXPIRED"
QUEUED = "JOB_STATE_QUEUED"
PENDING = "JOB_STATE_PENDING"
RUNNING = "JOB_STATE_RUNNING"
CANCELLING = "JOB_STATE_CANCELLING"
UPDATING = "JOB_STATE_UPDATING"
PAUSED = "JOB_STATE_PAUSED"
UNSPECIFIED = "JOB_STATE_UNSPECIFIED"

SUCCESS_STATES = frozenset({SUCCEEDED})
PARTIAL_STATES = frozenset({PARTIALLY_SUCCEEDED})
FAILURE_STATES = frozenset({FAILED, CANCELLED, EXPIRED})
WAITING_STATES = frozenset({QUEUED, PENDING, RUNNING, CANCELLING, UPDATING, PAUSED, UNSPECIFIED})
TERMINAL_STATES = SUCCESS_STATES | PARTIAL_STATES | FAILURE_STATES
KNOWN_STATES = TERMINAL_STATES | WAITING_STATES


def normalize_state(state: Any) -> str:
    """Return the ``JOB_STATE_*`` name of a state given as an SDK enum, a string or None.

    The Gemini API's ``BATCH_STATE_*`` names map to ``JOB_STATE_*`` (as the SDK maps them);
    a bare name (``"RUNNING"``) gets the prefix; None becomes UNSPECIFIED.

    :param state: ``google.genai.types.JobState``, ``str`` or ``None``.
    """
    if state is None:
        return UNSPECIFIED
    name = getattr(state, "value", state)
    name = str(name).strip().upper()
    if name.startswith("BATCH_STATE_"):
        name = JOB_STATE_PREFIX + name[len("BATCH_STATE_") :]
    elif not name.startswith(JOB_STATE_PREFIX):
        name = JOB_STATE_PREFIX + name
    return name


def short_state(state: Any) -> str:
    """``JOB_STATE_RUNNING`` -> ``RUNNING``, for log lines."""
    return normalize_state(state)[len(JOB_STATE_PREFIX) :]


def is_terminal(state: Any) -> bool:
    """True when the job will not change state any more."""
    return normalize_state(state) in TERMINAL_STATES


@dataclass(frozen=True)
class Counts:
    """Row counts of a job. ``total`` is the number of requests when known, else the sum.

    :param succeeded: rows answered successfully.
    :param failed: rows that ended with an error.
    :param incomplete: rows not processed (yet, or ever).
    :param total: all rows of the job.
    """

    succeeded: int = 0
    failed: int = 0
    incomplete: int = 0
    total: int = 0

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed

    @property
    def failed_ratio(self) -> float:
        """Failed rows over all rows (0.0 for an empty job)."""
        return self.failed / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, int]:
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "incomplete": self.incomplete,
            "total": self.total,
        }

    @classmethod
    def from_completion_stats(cls, stats: Any) -> Counts | None:
        """Counts from an SDK ``CompletionStats`` (or a dict of its fields); None when absent.

        Vertex reports ``incompleteCount`` -1 when it does not know; that counts as 0.
        """
        if stats is None:
            return None
        get = stats.get if isinstance(stats, dict) else lambda k: getattr(stats, k, None)
        values = [get("successful_count"), get("failed_count"), get("incomplete_count")]
        if all(v is None for v in values):
            return None
        succeeded, failed, incomplete = (max(int(v or 0), 0) for v in values)
        total = succeeded + failed + incomplete
        return cls(succeeded=succeeded, failed=failed, incomplete=incomplete, total=total)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Counts | None:
        if not data:
            return None
        return cls(**{k: int(data.get(k) or 0) for k in ("succeeded", "failed", "incomplete", "total")})


def outcome_of(state: Any, counts: Counts | None = None) -> Outcome | None:
    """The outcome of a terminal job; None while it is still waiting.

    :param state: the job state in any form :func:`normalize_state` accepts.
    :param counts: the job's row counts, if known: a SUCCEEDED job with failed rows is partial.
    """
    name = normalize_state(state)
    if name in SUCCESS_STATES:
        return "partial" if counts is not None and counts.failed > 0 else "succeeded"
    if name in PARTIAL_STATES:
        return "partial"
    if name in FAILURE_STATES:
        return "failed"
    return None


def progress_line(state: Any, counts: Counts | None) -> str:
    """One human line for a poll, e.g. ``RUNNING 4,210/10,000 rows (42%), 12 failed``.

    :param state: the job state.
    :param counts: the row counts, or None when the service gives none.
    """
    text = short_state(state)
    if counts is None or counts.total <= 0:
        return text
    percent = int(100 * counts.processed / counts.total)
    text = f"{text} {counts.processed:,}/{counts.total:,} rows ({percent}%)"
    if counts.failed:
        text += f", {counts.failed:,} failed"
    return text


def counts_of(job: Any) -> Counts | None:
    """Counts of an SDK ``BatchJob`` (``completion_stats``), or None."""
    return Counts.from_completion_stats(getattr(job, "completion_stats", None))
