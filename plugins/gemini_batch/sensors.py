"""GeminiBatchJobSensor: wait on an existing batch job by name (jobs created elsewhere, split create/wait DAGs).

Invariants: the sensor never creates or (by default) cancels a job; it shares the trigger,
the polling core, the state classification and the manifest with the create operator, so a job
ends a sensor exactly as it ends the operator (failed raises, partial is checked against
``max_failed_ratio``, succeeded returns the manifest), when poking and when deferred.

A poke is ONE observation fed to the sensor's :class:`~gemini_batch.polling.Poller`: after a
transient error the poller's backoff delay is honoured by skipping the pokes that come earlier
(they read nothing), and the ``error_budget + 1``-th consecutive transient error fails the task.
The poller lives as long as the sensor instance (poke mode); in reschedule mode each try of a
poke starts afresh. ``timeout`` is the sensor's own (BaseSensorOperator's) in poke mode and the
trigger's deadline when deferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from gemini_batch import polling
from gemini_batch.backends import BACKENDS, DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID
from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchPollingError
from gemini_batch.finish import check_ratio, finish_job, require_terminal
from gemini_batch.hooks import GeminiBatchHook
from gemini_batch.identity import WorkIdentity
from gemini_batch.links import GeminiBatchJobLink
from gemini_batch.manifest import MAX_INLINE_RESULTS_BYTES, console_url
from gemini_batch.polling import Done, Fail, Poller, Wait, emit, raise_failure, retry_read
from gemini_batch.sources import JobRef, is_templated
from gemini_batch.states import counts_of, is_terminal, progress_line
from gemini_batch.task_state import kill_job_blocking
from gemini_batch.triggers import GeminiBatchJobTrigger, JobEvent

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context


class GeminiBatchJobSensor(BaseSensorOperator):
    """Wait until a batch job ends; return its manifest.

    :param job_name: Required. ``projects/P/locations/L/batchPredictionJobs/N``, ``N`` or
        ``batches/ID`` (e.g. ``{{ ti.xcom_pull('create')['job_name'] }}``). Templated.
    :param backend: Optional. Follows from ``job_name``; must agree with it.
    :param gcp_conn_id: Optional. Google Cloud connection (Vertex AI).
    :param gemini_api_conn_id: Optional. ``gemini_api`` connection (Gemini API).
    :param project_id: Optional (Vertex AI). Defaults to the project in ``job_name`` or the connection's.
    :param location: Optional (Vertex AI). Defaults to the location in ``job_name`` or the connection extra.
    :param impersonation_chain: Optional (Vertex AI). Service account(s) to impersonate.
    :param deferrable: Optional. Wait in the triggerer (default ``[operators] default_deferrable``).
    :param max_failed_ratio: Optional. As in GeminiBatchCreateJobOperator (default 0).
    :param cancel_on_kill: Optional. Cancel the job on mark-failed / mark-success (default False:
        the job was created elsewhere).
    :param max_inline_results_bytes: Optional. Cap on inline results carried in the manifest.
    :param error_budget: Optional. Consecutive transient errors tolerated while waiting.

    ``poke_interval`` is the poll interval and ``timeout`` the wait's bound, in both modes.
    """

    template_fields: Sequence[str] = ("job_name", "project_id", "location", "impersonation_chain")
    operator_extra_links = (GeminiBatchJobLink(),)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        job_name: str,
        backend: str | None = None,
        gcp_conn_id: str = DEFAULT_GCP_CONN_ID,
        gemini_api_conn_id: str = DEFAULT_GEMINI_API_CONN_ID,
        project_id: str | None = None,
        location: str | None = None,
        impersonation_chain: str | Sequence[str] | None = None,
        deferrable: bool | None = None,
        max_failed_ratio: float = 0.0,
        cancel_on_kill: bool = False,
        max_inline_results_bytes: int = MAX_INLINE_RESULTS_BYTES,
        error_budget: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.backend = backend
        self.gcp_conn_id = gcp_conn_id
        self.gemini_api_conn_id = gemini_api_conn_id
        self.project_id = project_id
        self.location = location
        self.impersonation_chain = impersonation_chain
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False)
            if deferrable is None
            else deferrable
        )
        self.max_failed_ratio = check_ratio(max_failed_ratio)
        self.cancel_on_kill = cancel_on_kill
        self.max_inline_results_bytes = int(max_inline_results_bytes)
        self.error_budget = int(error_budget)
        self._poller: Poller | None = None
        #: Wall-clock instant before which a poke reads nothing (the backoff after a transient error).
        self._not_before: float = 0.0
        self._job_name: str | None = None
        self._hook_obj: GeminiBatchHook | None = None
        self._identity: WorkIdentity | None = None
        if backend is not None and backend not in BACKENDS:
            raise GeminiBatchConfigError(f"backend must be one of {BACKENDS} or None, got {backend!r}.")
        if not is_templated(job_name):
            JobRef.parse(job_name, backend=backend)

    def _resolve(self, context: Context) -> tuple[JobRef, GeminiBatchHook]:
        self._identity = WorkIdentity.from_context(context)
        ref = JobRef.parse(self.job_name, backend=self.backend)
        if ref.backend == "vertex":
            hook = GeminiBatchHook(
                "vertex",
                self.gcp_conn_id,
                project_id=ref.project or self.project_id,
                location=ref.location or self.location,
                impersonation_chain=self.impersonation_chain,
            )
        else:
            hook = GeminiBatchHook("gemini_api", self.gemini_api_conn_id)
        hook.settings  # noqa: B018 - a missing connection fails here, clearly
        self._job_name, self._hook_obj = ref.name, hook
        return ref, hook

    def _finish(self, context: Context, ref: JobRef, hook: GeminiBatchHook, job: Any) -> dict[str, Any]:
        settings = hook.settings
        return finish_job(
            self,
            context,
            job,
            backend=ref.backend,
            source=None,
            work_id=None,
            model=None,
            project=settings.project,
            location=settings.location,
            max_failed_ratio=self.max_failed_ratio,
            max_inline_results_bytes=self.max_inline_results_bytes,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        ref, hook = self._resolve(context)
        now = polling.now()
        if now < self._not_before:
            return False
        if self._poller is None:
            self._poller = Poller(
                subject=f"Batch job {ref.name}",
                poll_interval=float(self.poke_interval),
                error_budget=self.error_budget,
            )
        try:
            observation: Any = hook.get_job(ref.name)
        except Exception as exc:
            observation = exc
        decision = self._poller.observe(observation, now)
        emit(self.log, decision.logs)
        if isinstance(decision, Wait):
            if decision.rebuild_client:
                hook.invalidate()
            if decision.reason == "backoff":
                self._not_before = now + decision.seconds
            return False
        if isinstance(decision, Fail):
            raise_failure(decision)
        assert isinstance(decision, Done)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, ref, hook, decision.job))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        ref, hook = self._resolve(context)
        settings = hook.settings
        job = retry_read(
            self.log,
            f"Reading batch job {ref.name}",
            lambda: hook.get_job(ref.name),
            self.error_budget,
            rebuild=hook.invalidate,
        )
        if is_terminal(job.state):
            return self._finish(context, ref, hook, job)
        GeminiBatchJobLink.persist(
            context, console_url(ref.backend, ref.name, settings.project, settings.location)
        )
        self.log.info("Batch job %s: %s; deferring", ref.name, progress_line(job.state, counts_of(job)))
        self.defer(
            trigger=GeminiBatchJobTrigger(
                job_name=ref.name,
                backend=ref.backend,
                conn_id=hook.conn_id,
                project_id=settings.project,
                location=settings.location,
                impersonation_chain=self.impersonation_chain if ref.backend == "vertex" else None,
                poll_interval=self.poke_interval,
                deadline=polling.now() + float(self.timeout),
                cancel_on_kill=self.cancel_on_kill,
                error_budget=self.error_budget,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger's event: finish the job from a fresh read, never from the event alone."""
        ended = JobEvent.from_payload(event)
        if ended.status == "timeout":
            raise AirflowSensorTimeout(f"{ended.message} (sensor timeout={self.timeout} s)")
        if ended.status == "error":
            raise GeminiBatchPollingError(ended.message)
        ref, hook = self._resolve(context)
        job = retry_read(
            self.log,
            f"Reading batch job {ref.name}",
            lambda: hook.get_job(ref.name),
            self.error_budget,
            rebuild=hook.invalidate,
        )
        return self._finish(context, ref, hook, require_terminal(job, ended.status))

    def on_kill(self) -> None:
        """Poke mode: cancel on mark-failed / mark-success when cancel_on_kill; never after a clear."""
        name, hook = self._job_name, self._hook_obj
        if not (self.cancel_on_kill and name and hook):
            return
        kill_job_blocking(name, self._identity, lambda: hook.cancel_job(name), self.log)
