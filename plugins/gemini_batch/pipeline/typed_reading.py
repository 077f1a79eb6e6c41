"""The typed reading of a JSONL line: prove a common request fine at C speed, or decline.

The first of the three readings of a line in :mod:`gemini_batch.pipeline.jsonl_scan` (typed,
then orjson with the rules in Python, then the strict stdlib decoder that names each problem's
column). msgspec decodes the line straight into Structs that hold the common request shapes, and
checks, in C while it parses: unknown fields, objects and lists where the schema has them, roles,
non-empty ``contents`` and ``parts``, non-blank text, the blob fields, the generationConfig number
ranges and the label rules. What is left (one data field per part, a responseSchema's MIME type,
the key, no duplicate members) is a few attribute reads per line.

Invariants:

* It never accepts a line the exact reading refuses; it only *declines* (returns None), and the
  next reading decides. ``tests/pipeline/test_jsonl_fast_path.py`` checks all three agree on
  generated good and broken lines.
* One source of truth: the Structs' fields are :data:`~request_shape.WIRE_SCHEMA`'s (so Google's
  SDK types), and their constraints are request_shape's constants (roles, data fields, number
  ranges, positive integers, MIME types) and identity's label patterns. A model outside
  :data:`TYPED_MODELS` (tools, function calls...) is not typed: a field of that type is unknown
  here, so such a line is declined and read by the rules instead.
* Strictness: msgspec refuses what the exact reading refuses in JSON itself (invalid UTF-8, a
  byte order mark, NaN and Infinity, numbers beyond a double, lone surrogate escapes, control
  characters, trailing data). It keeps the last of duplicate members, so duplicates are found as
  the orjson reading finds them (:func:`no_duplicate_members`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import msgspec
from msgspec import Meta

from gemini_batch.identity import LABEL_KEY_RE, LABEL_VALUE_RE
from gemini_batch.pipeline.request_shape import (
    NUMBER_RANGES,
    POSITIVE_INTS,
    ROLES,
    SCHEMA_MIME_TYPES,
    WIRE_SCHEMA,
    FieldSpec,
)

__all__ = ["TYPED_MODELS", "no_duplicate_members", "typed_line_key"]

#: The wire object types read as Structs: what nearly every batch request is made of.
TYPED_MODELS = (
    "GenerateContentRequest",
    "Content",
    "Part",
    "Blob",
    "FileData",
    "GenerationConfig",
    "ThinkingConfig",
    "SafetySetting",
    "Schema",
)

# Non-blank text, as request_shape's ``_blank`` says: re's \S and str.isspace() share CPython's
# one definition of whitespace (Py_UNICODE_ISSPACE).
_NonBlank = Annotated[str, Meta(pattern=r"\S")]
_REQUIRED = msgspec.NODEFAULT


def _constraints() -> dict[tuple[str, str], tuple[Any, Any]]:
    """(model, field) -> (type, default) for the fields a rule constrains; the rest follow the schema."""
    # "Content" and "Part": Structs built below, found by name in this module (ruff cannot see them).
    content_list = Annotated[list["Content"], Meta(min_length=1)]  # noqa: F821
    rules: dict[tuple[str, str], tuple[Any, Any]] = {
        ("GenerateContentRequest", "contents"): (content_list, _REQUIRED),
        (
            "GenerateContentRequest",
            "labels",
        ): (
            dict[
                Annotated[str, Meta(pattern=LABEL_KEY_RE.pattern)],
                Annotated[str, Meta(pattern=LABEL_VALUE_RE.pattern)],
            ]
            | None,
            None,
        ),
        ("Content", "role"): (Literal[ROLES] | None, None),
        ("Content", "parts"): (Annotated[list["Part"], Meta(min_length=1)], _REQUIRED),  # noqa: F821
        ("Part", "text"): (str | None, None),  # non-blank: checked with the parts (cheaper than a pattern)
        ("Blob", "mimeType"): (_NonBlank, _REQUIRED),
        ("Blob", "data"): (_NonBlank, _REQUIRED),
        ("FileData", "mimeType"): (_NonBlank, _REQUIRED),
        ("FileData", "fileUri"): (_NonBlank, _REQUIRED),
    }
    for name, (low, high) in NUMBER_RANGES.items():
        rules["GenerationConfig", name] = (Annotated[float, Meta(ge=low, le=high)] | None, None)
    for name in POSITIVE_INTS:
        rules["GenerationConfig", name] = (Annotated[int, Meta(ge=1)] | None, None)
    return rules


def _field_type(spec: FieldSpec) -> Any:
    """The Struct type of a field as the schema shapes it, or None when it is not typed here."""
    if spec.model is not None and spec.model not in TYPED_MODELS:
        return None
    if spec.shape == "object":
        return spec.model
    if spec.shape == "list":
        return list[spec.model] if spec.model else list[Any]  # type: ignore[name-defined]
    if spec.shape == "map":  # always of a model (request_shape._field_spec)
        return dict[str, spec.model]  # type: ignore[name-defined]
    return Any


class _Wire(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A wire object: unknown fields are refused; absent fields are left out when encoded again."""


