"""Build batch requests from a prompts query and a request template, server-side.

Two outputs, one SQL expression for the request (request_sql):

* a BigQuery table ``(key STRING, request JSON)`` for ``bq://`` jobs: one ``CREATE OR REPLACE
  TABLE ... AS SELECT``; no row leaves BigQuery.
* JSONL files in GCS for ``gs://`` jobs (``{"request": ...}`` lines for Vertex, with the key in
  ``request.labels``; ``{"key", "request"}`` lines for the Gemini API). BigQuery builds every
  line as a string; the worker only pages through the query result and appends the lines to a
  GCS resumable upload.

Trade-off of the JSONL path: in production, ``EXPORT DATA ... OPTIONS(format='JSON')`` would
write the files without the worker, but the BigQuery emulator cannot export to gs:// (its
exports land where the GCS emulator cannot see them). One code path serves both, so the worker
streams: memory stays bounded by one result page plus one upload chunk (about ``page_size``
lines and 8 MiB), and the bytes cross the worker once. Files roll over before a per-job limit
(requests or bytes) would be crossed, so the export is also the sharding of a built input.

Invariants: prompt text and keys are never formatted into SQL (they are columns, made JSON by
``TO_JSON_STRING``); the template is a query parameter; a template that would make an invalid
request is refused before any query runs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.limits import VERTEX_LIMITS, JobLimits
from gemini_batch.pipeline.refs import GcsUri, TableRef
from gemini_batch.pipeline.request_shape import KEY_LABEL, check_request

if TYPE_CHECKING:
    from google.cloud import bigquery, storage

__all__ = [
    "BuiltFile",
    "RequestTemplate",
    "build_bigquery_requests",
    "export_requests_jsonl",
    "keep_by_content",
    "set_expiry",
    "source_subquery",
]

JsonlFormat = Literal["vertex_jsonl", "gemini_jsonl"]

#: The contents a template is checked with: any one non-blank user turn (the prompt takes its place).
_PLACEHOLDER_CONTENTS = [{"role": "user", "parts": [{"text": "x"}]}]
#: Rows of the query result read at a time: what bounds the worker's memory, with the upload chunk.
EXPORT_PAGE_ROWS = 5_000
#: Bytes sent per resumable-upload request (GCS takes only whole multiples of 256 KiB).
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class RequestTemplate:
    """A GenerateContentRequest without its ``contents``: the part every request shares.

    Load one with :meth:`from_file` (e.g. ``include/templates/request.json``): a JSON object with
    ``systemInstruction``, ``generationConfig`` (with an optional ``responseSchema``),
    ``safetySettings``, ``tools``... in the REST spelling. Each request is the template plus
    ``contents`` holding the prompt as one user turn.

    :param fields_json: The template as canonical JSON text (immutable and hashable).
    """

    fields_json: str

    def __post_init__(self) -> None:
        fields = json.loads(self.fields_json)
        if not isinstance(fields, dict):
            raise ValueError(
                "a request template is a JSON object (a GenerateContentRequest without contents)"
            )
        if "contents" in fields:
            raise ValueError("a request template must not hold 'contents': the prompt becomes the contents")
        problems = check_request({**fields, "contents": _PLACEHOLDER_CONTENTS}, path="template")
        if problems:
            raise ValueError("invalid request template: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> RequestTemplate:
        return cls(json.dumps(dict(fields), sort_keys=True, separators=(",", ":")))

    @classmethod
    def from_file(cls, path: str | Path) -> RequestTemplate:
        """Read a template file; errors name the file."""
        try:
            return cls.from_dict(json.loads(Path(path).read_bytes()))  # JSON bytes are UTF-8 (RFC 8259)
        except (ValueError, OSError) as error:
            raise ValueError(f"{path}: {error}") from error

    @property
    def fields(self) -> dict[str, Any]:
        return json.loads(self.fields_json)

    def with_generation_config(self, **overrides: Any) -> RequestTemplate:
        """A copy with ``generationConfig`` fields replaced (None values are dropped)."""
        fields = self.fields
        name = "generation_config" if "generation_config" in fields else "generationConfig"
        config = {**fields.get(name, {}), **{k: v for k, v in overrides.items() if v is not None}}
        return RequestTemplate.from_dict({**fields, name: config})

    def render(self, prompt: str, *, key: str | None = None, key_label: str = KEY_LABEL) -> dict[str, Any]:
        """One request in Python (inline jobs and tests); the SQL path builds the same JSON."""
        request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}], **self.fields}
        if key is not None:
            request["labels"] = {**request.get("labels", {}), key_label: key}
        return request

    def json_suffix(self) -> str:
        """The template's fields as a JSON text fragment that follows ``contents`` in an object."""
        body = self.fields_json[1:-1]
        return f",{body}" if body else ""


