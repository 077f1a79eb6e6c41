"""The pipelines' task bodies: what each ``@task`` of the DAGs calls, in plain values.

Invariants: every function takes and returns JSON-able values (they travel as XCom), builds its
clients from Airflow connections when it runs (never at import), and is safe to run again: a
retry or a re-run of a DAG run rebuilds the same tables and files and MERGEs the same rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gemini_batch.pipeline.limits import JobLimits

if TYPE_CHECKING:
    from google.cloud import bigquery, storage
    from google.genai import Client as GenaiClient

    from gemini_batch.pipeline.settings import PipelineSettings

__all__ = [
    "bigquery_client",
    "build_requests_table",
    "check_settings",
    "delete_unsubmitted_inputs",
    "day_interval",
    "fail_fast",
    "genai_client",
    "load_results",
    "shard_gcs_input",
    "shard_requests_table",
    "storage_client",
    "summarize_results",
    "validate_gcs_input",
    "validate_requests_table",
]

log = logging.getLogger(__name__)

#: How long run-scoped tables (requests, shards) are kept: longer than a job may queue and run.
RUN_TABLES_EXPIRE = dt.timedelta(days=14)

F = TypeVar("F", bound=Callable[..., Any])


def fail_fast(function: F) -> F:
    """Turn the errors a retry cannot fix into ``AirflowFailException``: bad input (validation
    findings, a plain ``ValueError`` of a bad argument), lost answers (reconciliation), and the
    services' permanent refusals (HTTP 4xx but 401/408/429: a missing object, table or permission).

    The message is kept; the task fails at once instead of spending its retries on the same data.
    Transient errors (timeouts, 429, 5xx) pass through unchanged, so Airflow retries them.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from gemini_batch.api_errors import is_permanent_error
        from gemini_batch.pipeline.findings import InputValidationError
        from gemini_batch.pipeline.results import ReconciliationError

        try:
            return function(*args, **kwargs)
        except AirflowFailException:
            raise
        except (InputValidationError, ReconciliationError, ValueError) as error:
            raise AirflowFailException(str(error)) from error
        except Exception as error:
            if is_permanent_error(error):
                raise AirflowFailException(f"{type(error).__name__}: {error}") from error
            raise

    return wrapper  # type: ignore[return-value]


@fail_fast
def check_settings(
    gcp_conn_id: str, *, model: str | None = None, buckets: bool = True, **overrides: Any
) -> dict[str, Any]:
    """The first task of every pipeline run: every setting checked before anything is built or submitted.

    Resolves the Variables (settings.py), checks each against its rule, then that the dataset and
    (with ``buckets``) the bucket exist. ``model`` is the run's Param; empty means the Variable
    ``gemini_batch_model``.

    :return: ``{"project", "dataset", "bucket", "model", "location"}`` (location ``""``: the connection's).
    :raises AirflowFailException: naming every bad Variable and what to set.
    """
    from gemini_batch.exceptions import GeminiBatchConfigError
    from gemini_batch.pipeline.settings import PipelineSettings, variable_name

    settings = PipelineSettings.resolve(gcp_conn_id, **overrides)
    if model:
        from dataclasses import replace

        settings = replace(settings, model=model.strip())
    problems = settings.problems()
    if not problems:
        problems = _missing_places(settings, gcp_conn_id, buckets=buckets, variable_name=variable_name)
    if problems:
        listed = "\n".join(f"- {problem}" for problem in problems)
        raise GeminiBatchConfigError(
            f"The pipeline's settings are not usable ({len(problems)} problem(s)):\n{listed}"
        )
    log.info("settings: %s", settings)
    return {
        "project": settings.project,
        "dataset": settings.dataset,
        "bucket": settings.bucket,
        "model": settings.model,
        "location": settings.location or "",
    }


