"""The cancel sweep: cancel running batch jobs whose task instance a user ended, without on_kill.

``on_kill`` is not enough (Airflow 3.3.2 gives it about one second, never calls it when the mark
comes before a triggerer started the trigger or while no triggerer runs), so this second path
finds each running job of ours by its identity tag, finds the task instance that owns it, and
cancels the job when a user ended that task instance.

Invariants:
- Only running jobs (not terminal) whose display name ends with an identity tag
  (``awid-<work_id>``, identity.py) are considered; a job of anybody else is never touched.
- The owner is found by recomputing work ids: the candidate (dag_id, task_id) pairs come from the
  job's labels (Vertex AI) and display name, each candidate's task instances from Airflow, and
  only an exact work-id match is an owner (:func:`find_owner`).
- :func:`decide` is the one rule: cancel when the owner is failed, success, skipped,
  upstream_failed or removed; never when it is running, deferred, queued, scheduled,
  up_for_retry, up_for_reschedule, restarting or None (cleared), nor when its state is unknown.
  A success whose try returned this job in its manifest (``wait_for_completion=False``: the job
  was handed on) keeps it. A job whose DAG and task exist but no run matches (the run was
  deleted) is cancelled only with ``cancel_orphans``: another deployment sharing the project
  would look the same.
- One cancel call per job and sweep, never retried within a sweep (the next sweep tries
  again); every cancel is logged with its reason.
- The create operator does not sweep at the start of its tries: a try's own jobs belong to a
  running task instance (so the rule keeps them), and sweeping other work from every try would
  list every job of the project from every task; the scheduled sweep (DAG
  ``gemini_batch_cancel_sweep``, every few minutes) is the bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gemini_batch.backends import Backend
from gemini_batch.exceptions import GeminiBatchConfigError
from gemini_batch.identity import DISPLAY_TAG_PREFIX, WORK_ID_LABEL, WorkIdentity
from gemini_batch.states import TERMINAL_STATES, is_terminal, normalize_state
from gemini_batch.task_state import USER_ENDED_TI_STATES

__all__ = [
    "ALIVE_TI_STATES",
    "Owner",
    "SweepResult",
    "TaskInstances",
    "Verdict",
    "candidates",
    "decide",
    "find_owner",
    "sweep",
    "sweep_filter",
    "sweep_jobs",
    "work_id_of",
]

#: States in which a try of the work is coming or running: its job must keep running.
ALIVE_TI_STATES = frozenset(
    {"running", "deferred", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "restarting"}
)

_TAG = re.compile(rf"(?:^|\s){re.escape(DISPLAY_TAG_PREFIX)}([0-9a-f]{{16}})$")
_MAP_INDEX = re.compile(r"\[(\d+)\]$")
_MAPPED_KEY = re.compile(r"^(.+)_(\d+)$")

Found = Literal["found", "absent", "unknown"]
Action = Literal["cancel", "keep"]


@dataclass(frozen=True)
class Owner:
    """What Airflow says about the task instance that owns a job.

    :param found: ``found`` (a task instance with the job's work id), ``absent`` (its DAG and task
        exist but no run matches: the run was deleted) or ``unknown`` (nothing to go by).
    :param state: the task instance's state (``found`` only); None for a cleared one.
    :param handed_off: the task instance's try returned this job in its manifest.
    :param identity: the owning task instance (``found`` only).
    """

    found: Found
    state: str | None = None
    handed_off: bool = False
    identity: WorkIdentity | None = None


@dataclass(frozen=True)
class Verdict:
    """The sweep's decision on one job and why, for the log."""

    action: Action
    reason: str


@dataclass(frozen=True)
class SweepResult:
    """One running job of ours the sweep looked at: what it decided, and whether the cancel went out."""

    job_name: str
    action: Action
    reason: str
    cancelled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "action": self.action,
            "reason": self.reason,
            "cancelled": self.cancelled,
        }


