"""Runs one job: queue, read the input, answer every row, write the outputs, end the job.

Invariants:
- Every wait is interruptible by a cancel and bounded by the job's expiry; a cancelled or
  expired job keeps the rows already answered and writes their outputs (as the real service
  keeps completed rows), then ends CANCELLED or EXPIRED.
- The model runs in the event loop in slices of at most ``SLICE_S``; between slices the
  counts are published (``completionStats`` grows), so polls stay fast while a job runs.
- Outputs are written once, at the end, from a spool file; a job interrupted by a server stop
  is run again from its first row after the restart, so no output is ever written twice.
- A problem with the user's input or output location fails the job with a clear ``error``;
  an unexpected exception fails it with INTERNAL (and is logged), never crashes the server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import cloud, states
from .embedding import VERTEX_INSTANCE_FIELDS, embed_content, vertex_parameters, vertex_prediction
from .errors import STATUS_BY_CODE, job_error, row_error
from .jobs import Job, rfc3339
from .jsonutil import dumps, loads
from .model import InvalidRequest, generate_content

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

#: Longest stretch of model work between two yields to the event loop.
SLICE_S = 0.005
#: Rows whose output order is shuffled together (output is never in input order).
SHUFFLE_BLOCK = 64
#: How long a cancelled job stays CANCELLING at least, so clients can observe it.
CANCEL_DWELL_S = 0.2
#: Sleep at least this much at once when paying ``row_latency_ms``.
LATENCY_STEP_S = 0.01

_HTTP_REASONS = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error"}


def vertex_status(error: dict[str, Any]) -> str:
    """The ``status`` text of a failed row in Vertex output: reason phrase and the HTTP error JSON
    (``code``, ``message``, the canonical ``status`` name for the code)."""
    code = error.get("code", 500)
    body = {"code": code, "message": error.get("message", ""), "status": STATUS_BY_CODE.get(code, "UNKNOWN")}
    return f"{_HTTP_REASONS.get(code, 'Error')}: {dumps({'error': body}).decode()}"


def processed_time(now: float) -> str:
    """``2024-11-01T18:13:16.826+00:00``: how Vertex output lines stamp ``processed_time``."""
    return rfc3339(now)[:23] + "+00:00"  # type: ignore[index]


def _bq_name_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def output_folder_stamp(ts: float) -> str:
    """The RFC 3339 part of ``prediction-model-<stamp>``."""
    return rfc3339(ts)  # type: ignore[return-value]


class _Stop(Exception):
    """Processing stops early: ``reason`` is ``cancel`` or ``expire``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Rows:
    """A job's input rows; ``extract(row) -> (request, context)``, ``raw(row)`` hashes it."""

    items: list[Any]
    extract: Callable[[Any], tuple[Any, Any]]
    raw: Callable[[Any], bytes]
    schema: list[Any] | None = None


#: One row's answer: ``answer(request, broken) -> response``; raises InvalidRequest.
Answer = Callable[[Any, "str | None"], dict[str, Any]]


def answer_for(job: Job) -> Answer:
    """The model a job's rows go to: generation, Gemini API embeddings or Vertex embeddings.

    ``broken`` (the ``structured_break_ratio`` fault) only applies to generation.
    """
    model_id = job.model_id
    if job.task == "generate":
        return lambda request, broken: generate_content(model_id, request, broken)
    if job.backend == "gemini_api":
        return lambda request, _broken: embed_content(model_id, request)
    parameters = vertex_parameters(model_id, job.model_parameters)  # checked at create
    return lambda instance, _broken: vertex_prediction(model_id, instance, parameters)


