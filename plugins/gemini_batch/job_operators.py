"""Operators of one call each on an existing batch job: get, list, cancel, delete.

Invariants: none of them creates a job; cancel and delete are idempotent (a job that already
ended is not cancelled again; a missing job is not an error unless asked); reads back off on
transient errors; only the list operator returns more than one job, and it is bounded by ``limit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gemini_batch.backends import BACKENDS, Backend
from gemini_batch.base_operator import GeminiBatchBaseOperator
from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchJobNotFound
from gemini_batch.links import GeminiBatchJobLink
from gemini_batch.manifest import MAX_INLINE_RESULTS_BYTES, build_manifest
from gemini_batch.sources import JobRef, is_templated
from gemini_batch.states import counts_of, is_terminal, normalize_state, progress_line, short_state

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context


class GeminiBatchGetJobOperator(GeminiBatchBaseOperator):
    """Read a batch job and return its manifest (whatever its state; nothing fails on a failed job).

    :param job_name: Required. ``projects/P/locations/L/batchPredictionJobs/N``, ``N`` or ``batches/ID``.
        Templated.
    :param backend: Optional. Follows from ``job_name``; must agree with it.
    :param max_inline_results_bytes: Optional. Cap on inline results carried in the manifest.
    """

    template_fields: Sequence[str] = ("job_name", "project_id", "location", "impersonation_chain")

    def __init__(
        self,
        *,
        job_name: str,
        backend: Backend | None = None,
        max_inline_results_bytes: int = MAX_INLINE_RESULTS_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.backend = backend
        self.max_inline_results_bytes = int(max_inline_results_bytes)
        self._check_backend(backend)
        if not is_templated(job_name):
            JobRef.parse(job_name, backend=backend)

    def execute(self, context: Context) -> dict[str, Any]:
        ref, hook = self._hook_for_job(self.job_name, self.backend)
        job = self._retry_read(f"Reading batch job {ref.name}", lambda: hook.get_job(ref.name))
        settings = hook.settings
        manifest = build_manifest(
            job,
            backend=ref.backend,
            project=settings.project,
            location=settings.location,
            max_inline_bytes=self.max_inline_results_bytes,
        )
        GeminiBatchJobLink.persist(context, manifest.console_url)
        self.log.info("Batch job %s: %s", ref.name, progress_line(job.state, counts_of(job)))
        return manifest.as_dict()


class GeminiBatchListJobsOperator(GeminiBatchBaseOperator):
    """List batch jobs, paging through every page; returns ``[{"job_name", "state", "display_name", "create_time"}]``.

    :param backend: Required. ``vertex`` or ``gemini_api``.
    :param filter: Optional (Vertex AI only). A list filter, e.g. ``labels.airflow-dag="nightly"``.
        Templated.
    :param page_size: Optional. Jobs per page request (default 100).
    :param limit: Optional. Stop after this many jobs (the list goes to XCom: keep it bounded).
    """

    template_fields: Sequence[str] = ("filter", "project_id", "location", "impersonation_chain")
    operator_extra_links = ()

    def __init__(
        self,
        *,
        backend: Backend,
        filter: str | None = None,
        page_size: int = 100,
        limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if backend not in BACKENDS:
            raise GeminiBatchConfigError(f"backend is required: one of {BACKENDS}, got {backend!r}.")
        if filter and backend == "gemini_api":
            raise GeminiBatchConfigError("The Gemini API cannot filter batch lists; remove filter.")
        self.backend = backend
        self.filter = filter
        self.page_size = int(page_size)
        self.limit = limit

    def execute(self, context: Context) -> list[dict[str, Any]]:
        hook = self._make_hook(self.backend)
        jobs = self._retry_read(
            "Listing batch jobs",
            lambda: hook.list_jobs(filter=self.filter or None, page_size=self.page_size, limit=self.limit),
        )
        result = [
            {
                "job_name": job.name,
                "state": normalize_state(job.state),
                "display_name": job.display_name,
                "create_time": job.create_time.isoformat() if job.create_time else None,
            }
            for job in jobs
        ]
        self.log.info("Listed %d %s batch jobs", len(result), self.backend)
        return result


class GeminiBatchCancelJobOperator(GeminiBatchBaseOperator):
    """Cancel a batch job (idempotent: a job that already ended is left as is).

    Returns ``{"job_name", "state"}`` as read after the cancel request.

    :param job_name: Required. The job's name. Templated.
    :param backend: Optional. Follows from ``job_name``.
    """

    template_fields: Sequence[str] = ("job_name", "project_id", "location", "impersonation_chain")

    def __init__(self, *, job_name: str, backend: Backend | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.backend = backend
        self._check_backend(backend)
        if not is_templated(job_name):
            JobRef.parse(job_name, backend=backend)

    def execute(self, context: Context) -> dict[str, Any]:
        ref, hook = self._hook_for_job(self.job_name, self.backend)
        job = self._retry_read(f"Reading batch job {ref.name}", lambda: hook.get_job(ref.name))
        if is_terminal(job.state):
            self.log.info(
                "Batch job %s already ended %s; nothing to cancel", ref.name, short_state(job.state)
            )
            return {"job_name": ref.name, "state": normalize_state(job.state)}
        hook.cancel_job(ref.name)
        job = self._retry_read(f"Reading batch job {ref.name}", lambda: hook.get_job(ref.name))
        self.log.info("Cancel requested for batch job %s: now %s", ref.name, short_state(job.state))
        return {"job_name": ref.name, "state": normalize_state(job.state)}


class GeminiBatchDeleteJobOperator(GeminiBatchBaseOperator):
    """Delete a batch job resource (its results in GCS/BigQuery/Files stay).

    :param job_name: Required. The job's name. Templated.
    :param backend: Optional. Follows from ``job_name``.
    :param ignore_missing: Optional. Succeed when the job does not exist (default True).
    """

    template_fields: Sequence[str] = ("job_name", "project_id", "location", "impersonation_chain")
    operator_extra_links = ()

    def __init__(
        self, *, job_name: str, backend: Backend | None = None, ignore_missing: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.backend = backend
        self.ignore_missing = ignore_missing
        self._check_backend(backend)
        if not is_templated(job_name):
            JobRef.parse(job_name, backend=backend)

    def execute(self, context: Context) -> None:
        ref, hook = self._hook_for_job(self.job_name, self.backend)
        try:
            hook.delete_job(ref.name)
        except GeminiBatchJobNotFound:
            if not self.ignore_missing:
                raise
            self.log.info("Batch job %s does not exist; nothing to delete", ref.name)
            return
        self.log.info("Deleted batch job %s", ref.name)
