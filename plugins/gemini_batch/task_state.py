"""What a task instance's state says about its batch job when the task is killed.

Invariants: ``on_kill`` (of the trigger, the operator and the sensor) cancels the job only when
the task instance was marked failed or success (:func:`kill_decision`); after a clear the new
try may already be waiting on the same job, so it is kept. A state that cannot be read in time
counts as unknown, and unknown keeps the job. The lookup is bounded: ``on_kill`` may run in a
signal handler (worker) or during triggerer shutdown, where an answer may never come.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Literal

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
