"""The rules of one request: is it shaped like a GenerateContentRequest the services accept?

Invariants: pure functions of the request (no I/O), so every rule is testable by a table of
cases; each problem starts with the JSON path it is about and ends with what to do. Request labels
follow the one home of Vertex AI's label rules (:mod:`gemini_batch.identity`), and inline requests
are sized by the one inline-size measure (:func:`gemini_batch.backends.inline_request_bytes`).

Field names come from Google's published schema, not a hand-typed list: the google-genai SDK's
pydantic types (``Content``, ``Part``, ``Blob``, ``GenerationConfig``, ``SafetySetting``,
``Tool``...) carry the wire's camelCase names as their aliases, and :data:`WIRE_SCHEMA` is built
from them at import time, every level down. The proto JSON parsers behind both services also
accept the proto (snake_case) spelling of a field, so both are accepted; anything else is an
unknown field, reported with a "did you mean" for near misses. The same field lists and the same
per-row rules (:data:`ROW_RULES`) drive the BigQuery check (``sql/validate_requests.sql``).

Keys: a Vertex JSONL line carries its key as ``request.labels[KEY_LABEL]`` (Vertex passes no key
through, and echoes the request in its output); an inline request carries it in ``metadata.key``.
"""

from __future__ import annotations

import difflib
import types as pytypes
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gemini_batch.backends import inline_request_bytes
from gemini_batch.identity import label_key_problem, label_value_problem
from gemini_batch.pipeline.findings import InputScan, Issues, KeyIndex, ShardSpan
from gemini_batch.pipeline.limits import GEMINI_API_INLINE_LIMITS, JobLimits

__all__ = [
    "DATA_FIELDS",
    "KEY_LABEL",
    "NUMBER_RANGES",
    "POSITIVE_INTS",
    "ROLES",
    "ROW_RULES",
    "SCHEMA_MIME_TYPES",
    "WIRE_SCHEMA",
    "wire_names",
    "check_inline_request",
    "check_request",
    "json_type",
    "suggest",
    "validate_inline_requests",
]

#: The label that carries a request's key through Vertex AI JSONL jobs.
KEY_LABEL = "gemini_batch_key"

#: The roles of a content the services accept in a request (a request is a user turn, optionally
#: after earlier user and model turns; OpenAI's ``assistant`` is not one of them).
ROLES = ("user", "model")
#: The fields of a Part that carry its data; a part holds exactly one of them.
DATA_FIELDS = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
#: The response MIME types a responseSchema works with (JSON output, or one enum value as text).
SCHEMA_MIME_TYPES = ("application/json", "text/x.enum")

Shape = Literal["object", "list", "map", "any"]


@dataclass(frozen=True)
class FieldSpec:
    """One field of a wire object.

    :param name: The wire (camelCase) name.
    :param shape: ``object`` (a nested object of type ``model``), ``list`` (of ``model`` objects
        when ``model`` is set), ``map`` (string keys to ``model`` objects), or ``any``.
    :param model: The nested object type's name, or None for scalars and free-form values.
    """

    name: str
    shape: Shape
    model: str | None = None