class JobRun:
    """One execution of one job (a fresh object per run, so nothing leaks between jobs).

    :param service: Required. Owns the jobs, stores and clients.
    :param job: Required. The job to drive to a terminal state.
    """

    def __init__(self, service: Service, job: Job) -> None:
        self.service = service
        self.job = job
        self.sink: _Sink | None = None

    # --- waits --------------------------------------------------------------------------

    def _deadline(self) -> float | None:
        expire = self.job.faults.expire_after_s
        return None if expire is None else self.job.create_time + expire

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but raise :class:`_Stop` on cancel or expiry."""
        event = self.service.cancel_event(self.job.id)
        deadline = self._deadline()
        until = time.time() + max(0.0, seconds)
        while True:
            if event.is_set():
                raise _Stop("cancel")
            now = time.time()
            if deadline is not None and now >= deadline:
                raise _Stop("expire")
            if now >= until:
                return
            end = until if deadline is None else min(until, deadline)
            try:
                await asyncio.wait_for(event.wait(), timeout=max(0.001, end - now))
            except asyncio.TimeoutError:
                pass

    def _check(self) -> None:
        if self.service.cancel_event(self.job.id).is_set():
            raise _Stop("cancel")
        deadline = self._deadline()
        if deadline is not None and time.time() >= deadline:
            raise _Stop("expire")

    async def _io(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.service.io_pool, func, *args)

    # --- the job ------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive the job from its current state to a terminal one."""
        job = self.job
        try:
            await self._run()
        except asyncio.CancelledError:
            raise  # server stop or reset: the persisted state is resumed at the next start
        except Exception as exc:  # noqa: BLE001 - a bug must fail the job, not the server
            log.exception("job %s failed unexpectedly", job.name)
            if not job.terminal:
                if job.state == states.CANCELLING:
                    self._end(states.CANCELLED)
                else:
                    self._end(states.FAILED, error=job_error("INTERNAL", f"Internal error: {exc}"))
        finally:
            if self.sink is not None:
                self.sink.close()

    async def _run(self) -> None:
        job = self.job
        service = self.service
        if job.state == states.CANCELLING:
            await self._finish_stopped("cancel")
            return
        try:
            if job.state == states.PENDING:
                await self._sleep(job.create_time + job.faults.queue_delay_s - time.time())
                job.move_to(states.RUNNING)
                service.save(job)
            elif job.state == states.PAUSED:
                job.move_to(states.RUNNING)
                service.save(job)
            job.succeeded = job.failed = 0
            job.total = None
            if job.faults.job_failure:
                self._end(states.FAILED, error=job_error("INTERNAL", job.faults.job_failure))
                return
            try:
                rows = await self._load()
                await self._check_destination()
            except cloud.StorageProblem as problem:
                self._end(states.FAILED, error=job_error(problem.status, problem.message))
                return
            self._check()
            job.total = len(rows.items)
            job.touch()
            if not rows.items:
                self._end(
                    states.FAILED,
                    error=job_error("INVALID_ARGUMENT", "The batch has no requests: its input is empty."),
                )
                return
            self.sink = _Sink(
                kind=job.destination["kind"],
                path=service.store.job_work_dir(job.id) / "output.jsonl",
                schema=rows.schema,
                rows_from_bigquery=job.source["kind"] == "bigquery",
                task=job.task,
            )
            await self._process(rows)
        except _Stop as stop:
            await self._finish_stopped(stop.reason)
            return
        await self._finish()

    # --- input --------------------------------------------------------------------------

    async def _load(self) -> _Rows:
        job = self.job
        kind = job.source["kind"]
        clients = self.service.clients
        if kind == "gcs":
            lines = await self._io(cloud.read_gcs_lines, clients, job.source["uris"])
            line_row = _vertex_instance_line if job.task == "embed" else _vertex_jsonl_row
            return _Rows(lines, line_row, _identity_bytes)
        if kind == "bigquery":
            schema, rows = await self._io(cloud.read_bq_rows, clients, job.source["uri"], job.task)
            table_row = _bq_instance_row if job.task == "embed" else _bq_row
            return _Rows(rows, table_row, dumps, schema=schema)
        if kind == "file":
            try:
                path = self.service.files.data_path(job.source["name"])
            except Exception as exc:  # noqa: BLE001 - the file was deleted after create
                raise cloud.StorageProblem(
                    "NOT_FOUND", f"Input file {job.source['name']} does not exist."
                ) from exc
            data = await self._io(Path.read_bytes, path)
            return _Rows([ln for ln in data.split(b"\n") if ln.strip()], _gemini_file_row, _identity_bytes)
        if kind == "inline":
            requests = self.service.store.load_job_blob(job.id, "inline") or []
            return _Rows(requests, _inline_row, dumps)
        raise ValueError(f"unknown source kind {kind!r}")

    async def _check_destination(self) -> None:
        """Fail the job (a :class:`cloud.StorageProblem`) when its output table already exists."""
        destination = self.job.destination
        if destination["kind"] != "bigquery":
            return
        ref = cloud.parse_bq_uri(destination["uri"])
        if ref.table is not None:
            await self._io(cloud.ensure_bq_table_absent, self.service.clients, ref)

    # --- rows ---------------------------------------------------------------------------

    async def _process(self, rows: _Rows) -> None:
        job = self.job
        sink = self.sink
        assert sink is not None
        faults = job.faults
        latency_s = faults.row_latency_ms / 1000.0
        paused = faults.pause_s <= 0
        total = len(rows.items)
        half = (total + 1) // 2
        debt = 0.0
        index = 0
        answer = answer_for(job)
        breaks = job.task == "generate" and bool(faults.structured_break_ratio)
        while index < total:
            self._check()
            if not paused and index >= half:
                paused = True
                job.move_to(states.PAUSED)
                self.service.save(job)
                await self._sleep(faults.pause_s)
                job.move_to(states.RUNNING)
                self.service.save(job)
            started = time.perf_counter()
            stamp = time.time()
            limit = total if paused else half
            while index < limit:
                item = rows.items[index]
                request, context = rows.extract(item)
                if isinstance(request, _BadRow):
                    response, error = None, request.error
                elif (faults.row_failure_ratio or faults.row_permanent_failure_ratio) and (
                    injected := faults.row_error(rows.raw(item), job.id, self.service.row_failures)
                ):
                    response, error = None, injected
                else:
                    broken = faults.structured_break(rows.raw(item)) if breaks else None
                    try:
                        response, error = answer(request, broken), None
                    except InvalidRequest as exc:
                        response, error = None, exc.to_error()
                sink.add(index, request, context, response, error, stamp)
                if error is None:
                    job.succeeded += 1
                else:
                    job.failed += 1
                index += 1
                if latency_s:
                    debt += latency_s
                    if debt >= LATENCY_STEP_S:
                        break
                if time.perf_counter() - started >= SLICE_S:
                    break
            job.touch()
            if debt >= LATENCY_STEP_S:
                wait, debt = debt, 0.0
                await self._sleep(wait)
            else:
                await asyncio.sleep(0)
        if debt > 0:
            await self._sleep(debt)

    # --- endings ------------------------------------------------------------------------

    def _end(self, state: str, *, error: dict[str, Any] | None = None) -> None:
        job = self.job
        if error is not None:
            job.error = error
        job.move_to(state)
        self.service.save(job)
        self.service.forget_work(job.id)

    async def _write_outputs(self) -> None:
        """Write the spooled outputs where the job's destination says; set the output info."""
        job = self.job
        sink = self.sink
        assert sink is not None
        sink.close()
        clients = self.service.clients
        if sink.kind == "gcs":
            base = job.start_time or job.create_time
            folder = f"{job.destination['prefix'].rstrip('/')}/prediction-model-{output_folder_stamp(base)}"
            target = f"{folder}/predictions.jsonl"
            await self._io(cloud.write_gcs_file, clients, sink.path, target, "application/jsonl")
            job.output_info = {"gcsOutputDirectory": folder}
        elif sink.kind == "bigquery":
            job.output_info = await self._io(self._write_bigquery)
        elif sink.kind == "file":
            files = self.service.files
            file_id = f"batch-{job.id}"
            if file_id in files.files:
                files.delete(f"files/{file_id}")
            display = f"{job.display_name or job.name} results"
            meta = await self._io(
                functools.partial(files.store_bytes, source="GENERATED"),
                file_id,
                sink.path,
                display,
                "application/jsonl",
            )
            files.remember(meta)
            job.responses_file = f"files/{file_id}"
        elif sink.kind == "inline":
            self.service.set_inline_responses(job, sink.inline)
        job.touch()

    def _write_bigquery(self) -> dict[str, Any]:
        job = self.job
        sink = self.sink
        assert sink is not None
        clients = self.service.clients
        ref = cloud.parse_bq_uri(job.destination["uri"])
        stamp = (rfc3339(job.start_time or job.create_time) or "")[:23]
        stamp = re.sub(r"[-:.]", "_", stamp) + "Z"
        if ref.dataset is None:
            dataset = f"prediction_{_bq_name_part(job.model_id)}_{stamp}"
            cloud.create_bq_dataset(clients, ref.project, dataset)
            ref = cloud.BigQueryTable(ref.project, dataset, "predictions")
        else:
            cloud.ensure_bq_dataset(clients, ref)
            if ref.table is None:
                ref = cloud.BigQueryTable(ref.project, ref.dataset, f"predictions_{stamp}")
        cloud.load_bq_ndjson(
            clients, ref.table_id, cloud.output_schema(sink.input_schema(), job.task), sink.path
        )
        return {"bigqueryOutputDataset": ref.dataset_uri, "bigqueryOutputTable": ref.table}

    async def _finish(self) -> None:
        job = self.job
        try:
            await self._write_outputs()
        except cloud.StorageProblem as problem:
            self._end(states.FAILED, error=job_error(problem.status, problem.message))
            return
        if job.failed and job.faults.partial_success_state and job.backend == "vertex":
            self._end(states.PARTIALLY_SUCCEEDED)
        else:
            self._end(states.SUCCEEDED)

    async def _finish_stopped(self, reason: str) -> None:
        """End a cancelled or expired job, keeping the outputs of the rows already answered."""
        job = self.job
        started = time.monotonic()
        if reason == "cancel" and job.state != states.CANCELLING:
            job.move_to(states.CANCELLING)
            self.service.save(job)
        if self.sink is not None and self.sink.count:
            job.touch()
            try:
                await self._write_outputs()
            except cloud.StorageProblem as problem:
                job.error = job_error(problem.status, problem.message)
        if reason == "cancel":
            await asyncio.sleep(max(0.0, CANCEL_DWELL_S - (time.monotonic() - started)))
            self._end(states.CANCELLED)
        else:
            self._end(states.EXPIRED)


