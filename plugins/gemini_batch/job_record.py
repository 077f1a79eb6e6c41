"""The retry record: which job this task instance submitted, kept in Airflow 3.3's task state store.

Invariants:
- A stored value is read into exactly one of three answers: :class:`Absent` (nothing stored),
  :class:`Unreadable` (something stored that this code cannot trust, with the reason) or a
  :class:`JobRecord`. Unreadable is never treated as absent: the caller logs the reason, and
  the job is then looked up by identity.
- Reading is strict: a wrong type, a missing field or an unknown version makes the record
  unreadable; a record never gets a default for a field it lacks.
- Version 1 records (written before ``previous_jobs`` existed) stay readable, so in-flight work
  re-attaches after an upgrade; every write is the current version.
- The record is written twice per submission: ``submitting`` before the create call (the intent,
  with the jobs of this work that existed then) and ``submitted`` with the job name after it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from gemini_batch.backends import BACKENDS, Backend

Phase = Literal["submitting", "submitted"]
PHASES: tuple[Phase, ...] = ("submitting", "submitted")
#: The version every write carries.
RECORD_VERSION = 2
#: The versions this code reads.
READABLE_VERSIONS = (1, 2)
#: task_state_store key of the record. Renaming it breaks re-attach of in-flight work.
STATE_KEY = "gemini_batch_job"


@dataclass(frozen=True)
class Absent:
    """Nothing is stored: a first try, a store wiped on success, a re-created run, or no store at all."""


@dataclass(frozen=True)
class Unreadable:
    """Something is stored that cannot be trusted.

    :param reason: what is wrong with it, for the log line.
    """

    reason: str


@dataclass(frozen=True)
class JobRecord:
    """One task instance's submission, as stored.

    :param phase: ``submitting`` (create call about to be made, ``job_name`` None) or ``submitted``.
    :param job_name: the submitted job's name; None while ``submitting``.
    :param work_id: :attr:`gemini_batch.identity.WorkIdentity.work_id` of the task instance.
    :param backend: ``vertex`` or ``gemini_api``.
    :param fingerprint: the input fingerprint (see create_plan.py) the job was submitted for.
    :param submissions: how many jobs this work has submitted, at least 1 (numbers the default dest).
    :param updated_at: ISO 8601 UTC time of the write.
    :param previous_jobs: names of this work's jobs that existed before this submission's create
        call; none of them is ever this submission's job (empty in version 1 records).
    :param version: the record version it was read from or is written as.
    """

    phase: Phase
    job_name: str | None
    work_id: str
    backend: Backend
    fingerprint: str
    submissions: int
    updated_at: str
    previous_jobs: tuple[str, ...] = ()
    version: int = RECORD_VERSION

    def as_json(self) -> dict[str, Any]:
        """The stored form (always the current version)."""
        return {
            "v": RECORD_VERSION,
            "phase": self.phase,
            "job_name": self.job_name,
            "work_id": self.work_id,
            "backend": self.backend,
            "fingerprint": self.fingerprint,
            "submissions": self.submissions,
            "updated_at": self.updated_at,
            "previous_jobs": list(self.previous_jobs),
        }


RecordRead = Absent | Unreadable | JobRecord


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_problem(data: dict[str, Any], version: int) -> str | None:
    """What is wrong with the fields of a record of a readable ``version``, or None."""
    required = ["phase", "job_name", "work_id", "backend", "fingerprint", "submissions", "updated_at"]
    if version >= 2:
        required.append("previous_jobs")
    missing = [name for name in required if name not in data]
    if missing:
        return f"version {version} record lacks {', '.join(missing)}"
    phase, job_name = data["phase"], data["job_name"]
    if phase not in PHASES:
        return f"phase {phase!r} is not one of {PHASES}"
    if phase == "submitted" and not (isinstance(job_name, str) and job_name):
        return f"phase 'submitted' with job_name {job_name!r} (a job name is required)"
    if phase == "submitting" and job_name is not None:
        return f"phase 'submitting' with job_name {job_name!r} (none is recorded before the create call)"
    for name in ("work_id", "fingerprint", "updated_at"):
        if not (isinstance(data[name], str) and data[name]):
            return f"{name} {data[name]!r} is not a non-empty string"
    if data["backend"] not in BACKENDS:
        return f"backend {data['backend']!r} is not one of {BACKENDS}"
    if not (_is_int(data["submissions"]) and data["submissions"] >= 1):
        return f"submissions {data['submissions']!r} is not a count of at least 1"
    previous = data.get("previous_jobs", [])
    if not (isinstance(previous, list) and all(isinstance(name, str) and name for name in previous)):
        return f"previous_jobs {previous!r} is not a list of job names"
    return None


def read_record(raw: Any) -> RecordRead:
    """Read a stored value: :class:`Absent`, :class:`Unreadable` (with the reason) or a :class:`JobRecord`."""
    if raw is None:
        return Absent()
    if not isinstance(raw, dict):
        return Unreadable(f"the stored value is a {type(raw).__name__}, not a record")
    if "v" not in raw:
        return Unreadable("the stored record has no version field 'v'")
    version = raw["v"]
    if not _is_int(version) or version not in READABLE_VERSIONS:
        return Unreadable(f"unknown record version {version!r} (this provider reads {READABLE_VERSIONS})")
    problem = _field_problem(raw, version)
    if problem is not None:
        return Unreadable(problem)
    return JobRecord(
        phase=raw["phase"],
        job_name=raw["job_name"],
        work_id=raw["work_id"],
        backend=raw["backend"],
        fingerprint=raw["fingerprint"],
        submissions=raw["submissions"],
        updated_at=raw["updated_at"],
        previous_jobs=tuple(raw.get("previous_jobs", ())),
        version=version,
    )


class RecordStore:
    """The record of one task instance in its ``task_state_store`` (None: Airflow without a store).

    :param store: ``context["task_state_store"]``, or None.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    @property
    def available(self) -> bool:
        return self.store is not None

    def read(self) -> RecordRead:
        """The stored record, read strictly; :class:`Absent` without a store."""
        if self.store is None:
            return Absent()
        return read_record(self.store.get(STATE_KEY))

    def write(self, record: JobRecord) -> None:
        """Store ``record`` (no-op without a store)."""
        if self.store is not None:
            self.store.set(STATE_KEY, record.as_json())


__all__ = [
    "Absent",
    "JobRecord",
    "PHASES",
    "Phase",
    "READABLE_VERSIONS",
    "RECORD_VERSION",
    "RecordRead",
    "RecordStore",
    "STATE_KEY",
    "Unreadable",
    "now_iso",
    "read_record",
]
