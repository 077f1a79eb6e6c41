"""Load the outputs of batch jobs into the typed results and errors tables, then reconcile.

One loader for every output kind a manifest can name (docs/design.md, "The manifest"):

``vertex_gcs``
    ``gcs_output_directory``: every ``*.jsonl`` prediction file in the folder is loaded by one
    BigQuery load job from GCS. No byte passes through the worker.
``vertex_bigquery``
    ``bigquery_output_table``: read by SQL in place. No byte passes through the worker.
``gemini_file``
    ``file_name`` (``files/...``): the Files API has no server-side copy, so the file is streamed
    from the Files API into a GCS resumable upload in chunks (memory bounded by two chunks), then
    loaded like the Vertex files.
``gemini_inline``
    ``inline_responses``: at most 20 MB by the service's own limit; fetched from the job and
    loaded from a spooled temporary file.

Invariants:

* Everything after staging is SQL run by BigQuery: parse (finalize.sql), MERGE keyed by
  (key, logical_date) in one transaction (merge_results.sql), reconcile (reconcile.sql). Only
  counts and samples come back, except structured answers (requests with a JSON response
  schema), which stream through the worker page by page to be checked against their schema
  (structured_load.py); the rejected ones land in errors as ``invalid_output``.
* After a load, every input key of the date is in the results table or in the errors table
  exactly once; otherwise :class:`~gemini_batch.pipeline.results.ReconciliationError` names the
  count and a sample. A re-run of the same load replaces rows and leaves the same state.
* Scratch tables are named from a hash of (results table, date, job names), so a retried load
  overwrites its own leftovers, carry a one-day expiry, and are dropped when the load ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gemini_batch.identity import label_key_problem
from gemini_batch.pipeline import sql
from gemini_batch.pipeline.refs import GcsUri, TableRef
from gemini_batch.pipeline.request_shape import KEY_LABEL
from gemini_batch.pipeline.results import (
    LoadCounts,
    ReconciliationError,
    answer_columns,
    ensure_results_tables,
    results_schema,
)
from gemini_batch.pipeline.row_retry import RowRetryPolicy
from gemini_batch.pipeline.structured_load import StructuredCheck, check_structured_output

if TYPE_CHECKING:
    from google.cloud import bigquery, storage
    from google.genai import Client as GenaiClient

    from gemini_batch.job_task import JobTask

__all__ = ["InputKeys", "JobOutput", "OutputKind", "ResultsLoader"]

log = logging.getLogger(__name__)

OutputKind = Literal["vertex_gcs", "vertex_bigquery", "gemini_file", "gemini_inline"]

_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class JobOutput:
    """Where one finished job's answers are.

    :param kind: Which output kind (see the module docstring).
    :param job_name: The job's resource name (written to every row).
    :param location: ``gs://`` folder, ``bq://`` table, ``files/...`` name, or the job name (inline).
    :param model: The model the job ran (used when a response names no model version).
    :param end_time: The job's end time (RFC 3339), the processing time of rows that carry none.
    :param inline_responses: The inline responses as the manifest carries them (``gemini_inline``);
        None: fetch them from the job.
    :param source: The job's source as the manifest names it (``bq://`` table, ``gs://`` file...):
        where the keys it was given are, for ``record_missing``.
    :param task: ``generate`` (answers go to a results table) or ``embed`` (vectors go to an
        embeddings table); the manifest's ``task``.
    """

    kind: OutputKind
    job_name: str
    location: str
    model: str | None = None
    end_time: str | None = None
    inline_responses: tuple[Mapping[str, Any], ...] | None = field(default=None, repr=False, compare=False)
    source: str | None = None
    task: JobTask = "generate"

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> JobOutput:
        """The output a job manifest names.

        :raises ValueError: The job failed or its manifest names no output.
        """
        job_name = manifest.get("job_name") or "<unnamed job>"
        if manifest.get("outcome") == "failed":
            raise ValueError(
                f"job {job_name} ended {manifest.get('state')}: it has no results to load; "
                f"fix the cause and re-run the job task"
            )
        common = {
            "job_name": job_name,
            "model": manifest.get("model"),
            "end_time": manifest.get("end_time"),
            "source": manifest.get("source"),
            "task": manifest.get("task") or "generate",
        }
        if manifest.get("gcs_output_directory"):
            return cls("vertex_gcs", location=manifest["gcs_output_directory"], **common)
        if manifest.get("bigquery_output_table"):
            return cls("vertex_bigquery", location=manifest["bigquery_output_table"], **common)
        if manifest.get("file_name"):
            return cls("gemini_file", location=manifest["file_name"], **common)
        if manifest.get("backend") == "gemini_api" and manifest.get("inline_responses") is not None:
            return cls(
                "gemini_inline",
                location=job_name,
                inline_responses=tuple(manifest["inline_responses"]),
                **common,
            )
        raise ValueError(
            f"the manifest of job {job_name} (state {manifest.get('state')}) names no output: no "
            f"gcs_output_directory, bigquery_output_table, file_name or inline_responses"
        )


@dataclass(frozen=True)
class InputKeys:
    """Where the keys of the submitted requests are, to reconcile the answers against.

    Build one with :meth:`from_table`, :meth:`from_gcs` or :meth:`from_keys`.

    :param kind: ``bigquery`` (a requests table, ``table``, and more of its schema in ``uris``),
        ``gcs_jsonl`` (the submitted JSONL files) or ``keys`` (an explicit, small list: inline jobs).
    """

    kind: Literal["bigquery", "gcs_jsonl", "keys"]
    table: str | None = None
    key_column: str = "key"
    request_column: str | None = "request"
    uris: tuple[str, ...] = ()
    keys: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_table(
        cls, table: str, key_column: str = "key", request_column: str | None = "request"
    ) -> InputKeys:
        """The keys of a BigQuery requests table (every shard's table, or the unsharded one)."""
        return cls("bigquery", table=str(table), key_column=key_column, request_column=request_column)

    @classmethod
    def from_tables(
        cls, tables: Sequence[str], key_column: str = "key", request_column: str | None = "request"
    ) -> InputKeys:
        """The keys of several BigQuery requests tables of one schema, each once (e.g. some shards of a day)."""
        if not tables:
            raise ValueError("from_tables needs at least one table")
        first, *others = dict.fromkeys(str(table) for table in tables)
        return cls(
            "bigquery", table=first, key_column=key_column, request_column=request_column, uris=tuple(others)
        )

    @classmethod
    def from_gcs(cls, *uris: str) -> InputKeys:
        """The keys inside JSONL input files (``key`` or ``request.labels.gemini_batch_key``)."""
        if not uris:
            raise ValueError("from_gcs needs at least one gs:// URI")
        return cls("gcs_jsonl", uris=tuple(uris))

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> InputKeys:
        """An explicit list of keys (for inline jobs; it travels as one query parameter)."""
        return cls("keys", keys=tuple(keys))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "table": self.table, "key_column": self.key_column,
            "request_column": self.request_column, "uris": list(self.uris), "keys": list(self.keys),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputKeys:
        return cls(
            data["kind"], data.get("table"), data.get("key_column", "key"), data.get("request_column"),
            tuple(data.get("uris", ())), tuple(data.get("keys", ())),
        )  # fmt: skip


class ResultsLoader:
    """Loads job outputs into a results table and an errors table, and reconciles them.

    :param bigquery_client: Required. A ``google.cloud.bigquery.Client``.
    :param storage_client: Optional. A ``google.cloud.storage.Client``; needed for Vertex GCS
        output, Gemini API results files and GCS input keys.
    :param genai_client: Optional. A ``google.genai.Client`` for the Gemini API (results files and
        inline responses).
    :param staging_dataset: Optional. ``project.dataset`` for scratch tables (default: the
        results table's dataset).
    :param staging_gcs: Optional. ``gs://bucket/prefix`` where Gemini API results files are
        staged before their load; required for ``gemini_file`` outputs.
    :param key_label: The request label that carries the key through Vertex JSONL jobs.
    :param sample_size: How many sample keys an error names.
    :param row_retry: Optional. Which failed rows count as retryable in :attr:`LoadCounts.retryable`
        (``RowRetryPolicy(retry_invalid_output=True)`` counts ``invalid_output`` rows too).
    :param chunk_size: Bytes per chunk when a results file is streamed to GCS (memory: two chunks).
    """

    def __init__(
        self,
        *,
        bigquery_client: bigquery.Client,
        storage_client: storage.Client | None = None,
        genai_client: GenaiClient | None = None,
        staging_dataset: str | None = None,
        staging_gcs: str | None = None,
        key_label: str = KEY_LABEL,
        sample_size: int = 5,
        row_retry: RowRetryPolicy | None = None,
        chunk_size: int = _CHUNK_BYTES,
    ) -> None:
        # A Vertex label key, and a bare JSONPath member in the SQL ('$.labels.<key_label>'): no '-'.
        problem = label_key_problem(key_label) or (
            "'-' cannot be used in a JSON path" if "-" in key_label else None
        )
        if problem:
            raise ValueError(f"key_label {key_label!r}: {problem}")
        self.bq = bigquery_client
        self.gcs = storage_client
        self.genai = genai_client
        self.staging_dataset = staging_dataset
        self.staging_gcs = GcsUri.parse(staging_gcs) if staging_gcs else None
        self.key_label = key_label
        self.sample_size = sample_size
        self.row_retry = row_retry or RowRetryPolicy()
        self.chunk_size = chunk_size
        #: Seconds per phase (stage, parse, merge, reconcile) of the last load, for logs and benchmarks.
        self.last_phase_seconds: dict[str, float] = {}

    # --- the whole load ----------------------------------------------------------------------

    def load(
        self,
        outputs: Sequence[JobOutput | Mapping[str, Any]],
        *,
        logical_date: dt.date | str,
        input_keys: InputKeys,
        results_table: str,
        errors_table: str,
        reconcile: bool = True,
        day_keys: InputKeys | None = None,
        skip_loaded: bool = False,
        round: int = 0,
        record_missing: bool = False,
    ) -> LoadCounts:
        """Load every output into the tables for ``logical_date`` and reconcile with the input.

        :param outputs: Required. The jobs' outputs, or their manifests (all shards of a run).
        :param logical_date: Required. The date the rows belong to (the MERGE key with the key).
        :param input_keys: Required. Where the submitted keys are.
        :param results_table: Required. ``bq://project.dataset.table`` for answers.
        :param errors_table: Required. ``bq://project.dataset.table`` for failed rows.
        :param reconcile: Optional. False skips the check (the counts are still returned).
        :param day_keys: Optional. The day's whole input (``input_keys`` may be a part of it: the
            shards whose jobs finished). When given, the day's rows of keys not in it are deleted in
            the MERGE's transaction and reconcile counts what is left as ``stale`` (it must be 0):
            the day then holds exactly its current input keys. None: rows are only added or replaced.
        :param skip_loaded: Optional. Do not stage a job that already has rows for the date (its
            MERGE was one transaction: all its rows are in): a re-run after a partial failure loads
            only the jobs that are new.
        :param round: Optional. The failed-row retry round of these jobs (rounds.py; 0: the day's
            first jobs): failed rows carry it into the errors table's ``round`` column.
        :param record_missing: Optional. A key of a staged job's ``bq://`` or ``gs://`` source that
            its output lacks is written to the errors table with status ``missing`` (retryable by a
            failed-row retry round) instead of failing reconciliation. Default False.
        :return: The counts; they add up: ``succeeded + failed + missing + duplicated == input``.
        :raises ReconciliationError: Input keys are missing or in both tables.
        """
        jobs = [o if isinstance(o, JobOutput) else JobOutput.from_manifest(o) for o in outputs]
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise ValueError(f"round must be an int >= 0, got {round!r}")
        if not jobs:
            raise ValueError("no job outputs to load")
        task = _task_of(jobs)
        date = dt.date.fromisoformat(logical_date) if isinstance(logical_date, str) else logical_date
        project = self.bq.project
        results = TableRef.parse(results_table, default_project=project)
        errors = TableRef.parse(errors_table, default_project=project)
        ensure_results_tables(self.bq, results, errors, results_schema(task))
        load_id = hashlib.blake2b(
            json.dumps([results.uri, date.isoformat(), sorted(j.job_name for j in jobs)]).encode(),
            digest_size=6,
        ).hexdigest()
        scratch = _Scratch(self.bq, self._staging(results), load_id)
        watch = _Stopwatch()
        loaded = self._loaded_jobs(jobs, date, results, errors) if skip_loaded else frozenset()
        try:
            stage = scratch.table("stage", _STAGE_SCHEMA)
            for index, job in enumerate(jobs):
                if job.job_name in loaded:
                    log.info("job %s is already loaded for %s: not staged again", job.job_name, date)
                    continue
                log.info("staging %s output %s of job %s", job.kind, job.location, job.job_name)
                self._stage(job, stage, scratch, index)
            input_sql = self._input_source(input_keys, scratch)
            if day_keys is None or day_keys == input_keys:
                day_sql = input_sql
            else:
                day_sql = self._input_source(day_keys, scratch, purpose="day")
            watch.lap("stage")
            final = scratch.name("final")
            sql.run(
                self.bq,
                sql.render(
                    _FINALIZE[task],
                    final=final.sql,
                    ranked=sql.render("rank_stage.sql", stage=stage.sql).rstrip("\n"),
                    input=input_sql,
                ),
                logical_date=date,
            )
            if record_missing:
                for index, job in enumerate(jobs):
                    if job.job_name not in loaded:
                        self._record_missing(job, final, scratch, index, date)
            watch.lap("parse")
            structured = (
                check_structured_output(
                    self.bq,
                    final=final,
                    invalid_table=lambda schema: scratch.table("invalid", schema),
                    chunk_size=self.chunk_size,
                )
                if task == "generate"
                else StructuredCheck()  # a vector has no response schema
            )
            watch.lap("structured")
            sql.run(
                self.bq,
                sql.render(
                    "merge_results.sql",
                    **_answer_lists(task),
                    results=results.sql,
                    errors=errors.sql,
                    final=final.sql,
                    logical_date=sql.date_literal(date),
                    day_input=day_sql,
                    # A literal made from a bool (scripts bind no parameters; see merge_results.sql).
                    replace_day="TRUE" if day_keys is not None else "FALSE",
                    round=str(round),
                ),
            )
            watch.lap("merge")
            outcomes = sql.query_rows(self.bq, sql.render("failed_statuses.sql", final=final.sql))
            row = sql.query_one(
                self.bq,
                sql.render(
                    "reconcile.sql",
                    input=input_sql,
                    day_input=day_sql,
                    results=results.sql,
                    errors=errors.sql,
                    stage=stage.sql,
                ),
                logical_date=date,
                sample_size=self.sample_size,
            )
            watch.lap("reconcile")
        finally:
            scratch.drop_all()
        self.last_phase_seconds = watch.laps
        counts = LoadCounts(
            logical_date=date.isoformat(),
            jobs=len(jobs),
            staged=row["staged"],
            input=row["input"],
            succeeded=row["succeeded"],
            failed=row["failed"],
            missing=row["missing"],
            duplicated=row["duplicated"],
            unexpected=row["unexpected"],
            unkeyed=row["unkeyed"],
            invalid_output=structured.invalid,
            retryable=self.row_retry.count_retryable((r["status"], r["n"]) for r in outcomes if not r["ok"]),
            stale=row["stale"] if day_keys is not None else 0,
            round=round,
            answered=sum(r["n"] for r in outcomes if r["ok"]),
        )
        log.info("loaded %s; seconds per phase: %s", counts, watch.laps)
        if counts.unexpected or counts.unkeyed:
            log.warning(
                "%d output keys are not input keys and %d output rows have no key; check that the "
                "input reference matches what was submitted",
                counts.unexpected,
                counts.unkeyed,
            )
        if reconcile and (counts.missing or counts.duplicated or counts.stale):
            raise ReconciliationError(
                counts,
                row["missing_sample"] or [],
                row["duplicated_sample"] or [],
                (row["stale_sample"] or []) if counts.stale else [],
            )
        return counts

    def _record_missing(
        self, job: JobOutput, final: TableRef, scratch: _Scratch, index: int, date: dt.date
    ) -> None:
        """Add the keys of ``job``'s source that its output lacks to ``final`` as ``missing`` rows."""
        source = job.source or ""
        if source.startswith("bq://"):
            keys = InputKeys.from_table(source)
        elif source.startswith("gs://") and "*" not in source:
            keys = InputKeys.from_gcs(source)
        else:  # inline requests, Files API files, wildcards: no key list to compare with
            log.info(
                "job %s: source %r lists no keys; rows missing from its output are not recorded",
                job.job_name,
                source,
            )
            return
        sql.run(
            self.bq,
            sql.render(
                "missing_rows.sql",
                final=final.sql,
                source=self._input_source(keys, scratch, purpose=f"source{index}"),
            ),
            logical_date=date,
            job_name=job.job_name,
            error=f"the output of job {job.job_name} has no row for this key",
        )

    def _loaded_jobs(
        self, jobs: Sequence[JobOutput], date: dt.date, results: TableRef, errors: TableRef
    ) -> frozenset[str]:
        """The jobs among ``jobs`` that already have rows for ``date`` in results or errors."""
        names = sorted({job.job_name for job in jobs})
        rows = sql.query_rows(
            self.bq,
            f"SELECT DISTINCT job_name FROM {results.sql} WHERE logical_date = @logical_date "
            f"AND job_name IN UNNEST(@jobs) UNION DISTINCT SELECT DISTINCT job_name FROM {errors.sql} "
            f"WHERE logical_date = @logical_date AND job_name IN UNNEST(@jobs)",
            logical_date=date,
            jobs=names,
        )
        return frozenset(row["job_name"] for row in rows)

    def _staging(self, results: TableRef) -> tuple[str, str]:
        if not self.staging_dataset:
            return results.project, results.dataset
        parts = self.staging_dataset.removeprefix("bq://").split(".")
        return (parts[0], parts[1]) if len(parts) == 2 else (results.project, parts[0])

    # --- staging each output kind ------------------------------------------------------------

    def _stage(self, job: JobOutput, stage: TableRef, scratch: _Scratch, index: int) -> None:
        params = {"job_name": job.job_name, "model": job.model or "", "end_time": job.end_time or ""}
        if job.kind == "vertex_gcs":
            if job.task == "embed":
                raise ValueError(
                    f"job {job.job_name}: Vertex AI writes embeddings from a gs:// source without a key "
                    f"(only the echoed instance), so {job.location} cannot be loaded by key. Embed from a "
                    "BigQuery table (its key column passes through) or a Gemini API files/ source."
                )
            raw = scratch.name(f"raw{index}")
            self._load_uris(self._prediction_files(job.location), raw, _VERTEX_RAW_SCHEMA)
            text = sql.render("stage_vertex_gcs.sql", stage=stage.sql, raw=raw.sql, key_label=self.key_label)
            sql.run(self.bq, text, **params)
        elif job.kind == "vertex_bigquery":
            sql.run(self.bq, self._vertex_bigquery_sql(job, stage), **params)
        elif job.kind == "gemini_file":
            raw = scratch.name(f"raw{index}")
            with self._staged_file(job, scratch.load_id, index) as uri:
                self._load_uris([uri], raw, _GEMINI_RAW_SCHEMA)
            sql.run(self.bq, sql.render("stage_gemini.sql", stage=stage.sql, raw=raw.sql), **params)
        elif job.kind == "gemini_inline":
            raw = scratch.name(f"raw{index}")
            self._load_inline(job, raw)  # at most 20 MB: the service's inline limit
            sql.run(self.bq, sql.render("stage_gemini.sql", stage=stage.sql, raw=raw.sql), **params)
        else:  # pragma: no cover - Literal guards this
            raise ValueError(f"unknown output kind {job.kind!r}")

    def _prediction_files(self, folder: str) -> list[str]:
        """The ``*.jsonl`` files directly inside a Vertex output folder (listing only)."""
        ref = GcsUri.parse(folder.rstrip("/") + "/")
        client = self._require(self.gcs, "storage_client", "Vertex GCS output")
        blobs = client.list_blobs(ref.bucket, prefix=ref.name, delimiter="/")
        uris = [f"gs://{ref.bucket}/{blob.name}" for blob in blobs if blob.name.endswith(".jsonl")]
        if not uris:
            raise FileNotFoundError(
                f"no *.jsonl prediction files in {folder}; the job's output folder is empty or was removed"
            )
        return sorted(uris)

    def _vertex_bigquery_sql(self, job: JobOutput, stage: TableRef) -> str:
        output = TableRef.parse(job.location, default_project=self.bq.project)
        schema = {f.name: f for f in self.bq.get_table(output.api_repr).schema}

        def as_json(name: str) -> str:
            if name not in schema:
                return "CAST(NULL AS JSON)"
            return (
                sql.ident(name)
                if schema[name].field_type == "JSON"
                else f"SAFE.PARSE_JSON({sql.ident(name)})"
            )

        label = f"JSON_VALUE({as_json('request')}, '$.labels.{self.key_label}')"
        key = f"COALESCE(CAST(`key` AS STRING), {label})" if "key" in schema else label
        if "processed_time" in schema:
            processed = (
                "COALESCE(SAFE_CAST(`processed_time` AS TIMESTAMP), SAFE_CAST(@end_time AS TIMESTAMP))"
            )
        else:
            processed = "SAFE_CAST(@end_time AS TIMESTAMP)"
        return sql.render(
            "stage_vertex_bigquery.sql",
            stage=stage.sql,
            output=output.sql,
            key=key,
            request_json=as_json("request"),
            response_json=_vertex_response(schema, as_json),
            processed_time=processed,
            status="CAST(`status` AS STRING)" if "status" in schema else "CAST(NULL AS STRING)",
        )

    @contextmanager
    def _staged_file(self, job: JobOutput, load_id: str, index: int) -> Generator[str, None, None]:
        """Stream a Files API file into GCS in chunks; yield its gs:// URI, delete it afterwards."""
        genai = self._require(self.genai, "genai_client", "Gemini API results files")
        client = self._require(self.gcs, "storage_client", "Gemini API results files")
        if self.staging_gcs is None:
            raise ValueError("staging_gcs (gs://bucket/prefix) is required to load Gemini API results files")
        name = job.location.rsplit("/", 1)[-1]
        target = self.staging_gcs.child(f"gemini_batch_results/{load_id}/{index}-{name}.jsonl")
        blob = client.bucket(target.bucket).blob(target.name)
        with blob.open("wb", chunk_size=self.chunk_size, ignore_flush=True) as writer:
            genai.files.download(file=job.location, destination=writer)
        try:
            yield str(target)
        finally:
            blob.delete()

    def _load_inline(self, job: JobOutput, raw: TableRef) -> None:
        """Write a job's inline responses as NDJSON to a spooled file and load it.

        The manifest carries them (the operator caps their size); without them they are fetched.
        """
        from google.cloud import bigquery
        from google.genai import types

        kind = types.InlinedEmbedContentResponse if job.task == "embed" else types.InlinedResponse
        if job.inline_responses is not None:
            responses = [kind.model_validate(item) for item in job.inline_responses]
        else:
            genai = self._require(self.genai, "genai_client", "Gemini API inline responses")
            batch = genai.batches.get(name=job.job_name)
            responses = _inline_of(batch, job.task)
        # mode "r+b": the BigQuery client refuses to upload from a file opened "w+b".
        with tempfile.SpooledTemporaryFile(max_size=self.chunk_size, mode="r+b") as spool:
            for index, item in enumerate(responses):
                metadata = item.metadata or {}
                line = {
                    "key": str(metadata.get("key", index)),
                    "response": item.response.model_dump(mode="json", by_alias=True, exclude_none=True)
                    if item.response
                    else None,
                    "error": item.error.model_dump(mode="json", by_alias=True, exclude_none=True)
                    if item.error
                    else None,
                }
                spool.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            spool.seek(0)
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                schema=_fields(_GEMINI_RAW_SCHEMA),
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                ignore_unknown_values=True,
            )
            self.bq.load_table_from_file(spool, raw.api_repr, job_config=config).result()

    def _load_uris(self, uris: Sequence[str], raw: TableRef, schema: Sequence[tuple[str, str]]) -> None:
        """One BigQuery load job from GCS: the files go straight from GCS into BigQuery."""
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=_fields(schema),
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            ignore_unknown_values=True,
        )
        self.bq.load_table_from_uri(list(uris), raw.api_repr, job_config=config).result()

    # --- the input side ----------------------------------------------------------------------

    def _input_source(self, keys: InputKeys, scratch: _Scratch, purpose: str = "input") -> str:
        """A subquery of the input as (key STRING, request JSON); ``purpose`` names its scratch table."""
        if keys.kind == "bigquery":
            tables = [keys.table or "", *keys.uris]
            selects = " UNION ALL ".join(self._table_input(keys, table) for table in tables)
            return f"({selects})" if len(tables) == 1 else f"(SELECT * FROM ({selects}))"
        if keys.kind == "gcs_jsonl":
            raw = scratch.name(purpose)
            self._load_uris(keys.uris, raw, _INPUT_RAW_SCHEMA)
            label = f"JSON_VALUE(request, '$.labels.{self.key_label}')"
            return f"(SELECT COALESCE(key, {label}) AS key, request FROM {raw.sql})"
        if keys.kind == "keys":
            table = scratch.table("keys" if purpose == "input" else f"{purpose}_keys", (("key", "STRING"),))
            sql.run(
                self.bq,
                f"INSERT INTO {table.sql} (key) SELECT key FROM UNNEST(@keys) AS key",
                keys=list(keys.keys),
            )
            return f"(SELECT key, CAST(NULL AS JSON) AS request FROM {table.sql})"
        raise ValueError(f"unknown input kind {keys.kind!r}")

    def _table_input(self, keys: InputKeys, name: str) -> str:
        """``SELECT key, request`` of one requests table (its request column as JSON)."""
        table = TableRef.parse(name, default_project=self.bq.project)
        schema = {f.name: f.field_type for f in self.bq.get_table(table.api_repr).schema}
        if keys.key_column not in schema:
            raise ValueError(f"{table.uri} has no key column `{keys.key_column}` to reconcile against")
        column = keys.request_column
        if column and column in schema:
            request = (
                sql.ident(column) if schema[column] == "JSON" else f"SAFE.PARSE_JSON({sql.ident(column)})"
            )
        else:
            request = "CAST(NULL AS JSON)"
        return f"SELECT CAST({sql.ident(keys.key_column)} AS STRING) AS key, {request} AS request FROM {table.sql}"

    @staticmethod
    def _require(value: Any, name: str, what: str) -> Any:
        if value is None:
            raise ValueError(f"{name} is required to load {what}")
        return value