# --- row shapes ------------------------------------------------------------------------------


@dataclass
class _BadRow:
    """A row whose input line could not even be read as a request."""

    error: dict[str, Any]


def _bad(message: str) -> _BadRow:
    return _BadRow(row_error(400, message))


def _identity_bytes(item: bytes) -> bytes:
    return item


def _vertex_jsonl_row(line: bytes) -> tuple[Any, Any]:
    try:
        obj = loads(line)
    except ValueError:
        return _bad("Invalid JSON in the input line."), None
    if not isinstance(obj, dict) or "request" not in obj:
        return _bad('Each input line must be a JSON object with a "request" field.'), obj
    return obj["request"], obj


def _bq_row(row: dict[str, Any]) -> tuple[Any, Any]:
    request = row.get("request")
    if isinstance(request, str):
        try:
            request = loads(request)
        except ValueError:
            return _bad("The request column does not hold valid JSON."), row
    if request is None:
        return _bad("The request column is empty."), row
    return request, row


def _vertex_instance_line(line: bytes) -> tuple[Any, Any]:
    """A Vertex embedding input line: the line itself is the instance (``{"content": ...}``)."""
    try:
        obj = loads(line)
    except ValueError:
        return _bad("Invalid JSON in the input line."), None
    return obj, obj


def _bq_instance_row(row: dict[str, Any]) -> tuple[Any, Any]:
    """A Vertex embedding input row: the instance is its ``content`` (and ``task_type``,
    ``title`` when the table has them); every column passes through to the output."""
    instance = {name: row[name] for name in sorted(VERTEX_INSTANCE_FIELDS) if row.get(name) is not None}
    return instance, row


