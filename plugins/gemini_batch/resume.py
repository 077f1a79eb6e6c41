"""Retry safety as pure decisions: re-attach to this work's job, return it, or submit a new one.

:func:`decide` maps what a try knows (the record as read, the recorded job as read, the jobs
found by identity, the plan) to one answer. When it lacks a fact it asks for it
(:class:`ReadRecordedJob`, :class:`LookUpByIdentity`); the caller does that read and asks again.
:func:`landed_job` decides, after a transient create error, whether the create had landed.

Invariants:
- A running job of this work and inputs is re-attached; a finished (succeeded or partial) one is
  returned; only a FAILED, CANCELLED or EXPIRED job, or one that no longer exists, is replaced.
- A changed input fingerprint (or backend) means new work: no job of this work is adopted, not the
  recorded one, not one found by identity.
- A job found by identity that was made for another model or source is never adopted, nor is one
  the record lists among the jobs that existed before its submission.
- Every :class:`Submit` carries every job of this work known before its create call (an identity
  lookup always precedes it), and :func:`landed_job` never returns one of them: a create that
  failed without landing never adopts an old job.
- An unreadable record is never read as absent: it leads to an identity lookup, with the reason.
- An automatic Airflow retry never replaces a job that ended FAILED for a permanent reason
  (api_errors.job_failure_kind): it is refused (:class:`Refuse`), because the new job would fail
  the same way. The first try of a run or of a clear (the user may have fixed the input) does
  replace it (:func:`is_automatic_retry` tells them apart, as Airflow does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from gemini_batch.api_errors import PERMANENT_JOB_ERROR_CODES, job_error_code, job_failure_kind
from gemini_batch.job_record import Absent, JobRecord, RecordRead, Unreadable
from gemini_batch.states import counts_of, outcome_of, short_state

if TYPE_CHECKING:
    from gemini_batch.create_plan import CreatePlan

NOT_READ: Literal["not read"] = "not read"
NOT_FOUND: Literal["not found"] = "not found"
RecordedJob = Any  # a google-genai BatchJob, NOT_READ or NOT_FOUND
SubmitCause = Literal["first", "replaces_failed", "replaces_deleted", "inputs_changed"]


@dataclass(frozen=True)
class ResumeFacts:
    """What a try knows when deciding.

    :param record: the retry record as read.
    :param plan: this try's plan (identity, backend, model, source, fingerprint).
    :param recorded_job: the recorded job as read: a BatchJob, ``"not found"`` or ``"not read"``.
    :param found: this work's jobs found by identity, newest first; None if not looked up.
    :param automatic_retry: this try is an automatic Airflow retry (not the first try of a run or
        of a clear); see :func:`is_automatic_retry`.
    """

    record: RecordRead
    plan: CreatePlan
    recorded_job: RecordedJob = NOT_READ
    found: tuple[Any, ...] | None = None
    automatic_retry: bool = False


@dataclass(frozen=True)
class ReadRecordedJob:
    """Read the recorded job (``"not found"`` if it no longer exists), then decide again."""

    job_name: str


@dataclass(frozen=True)
class LookUpByIdentity:
    """List this work's jobs by identity, then decide again. ``why`` is for the log."""

    why: str
    warning: bool = False


@dataclass(frozen=True)
class Reattach:
    """Wait for this running job; record it as submitted with ``submissions``."""

    job: Any
    submissions: int
    why: str


@dataclass(frozen=True)
class Return:
    """This job already ended succeeded or partial: return it without submitting."""

    job: Any
    submissions: int
    why: str


@dataclass(frozen=True)
class Submit:
    """Submit the ``submission``-th job of this work.

    :param known: every job of this work known before the create call; never this submission's job.
    """

    submission: int
    cause: SubmitCause
    why: str
    known: frozenset[str]


@dataclass(frozen=True)
class Refuse:
    """An automatic retry found this work's job FAILED for a permanent reason: fail, do not submit."""

    job: Any
    why: str


Decision = ReadRecordedJob | LookUpByIdentity | Reattach | Return | Submit | Refuse


def is_automatic_retry(try_number: int, max_tries: int, retries: int) -> bool:
    """Whether a try is an automatic retry rather than the first try of a run or of a clear.

    A clear sets ``max_tries`` to the last try number plus ``retries``, so the first try of a run
    or a clear is ``max_tries - retries + 1`` (Airflow's own ``first_try_number``).
    """
    return try_number > max_tries - retries + 1


def _replace_failed(facts: ResumeFacts, record: JobRecord | None, job: Any, why: str) -> Decision:
    """Replace a job that ended FAILED, CANCELLED or EXPIRED, unless a retry would repeat a permanent failure."""
    if facts.automatic_retry and short_state(job.state) == "FAILED" and job_failure_kind(job) == "permanent":
        code = PERMANENT_JOB_ERROR_CODES[job_error_code(job)]  # type: ignore[index]
        message = getattr(getattr(job, "error", None), "message", None) or ""
        return Refuse(
            job,
            f"{why} with {code}{': ' + message if message else ''}; a new job would fail the same way, so "
            "this retry does not submit one. Fix what the error names, then clear the task.",
        )
    return _submit(facts, record, "replaces_failed", why)


def made_for(job: Any, plan: CreatePlan) -> bool:
    """Whether a job of this work was made for this model and source (as far as the service says)."""

    def bare(model: str | None) -> str:
        return (model or "").rsplit("/", 1)[-1]

    if job.model and bare(job.model) != bare(plan.model):
        return False
    src = getattr(job, "src", None)
    if src is None or plan.source.kind in ("inline", "file"):
        return True
    uris = list(src.gcs_uri or []) or ([src.bigquery_uri] if src.bigquery_uri else [])
    return not uris or sorted(uris) == sorted(plan.source.uris)


