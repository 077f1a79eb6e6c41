"""The emulator's state: jobs, files, faults, running tasks. No HTTP here.

Invariants: reads are served from memory (``jobs`` is the source of truth while the process
lives; the state directory mirrors it); every job change that matters after a restart
(create, state change, outputs, delete) is saved before the API answers; job ids are unique
and increasing for the life of the state directory (numeric for Vertex, as the SDK requires).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import states
from .cloud import CloudClients
from .errors import failed_precondition
from .faults import ApiErrorInjector, Faults, RowFailureLedger
from .files import FileStore
from .jobs import Job
from .runner import JobRun
from .store import StateStore

log = logging.getLogger(__name__)

IO_THREADS = 4
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    """``number`` in lowercase base 36."""
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_BASE36[rest])
        if not number:
            return "".join(reversed(digits))


@dataclass(frozen=True)
class Settings:
    """How the emulator was started (the CLI flags).

    :param state_dir: Required. Where jobs, files and faults are kept.
    :param project: Optional. Default project (clients of the GCS and BigQuery emulators).
    :param location: Optional. Default location.
    :param api_key: Optional. The Gemini API key accepted.
    """

    state_dir: Path
    project: str = "local-project"
    location: str = "us-central1"
    api_key: str = "local-gemini-api-key"


class Service:
    """Owns every job and file and runs jobs as asyncio tasks.

    :param settings: Required. The start-up settings.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = StateStore(settings.state_dir)
        self.files = FileStore(self.store)
        self.jobs: dict[str, Job] = {}
        self.faults = Faults.from_dict(self.store.load_faults() or {})
        self.api_errors = ApiErrorInjector()
        #: row_failure_tries: the jobs each transiently failing row has failed in (this stack).
        self.row_failures = RowFailureLedger()
        self.clients = CloudClients(settings.project)
        self.io_pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="emulator-io")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_events: dict[str, asyncio.Event] = {}
        self._inline: dict[str, list[dict[str, Any]]] = {}
        self._last_id = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load stored jobs and resume every one that had not finished."""
        records = sorted(self.store.load_jobs(), key=lambda r: (r["create_time"], r["id"]))
        for record in records:
            job = Job.from_record(record)
            self.jobs[job.id] = job
            if job.id.isdigit():
                self._last_id = max(self._last_id, int(job.id))
        resumed = [job for job in self.jobs.values() if not job.terminal]
        for job in resumed:
            self.launch(job)
        if resumed:
            log.info("resumed %d unfinished job(s)", len(resumed))

    async def stop(self) -> None:
        """Stop running jobs (their saved state resumes at the next start)."""
        await self._cancel_tasks()
        self.io_pool.shutdown(wait=False, cancel_futures=True)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._cancel_events.clear()

    async def reset(self) -> None:
        """Forget every job, file and fault (admin ``POST /admin/reset``)."""
        await self._cancel_tasks()
        self.jobs.clear()
        self._inline.clear()
        self.files.reset()
        self.store.wipe()
        self.faults = Faults()
        self.api_errors = ApiErrorInjector()
        self.row_failures = RowFailureLedger()

    # --- ids ----------------------------------------------------------------------------

    def new_numeric_id(self) -> int:
        """A unique, increasing number (microseconds since the epoch, bumped on collision)."""
        self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
        return self._last_id

    def new_vertex_id(self) -> str:
        """A numeric job id, as Vertex uses (and the SDK requires)."""
        return str(self.new_numeric_id())

    def new_gemini_id(self) -> str:
        """A lowercase alphanumeric batch id that is never all digits."""
        return "b" + base36(self.new_numeric_id())

    # --- jobs ---------------------------------------------------------------------------

    def save(self, job: Job) -> None:
        """Persist a job's record."""
        self.store.save_job(job.to_record())

    def add(self, job: Job, inline_requests: list[Any] | None = None) -> None:
        """Register, persist and start a new job."""
        if inline_requests is not None:
            self.store.save_job_blob(job.id, "inline", inline_requests)
        self.jobs[job.id] = job
        self.save(job)
        self.launch(job)

    def launch(self, job: Job) -> None:
        """Start the job's task."""
        self._cancel_events[job.id] = asyncio.Event()
        task = asyncio.get_running_loop().create_task(JobRun(self, job).run(), name=f"job-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda t, job_id=job.id: self._task_done(job_id, t))

    def _task_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
            self._cancel_events.pop(job_id, None)

    def cancel_event(self, job_id: str) -> asyncio.Event:
        """The event a running job waits on for cancellation."""
        event = self._cancel_events.get(job_id)
        if event is None:
            event = self._cancel_events[job_id] = asyncio.Event()
        return event

    def forget_work(self, job_id: str) -> None:
        """Remove a finished job's spool directory."""
        shutil.rmtree(self.store.work_dir / job_id, ignore_errors=True)

    def request_cancel(self, job: Job) -> None:
        """Move a live job to CANCELLING and wake its task; a finished job is a 400."""
        if job.terminal:
            raise failed_precondition(f"The job {job.name} is in state {job.state} and cannot be cancelled.")
        if job.state != states.CANCELLING:
            job.move_to(states.CANCELLING)
            self.save(job)
        self.cancel_event(job.id).set()
        if job.id not in self._tasks:  # e.g. loaded CANCELLING and its task already ended
            self.launch(job)

    def mark_deleted(self, job: Job) -> None:
        """Hide a job from the API (the admin API still lists it, flagged)."""
        job.deleted = True
        job.touch()
        self.save(job)

    def set_inline_responses(self, job: Job, responses: list[dict[str, Any]]) -> None:
        """Store a finished Gemini API batch's inline responses."""
        self.store.save_job_blob(job.id, "responses", responses)
        self._inline[job.id] = responses
        job.has_inline_output = True

    def inline_responses(self, job: Job) -> list[dict[str, Any]] | None:
        """A batch's inline responses (None until it has them)."""
        if not job.has_inline_output:
            return None
        cached = self._inline.get(job.id)
        if cached is None:
            cached = self.store.load_job_blob(job.id, "responses") or []
            self._inline[job.id] = cached
        return cached

    def visible(self, backend: str) -> list[Job]:
        """Jobs of one backend that are not deleted, newest first."""
        return [j for j in reversed(self.jobs.values()) if j.backend == backend and not j.deleted]

    # --- faults -------------------------------------------------------------------------

    def set_faults(self, changes: dict[str, Any]) -> Faults:
        """Apply a partial update (raises FaultError) and persist it."""
        self.faults = self.faults.updated(changes)
        self.store.save_faults(self.faults.to_dict())
        return self.faults

    def reset_faults(self) -> Faults:
        """Back to no faults."""
        self.faults = Faults()
        self.store.save_faults(self.faults.to_dict())
        return self.faults
