"""Carry out the retry decisions of resume.py for one try: the record, the reads, the create call.

Invariants: every choice is :func:`gemini_batch.resume.decide`'s or
:func:`gemini_batch.resume.landed_job`'s; this module only reads and writes. The record is written
``submitting`` (with the jobs known before) before the create call and ``submitted`` after it.
``create`` is never blindly retried: after a transient error the work's jobs are listed first,
because the create may have landed. Outcomes are counted with the metrics of Airflow's
``ResumableJobMixin`` (``resumable_job.*``, tag ``operator``, and ``team_name`` when set).

Why not ``airflow.sdk.bases.resumablejobmixin.ResumableJobMixin`` itself: it keeps one opaque
external id and submits blindly when none is stored, so it has no place for what makes this
operator retry-safe: the two-phase record (its documented window, a crash between submit and
persist, is exactly what the ``submitting`` phase and the identity lookup close), the input
fingerprint (changed inputs are new work), the lookup after a wiped store or a re-created run,
and the lookup after a transient create error. It also owns the synchronous flow
(submit, persist, ``poll_until_complete``), while our deferrable path must re-attach as well
(BigQueryInsertJobOperator uses it only when not deferrable).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gemini_batch.api_errors import http_status, is_permanent_error, is_transient_error
from gemini_batch.exceptions import (
    GeminiBatchJobFailedPermanently,
    GeminiBatchJobNotFound,
    GeminiBatchRejected,
)
from gemini_batch.job_record import JobRecord, Phase, RecordStore, Unreadable, now_iso
from gemini_batch.polling import Backoff
from gemini_batch.resume import (
    METRIC_RECONNECT_ATTEMPT,
    NOT_FOUND,
    LookUpByIdentity,
    ReadRecordedJob,
    Reattach,
    Refuse,
    ResumeFacts,
    Return,
    Submit,
    decide,
    landed_job,
    metric_of,
)
from gemini_batch.states import counts_of, progress_line

if TYPE_CHECKING:
    from google.genai import types

    from gemini_batch.create_plan import CreatePlan
    from gemini_batch.hooks import GeminiBatchHook

#: ``read(what, call)``: a read-only call retried on transient errors (the operator's retry_read).
ReadCall = Callable[[str, Callable[[], Any]], Any]
#: ``before_submit(dest)``: the pre-flight checks of a new submission (raises to stop it).
BeforeSubmit = Callable[[str | None], None]
#: decide() asks for at most the recorded job and one lookup before answering.
MAX_READS = 2


def resumable_stats_tags(operator_name: str, context: Any) -> dict[str, str]:
    """The tags ``ResumableJobMixin`` puts on its metrics: the operator, and the team when there is one."""
    tags = {"operator": operator_name}
    team_name = (getattr(context.get("ti"), "stats_tags", None) or {}).get("team_name")
    if team_name:
        tags["team_name"] = team_name
    return tags


def _incr(metric: str, tags: dict[str, str]) -> None:
    from airflow.sdk.observability.stats import Stats

    Stats.incr(metric, tags=tags)


@dataclasses.dataclass
class JobResumer:
    """One try's re-attach-or-submit, for the create operator.

    :param plan: the try's plan.
    :param hook: the hook of the plan's backend.
    :param store: the task instance's record.
    :param log: the operator's logger.
    :param read: reads with transient-error retries (never used for create).
    :param sleep: ``time.sleep`` or a test's stand-in.
    :param create_attempts: create calls tried on transient errors.
    :param stats_tags: see :func:`resumable_stats_tags`.
    :param automatic_retry: this try is an automatic Airflow retry (resume.is_automatic_retry).
    :param before_submit: called with the destination before a new submission's record and create
        call (the pre-flight checks); never before a re-attach or a return.
    """

    plan: CreatePlan
    hook: GeminiBatchHook
    store: RecordStore
    log: Any
    read: ReadCall
    sleep: Callable[[float], None]
    create_attempts: int
    stats_tags: dict[str, str]
    automatic_retry: bool = False
    before_submit: BeforeSubmit | None = None

    def attach_or_submit(self) -> types.BatchJob:
        """This work's job: re-attached, returned, or newly submitted (see resume.py)."""
        if not self.store.available:
            self.log.warning("No task_state_store (Airflow < 3.3?): the job is found by its identity only")
        facts = ResumeFacts(self.store.read(), self.plan, automatic_retry=self.automatic_retry)
        if isinstance(facts.record, Unreadable):
            reason = facts.record.reason
            self.log.warning("The retry record in the task state store is unreadable: %s", reason)
        decision = decide(facts)
        for _ in range(MAX_READS):
            if isinstance(decision, ReadRecordedJob):
                facts = dataclasses.replace(facts, recorded_job=self._read_recorded(decision.job_name))
            elif isinstance(decision, LookUpByIdentity):
                facts = dataclasses.replace(facts, found=tuple(self._look_up(decision)))
            else:
                break
            decision = decide(facts)
        if isinstance(decision, Refuse):
            raise GeminiBatchJobFailedPermanently(f"Not submitting: {decision.why}")
        if not isinstance(decision, (Reattach, Return, Submit)):
            raise RuntimeError(f"resume.decide asked for a third read: {decision!r}")  # a bug in decide
        _incr(metric_of(decision), self.stats_tags)
        if isinstance(decision, Submit):
            (self.log.info if decision.cause == "first" else self.log.warning)(
                "Submitting a new batch job: %s", decision.why
            )
            return self._submit(decision)
        line = progress_line(decision.job.state, counts_of(decision.job))
        self.log.info("Not submitting: %s (%s)", decision.why, line)
        self._record("submitted", decision.job.name, decision.submissions, frozenset())
        return decision.job

    def _read_recorded(self, name: str) -> Any:
        _incr(METRIC_RECONNECT_ATTEMPT, self.stats_tags)
        try:
            return self.read(f"Reading recorded batch job {name}", lambda: self.hook.get_job(name))
        except GeminiBatchJobNotFound:
            return NOT_FOUND

    def _look_up(self, decision: LookUpByIdentity) -> list[types.BatchJob]:
        (self.log.warning if decision.warning else self.log.info)(
            "Looking up this work's batch jobs by identity (%s): %s",
            decision.why,
            self.plan.identity.describe(),
        )
        return self.read(
            "Looking up batch jobs by identity", lambda: self.hook.find_jobs_by_identity(self.plan.identity)
        )

    def _record(self, phase: Phase, job_name: str | None, submissions: int, previous: frozenset[str]) -> None:
        self.store.write(
            JobRecord(
                phase=phase,
                job_name=job_name,
                work_id=self.plan.identity.work_id,
                backend=self.plan.backend,
                fingerprint=self.plan.fingerprint,
                submissions=submissions,
                updated_at=now_iso(),
                previous_jobs=tuple(sorted(previous)),
            )
        )

    def _submit(self, decision: Submit) -> types.BatchJob:
        dest = self.plan.destination(decision.submission)
        if self.before_submit is not None:
            self.before_submit(dest)
        # Phase 1: the intent, so that a crash after the create call is recovered by lookup.
        self._record("submitting", None, decision.submission, decision.known)
        job = self._create(dest, decision.known)
        # Phase 2: the job name.
        self._record("submitted", job.name, decision.submission, decision.known)
        self.log.info(
            "Submitted batch job %s (%s, model %s, source %s%s): %s",
            job.name,
            self.plan.backend,
            self.plan.model,
            self.plan.source.describe(),
            f", dest {dest}" if dest else "",
            progress_line(job.state, counts_of(job)),
        )
        return job

    def _create(self, dest: str | None, known: frozenset[str]) -> types.BatchJob:
        backoff = Backoff(budget=self.create_attempts)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.hook.create_job(
                    model=self.plan.model,
                    source=self.plan.source,
                    display_name=self.plan.display_name,
                    dest=dest,
                    labels=self.plan.labels,
                    create_config=self.plan.create_config,
                    task=self.plan.task,
                )
            except Exception as exc:
                if is_permanent_error(exc):
                    status = http_status(exc)
                    raise GeminiBatchRejected(
                        f"The service refused to create the batch job"
                        f"{f' (HTTP {status})' if status else ''}: {exc}. No job was created and a retry "
                        "would be refused the same way: fix the argument or input the error names."
                    ) from exc
                if not is_transient_error(exc) or attempt >= self.create_attempts:
                    raise
                delay = backoff.delay(attempt)
                self.log.warning(
                    "Creating the batch job failed (%s: %s, attempt %d/%d); checking whether it was created "
                    "anyway before trying again in %.1f s",
                    type(exc).__name__,
                    exc,
                    attempt,
                    self.create_attempts,
                    delay,
                )
                self.sleep(delay)
                found = self._look_up(LookUpByIdentity("the create call may have landed"))
                landed = landed_job(found, known, self.plan)
                if landed is not None:
                    self.log.info("The create call had landed: batch job %s", landed.name)
                    return landed


__all__ = ["JobResumer", "ReadCall", "resumable_stats_tags"]
