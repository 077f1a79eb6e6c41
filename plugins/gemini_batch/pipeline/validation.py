"""Validation of batch inputs before anything is submitted.

Invariants:

* Memory is bounded by the chunk size, the longest allowed line and 12 bytes per request (a
  64-bit key digest and a line number), never by the file: a 1 GB JSONL file is read once, as a
  stream, and never held whole.
* Every problem names where it is (``gs://bucket/file.jsonl:LINE``, or a BigQuery table and
  column), what is wrong, the limit where one applies, and the remedy. All problems found (up to
  ``max_issues``) are raised together in one :class:`InputValidationError`; a caller that gets
  one submits nothing.
* The scan that validates a JSONL file also plans its shards (contiguous byte ranges under the
  per-job limits), so sharding needs no second read of the file to find line boundaries.

Input formats (see docs/design.md and the wire reference):

``vertex_jsonl``
    ``{"request": {GenerateContentRequest}}`` per line. Vertex passes no key through, so the key is
    carried inside the request as ``request.labels[KEY_LABEL]`` and echoed back in the output.
``gemini_jsonl``
    ``{"key": "...", "request": {GenerateContentRequest}}`` per line (Gemini API Files API input).
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from gemini_batch.pipeline.limits import GEMINI_API_INLINE_LIMITS, VERTEX_LIMITS, JobLimits

if TYPE_CHECKING:
    from google.cloud import bigquery, storage

    from gemini_batch.pipeline.refs import TableRef

__all__ = [
    "KEY_LABEL",
    "InputFormat",
    "InputScan",
    "InputValidationError",
    "ShardSpan",
    "ValidationIssue",
    "check_request",
    "scan_gcs_jsonl",
    "scan_jsonl",
    "validate_bigquery_requests",
    "validate_inline_requests",
]

InputFormat = Literal["vertex_jsonl", "gemini_jsonl"]

#: The label that carries a request's key through Vertex AI JSONL jobs.
KEY_LABEL = "gemini_batch_key"

_CHUNK_BYTES = 4 * 1024 * 1024

# GenerateContentRequest fields, in the REST (camelCase) and proto (snake_case) spellings that
# both services accept. Anything else is rejected by the service's JSON parser.
_REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "system_instruction",
        "generationConfig",
        "generation_config",
        "safetySettings",
        "safety_settings",
        "tools",
        "toolConfig",
        "tool_config",
        "labels",
        "cachedContent",
        "cached_content",
        "model",
    }
)
_PART_FIELDS = frozenset(
    {
        "text",
        "inlineData",
        "inline_data",
        "fileData",
        "file_data",
        "functionCall",
        "function_call",
        "functionResponse",
        "function_response",
        "executableCode",
        "executable_code",
        "codeExecutionResult",
        "code_execution_result",
    }
)
_PART_EXTRAS = frozenset({"thought", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata"})
_ROLES = frozenset({"user", "model", "function", "tool"})
# The response MIME types a responseSchema works with (JSON output, or one enum value as text).
_SCHEMA_MIME_TYPES = ("application/json", "text/x.enum")


@dataclass(frozen=True)
class ValidationIssue:
    """One problem with an input.

    :param location: Where: ``gs://b/f.jsonl:12``, ``bq://p.d.t column `request```, ``inline[3]``.
    :param message: What is wrong, the limit if one applies, and the remedy.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InputValidationError(ValueError):
    """An input failed validation; nothing was submitted.

    :param source: The input that was checked.
    :param issues: The problems found (at most ``max_issues`` of them).
    :param more: How many further problems were found but not listed.
    """

    def __init__(self, source: str, issues: Sequence[ValidationIssue], more: int = 0) -> None:
        self.source = source
        self.issues = tuple(issues)
        self.more = more
        total = len(self.issues) + more
        lines = [f"{total} problem(s) in {source}; nothing was submitted:"]
        lines += [f"  - {issue}" for issue in self.issues]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ShardSpan:
    """A contiguous run of lines of a JSONL input that fits one job.

    :param index: The shard number, from 0.
    :param start: Byte offset of the shard's first line.
    :param end: Byte offset just after the shard's last line (exclusive).
    :param requests: Number of requests (lines) in the shard.
    :param first_line: The 1-based line number of the shard's first line.
    """

    index: int
    start: int
    end: int
    requests: int
    first_line: int

    @property
    def bytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class InputScan:
    """What a successful scan of an input found.

    :param source: The input (a URI or a name).
    :param input_format: The input format checked.
    :param requests: Number of requests.
    :param bytes: Number of bytes.
    :param limits: The per-job limits the shard plan respects.
    :param shards: The shard plan: one span when the input fits one job.
    """

    source: str
    input_format: str
    requests: int
    bytes: int
    limits: JobLimits
    shards: tuple[ShardSpan, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for XCom."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputScan:
        """The inverse of :meth:`to_dict`."""
        return cls(
            source=data["source"],
            input_format=data["input_format"],
            requests=data["requests"],
            bytes=data["bytes"],
            limits=JobLimits(**data["limits"]),
            shards=tuple(ShardSpan(**span) for span in data["shards"]),
        )


class _Issues:
    """Collects issues up to a cap and counts the rest."""

    def __init__(self, max_issues: int) -> None:
        self.max_issues = max_issues
        self.items: list[ValidationIssue] = []
        self.more = 0

    def add(self, location: str, message: str) -> None:
        if len(self.items) < self.max_issues:
            self.items.append(ValidationIssue(location, message))
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, source: str) -> None:
        if self.items:
            raise InputValidationError(source, self.items, self.more)