def _build_structs() -> dict[str, type[msgspec.Struct]]:
    """One Struct per typed model, its fields the schema's camelCase names (references by name)."""
    rules = _constraints()
    namespace: dict[str, type[msgspec.Struct]] = {}
    for model in TYPED_MODELS:
        fields: list[tuple[Any, ...]] = []
        for name in sorted({spec.name for spec in WIRE_SCHEMA[model].values()}):
            spec = WIRE_SCHEMA[model][name]
            kind, default = rules.get((model, name), (None, None))
            if kind is None:
                kind = _field_type(spec)
                if kind is None:
                    continue
                kind = Optional[kind]  # noqa: UP045 (a forward reference by name; Optional[Any] is Any)
            fields.append((name, kind) if default is _REQUIRED else (name, kind, default))
        fields.sort(key=len)  # required fields (no default) first, as a Struct needs them
        namespace[model] = msgspec.defstruct(model, fields, bases=(_Wire,))  # in this module, the caller's
    globals().update(namespace)  # where msgspec resolves the references by name, e.g. "Content"
    return namespace


_STRUCTS = _build_structs()


def _line_decoder(input_format: str) -> msgspec.json.Decoder:
    request = _STRUCTS["GenerateContentRequest"]
    if input_format == "gemini_jsonl":
        fields = [("key", Annotated[str, Meta(min_length=1)]), ("request", request)]
    else:
        fields = [("request", request)]
    line = msgspec.defstruct(f"Line_{input_format}", fields, bases=(_Wire,))
    return msgspec.json.Decoder(line)


_DECODERS = {name: _line_decoder(name) for name in ("vertex_jsonl", "gemini_jsonl")}
_ENCODER = msgspec.json.Encoder()
_DECLINED = (msgspec.DecodeError, msgspec.ValidationError)


def typed_line_key(content: bytes, input_format: str, key_label: str) -> str | None:
    """The key of a line proven fine by the typed reading, or None when it declines."""
    try:
        line = _DECODERS[input_format].decode(content)
    except _DECLINED:
        return None
    request = line.request
    for content_ in request.contents:
        if not _parts_fine(content_):
            return None
    instruction = request.systemInstruction
    if instruction is not None and not _parts_fine(instruction):
        return None
    config = request.generationConfig
    if config is not None and config.responseSchema is not None:
        if config.responseMimeType not in SCHEMA_MIME_TYPES:
            return None
    if input_format == "gemini_jsonl":
        key = line.key
    else:
        labels = request.labels
        key = labels.get(key_label) if labels is not None else None
        if not key:
            return None
    return key if no_duplicate_members(content, line, _ENCODER.encode) else None


def _parts_fine(content: Any) -> bool:
    """Every part of ``content`` holds exactly one of its typed data fields (text, inlineData,
    fileData), and its text, if any, is not blank (as request_shape's ``_blank``)."""
    for part in content.parts:
        text = part.text
        if (text is not None) + (part.inlineData is not None) + (part.fileData is not None) != 1:
            return False
        if text is not None and (not text or text.isspace()):
            return False
    return True


def no_duplicate_members(content: bytes, record: Any, encode: Callable[[Any], bytes]) -> bool:
    """True when the JSON text ``content`` (parsed as ``record``) repeats no member name.

    Exact, by counting colons. In JSON text a colon is either the separator of an object member
    or a character inside a string (a literal one, or a ``\\u003a`` escape). Without that escape,
    the text holds one colon per member plus the colons of its strings; ``encode(record)`` holds
    the same count for what the parser kept, and a parser that keeps the last of duplicate members
    drops a repeated member (its colon at least) and nothing else. Equal counts mean nothing was
    dropped. A line with a ``\\u003`` sequence (an escaped colon, or a look-alike) is not decided
    here: False sends it to the exact reading.
    """
    if b"\\" in content and b"\\u003" in content:  # memchr first: most lines have no escape
        return False
    try:
        return content.count(b":") == encode(record).count(b":")
    except (TypeError, ValueError, OverflowError):  # e.g. an integer beyond what the encoder writes
        return False