def _missing_places(
    settings: PipelineSettings, gcp_conn_id: str, *, buckets: bool, variable_name: Callable[[str], str]
) -> list[str]:
    """The dataset and bucket the settings name, when they do not exist."""
    from google.api_core.exceptions import NotFound

    problems = []
    try:
        bigquery_client(gcp_conn_id, settings.project).get_dataset(f"{settings.project}.{settings.dataset}")
    except NotFound:
        problems.append(
            f"Dataset {settings.project}.{settings.dataset} does not exist: create it, or set the Variables "
            f"{variable_name('project')} and {variable_name('dataset')} to an existing one."
        )
    if buckets and not storage_client(gcp_conn_id).bucket(settings.bucket).exists():
        problems.append(
            f"Bucket gs://{settings.bucket} does not exist: create it, or set the Variable "
            f"{variable_name('bucket')} to an existing bucket (default: <project>-gemini-batch)."
        )
    return problems


# --- clients (from Airflow connections, at run time) --------------------------------------------


def bigquery_client(gcp_conn_id: str, project: str) -> bigquery.Client:
    """A BigQuery client from the Google Cloud connection (honours ``BIGQUERY_EMULATOR_HOST``)."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    return BigQueryHook(gcp_conn_id=gcp_conn_id, use_legacy_sql=False).get_client(project_id=project)


def storage_client(gcp_conn_id: str) -> storage.Client:
    """A GCS client from the Google Cloud connection (honours ``STORAGE_EMULATOR_HOST``)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id=gcp_conn_id).get_conn()


def genai_client(gemini_api_conn_id: str) -> GenaiClient:
    """A google-genai client of the Gemini API connection (for results files and inline results)."""
    from gemini_batch.hooks import GeminiBatchHook

    return GeminiBatchHook("gemini_api", gemini_api_conn_id).get_conn()


def _limits() -> JobLimits:
    from gemini_batch.pipeline.dag_config import job_limits

    return job_limits()


def day_interval(
    data_interval_start: dt.datetime | None,
    data_interval_end: dt.datetime | None,
    run_after: dt.datetime | None = None,
) -> tuple[dt.datetime, dt.datetime]:
    """The run's interval; a zero-length one (a run of a trigger timetable) becomes its whole day.

    A run without a data interval (an Airflow 3 manual run triggered with no logical date)
    processes the last whole day before ``run_after``: the interval a manual run with a logical
    date at that moment gets, so it shares its jobs with that day's scheduled run.
    """
    if data_interval_start is None or data_interval_end is None:
        if run_after is None:
            raise ValueError("a run without a data interval needs its run_after date")
        end = run_after.replace(hour=0, minute=0, second=0, microsecond=0)
        return end - dt.timedelta(days=1), end
    if data_interval_end > data_interval_start:
        return data_interval_start, data_interval_end
    start = data_interval_start.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(days=1)


def delete_unsubmitted_inputs(
    staged: Sequence[str] | None,
    *,
    job_task: Mapping[str, Any],
    backend: str,
    gcp_conn_id: str,
    gemini_api_conn_id: str,
) -> dict[str, Any]:
    """Nothing left behind: delete a run's staged inputs when its job task made no job.

    ``job_task`` is ``{"dag_id", "task_id", "run_id", "map_index"}`` of the job task; its jobs are
    looked up by identity (the same lookup a retry makes), so inputs a job may still read are kept.

    :return: ``{"deleted": [...], "kept_for": [job names]}``.
    """
    from gemini_batch.hooks import GeminiBatchHook
    from gemini_batch.identity import WorkIdentity
    from gemini_batch.pipeline.adhoc import delete_staged

    if not staged:
        return {"deleted": [], "kept_for": []}
    conn_id = gcp_conn_id if backend == "vertex" else gemini_api_conn_id
    jobs = GeminiBatchHook(backend, conn_id).find_jobs_by_identity(WorkIdentity(**job_task))  # type: ignore[arg-type]
    if jobs:
        names = [job.name for job in jobs]
        log.info("kept the staged inputs %s: job(s) %s read them", list(staged), names)
        return {"deleted": [], "kept_for": names}
    deleted = delete_staged(
        staged,
        storage_client=storage_client(gcp_conn_id) if any(s.startswith("gs://") for s in staged) else None,
        genai_client=genai_client(gemini_api_conn_id)
        if any(s.startswith("files/") for s in staged)
        else None,
    )
    log.info("no job was created: deleted the staged inputs %s", deleted)
    return {"deleted": deleted, "kept_for": []}


# --- BigQuery path ---------------------------------------------------------------------------------