class _KeyIndex:
    """Detects duplicate keys in 12 bytes per key: a 64-bit digest and a line number.

    Two different keys share a digest with probability about n**2 / 2**65 (3e-8 for a million
    keys); such a collision would be reported as a duplicate, never missed.
    """

    def __init__(self) -> None:
        self._digests = array("Q")
        self._lines = array("I")

    def add(self, key: str, line: int) -> None:
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        self._digests.append(int.from_bytes(digest, "little"))
        self._lines.append(line)

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """Yield ``(line, first_line)`` for each key seen before on ``first_line``, by line."""
        if len(self._digests) < 2:
            return
        import numpy as np

        digests = np.frombuffer(self._digests, dtype=np.uint64)
        lines = np.frombuffer(self._lines, dtype=np.uint32)
        order = np.argsort(digests, kind="stable")  # stable: the first of a run is its first line
        ordered = digests[order]
        repeat = np.empty(len(ordered), dtype=bool)
        repeat[0] = False
        np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
        if not repeat.any():
            return
        run_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(ordered))))
        positions = np.flatnonzero(repeat)
        later = lines[order[positions]]
        first = lines[order[run_start[positions]]]
        for index in np.argsort(later, kind="stable"):
            yield int(later[index]), int(first[index])


def _label_problem(name: str, value: Any, *, what: str) -> str | None:
    """The Vertex label rules: keys and values up to 63 characters of lowercase letters, digits,
    ``_`` and ``-``; keys start with a letter."""
    if not isinstance(value, str):
        return f"{what} {name!r} must be a string, got {type(value).__name__}"
    if len(value) > 63:
        return f"{what} {name!r} is {len(value)} characters long (limit: 63)"
    if any(not (ch.isalnum() or ch in "_-") or ch.isupper() for ch in value):
        return (
            f"{what} {name!r} = {value!r} may only hold lowercase letters, digits, '_' and '-' "
            f"(Vertex AI label rules)"
        )
    return None