def request_sql(template: RequestTemplate, key_label: str | None = None) -> str:
    """A SQL STRING expression of the request JSON text, over columns ``key`` and ``prompt``.

    Uses the query parameter ``@template_suffix`` (its value is :meth:`RequestTemplate.json_suffix`).

    :param key_label: Optional. Also put the key in ``request.labels[key_label]``.
    """
    labels = ""
    if key_label is not None:
        if "labels" in template.fields:
            raise ValueError(
                "a template with its own labels cannot carry the key label; drop 'labels' from it"
            )
        labels = f"',\"labels\":{{\"{key_label}\":', TO_JSON_STRING(key), '}}', "
    return (
        'CONCAT(\'{"contents":[{"role":"user","parts":[{"text":\', TO_JSON_STRING(prompt), \'}]}]\', '
        f"{labels}@template_suffix, '}}')"
    )


def source_subquery(source_sql: str) -> str:
    """A user query (the prompts or documents of an interval) as a parenthesized subquery."""
    text = source_sql.strip().removesuffix(";")
    if not text:
        raise ValueError("the prompts query is empty")
    return f"(\n{text}\n)"


def build_bigquery_requests(
    client: bigquery.Client,
    *,
    source_sql: str,
    destination: TableRef,
    template: RequestTemplate,
    params: Mapping[str, Any] | None = None,
    key_label: str | None = None,
    expires: dt.timedelta | None = None,
) -> int:
    """Create (or replace) ``destination`` as ``(key STRING, request JSON)`` from a prompts query.

    :param client: Required. A ``google.cloud.bigquery.Client``.
    :param source_sql: Required. A SELECT with columns ``key`` and ``prompt`` (it may use the
        query parameters in ``params``, e.g. ``@interval_start``).
    :param destination: Required. The requests table (replaced: a re-run rebuilds it).
    :param template: Required. The request template.
    :param params: Optional. Query parameters of ``source_sql``.
    :param key_label: Optional. Also put the key in ``request.labels[key_label]`` (not needed
        for ``bq://`` jobs, which pass the ``key`` column through).
    :param expires: Optional. Let BigQuery drop the table this long after it is built (a
        run-scoped table must outlive its job: up to 72 h queued and 24 h running).
    :return: The number of requests built.
    """
    request = request_sql(template, key_label)
    text = sql.render(
        "build_requests.sql", destination=destination.sql, source=source_subquery(source_sql), request=request
    )
    values = {**(params or {}), "template_suffix": template.json_suffix()}
    sql.run(client, text, **values)
    if expires is not None:
        set_expiry(client, destination, expires)
    return int(sql.query_one(client, f"SELECT COUNT(*) AS n FROM {destination.sql}")["n"])


def keep_by_content(
    client: bigquery.Client,
    built: TableRef,
    *,
    name: str,
    expires: dt.timedelta | None = None,
    request_column: str = "request",
) -> tuple[TableRef, str]:
    """Publish a built requests table as ``<name>_<content fingerprint>`` and drop the built one.

    The published table is created once per content and never replaced (``keep_table.sql``): a
    job of an earlier run may be reading it, and its name says it holds the same requests. A job
    source named by content is what makes a changed input new work and an unchanged one not.

    :param built: Required. The table just built (run-scoped; dropped afterwards).
    :param name: Required. The published table's name before the fingerprint (e.g. ``requests_20260101``).
    :param expires: Optional. Let BigQuery drop the published table this long from now (renewed by
        every run that publishes it).
    :param request_column: Optional. The column hashed with the key (``content`` for documents).
    :return: The published table and the content fingerprint.
    """
    from gemini_batch.pipeline.fingerprints import table_fingerprint

    fingerprint = table_fingerprint(client, built, request_column=request_column)
    target = built.sibling(f"{name}_{fingerprint}")
    sql.run(client, sql.render("keep_table.sql", destination=target.sql, source=built.sql))
    if expires is not None:
        set_expiry(client, target, expires)
    client.delete_table(built.api_repr, not_found_ok=True)
    return target, fingerprint


