"""GeminiBatchJobTrigger: waits for an existing batch job to end. It never creates anything.

Invariants:
- ``run()`` only reads the job: re-running it (triggerer restart, redistribution, a trigger
  rebuilt from its serialized kwargs) can never submit a job.
- Serialized kwargs hold names, ids, connection ids and numbers only: no secret, no client.
  They are part of the contract (docs/design.md, "Trigger"): triggers already in the database
  are rebuilt from them after an upgrade.
- Only the SDK's async client is used in the event loop; the one sync step (building the
  shared client: connection lookup and credentials) runs in a worker thread, once per process.
- The wait is the polling core's (polling.py): deadline, error budget, backoff with jitter,
  401 -> rebuild the client, PAUSED and progress logging. The first poll comes after a random
  part of ``poll_interval`` (the caller has just read the job), later ones every
  ``poll_interval`` +-10%, so triggers started together do not poll in lockstep.
- One small event is yielded (:class:`JobEvent`), then ``run()`` returns. Its ``status`` is a
  terminal :data:`~gemini_batch.states.Outcome`, ``timeout`` or ``error``; events written by
  earlier versions (``success``) are still read.
- ``on_kill`` (user action only) cancels the job only when the task instance was marked failed
  or success (task_state.py); after a clear the new try may already be waiting on the same job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airflow.triggers.base import BaseTrigger, TriggerEvent

from gemini_batch.exceptions import GeminiBatchJobNotFound
from gemini_batch.hooks import GeminiBatchHook
from gemini_batch.identity import WorkIdentity
from gemini_batch.polling import Done, Fail, Poller, drive_async
from gemini_batch.states import Outcome, is_terminal
from gemini_batch.task_state import kill_decision, ti_state_async

#: The ``status`` of a trigger event: how the job ended, or why the wait stopped.
EventStatus = Literal[Outcome, "timeout", "error"]
EVENT_STATUSES: frozenset[str] = frozenset(get_args(Outcome)) | {"timeout", "error"}
#: Words of events written by earlier versions, still read (an event of an in-flight task may
#: sit in the database across an upgrade).
LEGACY_EVENT_STATUS: dict[str, EventStatus] = {"success": "succeeded"}


@dataclass(frozen=True)
class JobEvent:
    """The trigger's event payload: ``{"status", "job_name", "state", "message"}``.

    :param status: a terminal outcome (``succeeded``, ``partial``, ``failed``), ``timeout`` or ``error``.
    :param job_name: the job waited on.
    :param state: the job's last known ``JOB_STATE_*``, or None.
    :param message: what happened, for the task log and the exception.
    """

    status: EventStatus
    job_name: str
    state: str | None
    message: str

    def payload(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "job_name": self.job_name,
            "state": self.state,
            "message": self.message,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> JobEvent:
        """Read an event (of this version or an earlier one); an unknown status reads as ``error``."""
        raw = str(payload.get("status"))
        status = LEGACY_EVENT_STATUS.get(raw, raw)
        message = str(payload.get("message") or "")
        if status not in EVENT_STATUSES:
            message = f"Unknown trigger event status {raw!r}: {message}"
            status = "error"
        return cls(status, str(payload.get("job_name") or ""), payload.get("state"), message)  # type: ignore[arg-type]

    @classmethod
    def from_decision(cls, job_name: str, decision: Done | Fail) -> JobEvent:
        """The event for the end of a wait."""
        if isinstance(decision, Done):
            return cls(decision.outcome, job_name, decision.state, decision.message)
        return cls(
            "timeout" if decision.reason == "timeout" else "error", job_name, decision.state, decision.message
        )


class GeminiBatchJobTrigger(BaseTrigger):
    """Wait for a Gemini batch job (Vertex AI or Gemini API) to reach a terminal state.

    Event payload: :class:`JobEvent` (``{"status": "succeeded" | "partial" | "failed" | "timeout" |
    "error", "job_name": str, "state": "JOB_STATE_*" | None, "message": str}``).

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
    #: Backoff of transient errors: base and cap in seconds (the cap is never below poll_interval).
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

    def poller(self) -> Poller:
        """The decisions of this wait (see polling.py)."""
        return Poller(
            subject=f"Batch job {self.job_name}",
            poll_interval=self.poll_interval,
            deadline=self.deadline,
            error_budget=self.error_budget,
            backoff_base=self.BACKOFF_BASE,
            backoff_cap=self.BACKOFF_CAP,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        end = await drive_async(
            self.poller(),
            lambda: self.hook.aget_job(self.job_name),
            rebuild=self.hook.invalidate,
            log=self.log,
            spread=True,
        )
        yield TriggerEvent(JobEvent.from_decision(self.job_name, end).payload())

    # ------------------------------------------------------------------ on_kill

    async def current_ti_state(self) -> tuple[bool, str | None]:
        """(known, state) of this trigger's task instance, asked of the API server now.

        ``known`` is False when there is no task instance or the answer did not come in time
        (e.g. during triggerer shutdown, when it never comes).
        """
        ti = self.task_instance
        identity = None if ti is None else WorkIdentity.from_context({"ti": ti})
        return await ti_state_async(identity, self.ON_KILL_STATE_TIMEOUT, self.log)

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
            job = await asyncio.wait_for(
                self.hook.aget_job(self.job_name), timeout=self.ON_KILL_CANCEL_TIMEOUT
            )
            if is_terminal(job.state):
                self.log.info("Batch job %s already ended %s; nothing to cancel", self.job_name, job.state)
                return
            await asyncio.wait_for(self.hook.acancel_job(self.job_name), timeout=self.ON_KILL_CANCEL_TIMEOUT)
        except GeminiBatchJobNotFound:
            self.log.info("Batch job %s no longer exists; nothing to cancel", self.job_name)
            return
        self.log.info("Task instance marked %s: cancelled batch job %s", ti_state, self.job_name)
