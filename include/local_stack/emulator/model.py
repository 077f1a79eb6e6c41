"""The local model: a deterministic, documented function from a request to a response.

Invariants: the same (model id, request) always gives the same response, byte for byte, in
every process; nothing here touches the network, the clock or global state. A request that the
real API would reject row by row raises :class:`InvalidRequest` (the batch keeps going).

The response text (see ``include/local_stack/README.md``):

- plain text: ``"[<model id> <digest>] <prompt>"`` where ``prompt`` is the last text part of
  the last ``user`` turn (first 200 characters) and ``digest`` is the first 8 hex digits of
  ``sha256("<model id>\\n<prompt>")``; :func:`response_text` computes it for tests;
- ``responseMimeType: application/json`` with a schema (``responseSchema`` /
  ``response_schema`` in OpenAPI form, or ``responseJsonSchema`` / ``response_json_schema``):
  compact JSON that validates against the schema, values derived from the digest; without a
  schema: ``{"response": "<plain text>"}``;
- ``responseMimeType: text/x.enum`` with an enum schema: one of the enum values.
- the fault ``structured_break_ratio`` breaks that share of the schema answers on purpose
  (:func:`broken_json`: bad JSON, a missing required field, a wrong type).

Token counts: ``promptTokenCount`` is ceil(characters of every text part, system instruction
included, / 4), at least 1; ``candidatesTokenCount`` is ceil(characters of the answer / 4), at
least 1; ``totalTokenCount`` is their sum.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from typing import Any

#: Model ids that exist for both backends (Vertex ``publishers/google/models/<id>``, Gemini
#: API ``models/<id>``). Anything else must match :data:`MODEL_ID_PATTERN`.
KNOWN_MODELS: tuple[str, ...] = (
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-flash-preview-09-2025",
    "gemini-2.5-flash-lite-preview-09-2025",
    "gemini-2.0-flash",
    "gemini-2.0-flash-001",
    "gemini-2.0-flash-lite",
    "gemini-2.0-flash-lite-001",
    "gemini-flash-latest",
    "gemini-flash-lite-latest",
    "gemini-pro-latest",
)

#: A versioned Gemini model id: ``gemini-<major>[.<minor>]-<pro|flash|flash-lite>`` with an
#: optional ``-NNN`` version, ``-preview[-MM-YYYY]`` or ``-exp[-MMDD]`` suffix. This accepts
#: real ids that are newer than :data:`KNOWN_MODELS` and still rejects typos
#: (``gemini-2.5-flsh``) and made-up families, with a 404 as the real API does.
MODEL_ID_PATTERN = re.compile(
    r"^gemini-\d+(?:\.\d+)?-(?:pro|flash|flash-lite)(?:-\d{3}|-preview(?:-\d{2}-\d{4})?|-exp(?:-\d{4})?)?$"
)

PROMPT_SNIPPET_CHARS = 200
_VALID_ROLES = frozenset({"user", "model", "function", "tool"})

#: The fields of each message of a ``GenerateContentRequest`` that the emulator checks, by
#: their JSON (camelCase) names: Vertex AI v1 (the discovery document's
#: ``GoogleCloudAiplatformV1*`` schemas, checked by ``tests/local_stack``) plus the Gemini
#: API's own (``model``, ``partMetadata``, ``enableEnhancedCivicAnswers``,
#: ``_responseJsonSchema``). A value of None is a field whose content is not looked into (tools,
#: schemas, free-form maps); a message name is looked into, with (name, True) for a list of it.
#: The snake_case (proto) spelling of every name is accepted too, as the real parsers do.
MESSAGE_FIELDS: dict[str, dict[str, tuple[str, bool] | None]] = {
    "GenerateContentRequest": {
        "cachedContent": None,
        "contents": ("Content", True),
        "continuationToken": None,
        "generationConfig": ("GenerationConfig", False),
        "labels": None,
        "model": None,
        "modelArmorConfig": None,
        "outputConfig": None,
        "safetySettings": ("SafetySetting", True),
        "systemInstruction": ("Content", False),
        "toolConfig": None,
        "tools": None,
    },
    "Content": {"parts": ("Part", True), "role": None},
    "Part": {
        "audioTranscription": None,
        "codeExecutionResult": None,
        "executableCode": None,
        "fileData": ("FileData", False),
        "functionCall": None,
        "functionResponse": None,
        "inlineData": ("Blob", False),
        "mediaResolution": None,
        "partMetadata": None,
        "speechMetadata": None,
        "text": None,
        "thought": None,
        "thoughtSignature": None,
        "videoMetadata": None,
    },
    "Blob": {"data": None, "displayName": None, "mimeType": None},
    "FileData": {"displayName": None, "fileUri": None, "mimeType": None},
    "GenerationConfig": {
        "_responseJsonSchema": None,
        "audioTimestamp": None,
        "audioTranscriptionConfig": None,
        "candidateCount": None,
        "enableAffectiveDialog": None,
        "enableEnhancedCivicAnswers": None,
        "frequencyPenalty": None,
        "imageConfig": None,
        "logprobs": None,
        "maxOutputTokens": None,
        "mediaResolution": None,
        "presencePenalty": None,
        "responseFormat": None,
        "responseJsonSchema": None,
        "responseLogprobs": None,
        "responseMimeType": None,
        "responseModalities": None,
        "responseSchema": None,
        "routingConfig": None,
        "seed": None,
        "speechConfig": None,
        "stopSequences": None,
        "temperature": None,
        "thinkingConfig": ("ThinkingConfig", False),
        "topK": None,
        "topP": None,
        "translationConfig": None,
    },
    "ThinkingConfig": {"includeThoughts": None, "thinkingBudget": None, "thinkingLevel": None},
    "SafetySetting": {"category": None, "method": None, "threshold": None},
}

#: The part fields that carry data (a part needs exactly one; ``thought`` and the metadata
#: fields alone do not make a part).
_PART_DATA_KEYS = frozenset(
    {
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
    }
)
#: Part data fields whose value must be a JSON object.
_PART_OBJECT_KEYS = _PART_DATA_KEYS - {"text"}

EMPTY_TEXT_MESSAGE = (
    "Unable to submit request because it has an empty text parameter. "
    "Add a value to the parameter and try again."
)
_MAX_SCHEMA_DEPTH = 12


class InvalidRequest(ValueError):
    """One row's request is not a valid GenerateContentRequest (a 400 for that row only)."""

    code = 400
    status = "INVALID_ARGUMENT"

    def to_error(self) -> dict[str, Any]:
        """The row's error as the real API reports it: ``{"code", "message"}`` only."""
        return {"code": self.code, "message": str(self)}


