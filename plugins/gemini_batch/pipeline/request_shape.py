"""The rules of one request: is it shaped like a GenerateContentRequest the services accept?

Invariants: pure functions of the request (no I/O), so every rule is testable by a table of
cases; each problem starts with the JSON path it is about. Request labels follow the one home of
Vertex AI's label rules (:mod:`gemini_batch.identity`), and inline requests are sized by the one
inline-size measure (:func:`gemini_batch.backends.inline_request_bytes`).

Keys: a Vertex JSONL line carries its key as ``request.labels[KEY_LABEL]`` (Vertex passes no key
through, and echoes the request in its output); an inline request carries it in ``metadata.key``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gemini_batch.backends import inline_request_bytes
from gemini_batch.identity import label_key_problem, label_value_problem
from gemini_batch.pipeline.findings import InputScan, Issues, KeyIndex, ShardSpan
from gemini_batch.pipeline.limits import GEMINI_API_INLINE_LIMITS, JobLimits

__all__ = ["KEY_LABEL", "check_request", "json_type", "validate_inline_requests"]

#: The label that carries a request's key through Vertex AI JSONL jobs.
KEY_LABEL = "gemini_batch_key"

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
_PART_EXTRAS = frozenset(
    {"thought", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata"}
)
_ROLES = frozenset({"user", "model", "function", "tool"})
# The response MIME types a responseSchema works with (JSON output, or one enum value as text).
_SCHEMA_MIME_TYPES = ("application/json", "text/x.enum")


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
        return [f"{path} must be a JSON object (a GenerateContentRequest), got {json_type(request)}"]
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
            problems.append(f"{path}.{name} must be a list, got {json_type(request[name])}")
    if "labels" in request:
        labels = request["labels"]
        if not isinstance(labels, dict):
            problems.append(f"{path}.labels must be an object of string labels, got {json_type(labels)}")
        else:
            for key, value in labels.items():
                problem = label_key_problem(key) or label_value_problem(key, value)
                if problem:
                    problems.append(f"{path}.labels: {problem}")
    return problems


def _check_contents(contents: Any, path: str) -> list[str]:
    if not isinstance(contents, list) or not contents:
        return [f"{path} must be a non-empty list of contents, got {json_type(contents)}"]
    problems: list[str] = []
    for index, content in enumerate(contents):
        problems += _check_content(content, f"{path}[{index}]")
    return problems


def _check_content(content: Any, path: str) -> list[str]:
    if not isinstance(content, dict):
        return [f"{path} must be an object with parts, got {json_type(content)}"]
    problems: list[str] = []
    role = content.get("role")
    if role is not None and role not in _ROLES:
        problems.append(f"{path}.role must be 'user' or 'model', got {role!r}")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        problems.append(f"{path}.parts must be a non-empty list of parts, got {json_type(parts)}")
        return problems
    for index, part in enumerate(parts):
        part_path = f"{path}.parts[{index}]"
        if not isinstance(part, dict):
            problems.append(f'{part_path} must be an object such as {{"text": "..."}}, got {json_type(part)}')
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
            problems.append(f"{part_path}.text must be a string, got {json_type(part['text'])}")
    return problems


_NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "topP": (0.0, 1.0),
    "top_p": (0.0, 1.0),
}
_POSITIVE_INTS = (
    "maxOutputTokens",
    "max_output_tokens",
    "candidateCount",
    "candidate_count",
    "topK",
    "top_k",
)


def _check_generation_config(config: Any, path: str) -> list[str]:
    if not isinstance(config, dict):
        return [f"{path} must be an object, got {json_type(config)}"]
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
            problems.append(
                f"{path}.responseSchema must be an object (an OpenAPI schema), got {json_type(schema)}"
            )
        mime = config.get("responseMimeType", config.get("response_mime_type"))
        if mime not in _SCHEMA_MIME_TYPES:
            problems.append(
                f"{path}.responseSchema needs responseMimeType 'application/json' (or 'text/x.enum'), got {mime!r}"
            )
    return problems


def json_type(value: Any) -> str:
    """How a message names the JSON type of ``value``: ``an object``, ``a list``, ``null``..."""
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


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
    and the whole, measured by :func:`~gemini_batch.backends.inline_request_bytes`, must stay
    under ``limits.max_bytes`` (20 MB).

    :raises InputValidationError: With every problem, each naming ``inline[i]``.
    """
    issues = Issues(max_issues)
    keys = KeyIndex()
    for index, item in enumerate(requests):
        where = f"{source}[{index}]"
        if not isinstance(item, Mapping):
            issues.add(where, f"must be an object, got {json_type(item)}")
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
    total = inline_request_bytes(requests)
    for index, first in keys.duplicates():
        issues.add(f"{source}[{index}]", f"duplicate key: the same metadata.key is at [{first}]")
    if not requests:
        issues.add(source, "no requests; a batch job needs at least one")
    if len(requests) > limits.max_requests:
        issues.add(
            source,
            f"{len(requests):,} requests exceed the {limits.name} limit of "
            f"{limits.max_requests:,}; submit a file instead",
        )
    if total > limits.max_bytes:
        issues.add(
            source,
            f"{total:,} bytes of inline requests exceed the {limits.name} limit of {limits.max_bytes:,} "
            f"bytes; upload them as a JSONL file (Files API) instead",
        )
    issues.raise_if_any(source)
    span = ShardSpan(0, 0, total, len(requests), 1)
    return InputScan(source, "gemini_inline", len(requests), total, limits, (span,))
