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
  It takes well under a second (Airflow 3.3.2 cuts it off after about one); the cancel sweep
  (cancel_sweep.py) cancels what it could not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airflow.triggers.base import BaseTrigger, TriggerEvent

from gemini_batch.hooks import GeminiBatchHook
from gemini_batch.identity import WorkIdentity
from gemini_batch.polling import Done, Fail, Poller, drive_async
from gemini_batch.states import Outcome
from gemini_batch.task_state import kill_job_async

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

    async def on_kill(self) -> None:
        """Cancel the job after mark-failed / mark-success; keep it after a clear (see module doc).

        Bounded to well under a second (task_state.kill_job_async): Airflow 3.3.2 cuts ``on_kill``
        off after about one; the cancel sweep covers what it cannot do.
        """
        if not self.cancel_on_kill:
            self.log.info("cancel_on_kill is off: batch job %s keeps running", self.job_name)
            return
        ti = self.task_instance
        identity = None if ti is None else WorkIdentity.from_context({"ti": ti})
        await kill_job_async(self.job_name, identity, lambda: self.hook.acancel_job(self.job_name), self.log)
