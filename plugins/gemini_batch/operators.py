"""Operators for Gemini batch jobs: create-and-wait, get, list, cancel, delete.

Invariants of :class:`GeminiBatchCreateJobOperator`:
- The work is (dag_id, task_id, run_id, map_index), never the try number. A retry, a clear,
  a triggerer restart or running the operator twice never creates a second job for the same
  work and inputs: a running job is re-attached, a finished (succeeded or partial) job is
  returned as is, and only a FAILED, CANCELLED or EXPIRED job (or one that no longer exists) is
  replaced by a new submission.
- The job name lives in Airflow 3.3's task state store (``task_state_store``, the store behind
  ``ResumableJobMixin``) under :attr:`GeminiBatchCreateJobOperator.STATE_KEY`, written in two
  phases: ``submitting`` before the create call, ``submitted`` with the job name after it. A
  try without a recorded job name (a crash between submit and record, a wiped store, a DAG
  run re-created with the same run_id, or simply the first try) looks the job up by the
  identity tag every job carries (one list call, label-filtered on Vertex AI) before submitting.
- ``create`` is never blindly retried: after a transient error the job is looked up by identity
  first, because the create may have landed.
- The deferrable and the synchronous paths share every decision (states.py, the record, the
  manifest); the trigger only waits.
- The return value is the manifest (manifest.py): where the results are, never the results
  (except small inline Gemini API results).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseOperator, conf

from gemini_batch.api_errors import is_transient_error
from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchJobNotFound,
    GeminiBatchPollingError,
    GeminiBatchTimeout,
)
from gemini_batch.finish import FAILED_MANIFEST_XCOM_KEY, check_ratio, finish_job, require_terminal
from gemini_batch.hooks import DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID, GeminiBatchHook
from gemini_batch.identity import WorkIdentity, validate_labels
from gemini_batch.links import GeminiBatchJobLink
from gemini_batch.manifest import MAX_INLINE_RESULTS_BYTES, build_manifest, console_url
from gemini_batch.polling import Backoff, Done, Poller, drive_sync, raise_failure, retry_read
from gemini_batch.sources import (
    BACKENDS,
    Backend,
    BatchSource,
    JobRef,
    default_destination,
    is_templated,
    parse_destination,
    parse_source,
)
from gemini_batch.states import counts_of, is_terminal, normalize_state, outcome_of, progress_line, short_state
from gemini_batch.task_state import kill_decision, ti_state_blocking
from gemini_batch.triggers import GeminiBatchJobTrigger, JobEvent

if TYPE_CHECKING:
    from google.genai import types

    from airflow.sdk.definitions.context import Context

T = TypeVar("T")

CREATE_CONFIG_FIELDS = frozenset({"display_name", "dest", "http_options", "webhook_config"})


def _default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def _seconds(value: float | dt.timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if seconds <= 0:
        raise GeminiBatchConfigError(f"{name} must be positive, got {value!r}.")
    return seconds


class _GeminiBatchBaseOperator(BaseOperator):
    """Connection arguments and hook construction shared by every operator here."""

    operator_extra_links = (GeminiBatchJobLink(),)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        gcp_conn_id: str = DEFAULT_GCP_CONN_ID,
        gemini_api_conn_id: str = DEFAULT_GEMINI_API_CONN_ID,
        project_id: str | None = None,
        location: str | None = None,
        impersonation_chain: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gcp_conn_id = gcp_conn_id
        self.gemini_api_conn_id = gemini_api_conn_id
        self.project_id = project_id
        self.location = location
        self.impersonation_chain = impersonation_chain

    def _conn_id(self, backend: Backend) -> str:
        return self.gcp_conn_id if backend == "vertex" else self.gemini_api_conn_id

    def _make_hook(self, backend: Backend, *, project: str | None = None, location: str | None = None) -> GeminiBatchHook:
        if backend == "vertex":
            return GeminiBatchHook(
                "vertex",
                self.gcp_conn_id,
                project_id=project or self.project_id,
                location=location or self.location,
                impersonation_chain=self.impersonation_chain,
            )
        return GeminiBatchHook("gemini_api", self.gemini_api_conn_id)

    def _hook_for_job(self, job_name: str, backend: str | None) -> tuple[JobRef, GeminiBatchHook]:
        ref = JobRef.parse(job_name, backend=backend)
        hook = self._make_hook(ref.backend, project=ref.project, location=ref.location)
        hook.settings  # noqa: B018 - builds the client now: a missing connection fails here, clearly
        return ref, hook

    def _retry_read(
        self, what: str, call: Callable[[], T], budget: int = 8, *, rebuild: Callable[[], None] | None = None
    ) -> T:
        return retry_read(self.log, what, call, budget, rebuild=rebuild)

    @staticmethod
    def _check_backend(backend: Any) -> None:
        if backend is not None and not is_templated(backend) and backend not in BACKENDS:
            raise GeminiBatchConfigError(f"backend must be one of {BACKENDS} or None, got {backend!r}.")


@dataclass(frozen=True)
class _Plan:
    """Everything execute needs, validated, before any network call."""

    source: BatchSource
    backend: Backend
    identity: WorkIdentity
    dest: str | None
    display_name: str
    labels: dict[str, str]
    create_config: dict[str, Any]
    fingerprint: str


class GeminiBatchCreateJobOperator(_GeminiBatchBaseOperator):
    """Submit a Gemini batch prediction job (Vertex AI or Gemini API) and wait for it, retry-safely.

    The backend follows from the source: ``bq://`` and ``gs://`` run on Vertex AI through the
    Google Cloud connection; inline requests and ``files/...`` on the Gemini API through the
    ``gemini_api`` connection. Returns the manifest (see manifest.py and docs/design.md).

    .. seealso:: docs/design.md ("Product contracts") and the module docstring (retry safety).

    :param src: Required. ``bq://PROJECT.DATASET.TABLE``, ``gs://BUCKET/....jsonl`` (or a
        ``*.jsonl`` wildcard, or a list of them), ``files/NAME``, or a list of inline request dicts
        (``{"contents": [...], "config": {...}, "metadata": {...}}``). Templated.
    :param model: Required. The model, e.g. ``gemini-2.5-flash``. Templated.
    :param backend: Optional. ``vertex`` or ``gemini_api``; only needed to double-check, it must
        agree with the source. Templated.
    :param dest: Optional (Vertex AI). ``gs://BUCKET/prefix`` or ``bq://PROJECT.DATASET[.TABLE]``.
        Default: run-scoped (``<table>_predictions_<work_id>`` next to a bq:// source, or
        ``gs://<bucket>/gemini-batch-output/<dag>/<task>/<work_id>``), so backfills never collide.
        Templated.
    :param display_name: Optional. The job's display name; ``awid-<work_id>`` is appended (it
        identifies the work). Default ``<dag_id>.<task_id>``. Templated.
    :param labels: Optional (Vertex AI). Job labels (lowercase ``[a-z0-9_-]``, at most 63 chars);
        ``airflow-work-id``, ``airflow-dag`` and ``airflow-task`` are added. Templated.
    :param create_config: Optional. Further fields of the SDK's ``CreateBatchJobConfig``
        (``http_options``, ``webhook_config``...), passed through. Templated.
    :param gcp_conn_id: Optional. Google Cloud connection for Vertex AI (service account, ADC,
        impersonation; extras ``project``, ``location``, ``genai_base_url``).
    :param gemini_api_conn_id: Optional. ``gemini_api`` connection (API key in password; extra
        ``genai_base_url``).
    :param project_id: Optional (Vertex AI). Defaults to the connection's project. Templated.
    :param location: Optional (Vertex AI). E.g. ``us-central1`` or ``global``; defaults to the
        connection extra ``location``. Templated.
    :param impersonation_chain: Optional (Vertex AI). Service account(s) to impersonate. Templated.
    :param wait_for_completion: Optional. Wait for the job to end (default). If False, return the
        manifest of the submitted (or re-attached) job at once.
    :param deferrable: Optional. Wait in the triggerer (default: ``[operators] default_deferrable``).
        The non-deferrable path has the same semantics, for deployments without a triggerer.
    :param poll_interval: Optional. Seconds between polls (default 30).
    :param timeout: Optional. Seconds (or a timedelta) to wait before failing the task; the job
        keeps running and a retry re-attaches to it. PAUSED time counts.
    :param cancel_on_kill: Optional. Cancel the job when a user marks the task failed or success
        (default True). A clear never cancels: the new try re-attaches to the job.
    :param max_failed_ratio: Optional. Largest accepted share of failed rows, 0..1 (default 0:
        any failed row fails the task). A PARTIALLY_SUCCEEDED job without row counts is accepted
        only at 1.0.
    :param max_inline_results_bytes: Optional. Cap on inline Gemini API results carried in the
        manifest (default 256 KiB); above it the task fails and says to use a file source.
    :param error_budget: Optional. Consecutive transient API errors tolerated while waiting (default 8).
    """

    template_fields: Sequence[str] = (
        "src",
        "model",
        "backend",
        "dest",
        "display_name",
        "labels",
        "create_config",
        "project_id",
        "location",
        "impersonation_chain",
    )
    template_fields_renderers = {"src": "json", "labels": "json", "create_config": "json"}

    #: task_state_store key of the job record. Renaming it breaks re-attach of in-flight work.
    STATE_KEY = "gemini_batch_job"
    #: Create attempts on transient errors (each after looking the job up by identity).
    CREATE_ATTEMPTS = 3

    def __init__(
        self,
        *,
        src: Any,
        model: str,
        backend: Backend | None = None,
        dest: str | None = None,
        display_name: str | None = None,
        labels: Mapping[str, str] | None = None,
        create_config: Mapping[str, Any] | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        timeout: float | dt.timedelta | None = None,
        cancel_on_kill: bool = True,
        max_failed_ratio: float = 0.0,
        max_inline_results_bytes: int = MAX_INLINE_RESULTS_BYTES,
        error_budget: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.src = src
        self.model = model
        self.backend = backend
        self.dest = dest
        self.display_name = display_name
        self.labels = dict(labels) if isinstance(labels, Mapping) else labels
        self.create_config = dict(create_config) if isinstance(create_config, Mapping) else create_config
        self.wait_for_completion = wait_for_completion
        self.deferrable = _default_deferrable() if deferrable is None else deferrable
        self.poll_interval = _seconds(poll_interval, "poll_interval")
        self.timeout = _seconds(timeout, "timeout")
        self.cancel_on_kill = cancel_on_kill
        self.max_failed_ratio = check_ratio(max_failed_ratio)
        self.max_inline_results_bytes = int(max_inline_results_bytes)
        self.error_budget = int(error_budget)
        self._job_name: str | None = None
        self._identity: WorkIdentity | None = None
        self._hook_obj: GeminiBatchHook | None = None
        self._validate_static()

    # ------------------------------------------------------------------ validation

    def _validate_static(self) -> None:
        """Parse-time checks of every argument whose value is already known."""
        self._check_backend(self.backend)
        if not is_templated(self.model) and (not isinstance(self.model, str) or not self.model.strip()):
            raise GeminiBatchConfigError(f"model must be a model name such as 'gemini-2.5-flash', got {self.model!r}.")
        self._check_create_config(self.create_config)
        backend = None if is_templated(self.backend) else self.backend
        source = None
        if not is_templated(self.src):
            source = parse_source(self.src, backend=backend)
        if source is not None and not is_templated(self.dest):
            parse_destination(self.dest, source)
        if not is_templated(self.labels):
            validate_labels(self.labels)
        effective = source.backend if source is not None else backend
        if effective == "gemini_api" and self.labels:
            raise GeminiBatchConfigError(
                "labels apply to Vertex AI jobs only; the Gemini API has no job labels. Remove labels."
            )

    def _check_create_config(self, create_config: Any) -> None:
        if create_config is None or is_templated(create_config):
            return
        if not isinstance(create_config, Mapping):
            raise GeminiBatchConfigError(
                f"create_config must be a dict of CreateBatchJobConfig fields, got {type(create_config).__name__}."
            )
        unknown = set(create_config) - CREATE_CONFIG_FIELDS
        if unknown:
            raise GeminiBatchConfigError(
                f"create_config has unknown fields {sorted(unknown)}; CreateBatchJobConfig accepts "
                f"{sorted(CREATE_CONFIG_FIELDS)}."
            )
        for field_name, arg in (("display_name", self.display_name), ("dest", self.dest)):
            if create_config.get(field_name) is not None and arg is not None:
                raise GeminiBatchConfigError(
                    f"{field_name} is given twice (argument and create_config['{field_name}']); keep one."
                )

    def _plan(self, context: Context) -> _Plan:
        """Validate the rendered arguments (before any network call) and derive the job's identity."""
        self._check_backend(self.backend)
        self._check_create_config(self.create_config)
        source = parse_source(self.src, backend=self.backend)
        create_config = dict(self.create_config or {})
        dest = parse_destination(self.dest if self.dest is not None else create_config.pop("dest", None), source)
        create_config.pop("dest", None)
        labels = validate_labels(self.labels)
        if source.backend == "gemini_api" and labels:
            raise GeminiBatchConfigError("labels apply to Vertex AI jobs only; remove labels for the Gemini API.")
        if not isinstance(self.model, str) or not self.model.strip():
            raise GeminiBatchConfigError(f"model must be a model name such as 'gemini-2.5-flash', got {self.model!r}.")
        identity = WorkIdentity.from_context(context)
        base_name = self.display_name if self.display_name is not None else create_config.pop("display_name", None)
        create_config.pop("display_name", None)
        fingerprint_payload = json.dumps(
            {
                "backend": source.backend,
                "model": self.model.strip(),
                "source": source.fingerprint(),
                "dest": dest,
                "config": create_config,
            },
            sort_keys=True,
            default=str,
        )
        return _Plan(
            source=source,
            backend=source.backend,
            identity=identity,
            dest=dest,
            display_name=identity.display_name(base_name),
            labels=identity.labels(labels) if source.backend == "vertex" else {},
            create_config=create_config,
            fingerprint=hashlib.sha256(fingerprint_payload.encode()).hexdigest()[:16],
        )

    # ------------------------------------------------------------------ execute

    def _hook(self, backend: Backend) -> GeminiBatchHook:
        if self._hook_obj is None or self._hook_obj.backend != backend:
            self._hook_obj = self._make_hook(backend)
        return self._hook_obj

    def execute(self, context: Context) -> dict[str, Any]:
        plan = self._plan(context)
        hook = self._hook(plan.backend)
        settings = hook.settings  # builds the client: a missing connection fails here, before any job
        self._identity = plan.identity
        job = self._attach_or_submit(context, plan, hook)
        self._job_name = job.name
        state = normalize_state(job.state)
        if is_terminal(state):
            return self._finish(context, plan, hook, job)
        if not self.wait_for_completion:
            manifest = build_manifest(
                job, **self._manifest_kwargs(plan, settings), max_inline_bytes=self.max_inline_results_bytes
            )
            GeminiBatchJobLink.persist(context, manifest.console_url)
            self.log.info("Batch job %s is %s; not waiting (wait_for_completion=False)", job.name, short_state(state))
            return manifest.as_dict()
        GeminiBatchJobLink.persist(context, console_url(plan.backend, job.name, settings.project, settings.location))
        deadline = None if self.timeout is None else time.time() + self.timeout
        if self.deferrable:
            self.log.info("Deferring: the triggerer waits for batch job %s", job.name)
            self.defer(
                trigger=GeminiBatchJobTrigger(
                    job_name=job.name,
                    backend=plan.backend,
                    conn_id=self._conn_id(plan.backend),
                    project_id=settings.project,
                    location=settings.location,
                    impersonation_chain=self.impersonation_chain if plan.backend == "vertex" else None,
                    poll_interval=self.poll_interval,
                    deadline=deadline,
                    cancel_on_kill=self.cancel_on_kill,
                    error_budget=self.error_budget,
                ),
                method_name="execute_complete",
            )
        job = self._wait(hook, job.name, deadline)
        return self._finish(context, plan, hook, job)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger's event: finish the job from a fresh read, never from the event alone."""
        plan = self._plan(context)
        hook = self._hook(plan.backend)
        self._identity = plan.identity
        ended = JobEvent.from_payload(event)
        self._job_name = ended.job_name
        if ended.status == "timeout":
            raise GeminiBatchTimeout(self._timeout_message(ended.message))
        if ended.status == "error":
            raise GeminiBatchPollingError(ended.message)
        job = self._retry_read(
            f"Reading batch job {ended.job_name}",
            lambda: hook.get_job(ended.job_name),
            self.error_budget,
            rebuild=hook.invalidate,
        )
        return self._finish(context, plan, hook, require_terminal(job, ended.status))

    def _timeout_message(self, message: str) -> str:
        if not self.timeout:
            return message
        return (
            f"{message} (timeout={self.timeout:.0f} s). Cancel it with GeminiBatchCancelJobOperator "
            "if it is not wanted."
        )

    def _finish(self, context: Context, plan: _Plan, hook: GeminiBatchHook, job: types.BatchJob) -> dict[str, Any]:
        return finish_job(
            self,
            context,
            job,
            **self._manifest_kwargs(plan, hook.settings),
            max_failed_ratio=self.max_failed_ratio,
            max_inline_results_bytes=self.max_inline_results_bytes,
        )

    def _manifest_kwargs(self, plan: _Plan, settings: Any) -> dict[str, Any]:
        """What a manifest of this task's job is built from, besides the job itself."""
        return {
            "backend": plan.backend,
            "source": plan.source.describe(),
            "work_id": plan.identity.work_id,
            "model": self.model,
            "project": settings.project,
            "location": settings.location,
        }

    # ------------------------------------------------------------------ retry safety

    def _read_record(self, store: Any) -> dict[str, Any] | None:
        if store is None:
            return None
        record = store.get(self.STATE_KEY)
        return record if isinstance(record, dict) else None

    def _write_record(self, store: Any, plan: _Plan, **fields: Any) -> None:
        if store is None:
            return
        record = {
            "v": 1,
            "work_id": plan.identity.work_id,
            "backend": plan.backend,
            "fingerprint": plan.fingerprint,
            "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            **fields,
        }
        store.set(self.STATE_KEY, record)

    def _attach_or_submit(self, context: Context, plan: _Plan, hook: GeminiBatchHook) -> types.BatchJob:
        """Re-attach to this work's job, return its finished job, or submit one (see module doc)."""
        store = context.get("task_state_store")
        if store is None:
            self.log.warning("No task_state_store (Airflow < 3.3?): the job is found by its identity tag only")
        record = self._read_record(store)
        submissions = int(record.get("submissions") or 0) if record else 0
        candidate: types.BatchJob | None = None
        known: set[str] = set()

        if record and record.get("job_name") and record.get("backend") == plan.backend:
            name = str(record["job_name"])
            known.add(name)
            if record.get("fingerprint") not in (None, plan.fingerprint):
                self.log.warning(
                    "The inputs (model, source, dest or create_config) changed since batch job %s was "
                    "submitted for this task instance: submitting a new job for the new inputs",
                    name,
                )
            else:
                try:
                    candidate = self._retry_read(
                        f"Reading recorded batch job {name}", lambda: hook.get_job(name), self.error_budget
                    )
                except GeminiBatchJobNotFound:
                    self.log.warning("Recorded batch job %s no longer exists (deleted?): submitting a new job", name)
        elif not (record and record.get("job_name") and record.get("backend") == plan.backend):
            # No usable record: a crash between submit and record, a store wiped by
            # clear_on_success, a DAG run re-created with the same run_id, or a genuine first
            # try. One lookup by the identity tag tells them apart.
            why = "a previous try stopped between submit and record" if record else "no job is recorded"
            self.log.info("Looking for this work's job by identity (%s): %s", why, plan.identity.describe())
            found = self._retry_read(
                "Looking up batch jobs by identity",
                lambda: hook.find_jobs_by_identity(plan.identity),
                self.error_budget,
            )
            known.update(j.name for j in found)
            for job in found:
                if self._same_inputs(job, plan):
                    candidate = job
                    self.log.info("Found batch job %s by identity tag %s", job.name, plan.identity.tag)
                    break
                self.log.info("Batch job %s of this work was made for other inputs (model or source); ignored", job.name)

        if candidate is not None:
            klass = outcome_of(candidate.state, counts_of(candidate))
            line = progress_line(candidate.state, counts_of(candidate))
            if klass is None:
                self.log.info("Re-attaching to batch job %s (%s): not submitting a new one", candidate.name, line)
                self._write_record(store, plan, phase="submitted", job_name=candidate.name, submissions=max(submissions, 1))
                return candidate
            if klass in ("succeeded", "partial"):
                self.log.info(
                    "Batch job %s of this work already ended %s: returning it without submitting", candidate.name, line
                )
                self._write_record(store, plan, phase="submitted", job_name=candidate.name, submissions=max(submissions, 1))
                return candidate
            self.log.warning("Previous batch job %s ended %s: submitting a new job", candidate.name, line)
        return self._submit(plan, hook, store, submissions + 1, known)

    def _same_inputs(self, job: types.BatchJob, plan: _Plan) -> bool:
        """Whether a job found by identity was made for this model and source (as far as the service says)."""

        def bare(model: str | None) -> str:
            return (model or "").rsplit("/", 1)[-1]

        if job.model and bare(job.model) != bare(self.model.strip()):
            return False
        src = getattr(job, "src", None)
        if src is None or plan.source.kind in ("inline", "file"):
            return True
        uris = list(src.gcs_uri or []) or ([src.bigquery_uri] if src.bigquery_uri else [])
        return not uris or sorted(uris) == sorted(plan.source.uris)

    def _submit(
        self, plan: _Plan, hook: GeminiBatchHook, store: Any, submission: int, known: set[str]
    ) -> types.BatchJob:
        dest = plan.dest or default_destination(
            plan.source,
            work_id=plan.identity.work_id,
            dag_id=plan.identity.dag_id,
            task_id=plan.identity.task_id,
            submission=submission,
        )
        # Phase 1: the intent, so that a crash after the create call is recovered by lookup.
        self._write_record(store, plan, phase="submitting", job_name=None, submissions=submission)
        job = self._create(plan, hook, dest, known)
        # Phase 2: the job name.
        self._write_record(store, plan, phase="submitted", job_name=job.name, submissions=submission)
        self.log.info(
            "Submitted batch job %s (%s, model %s, source %s%s): %s",
            job.name,
            plan.backend,
            self.model,
            plan.source.describe(),
            f", dest {dest}" if dest else "",
            progress_line(job.state, counts_of(job)),
        )
        return job

    def _create(self, plan: _Plan, hook: GeminiBatchHook, dest: str | None, known: set[str]) -> types.BatchJob:
        backoff = Backoff(budget=self.CREATE_ATTEMPTS)
        attempt = 0
        while True:
            attempt += 1
            try:
                return hook.create_job(
                    model=self.model.strip(),
                    source=plan.source,
                    display_name=plan.display_name,
                    dest=dest,
                    labels=plan.labels,
                    create_config=plan.create_config,
                )
            except Exception as exc:
                if not is_transient_error(exc) or attempt >= self.CREATE_ATTEMPTS:
                    raise
                delay = backoff.delay(attempt)
                self.log.warning(
                    "Creating the batch job failed (%s: %s, attempt %d/%d); checking whether it was created "
                    "anyway before trying again in %.1f s",
                    type(exc).__name__,
                    exc,
                    attempt,
                    self.CREATE_ATTEMPTS,
                    delay,
                )
                time.sleep(delay)
                found = self._retry_read(
                    "Looking up batch jobs by identity",
                    lambda: hook.find_jobs_by_identity(plan.identity),
                    self.error_budget,
                )
                landed = [j for j in found if j.name not in known and outcome_of(j.state) != "failed"]
                if landed:
                    self.log.info("The create call had landed: batch job %s", landed[0].name)
                    return landed[0]

    # ------------------------------------------------------------------ synchronous wait

    def _wait(self, hook: GeminiBatchHook, job_name: str, deadline: float | None) -> types.BatchJob:
        """Poll until the job is terminal, in the worker: the trigger's decisions (polling.py)."""
        poller = Poller(
            subject=f"Batch job {job_name}",
            poll_interval=self.poll_interval,
            deadline=deadline,
            error_budget=self.error_budget,
        )
        end = drive_sync(poller, lambda: hook.get_job(job_name), rebuild=hook.invalidate, log=self.log)
        if isinstance(end, Done):
            return end.job
        if end.reason == "timeout":
            raise GeminiBatchTimeout(self._timeout_message(end.message))
        raise_failure(end)

    def on_kill(self) -> None:
        """Synchronous path: cancel after mark-failed / mark-success; keep after a clear or a timeout."""
        name, hook = self._job_name, self._hook_obj
        if not name or hook is None:
            return
        if not self.cancel_on_kill:
            self.log.info("cancel_on_kill is off: batch job %s keeps running", name)
            return
        known, state = ti_state_blocking(self._identity, timeout=2.0)
        if not known or kill_decision(state) == "keep":
            self.log.info(
                "Task instance state %s: batch job %s is kept (a new try re-attaches to it)",
                state if known else "unknown",
                name,
            )
            return
        try:
            hook.cancel_job(name)
            self.log.info("Task instance marked %s: cancelled batch job %s", state, name)
        except Exception as exc:
            self.log.warning("Could not cancel batch job %s: %s", name, exc)


class GeminiBatchGetJobOperator(_GeminiBatchBaseOperator):
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


class GeminiBatchListJobsOperator(_GeminiBatchBaseOperator):
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


class GeminiBatchCancelJobOperator(_GeminiBatchBaseOperator):
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
            self.log.info("Batch job %s already ended %s; nothing to cancel", ref.name, short_state(job.state))
            return {"job_name": ref.name, "state": normalize_state(job.state)}
        hook.cancel_job(ref.name)
        job = self._retry_read(f"Reading batch job {ref.name}", lambda: hook.get_job(ref.name))
        self.log.info("Cancel requested for batch job %s: now %s", ref.name, short_state(job.state))
        return {"job_name": ref.name, "state": normalize_state(job.state)}


class GeminiBatchDeleteJobOperator(_GeminiBatchBaseOperator):
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


__all__ = [
    "FAILED_MANIFEST_XCOM_KEY",
    "retry_read",
    "GeminiBatchCancelJobOperator",
    "GeminiBatchCreateJobOperator",
    "GeminiBatchDeleteJobOperator",
    "GeminiBatchGetJobOperator",
    "GeminiBatchListJobsOperator",
    "finish_job",
]
