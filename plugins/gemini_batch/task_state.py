"""What a task instance's state says about its batch job when the task is killed, and the bounded on_kill.

Invariants: ``on_kill`` (of the trigger, the operator and the sensor) cancels the job only when
the task instance was marked failed or success (:func:`kill_decision`); after a clear the new
try may already be waiting on the same job, so it is kept. A state that cannot be read in time
counts as unknown, and unknown keeps the job. The lookup is bounded: ``on_kill`` may run in a
signal handler (worker) or during triggerer shutdown, where an answer may never come.

Airflow 3.3.2 gives ``on_kill`` about one second, so the whole of it (lookup, then ONE cancel
call, never retried) fits in :data:`ON_KILL_BUDGET_S`, and every path logs what it did. Whatever
``on_kill`` cannot do in time, the cancel sweep (cancel_sweep.py) does: ``on_kill`` is the fast
path, never the only one. The lookup still comes before the cancel: ``on_kill`` also runs on a
clear, and a cancel sent before knowing would cancel the job a new try re-attaches to (that try
would then fail on a CANCELLED job).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from gemini_batch.exceptions import GeminiBatchJobNotFound

if TYPE_CHECKING:
    from gemini_batch.identity import WorkIdentity

KillDecision = Literal["cancel", "keep"]

#: Task instance states a user sets by mark-failed / mark-success (and their cousins): the work
#: is over, so the remote job should stop. Any other state (None, scheduled, queued, running,
#: deferred, up_for_retry, restarting) means a try of the same work is coming or running.
USER_ENDED_TI_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})


def kill_decision(ti_state: Any) -> KillDecision:
    """Whether ``on_kill`` should cancel the job, given the task instance's current state."""
    value = getattr(ti_state, "value", ti_state)
    return "cancel" if value is not None and str(value) in USER_ENDED_TI_STATES else "keep"