def is_known_model(model_id: str) -> bool:
    """True when ``model_id`` (a bare id such as ``gemini-2.5-flash``) names a model we serve."""
    return model_id in KNOWN_MODELS or bool(MODEL_ID_PATTERN.match(model_id))


def _get(mapping: dict[str, Any], *names: str) -> Any:
    """The first present key of ``names`` (camelCase and snake_case spellings)."""
    for name in names:
        if name in mapping:
            return mapping[name]
    return None


def camel_name(name: str) -> str:
    """The JSON (lowerCamelCase) name of a field given in either spelling."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest) if rest else name


def _snake_name(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def check_fields(message: str, value: Any, path: str) -> None:
    """Raise :class:`InvalidRequest` for the first field of ``value`` (a ``message``) that does
    not exist, with the real parser's wording, then look into the known sub-messages."""
    if not isinstance(value, dict):
        return
    fields = MESSAGE_FIELDS[message]
    for key, item in value.items():
        name = key if key in fields else camel_name(key)
        if name not in fields:
            where = f" at '{path}'" if path else ""
            raise InvalidRequest(
                f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'
            )
        sub = fields[name]
        if sub is None:
            continue
        sub_message, repeated = sub
        sub_path = f"{path}.{_snake_name(name)}" if path else _snake_name(name)
        if repeated and isinstance(item, list):
            for index, element in enumerate(item):
                check_fields(sub_message, element, f"{sub_path}[{index}]")
        elif not repeated:
            check_fields(sub_message, item, sub_path)


def _part_fields(part: dict[str, Any]) -> dict[str, Any]:
    """The part's fields by their camelCase names."""
    return {camel_name(key): value for key, value in part.items()}


def check_parts(parts: Any, path: str) -> None:
    """Each part has one data field of the right JSON type and no empty or blank text."""
    for part_index, part in enumerate(parts):
        fields = _part_fields(part) if isinstance(part, dict) else {}
        data = sorted(_PART_DATA_KEYS & fields.keys())
        if not data:
            raise InvalidRequest(
                f"* GenerateContentRequest.{path}.parts[{part_index}].data: "
                "required oneof field 'data' must have one initialized field"
            )
        text = fields.get("text")
        if "text" in fields and not isinstance(text, str):
            raise InvalidRequest(
                f"Invalid value at '{path}.parts[{part_index}].text' ({type(text).__name__}), "
                "expected a string."
            )
        if isinstance(text, str) and not text.strip():
            raise InvalidRequest(EMPTY_TEXT_MESSAGE)
        for key in sorted(_PART_OBJECT_KEYS & fields.keys()):
            if not isinstance(fields[key], dict):
                raise InvalidRequest(
                    f"Invalid value at '{path}.parts[{part_index}].{_snake_name(key)}': "
                    f"expected an object, got {type(fields[key]).__name__}."
                )