def build_requests_table(
    settings: PipelineSettings,
    *,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    table: str,
    run_tag: str,
    source_sql_path: str | Path,
    template_path: str | Path,
    gcp_conn_id: str,
) -> dict[str, Any]:
    """Build the requests table of one data interval from the prompts, server-side, named by content.

    The table is built as ``<table>_build_<run_tag>`` (run-scoped: concurrent runs never share
    it), fingerprinted by BigQuery and published once as ``<table>_<fingerprint>``
    (builder.keep_by_content): every run of the same inputs names the same job source, a run of
    changed inputs a new one.

    :return: ``{"table": "bq://...", "requests": n, "day": "YYYY-MM-DD", "fingerprint": "..."}``
        (the day is the date the results are stored under: the interval's start).
    """
    from gemini_batch.pipeline import sql
    from gemini_batch.pipeline.builder import RequestTemplate, build_bigquery_requests, keep_by_content

    client = bigquery_client(gcp_conn_id, settings.project)
    built = settings.table(f"{table}_build_{run_tag}")
    count = build_bigquery_requests(
        client,
        source_sql=sql.render_file(source_sql_path, prompts_table=settings.prompts.sql),
        params={"interval_start": interval_start, "interval_end": interval_end},
        destination=built,
        template=RequestTemplate.from_file(template_path),
        expires=RUN_TABLES_EXPIRE,
    )
    destination, fingerprint = keep_by_content(client, built, name=table, expires=RUN_TABLES_EXPIRE)
    log.info(
        "built %d requests for [%s, %s) in %s (content %s)",
        count, interval_start, interval_end, destination.uri, fingerprint,
    )  # fmt: skip
    return {
        "table": destination.uri,
        "requests": count,
        "day": interval_start.date().isoformat(),
        "fingerprint": fingerprint,
    }


@fail_fast
def validate_requests_table(table: str, *, gcp_conn_id: str, project: str) -> dict[str, Any]:
    """Validate a requests table (schema, keys, JSON) before any job; over-limit is fine (sharded next).

    :raises InputValidationError: Naming each bad column and the counts.
    """
    from gemini_batch.pipeline.bigquery_checks import validate_bigquery_requests
    from gemini_batch.pipeline.refs import TableRef

    scan = validate_bigquery_requests(
        TableRef.parse(table), bigquery_client=bigquery_client(gcp_conn_id, project), enforce_limits=False
    )
    log.info("%s: %d requests, %d bytes: valid", table, scan.requests, scan.bytes)
    return scan.to_dict()


def shard_requests_table(
    table: str, *, gcp_conn_id: str, project: str, limits: JobLimits | None = None
) -> list[str]:
    """Split a requests table under the per-job limits; the ``bq://`` source of each job."""
    from gemini_batch.pipeline.refs import TableRef
    from gemini_batch.pipeline.sharding import shard_bigquery_table

    client = bigquery_client(gcp_conn_id, project)
    shards = shard_bigquery_table(
        client, TableRef.parse(table), limits=limits or _limits(), expires=RUN_TABLES_EXPIRE
    )
    log.info("%s: %d shard(s): %s", table, len(shards), [(s.src, s.requests) for s in shards])
    return [shard.src for shard in shards]


# --- GCS path --------------------------------------------------------------------------------------


@fail_fast
def validate_gcs_input(uri: str, *, gcp_conn_id: str, limits: JobLimits | None = None) -> dict[str, Any]:
    """Validate a Vertex JSONL input in GCS, streamed, and plan its shards.

    :raises InputValidationError: Naming the file and line of each problem.
    """
    from gemini_batch.pipeline.jsonl_scan import scan_gcs_jsonl

    scan = scan_gcs_jsonl(
        uri, storage_client=storage_client(gcp_conn_id), limits=limits or _limits(), enforce_limits=False
    )
    log.info(
        "%s: %d requests, %d bytes, %d shard(s): valid", uri, scan.requests, scan.bytes, len(scan.shards)
    )
    return scan.to_dict()


