"""Stream a JSONL batch input once: validate every line, count it, and plan its shards.

Invariants:

* Memory is bounded by the chunk size, the longest allowed line and 12 bytes per request (a
  64-bit key digest and a line number), never by the file: a 1 GB JSONL file is read once, as a
  stream, and never held whole.
* Every line gets the same verdict and messages whichever way it is read: a common request is
  proven fine while msgspec parses it (:mod:`~gemini_batch.pipeline.typed_reading`), any other
  line orjson reads and the rules find fine is accepted next (:func:`_clean_line_key`), both with
  an exact duplicate-member check; every other line is examined by the strict stdlib decoder,
  which gives each problem its column (:func:`_examine_line`).
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
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import orjson

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
from gemini_batch.pipeline.typed_reading import no_duplicate_members, typed_keys, typed_line_key

if TYPE_CHECKING:
    from google.cloud import storage

__all__ = ["InputFormat", "scan_gcs_jsonl", "scan_jsonl"]

InputFormat = Literal["vertex_jsonl", "gemini_jsonl"]

_CHUNK_BYTES = 4 * 1024 * 1024


_Line = tuple[int, int, int, "bytes | None"]


def _iter_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[list[_Line]]:
    """Yield the lines of a binary stream, a chunk's worth at a time, each line as
    ``(line_number, offset, length, content)``.

    ``length`` counts the newline. ``content`` excludes it, and is None for a line longer than
    ``max_line_bytes``, which is skipped without being held. A final line without a newline is
    yielded too. Each chunk is cut into lines by one ``bytes.split`` (C speed); only a line that
    spans two chunks is copied.
    """
    line_number = 0
    offset = 0
    carried = bytearray()  # the start of a line that goes on in the next chunk (while under the limit)
    carried_length = 0  # that start's length, also once it is over the limit and no longer held
    while chunk := stream.read(_CHUNK_BYTES):
        pieces = chunk.split(b"\n")
        tail = pieces.pop()
        lines: list[_Line] = []
        for piece in pieces:
            line_number += 1
            if carried_length:
                length = carried_length + len(piece)
                content = bytes(carried) + piece if length <= max_line_bytes else None
                carried.clear()
                carried_length = 0
            else:
                length = len(piece)
                content = piece if length <= max_line_bytes else None
            lines.append((line_number, offset, length + 1, content))
            offset += length + 1
        if lines:
            yield lines
        if tail:
            carried_length += len(tail)
            if carried_length <= max_line_bytes:
                carried += tail
            else:
                carried.clear()
    if carried_length:
        content = bytes(carried) if carried_length <= max_line_bytes else None
        yield [(line_number + 1, offset, carried_length, content)]


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

    for lines in _iter_lines(stream, limits.max_line_bytes):
        typed = typed_keys([line[3] for line in lines], input_format, key_label)
        for (line_number, offset, length, content), typed_key in zip(lines, typed, strict=True):
            total = offset + length
            if content is None:
                issues.add(
                    f"{source}:{line_number}",
                    f"line is {length:,} bytes long (limit: {limits.max_line_bytes:,} bytes per line); "
                    f"shorten the request or move large media to fileData URIs",
                )
                continue
            if not content or content.isspace():  # as ``not content.strip()``, without a copy
                previous_blank = line_number
                continue
            if previous_blank is not None:
                issues.add(f"{source}:{previous_blank}", "blank line inside the file; remove it")
                previous_blank = None
            if typed_key is not None:  # nearly every line of a good file
                key = typed_key
            else:
                problems, key = _check_line(content, input_format, key_label, line_number == 1)
                for problem in problems:
                    issues.add(f"{source}:{line_number}", problem)
            if key is not None:
                keys.add(key, line_number)
            requests += 1
            # Plan shards on the fly: close the current shard when this line would break a limit.
            if length > limits.max_bytes:
                issues.add(
                    f"{source}:{line_number}",
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


class _StrictJsonError(ValueError):
    """A JSON text Python's parser takes but the services' parsers (and BigQuery's loads) refuse.

    :param member: The repeated member's name, or None for a NaN or Infinity (to find its column).
    """

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.member = member


def _reject_constant(name: str) -> Any:
    raise _StrictJsonError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity); write a number or null")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        name = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _StrictJsonError(f"duplicate member {name!r} in an object; keep one", name)
    return record


# Strict JSON, as the services' proto JSON parsers read it: Python's json module takes NaN,
# Infinity and duplicate members, which the service (or the BigQuery load of the same file) then
# refuses after the job has run. The hooks cost one call per object, only on the C fast path.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_members)
# A \uD800-\uDFFF escape: Python decodes a lone one into a string that cannot be encoded again.
_SURROGATE_ESCAPE = re.compile(r"\\+u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _lone_surrogate_column(text: str) -> int | None:
    """The 1-based column of the first escaped lone surrogate (``\\ud800`` unpaired), else None."""
    pending: tuple[int, int] | None = None  # (column, end) of a high surrogate awaiting its low half
    for match in _SURROGATE_ESCAPE.finditer(text):
        if len(match.group()) % 2 == 1:  # backslashes and 'uXXXX': an even count of backslashes
            continue  # is escaped backslashes followed by 'u...': not an escape
        start = match.end() - 6
        high = match.group()[-3] in "89abAB"
        if pending is not None and (high or start != pending[1]):
            return pending[0]
        if high:
            pending = (start + 1, match.end())
        elif pending is None:
            return start + 1
        else:
            pending = None
    return None if pending is None else pending[0]


_CONSTANT = re.compile(r"-?Infinity|NaN")


def _strict_error_column(text: str, error: _StrictJsonError) -> int:
    """Best-effort column of a strict-JSON error (outside string literals), for the message: the
    first NaN or Infinity, or a repeated member's second name (1 when it is written otherwise)."""
    if error.member is None:
        return next((match.start() + 1 for match in _outside_strings(text, _CONSTANT)), 1)
    target = re.compile(re.escape(json.dumps(error.member)) + r"\s*:")
    starts = [match.start() for match in _outside_strings(text, target)]
    return starts[1] + 1 if len(starts) > 1 else 1


def _outside_strings(text: str, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """Matches of ``pattern`` that do not start inside a string literal (a key's own quote is fine)."""
    inside = [(m.start(), m.end()) for m in re.finditer(r'"(?:[^"\\]|\\.)*"', text)]
    for match in pattern.finditer(text):
        if not any(start < match.start() < end for start, end in inside):
            yield match


def _check_line(
    content: bytes, input_format: InputFormat, key_label: str, first: bool
) -> tuple[list[str], str | None]:
    """The problems of one JSONL line, and its key when it has a usable one.

    One set of rules, three ways to read the line, fastest first: the typed reading
    (:func:`~gemini_batch.pipeline.typed_reading.typed_line_key`, msgspec: checked while parsed)
    answers for a common request it can prove fine, which is nearly every line of a good file;
    :func:`_clean_line_key` (orjson, then the rules in Python) for any other request it can prove
    fine (tools, function calls, snake_case names...); every other line is read again by
    :func:`_examine_line` (the stdlib's decoder with strict hooks), which finds each problem with
    its column. A line is never accepted by a faster reading that the exact one would refuse.
    """
    key = typed_line_key(content, input_format, key_label)
    if key is None:
        key = _clean_line_key(content, input_format, key_label)
    if key is not None:
        return [], key
    return _examine_line(content, input_format, key_label, first)


def _clean_line_key(content: bytes, input_format: InputFormat, key_label: str) -> str | None:
    """The key of a line proven fine, or None when the line may have a problem.

    orjson is as strict as :data:`_DECODER` in all but two ways, both covered:

    * it takes the last of duplicate members, where the strict decoder refuses them:
      :func:`~gemini_batch.pipeline.typed_reading.no_duplicate_members` proves there are none, or sends the line on;
    * it reads an integer beyond 64 bits as a float, where the stdlib keeps an int: no rule
      accepts such a float where it would refuse the int (ranges hold both or neither; a
      positive-integer field refuses the float, so the line is examined again).

    It refuses all else the strict decoder refuses (invalid UTF-8, a byte order mark, NaN and
    Infinity, numbers beyond a double such as ``1e400``, lone surrogate escapes, control characters
    in strings), and such a line is examined again. The request rules (:func:`check_request`) and
    the key (:func:`_line_key`) are the same functions both ways. ``tests/pipeline/
    test_jsonl_fast_path.py`` checks the two readings agree on generated good and broken lines.
    """
    try:
        record = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or "request" not in record or check_request(record["request"]):
        return None
    key, problem = _line_key(record, input_format, key_label)
    if problem is not None or not no_duplicate_members([content], [record], orjson.dumps):
        return None
    return key


def _examine_line(
    content: bytes, input_format: InputFormat, key_label: str, first: bool
) -> tuple[list[str], str | None]:
    """Every problem of one JSONL line, each with its column where it has one, and its key."""
    if first and content.startswith(b"\xef\xbb\xbf"):
        # RFC 8259 section 8.1: JSON text MUST NOT start with a byte order mark, and a parser only
        # MAY ignore one. No Google reference for batch input says a BOM is accepted, and the same
        # file is loaded by BigQuery to reconcile the keys: refuse it here, before any job.
        return [
            "the file starts with a UTF-8 byte order mark (column 1); save it as UTF-8 without a BOM"
        ], None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        column = len(content[: error.start].decode("utf-8", "replace")) + 1
        return [
            f"not valid UTF-8 at column {column} (byte {error.start + 1} of the line): {error.reason}; "
            f"save the file as UTF-8"
        ], None
    try:
        record = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        return [f"invalid JSON at column {error.colno}: {error.msg}; fix the line"], None
    except _StrictJsonError as error:
        return [f"invalid JSON at column {_strict_error_column(text, error)}: {error}"], None
    except RecursionError:  # the stdlib decoder recurses once per level
        return [_TOO_DEEP], None
    if ("\\u" in text) and (column := _lone_surrogate_column(text)) is not None:
        return [
            f"invalid JSON at column {column}: a lone UTF-16 surrogate escape (\\ud800-\\udfff without "
            f"its pair) is no character; remove it or write the pair"
        ], None
    if not isinstance(record, dict):
        return [f'a line must be a JSON object like {{"request": {{...}}}}, got {json_type(record)}'], None
    if "request" not in record:
        found = ", ".join(sorted(record)[:5]) or "nothing"
        return [f"'request' is missing (found {found}); each line is {{\"request\": {{...}}}}"], None
    problems = check_request(record["request"])
    key, problem = _line_key(record, input_format, key_label)
    if problem is not None:
        problems.append(problem)
    return problems, key


_TOO_DEEP = (
    "the line nests arrays or objects too deeply to be read (about a thousand levels); flatten the request"
)


def _line_key(
    record: dict[str, Any], input_format: InputFormat, key_label: str
) -> tuple[str | None, str | None]:
    """A line's key, or None and why it has no usable one."""
    key: Any
    if input_format == "gemini_jsonl":
        key = record.get("key")
        if key is None:
            return None, '\'key\' is missing; Gemini API file lines are {"key": "...", "request": {...}}'
        if not isinstance(key, str) or not key:
            return None, f"'key' must be a non-empty string, got {key!r}"
        return key, None
    request = record["request"]
    labels = request.get("labels") if isinstance(request, dict) else None
    key = labels.get(key_label) if isinstance(labels, dict) else None
    if key is None:
        return None, (
            f"request.labels.{key_label} is missing: Vertex passes no key through JSONL, so each "
            f"request carries its key in this label"
        )
    if not isinstance(key, str) or not key:
        return None, f"request.labels.{key_label} must be a non-empty string, got {key!r}"
    return key, None


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
