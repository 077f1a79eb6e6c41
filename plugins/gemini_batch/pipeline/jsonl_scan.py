"""Stream a JSONL batch input once: validate every line, count it, and plan its shards.

Invariants:

* Memory is bounded by the chunk size, the longest allowed line and 12 bytes per request (a
  64-bit key digest and a line number), never by the file: a 1 GB JSONL file is read once, as a
  stream, and never held whole.
* The scan that validates a JSONL file also plans its shards (contiguous byte ranges under the
  per-job limits), so sharding needs no second read of the file to find line boundaries. A file
  of exactly ``max_requests`` lines (and at most ``max_bytes``) is one shard.

Input formats (see docs/design.md and the wire reference):

``vertex_jsonl``
    ``{"request": {GenerateContentRequest}}`` per line. Vertex passes no key through, so the key is
    carried inside the request as ``request.labels[KEY_LABEL]`` and echoed back in the output.
``gemini_jsonl``
    ``{"key": "...", "request": {GenerateContentRequest}}`` per line (Gemini API Files API input).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from gemini_batch.pipeline.findings import (
    InputScan,
    InputValidationError,
    Issues,
    KeyIndex,
    ShardSpan,
    ValidationIssue,
)
from gemini_batch.pipeline.limits import VERTEX_LIMITS, JobLimits
from gemini_batch.pipeline.request_shape import KEY_LABEL, check_request, json_type

if TYPE_CHECKING:
    from google.cloud import storage

__all__ = ["InputFormat", "scan_gcs_jsonl", "scan_jsonl"]

InputFormat = Literal["vertex_jsonl", "gemini_jsonl"]

_CHUNK_BYTES = 4 * 1024 * 1024


def _iter_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, int, int, bytes | None]]:
    """Yield ``(line_number, offset, length, content)`` for each line of a binary stream.

    ``length`` counts the newline. ``content`` excludes it, and is None for a line longer than
    ``max_line_bytes``, which is skipped without being held. A final line without a newline is
    yielded too.
    """
    line_number = 0
    offset = 0
    pending = bytearray()
    overlong = False
    overlong_length = 0
    while True:
        chunk = stream.read(_CHUNK_BYTES)
        if not chunk:
            break
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            if newline < 0:
                piece = chunk[start:]
                if overlong:
                    overlong_length += len(piece)
                elif len(pending) + len(piece) > max_line_bytes:
                    overlong, overlong_length = True, len(pending) + len(piece)
                    pending.clear()
                else:
                    pending += piece
                break
            piece = chunk[start:newline]
            line_number += 1
            if overlong or len(pending) + len(piece) > max_line_bytes:
                length = (overlong_length if overlong else len(pending)) + len(piece) + 1
                yield line_number, offset, length, None
                overlong, overlong_length = False, 0
            else:
                content = bytes(pending) + piece if pending else piece
                length = len(content) + 1
                yield line_number, offset, length, content
            pending.clear()
            offset += length
            start = newline + 1
    if overlong or pending:
        line_number += 1
        if overlong:
            yield line_number, offset, overlong_length, None
        else:
            yield line_number, offset, len(pending), bytes(pending)


def scan_jsonl(
    stream: BinaryIO,
    *,
    source: str,
    input_format: InputFormat = "vertex_jsonl",
    limits: JobLimits = VERTEX_LIMITS,
    enforce_limits: bool = True,
    key_label: str = KEY_LABEL,
    max_issues: int = 25,
) -> InputScan:
    """Validate a JSONL batch input as a stream and plan its shards.

    Checks every line: UTF-8 and JSON syntax, an object with a ``request`` shaped like a
    GenerateContentRequest (:func:`check_request`), a key (``request.labels[key_label]`` for
    ``vertex_jsonl``, top-level ``key`` for ``gemini_jsonl``) that is present and unique, no blank
    lines, no line longer than ``limits.max_line_bytes``; then the per-job limits.

    :param stream: Required. A binary stream positioned at the start of the file.
    :param source: Required. The file's name for messages, e.g. ``gs://bucket/in.jsonl``.
    :param input_format: ``vertex_jsonl`` (default) or ``gemini_jsonl``.
    :param limits: The per-job limits (default: Vertex AI's).
    :param enforce_limits: True (default): an input over the request or byte limit is an error.
        False: it is fine, and the returned plan splits it into shards under the limits.
    :param key_label: The request label that carries the key in ``vertex_jsonl``.
    :param max_issues: How many problems to list before only counting them.
    :return: The figures and the shard plan.
    :raises InputValidationError: With every problem found, each naming the file and line.
    """
    if input_format not in ("vertex_jsonl", "gemini_jsonl"):
        raise ValueError(f"unknown input format {input_format!r}; use 'vertex_jsonl' or 'gemini_jsonl'")
    issues = Issues(max_issues)
    keys = KeyIndex()
    requests = 0
    total = 0
    shards: list[ShardSpan] = []
    shard_start = shard_requests = shard_first_line = 0
    previous_blank: int | None = None

    for line_number, offset, length, content in _iter_lines(stream, limits.max_line_bytes):
        where = f"{source}:{line_number}"
        total = offset + length
        if content is None:
            issues.add(
                where,
                f"line is {length:,} bytes long (limit: {limits.max_line_bytes:,} bytes per line); "
                f"shorten the request or move large media to fileData URIs",
            )
            continue
        if not content.strip():
            previous_blank = line_number
            continue
        if previous_blank is not None:
            issues.add(f"{source}:{previous_blank}", "blank line inside the file; remove it")
            previous_blank = None
        problems, key = _check_line(content, input_format, key_label, line_number == 1)
        for problem in problems:
            issues.add(where, problem)
        if key is not None:
            keys.add(key, line_number)
        requests += 1
        # Plan shards on the fly: close the current shard when this line would break a limit.
        if length > limits.max_bytes:
            issues.add(
                where,
                f"one request of {length:,} bytes exceeds the {limits.name} limit of "
                f"{limits.max_bytes:,} bytes per job; it cannot be sharded",
            )
        if shard_requests and (
            shard_requests + 1 > limits.max_requests or offset + length - shard_start > limits.max_bytes
        ):
            shards.append(ShardSpan(len(shards), shard_start, offset, shard_requests, shard_first_line))
            shard_requests = 0
        if not shard_requests:
            shard_start, shard_first_line = offset, line_number
        shard_requests += 1
    if shard_requests:
        shards.append(ShardSpan(len(shards), shard_start, total, shard_requests, shard_first_line))

    for line, first_line in keys.duplicates():
        issues.add(
            f"{source}:{line}",
            f"duplicate key: the same key is on line {first_line}; keys must be unique in a job "
            f"so every answer can be matched to its request",
        )
    if requests == 0 and not issues:
        issues.add(source, "the file holds no requests; a batch job needs at least one")
    if enforce_limits:
        if requests > limits.max_requests:
            issues.add(
                source,
                f"{requests:,} requests exceed the {limits.name} limit of {limits.max_requests:,} "
                f"requests per job; split the input into {math.ceil(requests / limits.max_requests)} "
                f"shards (enforce_limits=False plans them)",
            )
        if total > limits.max_bytes:
            issues.add(
                source,
                f"{total:,} bytes exceed the {limits.name} limit of {limits.max_bytes:,} bytes per "
                f"job; split the input into shards (enforce_limits=False plans them)",
            )
    issues.raise_if_any(source)
    return InputScan(
        source=source,
        input_format=input_format,
        requests=requests,
        bytes=total,
        limits=limits,
        shards=tuple(shards),
    )


def _check_line(
    content: bytes, input_format: InputFormat, key_label: str, first: bool
) -> tuple[list[str], str | None]:
    """The problems of one JSONL line, and its key when it has a usable one."""
    if first and content.startswith(b"\xef\xbb\xbf"):
        return ["the file starts with a UTF-8 byte order mark; save it without a BOM"], None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        return [f"not valid UTF-8 at byte {error.start + 1} of the line; save the file as UTF-8"], None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        return [f"invalid JSON at column {error.colno}: {error.msg}"], None
    if not isinstance(record, dict):
        return [f'a line must be a JSON object like {{"request": {{...}}}}, got {json_type(record)}'], None
    if "request" not in record:
        found = ", ".join(sorted(record)[:5]) or "nothing"
        return [f"'request' is missing (found {found}); each line is {{\"request\": {{...}}}}"], None
    problems = check_request(record["request"])
    key: Any = None
    if input_format == "gemini_jsonl":
        key = record.get("key")
        if key is None:
            problems.append('\'key\' is missing; Gemini API file lines are {"key": "...", "request": {...}}')
        elif not isinstance(key, str) or not key:
            problems.append(f"'key' must be a non-empty string, got {key!r}")
            key = None
    else:
        labels = record["request"].get("labels") if isinstance(record["request"], dict) else None
        key = labels.get(key_label) if isinstance(labels, dict) else None
        if key is None:
            problems.append(
                f"request.labels.{key_label} is missing: Vertex passes no key through JSONL, so each "
                f"request carries its key in this label"
            )
        elif not isinstance(key, str) or not key:
            problems.append(f"request.labels.{key_label} must be a non-empty string, got {key!r}")
            key = None
    return problems, key


def scan_gcs_jsonl(
    uri: str,
    *,
    storage_client: storage.Client,
    input_format: InputFormat = "vertex_jsonl",
    limits: JobLimits = VERTEX_LIMITS,
    enforce_limits: bool = True,
    key_label: str = KEY_LABEL,
    max_issues: int = 25,
    chunk_size: int = 8 * 1024 * 1024,
) -> InputScan:
    """:func:`scan_jsonl` over a GCS object, streamed in ``chunk_size`` ranged reads.

    :param uri: Required. ``gs://bucket/path.jsonl``.
    :param storage_client: Required. A ``google.cloud.storage.Client``.
    :raises InputValidationError: If the object does not exist, or for any problem in it.
    """
    from google.api_core.exceptions import NotFound

    from gemini_batch.pipeline.refs import GcsUri

    ref = GcsUri.parse(uri)
    blob = storage_client.bucket(ref.bucket).get_blob(ref.name)
    if blob is None:
        raise InputValidationError(
            uri, [ValidationIssue(uri, "the object does not exist; check the path and the data interval")]
        )
    try:
        with blob.open("rb", chunk_size=chunk_size) as stream:
            return scan_jsonl(
                stream,
                source=uri,
                input_format=input_format,
                limits=limits,
                enforce_limits=enforce_limits,
                key_label=key_label,
                max_issues=max_issues,
            )
    except NotFound as error:  # deleted between the lookup and the read
        raise InputValidationError(uri, [ValidationIssue(uri, f"the object disappeared: {error}")]) from error