def validate_request(request: Any) -> None:
    """Raise :class:`InvalidRequest` with the real API's wording if ``request`` is not usable.

    Checked, in the order the real service does: the JSON shape (an object; no unknown field at
    any level the emulator knows, :data:`MESSAGE_FIELDS`), then ``contents`` (present, a list of
    objects with a valid role and non-empty ``parts``), then every part of the contents and of
    the system instruction (one data field of the right type; ``text`` neither empty nor blank).
    """
    if not isinstance(request, dict):
        raise InvalidRequest(
            f"Invalid JSON payload: the request must be a JSON object, got {type(request).__name__}."
        )
    check_fields("GenerateContentRequest", request, "")
    contents = request.get("contents")
    if contents is None or contents == []:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified")
    if not isinstance(contents, list):
        raise InvalidRequest("Invalid JSON payload: GenerateContentRequest.contents must be a list.")
    for index, content in enumerate(contents):
        if not isinstance(content, dict):
            raise InvalidRequest(f"Invalid JSON payload: contents[{index}] must be an object.")
        role = content.get("role")
        if role is not None and role not in _VALID_ROLES:
            raise InvalidRequest("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts or not isinstance(parts, list):
            raise InvalidRequest(
                f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty."
            )
        check_parts(parts, f"contents[{index}]")
    system = _get(request, "systemInstruction", "system_instruction")
    if isinstance(system, dict) and isinstance(system.get("parts"), list):
        check_parts(system["parts"], "system_instruction")


def text_parts(content: Any) -> list[str]:
    """The texts of a ``Content``'s text parts, in order (nothing for anything else)."""
    if not isinstance(content, dict):
        return []
    parts = content.get("parts")
    if not isinstance(parts, list):
        return []
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


def prompt_text(request: dict[str, Any]) -> str:
    """The last text part of the last ``user`` turn (a turn without a role counts as user)."""
    for content in reversed(request.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            texts = text_parts(content)
            if texts:
                return texts[-1]
    return ""


def _digest(model_id: str, prompt: str) -> str:
    return hashlib.sha256(f"{model_id}\n{prompt}".encode()).hexdigest()


def response_text(model_id: str, request: dict[str, Any]) -> str:
    """The plain answer text for ``request``: ``"[<model id> <digest8>] <prompt[:200]>"``."""
    prompt = prompt_text(request)
    return f"[{model_id} {_digest(model_id, prompt)[:8]}] {prompt[:PROMPT_SNIPPET_CHARS]}"


def _generation_config(request: dict[str, Any]) -> dict[str, Any]:
    config = _get(request, "generationConfig", "generation_config")
    return config if isinstance(config, dict) else {}


def _prompt_chars(request: dict[str, Any]) -> int:
    chars = 0
    for content in request.get("contents") or []:
        chars += sum(len(t) for t in text_parts(content))
    system = _get(request, "systemInstruction", "system_instruction")
    chars += sum(len(t) for t in text_parts(system))
    return chars


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def prompt_tokens(request: dict[str, Any]) -> int:
    """The ``promptTokenCount`` of a request (what countTokens answers for it too)."""
    return _tokens(_prompt_chars(request))


def answer_text(model_id: str, request: dict[str, Any], broken: str | None = None) -> str:
    """The text of the single candidate, honouring ``responseMimeType`` and the schema.

    :param broken: Optional. A fault (``structured_break_ratio``): how a structured answer
        breaks its schema (``bad_json``, ``missing_required``, ``wrong_type``); ignored for
        answers without a schema.
    """
    config = _generation_config(request)
    mime = _get(config, "responseMimeType", "response_mime_type")
    json_schema = _get(config, "responseJsonSchema", "response_json_schema", "_responseJsonSchema")
    schema = _get(config, "responseSchema", "response_schema")
    digest = _digest(model_id, prompt_text(request))
    if mime == "application/json":
        chosen = json_schema if isinstance(json_schema, dict) else schema
        if isinstance(chosen, dict):
            value = SchemaValueGenerator(digest, chosen).value()
            if broken:
                return broken_json(value, chosen, broken)
        else:
            value = {"response": response_text(model_id, request)}
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if mime == "text/x.enum":
        chosen = json_schema if isinstance(json_schema, dict) else schema
        options = chosen.get("enum") if isinstance(chosen, dict) else None
        if isinstance(options, list) and options:
            return str(options[int(digest, 16) % len(options)])
    return response_text(model_id, request)


def broken_json(value: Any, schema: dict[str, Any], kind: str) -> str:
    """The JSON text of a schema-matching ``value``, broken the way ``kind`` says.

    Written from the generator's side, not by checking: ``bad_json`` cuts the text short;
    ``missing_required`` drops the first field the root's ``required`` lists (a root without
    one breaks as ``wrong_type``); ``wrong_type`` swaps the first field's value (or the root
    value) for one of another JSON type (a string for anything but a string, else a number).
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if kind == "bad_json":
        return text[: max(1, len(text) - 1)] if len(text) > 1 else text + "{"
    required = [name for name in schema.get("required") or [] if isinstance(value, dict) and name in value]
    if kind == "missing_required" and required:
        return json.dumps({k: v for k, v in value.items() if k != required[0]}, separators=(",", ":"))

    def other(item: Any) -> Any:
        return 12345 if isinstance(item, str) else "wrong-type"

    if isinstance(value, dict) and value:
        first = next(iter(value))
        return json.dumps({**value, first: other(value[first])}, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(other(value))


def generate_content(model_id: str, request: Any, broken: str | None = None) -> dict[str, Any]:
    """The ``GenerateContentResponse`` (camelCase) for one row; raises :class:`InvalidRequest`.

    :param broken: Optional. How a structured answer breaks its schema (see :func:`answer_text`).
    """
    validate_request(request)
    text = answer_text(model_id, request, broken)
    prompt_count = prompt_tokens(request)
    candidate_tokens = _tokens(len(text))
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_count,
            "candidatesTokenCount": candidate_tokens,
            "totalTokenCount": prompt_count + candidate_tokens,
        },
        "modelVersion": model_id,
        "responseId": _digest(model_id, text)[:24],
    }


# --- JSON values that match a schema ---------------------------------------------------------


def _schema_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), None)
    if isinstance(kind, str):
        return kind.lower()
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    if "enum" in schema:
        return "string"
    return None


class SchemaValueGenerator:
    """Builds one deterministic JSON value that validates against an OpenAPI or JSON schema.

    Supported: ``type`` (either case, or a list with ``null``), ``properties`` (every property
    is filled, ``propertyOrdering`` respected), ``required``, ``items``, ``prefixItems``,
    ``enum``, ``const``, ``anyOf`` / ``oneOf`` (first non-null choice), ``allOf`` (merged),
    ``$ref`` into ``$defs`` / ``definitions``, ``minimum`` / ``maximum`` (and exclusive forms),
    ``minItems`` / ``maxItems``, ``minLength`` / ``maxLength``, ``format`` (date, date-time,
    time, email, uri, uuid). ``pattern`` is not honoured.

    :param digest: Required. A hex digest seeding every value (from the prompt and model).
    :param schema: Required. The root schema.
    """

    def __init__(self, digest: str, schema: dict[str, Any]) -> None:
        self._digest = digest
        self._root = schema

    def value(self) -> Any:
        """The value for the root schema."""
        return self._value(self._root, "$", 0)

    def _seed(self, path: str) -> int:
        return int(hashlib.sha256(f"{self._digest}|{path}".encode()).hexdigest()[:12], 16)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < _MAX_SCHEMA_DEPTH:
            ref = schema["$ref"]
            target: Any = self._root
            if isinstance(ref, str) and ref.startswith("#/"):
                for token in ref[2:].split("/"):
                    target = target.get(token.replace("~1", "/").replace("~0", "~"), {})
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema

    def _value(self, schema: Any, path: str, depth: int) -> Any:
        if not isinstance(schema, dict):
            return None
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self._seed(path) % len(enum)]
        for key in ("anyOf", "oneOf"):
            choices = schema.get(key)
            if isinstance(choices, list) and choices:
                usable = [c for c in choices if not (isinstance(c, dict) and _schema_type(c) == "null")]
                return self._value((usable or choices)[0], path, depth + 1)
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in all_of:
                part = self._resolve(part) if isinstance(part, dict) else {}
                for key, val in part.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **val}
                    elif key == "required":
                        merged["required"] = list(merged.get("required", [])) + list(val)
                    else:
                        merged.setdefault(key, val)
            return self._value(merged, path, depth + 1)
        kind = _schema_type(schema)
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, path, depth)
        if kind == "integer":
            return self._integer(schema, path)
        if kind == "number":
            return self._number(schema, path)
        if kind == "boolean":
            return self._seed(path) % 2 == 0
        if kind == "null":
            return None
        return self._string(schema, path)

    def _object(self, schema: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        required = set(schema.get("required") or [])
        order = schema.get("propertyOrdering") or schema.get("property_ordering") or []
        names = [n for n in order if n in properties] + [n for n in properties if n not in order]
        result: dict[str, Any] = {}
        for name in names:
            if depth >= _MAX_SCHEMA_DEPTH and name not in required:
                continue
            result[name] = self._value(properties[name], f"{path}.{name}", depth + 1)
        return result

    def _array(self, schema: dict[str, Any], path: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", schema.get("min_items", 0)) or 0)
        high = schema.get("maxItems", schema.get("max_items"))
        count = low if low > 0 or depth >= _MAX_SCHEMA_DEPTH else 2
        if high is not None:
            count = min(count, int(high))
        prefix = schema.get("prefixItems") or []
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        count = max(count, len(prefix)) if high is None else count
        return [
            self._value(prefix[i] if i < len(prefix) else items, f"{path}[{i}]", depth + 1)
            for i in range(count)
        ]

    @staticmethod
    def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None, bool, bool]:
        low = schema.get("minimum")
        high = schema.get("maximum")
        low_open = high_open = False
        ex_low = schema.get("exclusiveMinimum")
        ex_high = schema.get("exclusiveMaximum")
        if isinstance(ex_low, (int, float)) and not isinstance(ex_low, bool):
            low, low_open = ex_low, True
        elif ex_low is True:
            low_open = True
        if isinstance(ex_high, (int, float)) and not isinstance(ex_high, bool):
            high, high_open = ex_high, True
        elif ex_high is True:
            high_open = True
        low = float(low) if low is not None else None
        high = float(high) if high is not None else None
        return low, high, low_open, high_open

    def _integer(self, schema: dict[str, Any], path: str) -> int:
        low_f, high_f, low_open, high_open = self._bounds(schema)
        low = math.ceil(low_f) if low_f is not None else None
        high = math.floor(high_f) if high_f is not None else None
        if low is not None and low_open and low == low_f:
            low += 1
        if high is not None and high_open and high == high_f:
            high -= 1
        if low is None and high is None:
            low, high = 0, 99
        elif low is None:
            low = high - 99  # type: ignore[operator]
        elif high is None:
            high = low + 99
        if high < low:  # type: ignore[operator]
            return int(low)  # type: ignore[arg-type]
        return int(low) + self._seed(path) % (int(high) - int(low) + 1)  # type: ignore[arg-type]

    def _number(self, schema: dict[str, Any], path: str) -> float:
        low, high, _, _ = self._bounds(schema)
        if low is None and high is None:
            low, high = 0.0, 100.0
        elif low is None:
            low = high - 100.0  # type: ignore[operator]
        elif high is None:
            high = low + 100.0
        # Strictly inside the bounds, so exclusive bounds hold too.
        fraction = (self._seed(path) % 998 + 1) / 1000.0
        return round(low + (high - low) * fraction, 6)  # type: ignore[operator]

    def _string(self, schema: dict[str, Any], path: str) -> str:
        seed = self._seed(path)
        fmt = schema.get("format")
        if fmt == "date-time":
            value = f"2025-{seed % 12 + 1:02d}-{seed % 28 + 1:02d}T{seed % 24:02d}:{seed % 60:02d}:00Z"
        elif fmt == "date":
            value = f"2025-{seed % 12 + 1:02d}-{seed % 28 + 1:02d}"
        elif fmt == "time":
            value = f"{seed % 24:02d}:{seed % 60:02d}:00"
        elif fmt == "email":
            value = f"user{seed % 10000}@example.com"
        elif fmt in ("uri", "url"):
            value = f"https://example.com/{seed % 100000}"
        elif fmt == "uuid":
            value = str(uuid.UUID(int=seed << 64 | seed))
        else:
            name = path.rsplit(".", 1)[-1].split("[", 1)[0].lstrip("$") or "value"
            value = f"{name}-{seed % 16**6:06x}"
        low = int(schema.get("minLength", schema.get("min_length", 0)) or 0)
        high = schema.get("maxLength", schema.get("max_length"))
        if len(value) < low:
            value = value + "x" * (low - len(value))
        if high is not None and len(value) > int(high):
            value = value[: int(high)]
        return value