def decide(owner: Owner, *, cancel_orphans: bool = False) -> Verdict:
    """Whether the sweep cancels a running job, given its owner (the one rule; see the module doc)."""
    if owner.found == "unknown":
        return Verdict("keep", "no task instance of this deployment owns it")
    if owner.found == "absent":
        if cancel_orphans:
            return Verdict("cancel", "its DAG run was deleted")
        return Verdict(
            "keep", "its DAG run is not found (deleted, or another deployment's); cancel_orphans is off"
        )
    state = owner.state
    who = owner.identity.describe() if owner.identity else "its task instance"
    if state is None:
        return Verdict("keep", f"{who} was cleared: a new try re-attaches to it")
    if state in ALIVE_TI_STATES:
        return Verdict("keep", f"{who} is {state}")
    if state not in USER_ENDED_TI_STATES:
        return Verdict("keep", f"{who} is in state {state!r}, which the sweep does not know")
    if state == "success" and owner.handed_off:
        return Verdict("keep", f"{who} succeeded and handed the job on (wait_for_completion=False)")
    return Verdict("cancel", f"{who} was ended ({state}) while the job runs")


def work_id_of(job: Any) -> str | None:
    """The work id in a job's display name tag, or None when it carries none."""
    match = _TAG.search(getattr(job, "display_name", None) or "")
    return match.group(1) if match else None


def candidates(job: Any) -> list[tuple[str, str | None]]:
    """The (dag_id, task_id or None for any task) that may own ``job``, from labels and display name.

    The display name is ``<base> awid-<work_id>``; the default base is
    ``<dag_id>.<task_id>[<map_index>]`` (both ids may hold dots, so every split is a candidate),
    and the project's DAGs use their DAG id as the base (the whole base, any task). Vertex AI
    labels ``airflow-dag`` / ``airflow-task`` count when a job object carries them (google-genai's
    BatchJob does not). A user's own base that names no DAG gives no owner: the job is kept.
    """
    pairs: list[tuple[str, str | None]] = []
    labels = getattr(job, "labels", None) or {}
    if labels.get("airflow-dag") and labels.get("airflow-task"):
        pairs.append((labels["airflow-dag"], labels["airflow-task"]))
    display_name = getattr(job, "display_name", None) or ""
    base = _MAP_INDEX.sub("", _TAG.sub("", display_name).strip())
    if base and not any(char.isspace() for char in base):
        pairs.append((base, None))
        pairs.extend(
            (base[:i], base[i + 1 :]) for i, char in enumerate(base) if char == "." and 0 < i < len(base) - 1
        )
    return list(dict.fromkeys(pairs))


class TaskInstances(Protocol):
    """Airflow's answers the sweep needs (the SDK's in a task; a fake in unit tests)."""

    def states(self, dag_id: str, task_id: str | None) -> Mapping[str, Mapping[str, Any]]:
        """``{run_id: {task_id or task_id_<map_index>: state}}`` of every run of one task (or all tasks)."""
        ...

    def returned_job(self, identity: WorkIdentity) -> str | None:
        """The ``job_name`` of the manifest the task instance's last try returned, if any."""
        ...


def find_owner(job: Any, task_instances: TaskInstances) -> Owner:
    """The task instance whose work id ``job`` carries (see the module doc)."""
    work_id = work_id_of(job)
    if work_id is None:
        return Owner("unknown")
    task_seen = False
    for dag_id, task in candidates(job):
        runs = task_instances.states(dag_id, task) or {}
        for run_id, tasks in runs.items():
            for key, state in (tasks or {}).items():
                for task_id, map_index in _task_keys(key, task):
                    task_seen = True
                    identity = WorkIdentity(dag_id, task_id, run_id, map_index)
                    if identity.work_id != work_id:
                        continue
                    value = None if state is None else str(getattr(state, "value", state))
                    handed_off = value == "success" and task_instances.returned_job(identity) == job.name
                    return Owner("found", value, handed_off, identity)
    return Owner("absent" if task_seen else "unknown")


def _task_keys(key: str, task_id: str | None) -> list[tuple[str, int]]:
    """What a get_task_states key may name: (task_id, map_index) pairs (``t`` -> -1, ``t_3`` -> 3).

    With the task known, only keys of that task count; with any task, ``t_3`` is either the
    unmapped task ``t_3`` or ``t``'s map index 3, and both are tried (the work id tells).
    """
    mapped = _MAPPED_KEY.match(key)
    if task_id is not None:
        if key == task_id:
            return [(task_id, -1)]
        return [(task_id, int(mapped.group(2)))] if mapped and mapped.group(1) == task_id else []
    return [(key, -1), *([(mapped.group(1), int(mapped.group(2)))] if mapped else [])]


