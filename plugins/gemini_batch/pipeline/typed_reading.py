"""The typed reading of a JSONL line: prove a common request fine at C speed, or decline.

The first of the three readings of a line in :mod:`gemini_batch.pipeline.jsonl_scan` (typed,
then orjson with the rules in Python, then the strict stdlib decoder that names each problem's
column). msgspec decodes the line straight into Structs that hold the common request shapes, and
checks, in C while it parses: unknown fields, objects and lists where the schema has them, roles,
non-empty ``contents`` and ``parts``, the blob fields, the generationConfig number ranges and the
label rules. Two small hooks run as each Part and generationConfig is decoded (one data field per
part and non-blank text; a responseSchema's MIME type). What is left is the key, UTF-8 and no
duplicate members.

A part's text stays raw JSON (:class:`msgspec.Raw`): texts are most of a request's bytes, and
building a ``str`` of each cost more than parsing the rest of the line. msgspec still checks the
text's JSON (escapes, surrogate pairs, control characters) as it skips it; it does not check its
UTF-8, so a line that is not ASCII is decoded once more to check that (:func:`typed_line_key`), and
a text is decoded only when its first character is not a letter or digit (:func:`_text_fine`).

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
_NO_TEXT = msgspec.Raw()  # Part.text when the part has none: empty, and left out when encoded


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
        ("Part", "text"): (msgspec.Raw, _NO_TEXT),  # the raw JSON: see the module's docstring
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


def _check_part(part: Any) -> None:
    """Part's ``__post_init__``: exactly one of its typed data fields (text, inlineData,
    fileData), and a text that is a non-blank string (as request_shape's ``_blank``)."""
    text = part.text
    if (len(text) > 0) + (part.inlineData is not None) + (part.fileData is not None) != 1:
        raise ValueError("a part holds exactly one data field")
    if text and not _text_fine(text):
        raise ValueError("a part's text is a non-blank string")


def _check_generation_config(config: Any) -> None:
    """GenerationConfig's ``__post_init__``: a responseSchema needs a JSON responseMimeType."""
    if config.responseSchema is not None and config.responseMimeType not in SCHEMA_MIME_TYPES:
        raise ValueError("a responseSchema needs a JSON responseMimeType")


# The rules a Struct checks as it is decoded; the ValueError becomes msgspec's ValidationError.
_POST_INIT: dict[str, Callable[[Any], None]] = {
    "Part": _check_part,
    "GenerationConfig": _check_generation_config,
}
# A first byte that is an ASCII letter or digit starts a non-blank text (an escape starts with \).
_WORD_START = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TEXT = msgspec.json.Decoder(str)


def _text_fine(raw: msgspec.Raw) -> bool:
    """True when the raw JSON value ``raw`` is a string that is not blank."""
    view = memoryview(raw)
    if view[0] != ord('"'):
        return False
    if view[1] in _WORD_START:
        return True
    try:
        text = _TEXT.decode(view)
    except _DECLINED:
        return False
    return bool(text) and not text.isspace()


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
        hooks = {"__post_init__": _POST_INIT[model]} if model in _POST_INIT else None
        namespace[model] = msgspec.defstruct(model, fields, bases=(_Wire,), namespace=hooks)  # in this module
    globals().update(namespace)  # where msgspec resolves the references by name, e.g. "Content"
    return namespace


_DECLINED = (msgspec.DecodeError, msgspec.ValidationError)
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


def typed_line_key(content: bytes, input_format: str, key_label: str) -> str | None:
    """The key of a line proven fine by the typed reading, or None when it declines."""
    try:
        line = _DECODERS[input_format].decode(content)
    except _DECLINED:
        return None
    if input_format == "gemini_jsonl":
        key = line.key
    else:
        labels = line.request.labels
        key = labels.get(key_label) if labels is not None else None
        if not key:
            return None
    if not content.isascii():  # the raw texts' UTF-8 is checked nowhere else
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return key if no_duplicate_members(content, line, _ENCODER.encode) else None


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
