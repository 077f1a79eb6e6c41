"""Operators for Gemini batch jobs: create-and-wait, get, list, cancel, delete.

Invariants of :class:`GeminiBatchCreateJobOperator`:
- The work is (dag_id, task_id, run_id, map_index), never the try number. A retry, a clear,
  a triggerer restart or running the operator twice never creates a second job for the same
  work and inputs. Which job a try re-attaches to, returns or submits is decided in resume.py
  (a pure decision) over the record of job_record.py; resumer.py carries it out, and
  create_plan.py checks the arguments and fingerprints the inputs before any network call.
- The deferrable and the synchronous paths share every decision (states.py, resume.py, the
  manifest); the trigger only waits.
- Before a new submission (never before a re-attach), preflight.py checks that the source
  exists, a dest table does not, the model exists and nothing crosses projects unasked; its
  failures, permanent create errors (HTTP 4xx) and jobs FAILED for a permanent reason fail the
  task without Airflow retries (AirflowFailException subclasses).
- The return value is the manifest (manifest.py): where the results are, never the results
  (except small inline Gemini API results).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import conf

from gemini_batch.api_errors import is_permanent_error
from gemini_batch.backends import Backend
from gemini_batch.base_operator import GeminiBatchBaseOperator
from gemini_batch.budget import RequestReads, bigquery_estimate_sql, budget_of, check_budget
from gemini_batch.costs import DEFAULT_OUTPUT_TOKENS, PRICES_VARIABLE, PriceTable, load_prices
from gemini_batch.create_plan import CreateArguments, CreatePlan, plan_create, validate_static
from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchPollingError,
    GeminiBatchPreflightError,
    GeminiBatchTimeout,
)
from gemini_batch.finish import check_ratio, finish_job, require_terminal
from gemini_batch.hooks import GeminiBatchHook
from gemini_batch.identity import WorkIdentity
from gemini_batch.job_record import STATE_KEY, RecordStore
from gemini_batch.job_task import JobTask
from gemini_batch.links import GeminiBatchJobLink
from gemini_batch.manifest import MAX_INLINE_RESULTS_BYTES, build_manifest, console_url
from gemini_batch.polling import Done, Poller, drive_sync, raise_failure
from gemini_batch.preflight import CloudReads
from gemini_batch.preflight import check as preflight_check
from gemini_batch.resume import is_automatic_retry
from gemini_batch.resumer import JobResumer, resumable_stats_tags
from gemini_batch.sources import is_templated
from gemini_batch.states import is_terminal, normalize_state, short_state
from gemini_batch.task_state import kill_job_blocking
from gemini_batch.triggers import GeminiBatchJobTrigger, JobEvent

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context
    from google.genai import types

T = TypeVar("T")


def _default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def _seconds(value: float | dt.timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if seconds <= 0:
        raise GeminiBatchConfigError(f"{name} must be positive, got {value!r}.")
    return seconds


class GeminiBatchCreateJobOperator(GeminiBatchBaseOperator):
    """Submit a Gemini batch prediction job (Vertex AI or Gemini API) and wait for it, retry-safely.

    The backend follows from the source: ``bq://`` and ``gs://`` run on Vertex AI through the
    Google Cloud connection; inline requests and ``files/...`` on the Gemini API through the
    ``gemini_api`` connection. Returns the manifest (see manifest.py and docs/design.md).

    .. seealso:: docs/design.md ("Product contracts") and resume.py (retry safety).

    :param src: Required. ``bq://PROJECT.DATASET.TABLE``, ``gs://BUCKET/....jsonl`` (or a
        ``*.jsonl`` wildcard, or a list of them), ``files/NAME``, or a list of inline request dicts
        (``{"contents": [...], "config": {...}, "metadata": {...}}``). Templated.
    :param model: Required. The model, e.g. ``gemini-2.5-flash``, or an embedding model
        (``text-embedding-005``, ``gemini-embedding-001``), which makes the job an embeddings job.
        Templated.
    :param task: Optional. ``generate`` or ``embed``; None (default): follows from the model
        (job_task.py). An embeddings job reads ``{"content"}`` rows on Vertex AI (a BigQuery
        ``content`` column, or JSONL instances) and ``EmbedContentRequest`` lines (``files/``) or
        inline requests with one content each and one shared config on the Gemini API; the
        manifest's ``task`` says ``embed``. Templated.
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
    :param allow_cross_project: Optional. Accept a BigQuery source or dest in another project than
        the job's (default False: refused before any job, as a likely typo or a missing grant).
    :param preflight_checks: Optional. Check before a new submission that the source exists, a dest
        table does not and the model exists (default True). Turn off only when the Airflow
        connection may not read what the job's service account reads.
    :param max_estimated_cost: Optional. Budget of a new job in the price table's currency (USD), at
        batch prices. Before a new submission (never before a re-attach) the job's cost is estimated
        (budget.py, costs.py: input tokens = characters of each request's JSON / 4; output tokens =
        each request's ``maxOutputTokens``, else ``default_output_tokens``; an embedding job: the
        text embedded / 4 and its billable characters, no output); above the budget, or
        without a price for the model, the task fails before any job (not retried). Templated;
        None (default): no estimate, nothing read.
    :param default_output_tokens: Optional. Output tokens (thinking included) assumed per request
        that sets no ``maxOutputTokens`` (default 1024).
    :param prices: Optional. Parts of the price table to override (the shape of prices.json), over
        the shipped table and the Variable ``gemini_batch_prices``.
    :param work_scope: Optional. What the work is about across DAG runs (e.g. the data interval):
        runs with the same scope share this task's jobs (identity.py). Default: the run. Templated.
    """

    template_fields: Sequence[str] = (
        "src",
        "model",
        "task",
        "backend",
        "dest",
        "display_name",
        "labels",
        "create_config",
        "project_id",
        "location",
        "impersonation_chain",
        "max_estimated_cost",
        "work_scope",
    )
    template_fields_renderers = {"src": "json", "labels": "json", "create_config": "json"}

    #: task_state_store key of the job record. Renaming it breaks re-attach of in-flight work.
    STATE_KEY = STATE_KEY
    #: Create attempts on transient errors (each after looking the job up by identity).
    CREATE_ATTEMPTS = 3

    def __init__(
        self,
        *,
        src: Any,
        model: str,
        task: JobTask | None = None,
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
        allow_cross_project: bool = False,
        preflight_checks: bool = True,
        max_estimated_cost: float | str | None = None,
        default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
        prices: Mapping[str, Any] | None = None,
        work_scope: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.src = src
        self.model = model
        self.task = task
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
        self.allow_cross_project = bool(allow_cross_project)
        self.preflight_checks = bool(preflight_checks)
        self.max_estimated_cost = max_estimated_cost
        self.default_output_tokens = int(default_output_tokens)
        self.prices = dict(prices) if prices is not None else None
        if not is_templated(max_estimated_cost):
            budget_of(max_estimated_cost)
        self.work_scope = work_scope
        self._job_name: str | None = None
        self._identity: WorkIdentity | None = None
        self._hook_obj: GeminiBatchHook | None = None
        validate_static(self._arguments())

    def _arguments(self) -> CreateArguments:
        return CreateArguments(
            **{field.name: getattr(self, field.name) for field in dataclasses.fields(CreateArguments)}
        )

    def _plan(self, context: Context) -> CreatePlan:
        """Validate the rendered arguments (before any network call) and derive the job's identity."""
        return plan_create(self._arguments(), WorkIdentity.from_context(context, scope=self.work_scope))

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
                job,
                **self._manifest_kwargs(plan, settings),
                max_inline_bytes=self.max_inline_results_bytes,
                prices=self._price_table(),
            )
            GeminiBatchJobLink.persist(context, manifest.console_url)
            self.log.info(
                "Batch job %s is %s; not waiting (wait_for_completion=False)", job.name, short_state(state)
            )
            return manifest.as_dict()
        GeminiBatchJobLink.persist(
            context, console_url(plan.backend, job.name, settings.project, settings.location)
        )
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

    def _finish(
        self, context: Context, plan: CreatePlan, hook: GeminiBatchHook, job: types.BatchJob
    ) -> dict[str, Any]:
        return finish_job(
            self,
            context,
            job,
            **self._manifest_kwargs(plan, hook.settings),
            max_failed_ratio=self.max_failed_ratio,
            max_inline_results_bytes=self.max_inline_results_bytes,
            prices=self._price_table(),
        )

    def _price_table(self) -> PriceTable:
        """The shipped price table, under the Variable ``gemini_batch_prices``, under ``prices``."""
        from airflow.sdk import Variable

        return load_prices(Variable.get(PRICES_VARIABLE, default=None), self.prices)

    def _manifest_kwargs(self, plan: CreatePlan, settings: Any) -> dict[str, Any]:
        """What a manifest of this task's job is built from, besides the job itself."""
        return {
            "backend": plan.backend,
            "source": plan.source.describe(),
            "work_id": plan.identity.work_id,
            "model": self.model,
            "task": plan.task,
            "project": settings.project,
            "location": settings.location,
        }

    # ------------------------------------------------------------------ retry safety

    def _attach_or_submit(self, context: Context, plan: CreatePlan, hook: GeminiBatchHook) -> types.BatchJob:
        """Re-attach to this work's job, return its finished job, or submit one (see resume.py)."""
        return JobResumer(
            plan=plan,
            hook=hook,
            store=RecordStore(context.get("task_state_store")),
            log=self.log,
            read=lambda what, call: self._retry_read(what, call, self.error_budget),
            sleep=time.sleep,
            create_attempts=self.CREATE_ATTEMPTS,
            stats_tags=resumable_stats_tags(type(self).__name__, context),
            automatic_retry=self._automatic_retry(context),
            before_submit=lambda dest: self._before_submit(plan, hook, dest),
        ).attach_or_submit()

    def _automatic_retry(self, context: Context) -> bool:
        """Whether this try is an automatic Airflow retry (not the first try of a run or a clear)."""
        ti = context.get("ti")
        try:
            return is_automatic_retry(int(ti.try_number), int(ti.max_tries), int(self.retries or 0))
        except (AttributeError, TypeError, ValueError):
            return False

    def _before_submit(self, plan: CreatePlan, hook: GeminiBatchHook, dest: str | None) -> None:
        """What must hold before a new submission: the pre-flight checks, then the budget."""
        if self.preflight_checks:
            self._preflight(plan, hook, dest)
        budget = budget_of(self.max_estimated_cost)
        if budget is not None:
            check_budget(
                plan.source,
                model=plan.model,
                backend=plan.backend,
                budget=budget,
                table=self._price_table(),
                reads=self._request_reads(hook, plan.task),
                default_output_tokens=self.default_output_tokens,
                log=self.log,
                task=plan.task,
            )

    def _request_reads(self, hook: GeminiBatchHook, task: JobTask = "generate") -> RequestReads:
        """How the budget guard reads the requests (an embedding job's: the text they embed): this
        task's BigQuery, GCS and genai clients."""
        project = hook.settings.project

        def bigquery_query(table: str, params: dict[str, Any]) -> dict[str, Any]:
            from google.cloud import bigquery

            client = self._bigquery_client(project)
            columns = {f.name: f.field_type for f in client.get_table(table).schema}
            sql = bigquery_estimate_sql(table, columns.get("request", "STRING"), task)
            config = bigquery.QueryJobConfig(
                query_parameters=[bigquery.ScalarQueryParameter(k, "INT64", v) for k, v in params.items()]
            )
            rows = list(client.query(sql, job_config=config).result())
            return dict(rows[0].items()) if rows else {}

        def gcs_lines(uri: str) -> Iterator[bytes]:
            bucket_name, _, name = uri[len("gs://") :].partition("/")
            client = self._storage_client()
            if "*" in name:
                prefix = name.split("*", 1)[0]
                blobs = [
                    b
                    for b in client.list_blobs(bucket_name, prefix=prefix)
                    if fnmatch.fnmatchcase(b.name, name)
                ]
            else:
                blobs = [client.bucket(bucket_name).blob(name)]
            for blob in blobs:
                with blob.open("rb") as stream:
                    yield from stream

        def file_lines(name: str) -> list[bytes]:
            # The Files API has no ranged read in google-genai: the file (at most 2 GB) is read whole.
            return hook.get_conn().files.download(file=name).splitlines()

        return RequestReads(bigquery_query=bigquery_query, gcs_lines=gcs_lines, file_lines=file_lines)

    def _preflight(self, plan: CreatePlan, hook: GeminiBatchHook, dest: str | None) -> None:
        """The checks of a new submission (preflight.py); raises GeminiBatchPreflightError."""
        settings = hook.settings
        try:
            # Read-only, so repeated whole on transient errors (429, 5xx) within the error budget.
            self._retry_read(
                "Pre-flight checks",
                lambda: self._run_preflight(plan, hook, dest, settings),
                self.error_budget,
            )
        except Exception as exc:
            if not is_permanent_error(exc):
                raise
            raise GeminiBatchPreflightError(
                f"Not submitting the batch job: a check before creating it was refused ({type(exc).__name__}: "
                f"{exc}). Give the connection access to the source and destination, or fix their names."
            ) from exc

    def _run_preflight(
        self, plan: CreatePlan, hook: GeminiBatchHook, dest: str | None, settings: Any
    ) -> None:
        preflight_check(
            plan,
            dest,
            CloudReads(
                genai_client=hook.get_conn,
                cache_key=(plan.backend, settings.base_url, settings.project, settings.location),
                bigquery_client=lambda: self._bigquery_client(settings.project),
                storage_client=self._storage_client,
                log=self.log,
            ),
            project=settings.project,
            allow_cross_project=self.allow_cross_project,
            log=self.log,
        )

    def _bigquery_client(self, project: str | None) -> Any:
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        hook = BigQueryHook(
            gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain, use_legacy_sql=False
        )
        return hook.get_client(project_id=project)

    def _storage_client(self) -> Any:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        return GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain).get_conn()

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
        """Synchronous path: cancel after mark-failed / mark-success; keep after a clear or a timeout.

        Bounded to well under a second (task_state.kill_job_blocking); the cancel sweep covers the rest.
        """
        name, hook = self._job_name, self._hook_obj
        if not name or hook is None:
            return
        if not self.cancel_on_kill:
            self.log.info("cancel_on_kill is off: batch job %s keeps running", name)
            return
        kill_job_blocking(name, self._identity, lambda: hook.cancel_job(name), self.log)


__all__ = ["GeminiBatchCreateJobOperator"]