#: The parse step of each job task: generateContent answers, or vectors.
_FINALIZE: dict[str, str] = {"generate": "finalize.sql", "embed": "finalize_embeddings.sql"}


def _vertex_response(schema: Mapping[str, Any], as_json: Any) -> str:
    """The answer of a Vertex AI BigQuery output row as JSON: the ``response`` column (Gemini), or
    the first element of ``predictions`` (a text-embedding job: the JSON text of a list)."""
    if "response" not in schema and "predictions" in schema:
        return f"JSON_QUERY({as_json('predictions')}, '$[0]')"
    return as_json("response")


def _task_of(jobs: Sequence[JobOutput]) -> JobTask:
    """The one task of a load's jobs: answers and vectors go to different tables."""
    tasks = {job.task for job in jobs}
    if len(tasks) > 1:
        raise ValueError(
            f"one load takes jobs of one task, got {sorted(tasks)}: load the embedding jobs into the "
            "embeddings table and the generation jobs into the results table separately"
        )
    return tasks.pop()


def _inline_of(batch: Any, task: JobTask) -> list[Any]:
    """A fetched batch's inline responses in input order (an all-failed embeddings batch keeps them
    in the generic list: manifest._inline_response_items)."""
    dest = batch.dest
    if dest is None:
        return []
    if task == "embed" and dest.inlined_embed_content_responses is not None:
        return list(dest.inlined_embed_content_responses)
    return list(dest.inlined_responses or [])