def check_request(request: Any, *, path: str = "request") -> list[str]:
    """Check that ``request`` is shaped like a GenerateContentRequest.

    Checks the structure the services reject at submit time or per row: an object with known
    fields, non-empty ``contents`` of objects with non-empty ``parts``, each part an object with a
    data field, valid roles, a ``systemInstruction`` with parts, a ``generationConfig`` object with
    sane numbers, and labels under Vertex AI's rules.

    :param request: The parsed request.
    :param path: The JSON path used in messages.
    :return: The problems, each starting with a JSON path; empty when the request is fine.
    """
    if not isinstance(request, dict):
        return [f"{path} must be a JSON object (a GenerateContentRequest), got {_json_type(request)}"]
    problems: list[str] = []
    unknown = sorted(set(request) - _REQUEST_FIELDS)
    if unknown:
        problems.append(
            f"{path} has unknown field(s) {', '.join(unknown)}; a GenerateContentRequest has "
            f"contents, systemInstruction, generationConfig, safetySettings, tools, toolConfig, labels"
        )
    contents = request.get("contents")
    if contents is None:
        problems.append(f"{path}.contents is missing: every request needs at least one content with parts")
    else:
        problems += _check_contents(contents, f"{path}.contents")
    for name in ("systemInstruction", "system_instruction"):
        if name in request:
            problems += _check_content(request[name], f"{path}.{name}")
    for name in ("generationConfig", "generation_config"):
        if name in request:
            problems += _check_generation_config(request[name], f"{path}.{name}")
    for name in ("safetySettings", "safety_settings", "tools"):
        if name in request and not isinstance(request[name], list):
            problems.append(f"{path}.{name} must be a list, got {_json_type(request[name])}")
    if "labels" in request:
        labels = request["labels"]
        if not isinstance(labels, dict):
            problems.append(f"{path}.labels must be an object of string labels, got {_json_type(labels)}")
        else:
            for key, value in labels.items():
                problem = _label_problem(key, key, what="label key")
                if problem is None and not key[:1].isalpha():
                    problem = f"label key {key!r} must start with a lowercase letter"
                problem = problem or _label_problem(key, value, what="label")
                if problem:
                    problems.append(f"{path}.labels: {problem}")
    return problems


def _check_contents(contents: Any, path: str) -> list[str]:
    if not isinstance(contents, list) or not contents:
        return [f"{path} must be a non-empty list of contents, got {_json_type(contents)}"]
    problems: list[str] = []
    for index, content in enumerate(contents):
        problems += _check_content(content, f"{path}[{index}]")
    return problems


def _check_content(content: Any, path: str) -> list[str]:
    if not isinstance(content, dict):
        return [f"{path} must be an object with parts, got {_json_type(content)}"]
    problems: list[str] = []
    role = content.get("role")
    if role is not None and role not in _ROLES:
        problems.append(f"{path}.role must be 'user' or 'model', got {role!r}")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        problems.append(f"{path}.parts must be a non-empty list of parts, got {_json_type(parts)}")
        return problems
    for index, part in enumerate(parts):
        part_path = f"{path}.parts[{index}]"
        if not isinstance(part, dict):
            problems.append(f"{part_path} must be an object such as {{\"text\": \"...\"}}, got {_json_type(part)}")
            continue
        data = set(part) & _PART_FIELDS
        unknown = set(part) - _PART_FIELDS - _PART_EXTRAS
        if unknown:
            problems.append(f"{part_path} has unknown field(s) {', '.join(sorted(unknown))}")
        elif not data:
            problems.append(f"{part_path} has no data: give one of text, inlineData, fileData")
        elif len(data) > 1:
            problems.append(f"{part_path} has several data fields ({', '.join(sorted(data))}); give one")
        if "text" in part and not isinstance(part["text"], str):
            problems.append(f"{part_path}.text must be a string, got {_json_type(part['text'])}")
    return problems


_NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "topP": (0.0, 1.0),
    "top_p": (0.0, 1.0),
}
_POSITIVE_INTS = ("maxOutputTokens", "max_output_tokens", "candidateCount", "candidate_count", "topK", "top_k")


