"""GeminiBatchJobTrigger: waits for an existing batch job to end. It never creates anything.

Invariants:
- ``run()`` only reads the job: re-running it (triggerer restart, redistribution, a trigger
  rebuilt from its serialized kwargs) can never submit a job.
- Serialized kwargs hold names, ids, connection ids and numbers only: no secret, no client.
- Only the SDK's async client is used in the event loop; the one sync step (building the
  shared client: connection lookup and credentials) runs in a worker thread, once per process.
- Only a terminal state, the budget of consecutive transient errors, a non-transient error or
  the wall-clock ``deadline`` ends the wait; 429/5xx/timeouts/connection errors back off
  exponentially with jitter. One small event is yielded, then ``run()`` returns.
- Polls are spread: the first one comes after a random part of ``poll_interval`` (the caller
  has just read the job), later ones every ``poll_interval`` +-10%, so triggers started
  together (a triggerer restart) do not poll in lockstep.
- ``on_kill`` (user action only) cancels the job only when the task instance was marked failed
  or success; after a clear the new try may already be waiting on the same job, so it is kept.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchJobNotFound
from gemini_batch.hooks import Backoff, GeminiBatchHook, error_kind
from gemini_batch.states import PAUSED, classify, counts_of, is_terminal, normalize_state, progress_line

EventStatus = Literal["success", "partial", "failed", "timeout", "error"]
KillDecision = Literal["cancel", "keep"]

#: Task instance states a user sets by mark-failed / mark-success (and their cousins): the work
#: is over, so the remote job should stop. Any other state (None, scheduled, queued, running,
#: deferred, up_for_retry, restarting) means a try of the same work is coming or running.
USER_ENDED_TI_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})

_EVENT_STATUS: dict[str, EventStatus] = {"success": "success", "partial": "partial", "failure": "failed"}


def _now() -> float:
    """Wall-clock seconds (a function, so tests can move the clock)."""
    return time.time()


def kill_decision(ti_state: Any) -> KillDecision:
    """Whether ``on_kill`` should cancel the job, given the task instance's current state."""
    value = getattr(ti_state, "value", ti_state)
    return "cancel" if value is not None and str(value) in USER_ENDED_TI_STATES else "keep"