_STAGE_SCHEMA = (
    ("key", "STRING"), ("request", "JSON"), ("response", "JSON"), ("status", "STRING"),
    ("error_message", "STRING"), ("error_code", "INT64"), ("processed_time", "TIMESTAMP"),
    ("job_name", "STRING"), ("model", "STRING"),
)  # fmt: skip
_VERTEX_RAW_SCHEMA = (
    ("status", "STRING"),
    ("processed_time", "STRING"),
    ("request", "JSON"),
    ("response", "JSON"),
)
_GEMINI_RAW_SCHEMA = (("key", "STRING"), ("response", "JSON"), ("error", "JSON"))
_INPUT_RAW_SCHEMA = (("key", "STRING"), ("request", "JSON"))


def _answer_lists(task: JobTask) -> dict[str, str]:
    """merge_results.sql's column lists of the answers table (results.answer_columns)."""
    columns = answer_columns(task)
    return {
        "answer_updates": ",\n  ".join(f"{name} = source.{name}" for name in columns),
        "answer_columns": ", ".join(columns),
        "answer_values": ", ".join(f"source.{name}" for name in columns),
    }


def _fields(schema: Sequence[tuple[str, str]]) -> list[Any]:
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, kind) for name, kind in schema]


class _Stopwatch:
    """Seconds per phase of a load."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._mark = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self._mark, 3)
        self._mark = now


class _Scratch:
    """Scratch tables of one load: deterministic names, a one-day expiry, dropped at the end."""

    def __init__(self, client: bigquery.Client, dataset: tuple[str, str], load_id: str) -> None:
        self.client = client
        self.project, self.dataset = dataset
        self.load_id = load_id
        self._names: list[TableRef] = []

    def name(self, purpose: str) -> TableRef:
        ref = TableRef(self.project, self.dataset, f"_gemini_batch_{purpose}_{self.load_id}")
        if ref not in self._names:
            self._names.append(ref)
        return ref

    def table(self, purpose: str, schema: Sequence[tuple[str, str]]) -> TableRef:
        """Create (or re-create) an empty scratch table."""
        from google.cloud import bigquery

        ref = self.name(purpose)
        self.client.delete_table(ref.api_repr, not_found_ok=True)
        table = bigquery.Table(ref.api_repr, schema=_fields(schema))
        table.expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
        self.client.create_table(table)
        return ref

    def drop_all(self) -> None:
        for ref in self._names:
            try:
                self.client.delete_table(ref.api_repr, not_found_ok=True)
            except Exception:  # noqa: BLE001 - cleanup must not hide the load's own error
                log.warning("could not drop scratch table %s (it expires in a day)", ref.uri, exc_info=True)