def _field_spec(name: str, annotation: Any, models: dict[str, type]) -> FieldSpec:
    """The shape of a field from its SDK annotation; a union of several kinds is ``any``."""
    from pydantic import BaseModel

    def is_model(kind: Any) -> bool:
        return isinstance(kind, type) and issubclass(kind, BaseModel)

    options = [a for a in _union_args(annotation) if a is not type(None)]
    if len(options) != 1:
        return FieldSpec(name, "any")
    (kind,) = options
    if is_model(kind):
        models[kind.__name__] = kind
        return FieldSpec(name, "object", kind.__name__)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list and len(args) == 1:
        item = _union_args(args[0])
        if len(item) == 1 and is_model(item[0]):
            models[item[0].__name__] = item[0]
            return FieldSpec(name, "list", item[0].__name__)
        return FieldSpec(name, "list")
    if origin is dict and len(args) == 2 and is_model(args[1]):
        models[args[1].__name__] = args[1]
        return FieldSpec(name, "map", args[1].__name__)
    return FieldSpec(name, "any")


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, pytypes.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _build_schema() -> dict[str, dict[str, FieldSpec]]:
    """Every wire object type reachable from a GenerateContentRequest, from the SDK's types.

    Keys of each object are the camelCase alias and the snake_case field name (both parse).
    """
    from google.genai import types

    roots: dict[str, type] = {}
    request_fields = {
        # GenerateContentRequest itself is no SDK type (the SDK builds it from a config); its
        # fields are the REST reference's: contents, systemInstruction, generationConfig,
        # safetySettings, tools, toolConfig, labels (Vertex), cachedContent, model.
        "contents": FieldSpec("contents", "list", "Content"),
        "systemInstruction": FieldSpec("systemInstruction", "object", "Content"),
        "generationConfig": FieldSpec("generationConfig", "object", "GenerationConfig"),
        "safetySettings": FieldSpec("safetySettings", "list", "SafetySetting"),
        "tools": FieldSpec("tools", "list", "Tool"),
        "toolConfig": FieldSpec("toolConfig", "object", "ToolConfig"),
        "labels": FieldSpec("labels", "any"),
        "cachedContent": FieldSpec("cachedContent", "any"),
        "model": FieldSpec("model", "any"),
    }
    inline_fields = {
        # The SDK's InlinedRequest (what ``client.batches.create(src=[...])`` takes): its
        # ``contents`` may also be a string or a list of parts, checked by check_inline_request.
        "model": FieldSpec("model", "any"),
        "contents": FieldSpec("contents", "any"),
        "metadata": FieldSpec("metadata", "any"),
        "config": FieldSpec("config", "object", "GenerateContentConfig"),
    }
    for model in (
        types.Content,
        types.GenerationConfig,
        types.SafetySetting,
        types.Tool,
        types.ToolConfig,
        types.GenerateContentConfig,
    ):
        roots[model.__name__] = model
    schema: dict[str, dict[str, FieldSpec]] = {
        "GenerateContentRequest": _with_snake(request_fields),
        "InlinedRequest": _with_snake(inline_fields),
    }
    pending = dict(roots)
    while pending:
        name, model = pending.popitem()  # never one already in schema: only new ones are pending
        found: dict[str, type] = {}
        fields: dict[str, FieldSpec] = {}
        for field_name, info in model.model_fields.items():
            spec = _field_spec(info.alias or field_name, info.annotation, found)
            fields[spec.name] = spec
            fields[field_name] = spec
        schema[name] = fields
        pending.update({k: v for k, v in found.items() if k not in schema})
    return schema