def sweep_jobs(
    jobs: Iterable[Any],
    task_instances: TaskInstances,
    cancel: Callable[[str], None],
    log: Any,
    *,
    cancel_orphans: bool = False,
) -> list[SweepResult]:
    """Look at every running job of ours in ``jobs``; cancel those :func:`decide` says to (one call each)."""
    results: list[SweepResult] = []
    for job in jobs:
        if work_id_of(job) is None or is_terminal(normalize_state(job.state)):
            continue
        verdict = decide(find_owner(job, task_instances), cancel_orphans=cancel_orphans)
        if verdict.action == "keep":
            log.info("Keeping batch job %s: %s", job.name, verdict.reason)
            results.append(SweepResult(job.name, "keep", verdict.reason))
            continue
        log.warning("Cancelling batch job %s because %s", job.name, verdict.reason)
        try:
            cancel(job.name)
        except Exception as exc:
            log.warning(
                "Could not cancel batch job %s (%s: %s); the next sweep tries again",
                job.name,
                type(exc).__name__,
                exc,
            )
            results.append(SweepResult(job.name, "cancel", verdict.reason, cancelled=False))
            continue
        results.append(SweepResult(job.name, "cancel", verdict.reason, cancelled=True))
    return results


class SdkTaskInstances:
    """:class:`TaskInstances` through the Task SDK, for a task (the API server answers)."""

    def states(self, dag_id: str, task_id: str | None) -> Mapping[str, Mapping[str, Any]]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        task_ids = None if task_id is None else [task_id]
        return RuntimeTaskInstance.get_task_states(dag_id=dag_id, task_ids=task_ids) or {}

    def returned_job(self, identity: WorkIdentity) -> str | None:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_one(
            key="return_value",
            dag_id=identity.dag_id,
            task_id=identity.task_id,
            run_id=identity.run_id,
            map_index=identity.map_index,
        )
        return value.get("job_name") if isinstance(value, Mapping) else None


def sweep_filter(backend: Backend) -> str | None:
    """The list filter of a sweep: on Vertex AI, only jobs with the operator's work-id label that
    are not finished, so a sweep every few minutes does not page through every job the project
    ever ran. The Gemini API cannot filter a list (None): its sweep pages through all of them.

    Vertex AI's list filter takes ``state`` with ``=`` and ``!=``, and ``labels.KEY:*`` for a
    label's presence (ListBatchPredictionJobs reference). A job of ours made before the operator
    labelled its jobs is not listed; the display-name tag still guards every cancel.
    """
    if backend != "vertex":
        return None
    finished = " AND ".join(f"state!={state}" for state in sorted(TERMINAL_STATES))
    return f"labels.{WORK_ID_LABEL}:* AND {finished}"


def sweep(backend: Backend, conn_id: str, log: Any, *, cancel_orphans: bool = False) -> list[dict[str, Any]]:
    """One sweep of one backend's jobs from a task; a backend without a connection is skipped, said so.

    :returns: :meth:`SweepResult.as_dict` of every running job of ours looked at (small: XCom).
    """
    from gemini_batch.hooks import GeminiBatchHook

    hook = GeminiBatchHook(backend, conn_id)
    try:
        hook.settings  # noqa: B018 - builds the client: a missing connection is known here
    except GeminiBatchConfigError as exc:
        log.warning("Not sweeping %s jobs: %s", backend, exc)
        return []
    results = sweep_jobs(
        hook.iter_jobs(filter=sweep_filter(backend)),
        SdkTaskInstances(),
        hook.cancel_job,
        log,
        cancel_orphans=cancel_orphans,
    )
    cancelled = sum(result.cancelled for result in results)
    log.info("Swept %d running %s job(s) of ours: %d cancelled", len(results), backend, cancelled)
    return [result.as_dict() for result in results]