def gcs_input_fingerprint(uri: str, *, gcp_conn_id: str) -> str:
    """The content fingerprint of a GCS input object (its checksums and size; fingerprints.py)."""
    from gemini_batch.pipeline.fingerprints import gcs_object_fingerprint
    from gemini_batch.pipeline.refs import GcsUri

    ref = GcsUri.parse(uri)
    blob = storage_client(gcp_conn_id).bucket(ref.bucket).get_blob(ref.name)
    if blob is None:
        raise FileNotFoundError(f"{uri} does not exist")
    return gcs_object_fingerprint(blob)


def shard_gcs_input(
    scan: Mapping[str, Any], destination_prefix: str, *, gcp_conn_id: str
) -> list[dict[str, str]]:
    """Write the planned shards of a validated JSONL input; one ``{"src", "dest"}`` per job.

    ``dest`` is a per-shard output prefix under ``destination_prefix``.
    """
    from gemini_batch.pipeline.findings import InputScan
    from gemini_batch.pipeline.refs import GcsUri
    from gemini_batch.pipeline.sharding import write_gcs_shards

    prefix = GcsUri.parse(destination_prefix)
    shards = write_gcs_shards(
        storage_client(gcp_conn_id), InputScan.from_dict(scan), str(prefix.child("shards"))
    )
    return [
        {"src": shard.src, "dest": str(prefix.child(f"output/shard-{shard.index:05d}"))} for shard in shards
    ]


# --- loading ---------------------------------------------------------------------------------------


@fail_fast
def load_results(
    manifests: Sequence[Mapping[str, Any]],
    *,
    settings: PipelineSettings,
    logical_date: dt.date | str,
    input_keys: Mapping[str, Any],
    gcp_conn_id: str,
    gemini_api_conn_id: str | None = None,
    outlet_events: Any = None,
    retry_invalid_output: bool = False,
    shards: Sequence[str] | None = None,
    round: int = 0,
) -> dict[str, Any]:
    """Load every job's output of a run into the results and errors tables, reconcile, and write
    one row per job into the costs table (costs_table.py).

    With ``shards`` (a pipeline's day), ``input_keys`` is the day's whole input: rows of keys no
    longer in it are deleted, jobs already loaded are not staged again, keys a job's output lacks
    land in errors as ``missing`` (a retry round resubmits them), and when some shards have
    no finished job the others are still loaded and reconciled (their keys only), then the task
    fails naming the missing shards: clearing it (or re-running the day) resubmits only them.

    :param manifests: Required. The job task's return values (one per shard; a failed shard has none).
    :param input_keys: Required. :meth:`InputKeys.to_dict` of what was submitted.
    :param retry_invalid_output: Optional. Count ``invalid_output`` rows (answers that broke their
        response schema) as retryable (``counts["retryable"]``) for the failed-row retry rounds.
    :param shards: Optional. The ``src`` of every shard of the day (bq:// tables or gs:// files),
        or of a failed-row retry round (``input_keys`` stays the day's whole input).
    :param round: Optional. The failed-row retry round of these jobs (rounds.py; 0: the day's first).
    :param outlet_events: Optional. The task's ``outlet_events``: the results Asset's event gets
        ``{"table", "errors_table", "logical_date", "counts"}`` as its extra, the costs Asset's
        ``{"table", "logical_date", "tokens", "estimated_cost_usd"}``.
    :return: :meth:`LoadCounts.to_dict` with ``tokens`` (prompt, output, thinking, total) and
        ``estimated_cost_usd`` (at batch prices; None when a model has no price).
    :raises ReconciliationError: An input key is missing from both tables (count and sample).
    """
    from gemini_batch.pipeline.answer_sample import log_answer_sample
    from gemini_batch.pipeline.costs_table import COSTS_TABLE, record_load_costs
    from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
    from gemini_batch.pipeline.row_retry import RowRetryPolicy

    finished = [m for m in manifests if m]
    missing = [src for src in shards or () if src not in {m.get("source") for m in finished}]
    if not finished:
        raise ValueError(f"no shard's job finished: nothing to load (shards: {list(shards or ())})")
    outputs = [JobOutput.from_manifest(m) for m in finished]
    needs_genai = any(o.kind == "gemini_file" for o in outputs)
    bigquery = bigquery_client(gcp_conn_id, settings.project)
    loader = ResultsLoader(
        bigquery_client=bigquery,
        storage_client=storage_client(gcp_conn_id),
        genai_client=genai_client(gemini_api_conn_id) if needs_genai and gemini_api_conn_id else None,
        staging_gcs=settings.gcs("staging"),
        row_retry=RowRetryPolicy(retry_invalid_output=retry_invalid_output),
    )
    day_keys = InputKeys.from_dict(input_keys)
    counts = loader.load(
        outputs,
        logical_date=logical_date,
        input_keys=_keys_of_shards(day_keys, [m["source"] for m in finished]) if missing else day_keys,
        results_table=settings.results.uri,
        errors_table=settings.errors.uri,
        day_keys=day_keys if shards is not None else None,
        skip_loaded=shards is not None,
        round=round,
        record_missing=shards is not None,
    )
    log_answer_sample(
        bigquery,
        results=settings.results.uri,
        errors=settings.errors.uri,
        job_names=[o.job_name for o in outputs],
    )
    load_cost = record_load_costs(bigquery, finished, settings=settings, logical_date=counts.logical_date)
    loaded = {**counts.to_dict(), **load_cost.as_counts()}
    if missing:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"{len(missing)} of {len(shards or ())} shards have no finished job: {missing}. The other "
            f"{len(finished)} were loaded and reconciled ({counts.succeeded} answered, {counts.failed} "
            f"failed). Clear the failed run_job task(s), or re-run the day: only those shards get a new job."
        )
    if outlet_events is not None:
        from gemini_batch.pipeline.dag_config import COSTS_ASSET, RESULTS_ASSET

        outlet_events[RESULTS_ASSET].extra = {
            "table": settings.results.uri,
            "errors_table": settings.errors.uri,
            "logical_date": counts.logical_date,
            "counts": loaded,
        }
        outlet_events[COSTS_ASSET].extra = {
            "table": settings.table(COSTS_TABLE).uri,
            "logical_date": counts.logical_date,
            **load_cost.as_counts(),
        }
    return loaded