def read_ti_state(identity: WorkIdentity) -> tuple[bool, str | None]:
    """(known, state) of the task instance, asked of the API server (blocking; may raise)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = RuntimeTaskInstance.get_task_states(
        dag_id=identity.dag_id,
        task_ids=[identity.task_id],
        run_ids=[identity.run_id],
        map_index=identity.map_index,
    )
    key = identity.task_id if identity.map_index < 0 else f"{identity.task_id}_{identity.map_index}"
    run_states = (states or {}).get(identity.run_id) or {}
    if key not in run_states:
        return False, None
    state = run_states[key]
    return True, None if state is None else str(getattr(state, "value", state))


def ti_state_blocking(identity: WorkIdentity | None, timeout: float) -> tuple[bool, str | None]:
    """:func:`read_ti_state` from a worker, (False, None) if unknown or not answered in ``timeout``.

    Runs in a helper thread joined with a timeout: ``on_kill`` runs in a signal handler, which
    must not wait on the supervisor channel the interrupted main thread may hold.
    """
    if identity is None:
        return False, None
    result: list[tuple[bool, str | None]] = []

    def ask() -> None:
        try:
            result.append(read_ti_state(identity))
        except Exception:  # reported as unknown
            pass

    thread = threading.Thread(target=ask, name="gemini-batch-on-kill", daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else (False, None)


async def ti_state_async(identity: WorkIdentity | None, timeout: float, log: Any) -> tuple[bool, str | None]:
    """:func:`read_ti_state` from an event loop (the triggerer), off the loop, bounded by ``timeout``."""
    if identity is None:
        return False, None
    try:
        return await asyncio.wait_for(asyncio.to_thread(read_ti_state, identity), timeout=timeout)
    except Exception as exc:
        log.warning("Could not read the state of task %s: %s", identity.task_id, exc)
        return False, None


# ---------------------------------------------------------------------------- on_kill, bounded

#: Airflow 3.3.2 gives ``on_kill`` about one second (the triggerer cancels it again every second
#: and swallows the error; the worker's supervisor does not wait long either): everything
#: ``on_kill`` does fits in this budget, or would be cut off without a word in the log.
ON_KILL_BUDGET_S = 0.8
#: Of that budget, the most the task-state lookup may take; the one cancel call gets the rest.
ON_KILL_LOOKUP_S = 0.5

#: What a bounded ``on_kill`` did: cancelled the job, kept it (a clear or a re-run), could not
#: tell in time (the state or the cancel did not come back within the budget), or failed.
KillOutcome = Literal["cancelled", "kept", "unknown", "late", "failed"]

SWEEP_HINT = "the cancel sweep (DAG gemini_batch_cancel_sweep) cancels it if the task was ended"


def kill_job_blocking(
    job_name: str,
    identity: WorkIdentity | None,
    cancel: Callable[[], None],
    log: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> KillOutcome:
    """``on_kill`` of the worker: the bounded lookup, then one cancel call, within :data:`ON_KILL_BUDGET_S`.

    :param cancel: cancels the job (one attempt, no retry); run in a helper thread joined with
        what is left of the budget.
    """
    start = clock()
    known, state = ti_state_blocking(identity, timeout=ON_KILL_LOOKUP_S)
    outcome = _before_cancel(job_name, known, state, log)
    if outcome is not None:
        return outcome
    left = ON_KILL_BUDGET_S - (clock() - start)
    finished, error = _call_bounded(cancel, max(left, 0.0))
    return _after_cancel(job_name, finished, error, log)


async def kill_job_async(
    job_name: str,
    identity: WorkIdentity | None,
    cancel: Callable[[], Awaitable[None]],
    log: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> KillOutcome:
    """``on_kill`` of the trigger: as :func:`kill_job_blocking`, on the event loop."""
    start = clock()
    known, state = await ti_state_async(identity, ON_KILL_LOOKUP_S, log)
    outcome = _before_cancel(job_name, known, state, log)
    if outcome is not None:
        return outcome
    left = ON_KILL_BUDGET_S - (clock() - start)
    try:
        await asyncio.wait_for(cancel(), timeout=max(left, 0.0))
    except (TimeoutError, asyncio.TimeoutError):
        return _after_cancel(job_name, False, None, log)
    except Exception as exc:
        return _after_cancel(job_name, True, exc, log)
    return _after_cancel(job_name, True, None, log)


def _before_cancel(job_name: str, known: bool, state: str | None, log: Any) -> KillOutcome | None:
    """Log and return the outcome when the job is not to be cancelled; None when it is."""
    if not known:
        log.warning(
            "Could not read the task instance's state within %.1f s, so on_kill cannot tell a mark-failed "
            "from a clear: batch job %s is not cancelled here; %s.",
            ON_KILL_LOOKUP_S,
            job_name,
            SWEEP_HINT,
        )
        return "unknown"
    if kill_decision(state) == "keep":
        log.info(
            "Task instance is %s (cleared or re-run): batch job %s is kept for the new try", state, job_name
        )
        return "kept"
    log.info("Cancelling batch job %s because the task was ended (task instance %s)", job_name, state)
    return None


def _after_cancel(job_name: str, finished: bool, error: BaseException | None, log: Any) -> KillOutcome:
    if not finished:
        log.warning("Could not cancel batch job %s in time; %s.", job_name, SWEEP_HINT)
        return "late"
    if isinstance(error, GeminiBatchJobNotFound):
        log.info("Batch job %s no longer exists; nothing to cancel", job_name)
        return "cancelled"
    if error is not None:
        log.warning(
            "Could not cancel batch job %s (%s: %s); %s.", job_name, type(error).__name__, error, SWEEP_HINT
        )
        return "failed"
    log.info("Cancelled batch job %s", job_name)
    return "cancelled"


def _call_bounded(call: Callable[[], None], timeout: float) -> tuple[bool, BaseException | None]:
    """(finished, error) of ``call`` run in a daemon thread joined with ``timeout``."""
    done: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            done.append(None)
        except Exception as exc:
            done.append(exc)

    thread = threading.Thread(target=run, name="gemini-batch-on-kill-cancel", daemon=True)
    thread.start()
    thread.join(timeout)
    return (True, done[0]) if done else (False, None)