def set_expiry(client: bigquery.Client, table: TableRef, after: dt.timedelta) -> None:
    """Let BigQuery drop ``table`` ``after`` from now (metadata only)."""
    current = client.get_table(table.api_repr)
    current.expires = dt.datetime.now(dt.timezone.utc) + after
    client.update_table(current, ["expires"])


@dataclass(frozen=True)
class BuiltFile:
    """One JSONL file written by :func:`export_requests_jsonl`.

    :param uri: ``gs://`` URI of the file.
    :param requests: Lines (requests) in it.
    :param bytes: Its size.
    """

    uri: str
    requests: int
    bytes: int


def export_requests_jsonl(
    client: bigquery.Client,
    storage_client: storage.Client,
    *,
    source_sql: str,
    destination: str,
    template: RequestTemplate,
    params: Mapping[str, Any] | None = None,
    input_format: JsonlFormat = "vertex_jsonl",
    limits: JobLimits = VERTEX_LIMITS,
    key_label: str = KEY_LABEL,
    page_size: int = EXPORT_PAGE_ROWS,
    chunk_size: int = UPLOAD_CHUNK_BYTES,
) -> list[BuiltFile]:
    """Write the requests of a prompts query as JSONL files in GCS, split under ``limits``.

    BigQuery builds each line; the worker pages through the result and streams the lines into
    resumable uploads (see the module docstring for why). ``destination`` ending in ``.jsonl``
    names the single file (an error if the limits would need more); otherwise it is a prefix and
    files are ``<prefix>/requests-00000.jsonl``, ``-00001``...

    :return: The files written, in order (an empty query writes one empty file).
    """
    if input_format == "vertex_jsonl":
        line = f"CONCAT('{{\"request\":', {request_sql(template, key_label)}, '}}')"
    elif input_format == "gemini_jsonl":
        line = f"CONCAT('{{\"key\":', TO_JSON_STRING(key), ',\"request\":', {request_sql(template)}, '}}')"
    else:
        raise ValueError(f"unknown JSONL format {input_format!r}")
    text = sql.render("export_requests.sql", source=source_subquery(source_sql), line=line)
    values = {**(params or {}), "template_suffix": template.json_suffix()}
    target = GcsUri.parse(destination)
    single = target.name.endswith(".jsonl")
    rows = client.query(text, job_config=sql.job_config(values)).result(page_size=page_size)

    files: list[BuiltFile] = []
    requests = size = 0

    def open_next() -> tuple[Any, Any]:
        """The next file's blob and its resumable-upload writer."""
        name = target.name if single else target.child(f"requests-{len(files):05d}.jsonl").name
        blob = storage_client.bucket(target.bucket).blob(name)
        blob.content_type = "application/jsonl"
        return blob, blob.open("wb", chunk_size=chunk_size, ignore_flush=True)

    blob, writer = open_next()
    try:
        for page in rows.pages:
            for row in page:
                data = row["line"].encode() + b"\n"
                if requests and (requests + 1 > limits.max_requests or size + len(data) > limits.max_bytes):
                    if single:
                        raise ValueError(
                            f"{destination}: the requests exceed the {limits.name} limits ({limits.max_requests:,} "
                            f"requests, {limits.max_bytes:,} bytes) for one file; give a prefix to shard"
                        )
                    writer.close()
                    files.append(BuiltFile(f"gs://{target.bucket}/{blob.name}", requests, size))
                    blob, writer = open_next()
                    requests = size = 0
                writer.write(data)
                requests += 1
                size += len(data)
        writer.close()
    except BaseException:
        # The open upload is cancelled (never a partial object: a BlobWriter that is only dropped is
        # closed, so finished, when it is garbage-collected); finished files go too, so no half of
        # an input looks like a whole one.
        from google.api_core.exceptions import NotFound

        if not writer.closed:
            writer.terminate()
        for done in files:
            try:
                storage_client.bucket(target.bucket).blob(GcsUri.parse(done.uri).name).delete()
            except NotFound:
                pass
        raise
    files.append(BuiltFile(f"gs://{target.bucket}/{blob.name}", requests, size))
    return files