def _gemini_file_row(line: bytes) -> tuple[Any, Any]:
    try:
        obj = loads(line)
    except ValueError:
        return _bad("Invalid JSON in the input line."), {}
    if not isinstance(obj, dict) or "request" not in obj:
        return _bad('Each input line must be a JSON object with "key" and "request" fields.'), (
            obj if isinstance(obj, dict) else {}
        )
    return obj["request"], obj


def _inline_row(entry: Any) -> tuple[Any, Any]:
    if not isinstance(entry, dict) or "request" not in entry:
        return _bad('Each inlined request must be an object with a "request" field.'), {}
    return entry["request"], entry


@dataclass
class _Sink:
    """Collects row outputs in the destination's shape: a spool file, or a list for inline."""

    kind: str
    path: Path
    schema: list[Any] | None = None
    rows_from_bigquery: bool = False
    task: str = "generate"
    count: int = 0
    inline: list[dict[str, Any]] = field(default_factory=list)
    _block: list[tuple[int, bytes]] = field(default_factory=list)
    _handle: Any = None
    _closed: bool = False

    def input_schema(self) -> list[Any]:
        """The input columns an output table keeps: a table's own; for a JSONL source
        ``request`` (generation) or the instance fields (embeddings)."""
        if self.rows_from_bigquery and self.schema is not None:
            return self.schema
        from google.cloud import bigquery

        if self.task == "embed":
            return [bigquery.SchemaField(name, "STRING") for name in sorted(VERTEX_INSTANCE_FIELDS)]
        return [bigquery.SchemaField("request", "JSON")]

    def _embedding_line(self, instance: Any, context: Any, response: Any, error: Any) -> dict[str, Any]:
        """A Vertex embedding output: GCS ``{"instance", "predictions": [...], "status"}``
        (no ``predictions`` for a failed row); BigQuery the input columns plus ``predictions``
        (the list's JSON text, NULL for a failed row) and ``status``."""
        status = "" if error is None else vertex_status(error)
        if self.kind == "bigquery":
            if self.rows_from_bigquery and isinstance(context, dict):
                line = dict(context)
            else:
                source = instance if isinstance(instance, dict) else {}
                line = {name: source.get(name) for name in sorted(VERTEX_INSTANCE_FIELDS)}
            line["predictions"] = dumps([response]).decode() if error is None else None
            line["status"] = status
            return line
        line = {"instance": instance}
        if error is None:
            line["predictions"] = [response]
        line["status"] = status
        return line

    def add(
        self,
        index: int,
        request: Any,
        context: Any,
        response: dict[str, Any] | None,
        error: dict[str, Any] | None,
        stamp: float,
    ) -> None:
        """Record row ``index``'s outcome."""
        self.count += 1
        if self.kind == "inline":
            entry: dict[str, Any] = {"response": response} if error is None else {"error": error}
            metadata = context.get("metadata") if isinstance(context, dict) else None
            if metadata is not None:
                entry["metadata"] = metadata
            self.inline.append(entry)
            return
        if isinstance(request, _BadRow):
            if self.task == "embed" and self.kind in ("gcs", "bigquery"):
                request = context
            else:
                request = context.get("request") if isinstance(context, dict) else None
        if self.task == "embed" and self.kind in ("gcs", "bigquery"):
            line = self._embedding_line(request, context, response, error)
        elif self.kind == "file":
            line: dict[str, Any] = {}
            key = context.get("key") if isinstance(context, dict) else None
            if key is not None:
                line["key"] = key
            if error is None:
                line["response"] = response
            else:
                line["error"] = error
        elif self.kind == "bigquery":
            line = (
                dict(context)
                if self.rows_from_bigquery and isinstance(context, dict)
                else {"request": request}
            )
            line["response"] = response
            line["status"] = "" if error is None else vertex_status(error)
            line["processed_time"] = processed_time(stamp)
        else:
            line = {
                "status": "" if error is None else vertex_status(error),
                "processed_time": processed_time(stamp),
                "request": request,
            }
            if error is None:
                line["response"] = response
        self._block.append((zlib.crc32(index.to_bytes(8, "big")), dumps(line)))
        if len(self._block) >= SHUFFLE_BLOCK:
            self.flush()

    def flush(self) -> None:
        """Write the buffered block, shuffled (output order is not input order)."""
        if not self._block:
            return
        if self._handle is None:
            self._handle = open(self.path, "ab")
        self._block.sort()
        self._handle.write(b"".join(data + b"\n" for _, data in self._block))
        self._block.clear()

    def close(self) -> None:
        """Flush and close the spool file (it exists afterwards, even if empty); idempotent."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._handle is None:
            self._handle = open(self.path, "ab")
        self._handle.close()
        self._handle = None