class GeminiBatchJobTrigger(BaseTrigger):
    """Wait for a Gemini batch job (Vertex AI or Gemini API) to reach a terminal state.

    Event payload: ``{"status": "success" | "partial" | "failed" | "timeout" | "error",
    "job_name": str, "state": "JOB_STATE_*" | None, "message": str}``.

    :param job_name: Required. The job's name as the service gave it.
    :param backend: Required. ``vertex`` or ``gemini_api``.
    :param conn_id: Optional. The connection id (default per backend, see ``GeminiBatchHook``).
    :param project_id: Optional (Vertex AI). Project; defaults to the connection's.
    :param location: Optional (Vertex AI). Location; defaults to the connection extra.
    :param impersonation_chain: Optional (Vertex AI). Service account(s) to impersonate.
    :param poll_interval: Optional. Seconds between polls (jittered by +-10%).
    :param deadline: Optional. Wall-clock instant (epoch seconds) at which to stop waiting and
        yield ``timeout``: a wall clock, because the trigger may move to another process.
    :param cancel_on_kill: Optional. Cancel the job when a user marks the task failed or success.
    :param error_budget: Optional. Consecutive transient errors tolerated before giving up.
    """

    #: Bound on the task-state lookup inside on_kill (the triggerer allows 30 s in total).
    ON_KILL_STATE_TIMEOUT = 15.0
    #: Bound on the cancel call inside on_kill.
    ON_KILL_CANCEL_TIMEOUT = 10.0
    #: Backoff of transient errors: base and cap in seconds.
    BACKOFF_BASE = 2.0
    BACKOFF_CAP = 120.0

    def __init__(
        self,
        *,
        job_name: str,
        backend: str,
        conn_id: str | None = None,
        project_id: str | None = None,
        location: str | None = None,
        impersonation_chain: str | Sequence[str] | None = None,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        cancel_on_kill: bool = True,
        error_budget: int = 8,
    ) -> None:
        super().__init__()
        self.job_name = job_name
        self.backend = backend
        self.conn_id = conn_id
        self.project_id = project_id
        self.location = location
        self.impersonation_chain = (
            list(impersonation_chain)
            if impersonation_chain is not None and not isinstance(impersonation_chain, str)
            else impersonation_chain
        )
        self.poll_interval = float(poll_interval)
        self.deadline = None if deadline is None else float(deadline)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.error_budget = int(error_budget)
        self._hook: GeminiBatchHook | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "gemini_batch.triggers.GeminiBatchJobTrigger",
            {
                "job_name": self.job_name,
                "backend": self.backend,
                "conn_id": self.conn_id,
                "project_id": self.project_id,
                "location": self.location,
                "impersonation_chain": self.impersonation_chain,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "error_budget": self.error_budget,
            },
        )

    @property
    def hook(self) -> GeminiBatchHook:
        """The hook; cheap to build (the client is shared and built on first use)."""
        if self._hook is None:
            self._hook = GeminiBatchHook(
                self.backend,  # type: ignore[arg-type]
                self.conn_id,
                project_id=self.project_id,
                location=self.location,
                impersonation_chain=self.impersonation_chain,
            )
        return self._hook

    def _event(self, status: EventStatus, state: str | None, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "job_name": self.job_name, "state": state, "message": message})

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - _now()

    async def _sleep(self, seconds: float) -> None:
        remaining = self._remaining()
        if remaining is not None:
            seconds = min(seconds, max(remaining, 0.0))
        await asyncio.sleep(max(seconds, 0.0))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        backoff = Backoff(base=self.BACKOFF_BASE, cap=max(self.BACKOFF_CAP, self.poll_interval), budget=self.error_budget)
        failures = 0
        last_line: str | None = None
        last_state: str | None = None
        # The caller read the job just before deferring; spreading the first poll over one
        # interval keeps thousands of triggers (re)started together from polling in lockstep.
        await self._sleep(random.uniform(0, self.poll_interval))
        while True:
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                message = (
                    f"Batch job {self.job_name} is still {last_state or 'not terminal'} at the deadline. "
                    "It keeps running; a retry of the task re-attaches to it."
                )
                self.log.warning(message)
                yield self._event("timeout", last_state, message)
                return
            try:
                job = await self.hook.aget_job(self.job_name)
            except (GeminiBatchJobNotFound, GeminiBatchConfigError) as exc:
                yield self._event("error", last_state, str(exc))
                return
            except Exception as exc:
                kind = error_kind(exc)
                if kind not in ("transient", "auth"):
                    message = f"Polling batch job {self.job_name} failed: {type(exc).__name__}: {exc}"
                    self.log.error(message)
                    yield self._event("error", last_state, message)
                    return
                failures += 1
                if backoff.exhausted(failures):
                    message = (
                        f"Gave up polling batch job {self.job_name} after {failures} consecutive transient "
                        f"errors (error_budget={self.error_budget}); last: {type(exc).__name__}: {exc}. "
                        "The job keeps running; a retry of the task re-attaches to it."
                    )
                    self.log.error(message)
                    yield self._event("error", last_state, message)
                    return
                delay = backoff.delay(failures)
                self.log.warning(
                    "Batch job %s: transient error %s (%d/%d), next poll in %.1f s",
                    self.job_name,
                    f"{type(exc).__name__}: {exc}",
                    failures,
                    self.error_budget,
                    delay,
                )
                await self._sleep(delay)
                continue
            failures = 0
            state = normalize_state(job.state)
            counts = counts_of(job)
            line = progress_line(state, counts)
            if line != last_line:
                self.log.info("Batch job %s: %s", self.job_name, line)
                if state == PAUSED and last_state != PAUSED:
                    self.log.warning(
                        "Batch job %s is PAUSED; still waiting (the pause counts toward the timeout)",
                        self.job_name,
                    )
                last_line = line
            last_state = state
            klass = classify(state, counts)
            if klass != "waiting":
                message = f"Batch job {self.job_name} ended {line}"
                if job.error is not None and getattr(job.error, "message", None):
                    message += f": {job.error.message}"
                yield self._event(_EVENT_STATUS[klass], state, message)
                return
            await self._sleep(self.poll_interval * random.uniform(0.9, 1.1))

    # ------------------------------------------------------------------ on_kill

    async def current_ti_state(self) -> tuple[bool, str | None]:
        """(known, state) of this trigger's task instance, asked of the API server now.

        ``known`` is False when there is no task instance or the answer did not come in time
        (e.g. during triggerer shutdown, when it never comes).
        """
        ti = self.task_instance
        if ti is None:
            return False, None
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        map_index = getattr(ti, "map_index", -1)
        map_index = -1 if map_index is None else map_index
        try:
            states = await asyncio.wait_for(
                asyncio.to_thread(
                    RuntimeTaskInstance.get_task_states,
                    dag_id=ti.dag_id,
                    task_ids=[ti.task_id],
                    run_ids=[ti.run_id],
                    map_index=map_index,
                ),
                timeout=self.ON_KILL_STATE_TIMEOUT,
            )
        except Exception as exc:
            self.log.warning("Could not read the state of task %s: %s", ti.task_id, exc)
            return False, None
        key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
        run_states = (states or {}).get(ti.run_id) or {}
        if key not in run_states:
            return False, None
        state = run_states[key]
        return True, None if state is None else str(getattr(state, "value", state))

    async def on_kill(self) -> None:
        """Cancel the job after mark-failed / mark-success; keep it after a clear (see module doc)."""
        if not self.cancel_on_kill:
            self.log.info("cancel_on_kill is off: batch job %s keeps running", self.job_name)
            return
        known, ti_state = await self.current_ti_state()
        if not known:
            self.log.warning(
                "Cannot tell mark-failed from a clear (task state unknown): batch job %s is left running. "
                "Cancel it with GeminiBatchCancelJobOperator if nobody needs it.",
                self.job_name,
            )
            return
        if kill_decision(ti_state) == "keep":
            self.log.info(
                "Task instance is %s (cleared or re-run): batch job %s is kept for the new try",
                ti_state,
                self.job_name,
            )
            return
        try:
            job = await asyncio.wait_for(self.hook.aget_job(self.job_name), timeout=self.ON_KILL_CANCEL_TIMEOUT)
            if is_terminal(job.state):
                self.log.info("Batch job %s already ended %s; nothing to cancel", self.job_name, job.state)
                return
            await asyncio.wait_for(self.hook.acancel_job(self.job_name), timeout=self.ON_KILL_CANCEL_TIMEOUT)
        except GeminiBatchJobNotFound:
            self.log.info("Batch job %s no longer exists; nothing to cancel", self.job_name)
            return
        self.log.info("Task instance marked %s: cancelled batch job %s", ti_state, self.job_name)