def _keys_of_shards(day_keys: Any, sources: Sequence[str]) -> Any:
    """The input keys of some shards of a day: their bq:// tables or gs:// files."""
    from gemini_batch.pipeline.loader import InputKeys

    if day_keys.kind == "bigquery":
        return InputKeys.from_tables(sources, day_keys.key_column, day_keys.request_column)
    return InputKeys.from_gcs(*sources)


# --- downstream ------------------------------------------------------------------------------------

SUMMARY_SCHEMA = (
    ("logical_date", "DATE", "REQUIRED"),
    ("succeeded", "INT64", "NULLABLE"),
    ("failed", "INT64", "NULLABLE"),
    ("total_tokens", "INT64", "NULLABLE"),
    ("updated_at", "TIMESTAMP", "NULLABLE"),
)


def summarize_results(
    settings: PipelineSettings,
    *,
    days: Sequence[str] | None,
    sql_path: str | Path,
    gcp_conn_id: str,
    table: str = "results_daily_summary",
) -> dict[str, Any]:
    """MERGE the per-day figures of ``days`` (all days when None) into the summary table.

    :return: ``{"table": "bq://...", "days": [...]}``.
    """
    from google.cloud import bigquery

    from gemini_batch.pipeline import sql
    from gemini_batch.pipeline.results import ensure_results_tables

    client = bigquery_client(gcp_conn_id, settings.project)
    ensure_results_tables(client, settings.results, settings.errors)
    summary = settings.table(table)
    client.create_table(
        bigquery.Table(
            summary.api_repr, schema=[bigquery.SchemaField(n, t, mode=m) for n, t, m in SUMMARY_SCHEMA]
        ),
        exists_ok=True,
    )
    if days is None:
        rows = sql.query_rows(
            client,
            f"SELECT DISTINCT CAST(logical_date AS STRING) AS day FROM (SELECT logical_date FROM {settings.results.sql} "
            f"UNION ALL SELECT logical_date FROM {settings.errors.sql}) ORDER BY day",
        )
        days = [row["day"] for row in rows]
    if days:
        text = sql.render_file(
            sql_path, summary=summary.sql, results=settings.results.sql, errors=settings.errors.sql
        )
        sql.run(client, text, dates=list(days))
    log.info("summarized %d day(s) into %s: %s", len(days), summary.uri, list(days))
    return {"table": summary.uri, "days": list(days)}