def _names(jobs: Sequence[Any]) -> frozenset[str]:
    return frozenset(job.name for job in jobs)


def _count(facts: ResumeFacts, record: JobRecord | None) -> int:
    """Jobs this work has submitted so far, as far as the record and the lookup tell."""
    return max(record.submissions if record else 0, len(facts.found or ()))


def _finished_or_running(job: Any, submissions: int, via: str) -> Reattach | Return | None:
    """Re-attach to a waiting job, return a finished one; None for a failed one (it is replaced)."""
    state = short_state(job.state)
    outcome = outcome_of(job.state, counts_of(job))
    if outcome is None:
        return Reattach(job, submissions, f"batch job {job.name} ({via}) is {state}: re-attaching")
    if outcome in ("succeeded", "partial"):
        why = f"batch job {job.name} ({via}) already ended {state}: returning it"
        return Return(job, submissions, why)
    return None


def _submit(
    facts: ResumeFacts, record: JobRecord | None, cause: SubmitCause, why: str
) -> Submit | LookUpByIdentity:
    """Submit, once the jobs of this work that exist before the create call are known."""
    if facts.found is None:
        return LookUpByIdentity(f"{why}; listing this work's jobs before submitting")
    known = _names(facts.found)
    if record is not None:
        known |= frozenset(record.previous_jobs)
        known |= {record.job_name} if record.job_name else frozenset()
    return Submit(_count(facts, record) + 1, cause, why, known)


def _from_found(
    facts: ResumeFacts, record: JobRecord | None, excluded: frozenset[str], why: str, *, warning: bool = False
) -> Decision:
    """Decide on the jobs found by identity: the newest one made for these inputs decides."""
    if facts.found is None:
        return LookUpByIdentity(why, warning=warning)
    ours = [job for job in facts.found if job.name not in excluded and made_for(job, facts.plan)]
    ignored = [job.name for job in facts.found if job.name not in _names(ours)]
    note = ""
    if ignored:
        note = f" (ignored, made for other inputs or before this submission: {', '.join(ignored)})"
    if not ours:
        return _submit(facts, record, "first", f"no job of this work for these inputs{note}")
    newest = ours[0]
    decision = _finished_or_running(newest, _count(facts, record), "found by identity")
    if decision is not None:
        return replace(decision, why=decision.why + note)
    why = f"batch job {newest.name} ended {short_state(newest.state)}{note}"
    return _replace_failed(facts, record, newest, why)


def decide(facts: ResumeFacts) -> Decision:
    """The next step of a try: a read to make, or re-attach / return / submit (see the module docstring)."""
    record = facts.record
    plan = facts.plan
    if isinstance(record, Absent):
        return _from_found(facts, None, frozenset(), "no job is recorded")
    if isinstance(record, Unreadable):
        why = f"the retry record is unreadable: {record.reason}"
        return _from_found(facts, None, frozenset(), why, warning=True)
    if record.work_id != plan.identity.work_id:
        why = f"the retry record belongs to work {record.work_id}"
        return _from_found(facts, None, frozenset(), why, warning=True)
    if record.backend != plan.backend or record.fingerprint != plan.fingerprint:
        what = record.job_name or "the last submission"
        return _submit(
            facts,
            record,
            "inputs_changed",
            f"the inputs (backend, model, source, dest or create_config) changed since {what}: new work",
        )
    if record.phase == "submitting" or record.job_name is None:
        return _from_found(
            facts, record, frozenset(record.previous_jobs), "a previous try stopped between submit and record"
        )
    recorded = facts.recorded_job
    if recorded == NOT_READ:
        return ReadRecordedJob(record.job_name)
    if recorded == NOT_FOUND:
        why = f"recorded batch job {record.job_name} no longer exists"
        return _submit(facts, record, "replaces_deleted", why)
    decision = _finished_or_running(recorded, record.submissions, "recorded")
    if decision is not None:
        return decision
    why = f"recorded batch job {recorded.name} ended {short_state(recorded.state)}"
    return _replace_failed(facts, record, recorded, why)


def landed_job(found: Sequence[Any], known: frozenset[str], plan: CreatePlan) -> Any | None:
    """After a transient create error: the job that create made, if it landed, else None.

    Only a job that did not exist before the create call (not in ``known``), made for these
    inputs and not failed counts; ``found`` is newest first.
    """
    for job in found:
        if job.name not in known and made_for(job, plan) and outcome_of(job.state) != "failed":
            return job
    return None


#: The ``ResumableJobMixin`` metric each outcome counts as (Airflow 3.3's names).
METRIC_RECONNECT_ATTEMPT = "resumable_job.reconnect_attempt"


def metric_of(decision: Reattach | Return | Submit) -> str:
    """The ``resumable_job.*`` counter Airflow's ``ResumableJobMixin`` would bump for this outcome."""
    if isinstance(decision, Reattach):
        return "resumable_job.reconnect_success"
    if isinstance(decision, Return):
        return "resumable_job.already_succeeded"
    if decision.cause in ("replaces_failed", "replaces_deleted"):
        return "resumable_job.terminal_resubmit"
    return "resumable_job.fresh_submit"


__all__ = [
    "METRIC_RECONNECT_ATTEMPT",
    "NOT_FOUND",
    "NOT_READ",
    "Decision",
    "LookUpByIdentity",
    "ReadRecordedJob",
    "Reattach",
    "Refuse",
    "ResumeFacts",
    "Return",
    "Submit",
    "SubmitCause",
    "decide",
    "is_automatic_retry",
    "landed_job",
    "made_for",
    "metric_of",
]