def _check_generation_config(config: Any, path: str) -> list[str]:
    if not isinstance(config, dict):
        return [f"{path} must be an object, got {_json_type(config)}"]
    problems: list[str] = []
    for name, (low, high) in _NUMBER_RANGES.items():
        if name in config:
            value = config[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                problems.append(f"{path}.{name} must be a number from {low:g} to {high:g}, got {value!r}")
    for name in _POSITIVE_INTS:
        if name in config:
            value = config[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{path}.{name} must be a positive integer, got {value!r}")
    schema = config.get("responseSchema", config.get("response_schema"))
    if schema is not None:
        if not isinstance(schema, dict):
            problems.append(f"{path}.responseSchema must be an object (an OpenAPI schema), got {_json_type(schema)}")
        mime = config.get("responseMimeType", config.get("response_mime_type"))
        if mime not in _SCHEMA_MIME_TYPES:
            problems.append(
                f"{path}.responseSchema needs responseMimeType 'application/json' (or 'text/x.enum'), got {mime!r}"
            )
    return problems


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


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
    issues = _Issues(max_issues)
    keys = _KeyIndex()
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
            issues.add(where, f"one request of {length:,} bytes exceeds the {limits.name} limit of "
                       f"{limits.max_bytes:,} bytes per job; it cannot be sharded")
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
        return [f"a line must be a JSON object like {{\"request\": {{...}}}}, got {_json_type(record)}"], None
    if "request" not in record:
        found = ", ".join(sorted(record)[:5]) or "nothing"
        return [f"'request' is missing (found {found}); each line is {{\"request\": {{...}}}}"], None
    problems = check_request(record["request"])
    key: Any = None
    if input_format == "gemini_jsonl":
        key = record.get("key")
        if key is None:
            problems.append("'key' is missing; Gemini API file lines are {\"key\": \"...\", \"request\": {...}}")
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


def validate_inline_requests(
    requests: Sequence[Mapping[str, Any]],
    *,
    source: str = "inline requests",
    limits: JobLimits = GEMINI_API_INLINE_LIMITS,
    max_issues: int = 25,
) -> InputScan:
    """Validate Gemini API inline requests before submit.

    Each item is ``{"request": {GenerateContentRequest}, "metadata": {"key": "..."}}`` (the wire
    form), or a GenerateContentRequest itself (its key is then its position). Keys must be unique
    and the serialized whole must stay under ``limits.max_bytes`` (20 MB).

    :raises InputValidationError: With every problem, each naming ``inline[i]``.
    """
    issues = _Issues(max_issues)
    keys = _KeyIndex()
    total = 2  # the enclosing brackets
    for index, item in enumerate(requests):
        where = f"{source}[{index}]"
        if not isinstance(item, Mapping):
            issues.add(where, f"must be an object, got {_json_type(item)}")
            continue
        request = item["request"] if "request" in item else item
        for problem in check_request(dict(request) if isinstance(request, Mapping) else request):
            issues.add(where, problem)
        metadata = item.get("metadata") if "request" in item else None
        key = metadata.get("key") if isinstance(metadata, Mapping) else str(index)
        if not isinstance(key, str) or not key:
            issues.add(where, f"metadata.key must be a non-empty string, got {key!r}")
        else:
            keys.add(key, index)
        total += len(json.dumps(item, separators=(",", ":")).encode("utf-8")) + 1
    for index, first in keys.duplicates():
        issues.add(f"{source}[{index}]", f"duplicate key: the same metadata.key is at [{first}]")
    if not requests:
        issues.add(source, "no requests; a batch job needs at least one")
    if len(requests) > limits.max_requests:
        issues.add(source, f"{len(requests):,} requests exceed the {limits.name} limit of "
                   f"{limits.max_requests:,}; submit a file instead")
    if total > limits.max_bytes:
        issues.add(
            source,
            f"{total:,} bytes of inline requests exceed the {limits.name} limit of {limits.max_bytes:,} "
            f"bytes; upload them as a JSONL file (Files API) instead",
        )
    issues.raise_if_any(source)
    span = ShardSpan(0, 0, total, len(requests), 1)
    return InputScan(source, "gemini_inline", len(requests), total, limits, (span,))


# BigQuery column types the Vertex AI batch service rejects in an input table.
_REJECTED_TYPES = {"RECORD", "STRUCT", "RANGE", "DATETIME", "GEOGRAPHY"}
_OUTPUT_COLUMNS = {"response", "status", "processed_time"}
_KEY_TYPES = {"STRING", "INTEGER", "INT64", "NUMERIC", "BIGNUMERIC", "DATE", "TIMESTAMP", "BYTES"}


def _bq_type(column: Any) -> str:
    """A column's type as SQL writes it: ``INT64``, ``ARRAY<STRING>``."""
    return f"ARRAY<{column.field_type}>" if column.mode == "REPEATED" else column.field_type


def validate_bigquery_requests(
    table: TableRef,
    *,
    bigquery_client: bigquery.Client,
    key_column: str = "key",
    request_column: str = "request",
    limits: JobLimits = VERTEX_LIMITS,
    enforce_limits: bool = True,
    sample_size: int = 5,
) -> InputScan:
    """Validate a BigQuery requests table before it is submitted as ``bq://`` input.

    The schema (metadata only): the table exists, ``request_column`` is JSON or STRING, the key
    column exists with a scalar type, no column has a type the service rejects (ARRAY, STRUCT,
    RANGE, DATETIME, GEOGRAPHY) or a name of an output column (response, status,
    processed_time). Then one server-side query: keys present and unique, requests parse as JSON
    and have ``contents`` with ``parts``, the row count under ``limits.max_requests``.

    :param table: Required. The requests table.
    :param bigquery_client: Required. A ``google.cloud.bigquery.Client``.
    :param key_column: The pass-through key column.
    :param request_column: The request column.
    :param enforce_limits: False: more rows than the limit are fine (the caller shards).
    :raises InputValidationError: With every problem, each naming the table and column.
    """
    from google.api_core.exceptions import NotFound

    from gemini_batch.pipeline import sql

    source = table.uri
    issues = _Issues(50)
    try:
        schema = bigquery_client.get_table(table.api_repr).schema
    except NotFound:
        raise InputValidationError(
            source, [ValidationIssue(source, "the table does not exist; build the requests first")]
        ) from None
    columns = {column.name: column for column in schema}
    request = columns.get(request_column)
    if request is None:
        issues.add(source, f"no column `{request_column}`; the service reads the request from it")
    elif request.field_type not in ("JSON", "STRING") or request.mode == "REPEATED":
        issues.add(
            f"{source} column `{request_column}`",
            f"type {_bq_type(request)} is not accepted; use JSON (or a STRING holding JSON)",
        )
    key = columns.get(key_column)
    if key is None:
        issues.add(source, f"no key column `{key_column}`; keys pass through to the output to match answers")
    elif key.field_type not in _KEY_TYPES or key.mode == "REPEATED":
        issues.add(
            f"{source} column `{key_column}`",
            f"key type {_bq_type(key)} is not a scalar key type; use STRING or INT64",
        )
    for column in schema:
        if column.mode == "REPEATED" or column.field_type in _REJECTED_TYPES:
            issues.add(
                f"{source} column `{column.name}`",
                f"type {_bq_type(column)} is rejected by the batch service (no ARRAY, STRUCT, RANGE, "
                f"DATETIME, GEOGRAPHY); drop or cast the column",
            )
        if column.name.lower() in _OUTPUT_COLUMNS:
            issues.add(
                f"{source} column `{column.name}`",
                "the name is taken by the output (response, status, processed_time); rename the column",
            )
    issues.raise_if_any(source)

    assert request is not None  # for the type checker: a missing column raised above
    column = sql.ident(request_column)
    is_json = request.field_type == "JSON"
    text = sql.render(
        "validate_requests.sql",
        table=table.sql,
        key=sql.ident(key_column),
        request_json=column if is_json else f"SAFE.PARSE_JSON({column})",
        request_bytes=f"BYTE_LENGTH(TO_JSON_STRING({column}))" if is_json else f"BYTE_LENGTH({column})",
    )
    row = sql.query_one(bigquery_client, text, sample_size=sample_size)
    rows, total_bytes = row["requests"], row["bytes"] or 0
    checks = (
        ("null_keys", key_column, "rows have a NULL key; every request needs a key"),
        ("duplicate_keys", key_column, "keys appear more than once; keys must be unique in a job"),
        ("invalid_json", request_column, "rows do not hold valid JSON"),
        ("missing_contents", request_column, "requests have no contents with parts (not a GenerateContentRequest)"),
    )
    for name, column_name, what in checks:
        if row[name]:
            sample = ", ".join(str(value) for value in row[f"{name}_sample"] or [])
            issues.add(
                f"{source} column `{column_name}`",
                f"{row[name]:,} {what}" + (f" (sample keys: {sample})" if sample else ""),
            )
    if rows == 0:
        issues.add(source, "the table holds no requests for this run; check the data interval")
    if enforce_limits and rows > limits.max_requests:
        issues.add(
            source,
            f"{rows:,} requests exceed the {limits.name} limit of {limits.max_requests:,} requests per "
            f"job; shard the table (enforce_limits=False and plan_bigquery_shards)",
        )
    issues.raise_if_any(source)
    return InputScan(source, "bigquery", rows, total_bytes, limits, ())
