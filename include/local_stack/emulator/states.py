"""Job states of the emulator and how each API spells them.

Invariant: a job's state is always one of the Vertex ``JOB_STATE_*`` names (the emulator's one
vocabulary, also what the admin API reports); the Gemini API spelling is derived from it by
:func:`gemini_state` and never stored. A terminal state is never left.
"""

from __future__ import annotations

PENDING = "JOB_STATE_PENDING"
RUNNING = "JOB_STATE_RUNNING"
PAUSED = "JOB_STATE_PAUSED"
CANCELLING = "JOB_STATE_CANCELLING"
SUCCEEDED = "JOB_STATE_SUCCEEDED"
PARTIALLY_SUCCEEDED = "JOB_STATE_PARTIALLY_SUCCEEDED"
FAILED = "JOB_STATE_FAILED"
CANCELLED = "JOB_STATE_CANCELLED"
EXPIRED = "JOB_STATE_EXPIRED"

ALL_STATES: frozenset[str] = frozenset(
    {PENDING, RUNNING, PAUSED, CANCELLING, SUCCEEDED, PARTIALLY_SUCCEEDED, FAILED, CANCELLED, EXPIRED}
)
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, PARTIALLY_SUCCEEDED, FAILED, CANCELLED, EXPIRED})

#: Allowed moves. PENDING -> FAILED covers a source that is missing; any live state may move to
#: CANCELLING (a cancel call) or EXPIRED (``expire_after_s``).
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, FAILED, CANCELLING, EXPIRED}),
    RUNNING: frozenset({PAUSED, SUCCEEDED, PARTIALLY_SUCCEEDED, FAILED, CANCELLING, EXPIRED}),
    PAUSED: frozenset({RUNNING, CANCELLING, EXPIRED, FAILED}),
    CANCELLING: frozenset({CANCELLED}),
}

#: The Gemini API has no PAUSED, CANCELLING or PARTIALLY_SUCCEEDED: a paused or cancelling
#: batch reads as running, a partial success as succeeded (rows carry their own errors).
_GEMINI: dict[str, str] = {
    PENDING: "BATCH_STATE_PENDING",
    RUNNING: "BATCH_STATE_RUNNING",
    PAUSED: "BATCH_STATE_RUNNING",
    CANCELLING: "BATCH_STATE_RUNNING",
    SUCCEEDED: "BATCH_STATE_SUCCEEDED",
    PARTIALLY_SUCCEEDED: "BATCH_STATE_SUCCEEDED",
    FAILED: "BATCH_STATE_FAILED",
    CANCELLED: "BATCH_STATE_CANCELLED",
    EXPIRED: "BATCH_STATE_EXPIRED",
}


class IllegalTransition(RuntimeError):
    """A move the state machine does not allow (a bug in the emulator, never a user error)."""


def is_terminal(state: str) -> bool:
    """True for a state a job never leaves."""
    return state in TERMINAL


def check_transition(current: str, new: str) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> new`` is allowed."""
    if new not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"a job cannot move from {current} to {new}")


def gemini_state(state: str) -> str:
    """The Gemini API's ``BATCH_STATE_*`` for an emulator state."""
    return _GEMINI[state]