def _with_snake(fields: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
    from pydantic.alias_generators import to_snake

    return {**fields, **{to_snake(name): spec for name, spec in fields.items()}}


#: Wire object type name -> field name (camelCase and snake_case) -> :class:`FieldSpec`.
WIRE_SCHEMA: Mapping[str, Mapping[str, FieldSpec]] = _build_schema()


def wire_names(model: str) -> tuple[str, ...]:
    """The camelCase field names of a wire object type, sorted (for messages and the SQL checks)."""
    return tuple(sorted({spec.name for spec in WIRE_SCHEMA[model].values()}))


def suggest(name: str, known: Sequence[str]) -> str:
    """`` (did you mean 'temperature'?)`` for a near miss of a known name, else ``''``."""
    close = difflib.get_close_matches(name, known, cutoff=0.7)  # the best first
    if not close:
        close = [k for k in known if k.lower() == name.lower().replace("_", "")]
    return f" (did you mean {close[0]!r}?)" if close else ""


#: The per-row rules both paths apply, by id: what is wrong and what to do. The JSONL and inline
#: checks prefix them with the JSON path; the BigQuery check with the column and sample keys.
ROW_RULES: Mapping[str, str] = {
    "not_object": "must be a JSON object (a GenerateContentRequest)",
    "no_contents": "has no contents: every request needs a non-empty list of contents with parts",
    "bad_role": "role must be 'user' or 'model' (not 'assistant' or 'system'); use systemInstruction "
    "for instructions",
    "no_parts": 'must be a non-empty list of parts such as {"text": "..."}',
    "empty_part": 'has no data: give one of text, inlineData, fileData (e.g. {"text": "..."})',
    "several_data": "has several data fields; give one per part and split the rest",
    "text_type": "text must be a string (a NULL prompt gives null: drop or fill NULL prompts)",
    "blank_text": "text is empty or blank; the service rejects it: remove the part or give text (an "
    "empty prompt in the prompts table gives one: filter them out)",
    "inline_data": "must be an object with mimeType and base64 data, both non-empty strings",
    "file_data": "must be an object with mimeType and fileUri, both non-empty strings",
    "unknown_field": "is not a field of the request schema; fix the spelling or remove it",
    "not_a_list": "must be a list",
    "not_an_object": "must be a JSON object",
}


def check_request(request: Any, *, path: str = "request") -> list[str]:
    """Check that ``request`` is shaped like a GenerateContentRequest.

    Every level is checked against :data:`WIRE_SCHEMA` (unknown fields, objects and lists where
    the schema has them), then the rules the services enforce at submit time or per row:
    non-empty ``contents``, roles ``user``/``model``, non-empty ``parts`` with exactly one data
    field each, non-blank ``text``, ``inlineData``/``fileData`` with their required fields, sane
    ``generationConfig`` numbers, and labels under Vertex AI's rules.

    :param request: The parsed request (wire form: camelCase or snake_case names).
    :param path: The JSON path used in messages.
    :return: The problems, each starting with a JSON path; empty when the request is fine.
    """
    if not isinstance(request, dict):
        return [f"{path} {ROW_RULES['not_object']}, got {json_type(request)}"]
    problems: list[str] = []
    _walk(request, "GenerateContentRequest", path, problems)
    contents = _get(request, "contents")
    if contents is None:
        problems.append(f"{path}.contents is missing: every request needs at least one content with parts")
    elif isinstance(contents, list) and not contents:
        problems.append(f"{path}.contents must be a non-empty list of contents, got an empty list")
    labels = _get(request, "labels")
    if labels is not None:
        if not isinstance(labels, dict):
            problems.append(f"{path}.labels must be an object of string labels, got {json_type(labels)}")
        else:
            for key, value in labels.items():
                problem = label_key_problem(key) or label_value_problem(key, value)
                if problem:
                    problems.append(f"{path}.labels: {problem}")
    return problems


def check_inline_request(request: Any, *, path: str = "inline[0]") -> list[str]:
    """Check one inline request as ``client.batches.create(src=[...])`` takes it (an InlinedRequest).

    ``contents`` may be a list of contents (checked as in :func:`check_request`), or, as the SDK
    allows, a string or a list of strings and parts; ``config`` is a GenerateContentConfig.
    """
    if not isinstance(request, dict):
        return [f"{path} must be an object like {{'contents': [...]}}, got {json_type(request)}"]
    problems: list[str] = []
    _walk(request, "InlinedRequest", path, problems)
    contents = request.get("contents")
    where = f"{path}.contents"
    if contents is None:
        problems.append(f"{where} is missing: every request needs at least one content with parts")
    elif isinstance(contents, str):
        if _blank(contents):
            problems.append(f"{where}: {ROW_RULES['blank_text']}")
    elif isinstance(contents, list):
        if not contents:
            problems.append(f"{where} must be a non-empty list of contents, got an empty list")
        for index, item in enumerate(contents):
            item_path = f"{where}[{index}]"
            if isinstance(item, str):
                if _blank(item):
                    problems.append(f"{item_path}: {ROW_RULES['blank_text']}")
            elif isinstance(item, dict) and ("parts" in item or "role" in item):
                _walk(item, "Content", item_path, problems)
            elif isinstance(item, dict):
                _walk(item, "Part", item_path, problems)
            else:
                problems.append(f"{item_path} must be a content object or a string, got {json_type(item)}")
    elif isinstance(contents, dict):
        _walk(contents, "Content", where, problems)
    else:
        problems.append(f"{where} must be a list of contents or a string, got {json_type(contents)}")
    config = request.get("config")
    if isinstance(config, dict):
        for name in ("systemInstruction", "system_instruction"):
            value = config.get(name)
            if isinstance(value, dict):
                _walk(value, "Content", f"{path}.config.{name}", problems)
            elif isinstance(value, str) and _blank(value):
                problems.append(f"{path}.config.{name}: {ROW_RULES['blank_text']}")
    return problems


def _get(value: dict[str, Any], name: str) -> Any:
    """A field by its camelCase name or its snake_case spelling."""
    if name in value:
        return value[name]
    snake = _SNAKE.get(name)
    return value.get(snake) if snake else None


def _snake_names() -> dict[str, str]:
    from pydantic.alias_generators import to_snake

    names = {spec.name for fields in WIRE_SCHEMA.values() for spec in fields.values()}
    return {name: to_snake(name) for name in names if to_snake(name) != name}


# camelCase -> snake_case, computed once: the per-line work stays a few dict lookups.
_SNAKE: Mapping[str, str] = _snake_names()
_DATA_KEYS: Mapping[str, str] = {
    **{name: name for name in DATA_FIELDS},
    **{_SNAKE[name]: name for name in DATA_FIELDS if name in _SNAKE},
}


def _walk(value: dict[str, Any], model: str, path: str, problems: list[str]) -> None:
    """Check an object of wire type ``model``: its field names, nested shapes, then its own rules.

    The hot loop of validation (once per object of every line of a 1 GB file): a field's JSON path
    is formatted only to descend into it or to report it, never for a field that is fine.
    """
    fields = WIRE_SCHEMA[model]
    for key, item in value.items():
        spec = fields.get(key)
        if spec is None:
            problems.append(
                f"{path}.{key} is not a field of {model}{suggest(key, wire_names(model))}; fix the spelling "
                f"or remove it (known: {', '.join(wire_names(model)[:12])}"
                f"{', ...' if len(wire_names(model)) > 12 else ''})"
            )
            continue
        if item is None:  # an absent field (the proto JSON parsers read null so)
            continue
        shape = spec.shape
        if shape == "object":
            if isinstance(item, dict):
                _walk(item, spec.model, f"{path}.{key}", problems)  # type: ignore[arg-type]
            else:
                problems.append(f"{path}.{key} must be a JSON object ({spec.model}), got {json_type(item)}")
        elif shape == "list":
            if not isinstance(item, list):
                what = f" of {spec.model} objects" if spec.model else ""
                problems.append(f"{path}.{key} must be a non-empty list{what}, got {json_type(item)}")
            elif spec.model is not None:
                for index, element in enumerate(item):
                    if isinstance(element, dict):
                        _walk(element, spec.model, f"{path}.{key}[{index}]", problems)
                    else:
                        problems.append(
                            f"{path}.{key}[{index}] must be a JSON object ({spec.model}), "
                            f"got {json_type(element)}"
                        )
        elif shape == "map" and isinstance(item, dict):  # string keys to objects
            for name, element in item.items():
                if isinstance(element, dict):
                    _walk(element, spec.model, f"{path}.{key}.{name}", problems)  # type: ignore[arg-type]
    rule = _OBJECT_RULES.get(model)
    if rule is not None:
        rule(value, path, problems)


def _check_content(content: dict[str, Any], path: str, problems: list[str]) -> None:
    role = content.get("role")
    if role is not None and role not in ROLES:
        problems.append(f"{path}.role is {role!r}: {ROW_RULES['bad_role']}")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        problems.append(f"{path}.parts {ROW_RULES['no_parts']}, got {json_type(parts)}")


def _check_part(part: dict[str, Any], path: str, problems: list[str]) -> None:
    data = [_DATA_KEYS[key] for key, value in part.items() if key in _DATA_KEYS and value is not None]
    if not data:
        if all(key in WIRE_SCHEMA["Part"] for key in part):  # unknown fields are reported already
            problems.append(f"{path} {ROW_RULES['empty_part']}")
    elif len(data) > 1:
        problems.append(f"{path} {ROW_RULES['several_data']} ({', '.join(data)})")
    text = part.get("text")
    if text is not None:
        if not isinstance(text, str):
            problems.append(f"{path}.text must be a string, got {json_type(text)}")
        elif _blank(text):
            problems.append(f"{path}.text: {ROW_RULES['blank_text']}")
    for name, required in _BLOB_FIELDS:
        if name not in data:
            continue
        blob = _get(part, name)
        if isinstance(blob, dict):
            missing = [field for field in required if not _nonblank_string(_get(blob, field))]
            if missing:
                problems.append(
                    f"{path}.{name} needs {' and '.join(required)} as non-empty strings; "
                    f"{', '.join(missing)} missing or empty"
                )


_BLOB_FIELDS = (("inlineData", ("mimeType", "data")), ("fileData", ("mimeType", "fileUri")))


def _nonblank_string(value: Any) -> bool:
    return isinstance(value, str) and not _blank(value)


def _blank(text: str) -> bool:
    """Empty or only whitespace: ``not text.strip()`` without copying a long text."""
    return not text or text.isspace()


#: generationConfig numbers and their ranges; the counts that must be positive integers.
NUMBER_RANGES: dict[str, tuple[float, float]] = {"temperature": (0.0, 2.0), "topP": (0.0, 1.0)}
POSITIVE_INTS = ("maxOutputTokens", "candidateCount", "topK")


def _check_generation_config(config: dict[str, Any], path: str, problems: list[str]) -> None:
    for name, (low, high) in NUMBER_RANGES.items():
        value = _get(config, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high
        ):
            problems.append(f"{path}.{name} must be a number from {low:g} to {high:g}, got {value!r}")
    for name in POSITIVE_INTS:
        value = _get(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append(f"{path}.{name} must be a positive integer, got {value!r}")
    schema = _get(config, "responseSchema")
    if schema is not None:
        mime = _get(config, "responseMimeType")
        if mime not in SCHEMA_MIME_TYPES:
            problems.append(
                f"{path}.responseSchema needs responseMimeType 'application/json' (or 'text/x.enum'), "
                f"got {mime!r}"
            )


_OBJECT_RULES: dict[str, Callable[[dict[str, Any], str, list[str]], None]] = {
    "Content": _check_content,
    "Part": _check_part,
    "GenerationConfig": _check_generation_config,
    "GenerateContentConfig": _check_generation_config,
}


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
