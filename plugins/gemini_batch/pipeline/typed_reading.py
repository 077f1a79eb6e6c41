"""The typed reading of a JSONL line: prove a common request fine at C speed, or decline.

The first of the three readings of a line in :mod:`gemini_batch.pipeline.jsonl_scan` (typed,
then orjson with the rules in Python, then the strict stdlib decoder that names each problem's
column). msgspec decodes the line straight into Structs that hold the common request shapes, and
checks, in C while it parses: unknown fields, objects and lists where the schema has them, roles,
non-empty ``contents`` and ``parts``, the blob fields and the generationConfig number ranges. Two
small hooks run as each Part and generationConfig is decoded (one data field per part and
non-blank text; a responseSchema's MIME type). What is left is the labels, the key, UTF-8 and no
duplicate members, the last checked for a batch of lines at once (:func:`typed_keys`).

A part's text stays raw JSON (:class:`msgspec.Raw`): texts are most of a request's bytes, and
building a ``str`` of each cost more than parsing the rest of the line. msgspec still checks the
text's JSON (escapes, surrogate pairs, control characters) as it skips it; it does not check its
UTF-8, so a line that is not ASCII is decoded once more to check that (:func:`_read`), and
a text is decoded only when its first character is not a letter or digit (:func:`_check_part`).

Invariants:

* It never accepts a line the exact reading refuses; it only *declines* (returns None), and the
  next reading decides. ``tests/pipeline/test_jsonl_fast_path.py`` checks all three agree on
  generated good and broken lines.
* One source of truth: the Structs' fields are :data:`~request_shape.WIRE_SCHEMA`'s (so Google's
  SDK types), and their constraints are request_shape's constants (roles, data fields, number
  ranges, positive integers, MIME types) and identity's label patterns (:func:`_labels_fine`). A model outside
  :data:`TYPED_MODELS` (tools, function calls...) is not typed: a field of that type is unknown
  here, so such a line is declined and read by the rules instead.
* Strictness: msgspec refuses what the exact reading refuses in JSON itself (invalid UTF-8, a
  byte order mark, NaN and Infinity, numbers beyond a double, lone surrogate escapes, control
  characters, trailing data). It keeps the last of duplicate members, so duplicates are found as
  the orjson reading finds them (:func:`no_duplicate_members`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Optional

import msgspec
import numpy as np
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

__all__ = ["TYPED_MODELS", "no_duplicate_members", "typed_keys", "typed_line_key"]

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
        ("GenerateContentRequest", "labels"): (dict[str, str] | None, None),  # checked by _labels_fine
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


class _Wire(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """A wire object: unknown fields are refused; absent fields are left out when encoded again.

    ``gc=False``: a decoded request is a tree (no object refers back to another), so the garbage
    collector need not track its Structs; tracking them cost 2% of the scan.
    """


def _check_part(part: Any) -> None:
    """Part's ``__post_init__``: exactly one of its typed data fields (text, inlineData,
    fileData), and a text that is a non-blank string (as request_shape's ``_blank``)."""
    text = part.text  # runs for every part of a file: the common case first, in few steps
    if text:
        if part.inlineData is None and part.fileData is None:
            view = memoryview(text)
            # A string that starts with a letter or digit is not blank (an escape starts with \).
            if (view[0] == _QUOTE and view[1] in _WORD_START) or _text_fine(view):
                return
        raise ValueError("a part holds exactly one data field, and its text is a non-blank string")
    if (part.inlineData is None) == (part.fileData is None):
        raise ValueError("a part holds exactly one data field")


def _check_generation_config(config: Any) -> None:
    """GenerationConfig's ``__post_init__``: a responseSchema needs a JSON responseMimeType."""
    if config.responseSchema is not None and config.responseMimeType not in SCHEMA_MIME_TYPES:
        raise ValueError("a responseSchema needs a JSON responseMimeType")


# The rules a Struct checks as it is decoded; the ValueError becomes msgspec's ValidationError.
_POST_INIT: dict[str, Callable[[Any], None]] = {
    "Part": _check_part,
    "GenerationConfig": _check_generation_config,
}
_WORD_START = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TEXT = msgspec.json.Decoder(str)
_QUOTE = ord('"')


def _text_fine(raw: memoryview) -> bool:
    """True when the raw JSON value ``raw`` is a string that is not blank."""
    try:
        text = _TEXT.decode(raw)
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
    return typed_keys([content], input_format, key_label)[0]


def typed_keys(contents: Sequence[bytes | None], input_format: str, key_label: str) -> list[str | None]:
    """The key of each line the typed reading proves fine, None for each it declines (and for None).

    Lines are proven a batch at a time (:data:`_BATCH_LINES` lines or :data:`_BATCH_BYTES`): one
    duplicate-member check covers the batch, and only a batch that fails it is checked again
    line by line to find the lines at fault.
    """
    decoder = _DECODERS[input_format]
    keys: list[str | None] = []
    batch: list[int] = []  # positions in ``keys`` of the lines read so far, their check pending
    lines: list[bytes] = []
    records: list[Any] = []
    size = 0
    for content in contents:
        key, record = _read(content, decoder, input_format, key_label) if content else (None, None)
        keys.append(key)
        if key is None:
            continue
        batch.append(len(keys) - 1)
        lines.append(content)  # type: ignore[arg-type]  (a key means a content)
        records.append(record)
        size += len(content)  # type: ignore[arg-type]
        if len(batch) == _BATCH_LINES or size >= _BATCH_BYTES:
            _drop_duplicates(keys, batch, lines, records)
            batch, lines, records, size = [], [], [], 0
    if batch:
        _drop_duplicates(keys, batch, lines, records)
    return keys


# A batch small enough to stay in the CPU's cache while it is joined and encoded again.
_BATCH_LINES = 256
_BATCH_BYTES = 256 * 1024


def _read(
    content: bytes, decoder: msgspec.json.Decoder, input_format: str, key_label: str
) -> tuple[str | None, Any]:
    """The key and the Struct of a line proven fine but for duplicate members, or (None, None)."""
    try:
        line = decoder.decode(content)
    except _DECLINED:
        return None, None
    labels = line.request.labels
    if labels is not None and not _labels_fine(labels):
        return None, None
    if input_format == "gemini_jsonl":
        key = line.key
    else:
        key = labels.get(key_label) if labels is not None else None
        if not key:
            return None, None
    if not content.isascii():  # the raw texts' UTF-8 is checked nowhere else
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None, None
    return key, line


def _drop_duplicates(
    keys: list[str | None], batch: list[int], lines: list[bytes], records: list[Any]
) -> None:
    """Set to None the key of each line of the batch that repeats a member name."""
    encode = _ENCODER.encode
    if no_duplicate_members(lines, records, encode):
        return
    for position, content, record in zip(batch, lines, records, strict=True):
        if not no_duplicate_members([content], [record], encode):
            keys[position] = None


def _labels_fine(labels: dict[str, str]) -> bool:
    """Every label follows identity's label patterns (the names, nearly always the same few, once
    each: a pattern that msgspec checks on every line cost 3% of the scan)."""
    for name, value in labels.items():
        if not (_label_name_fine(name) and LABEL_VALUE_RE.match(value)):
            return False
    return True


@functools.lru_cache(maxsize=256)
def _label_name_fine(name: str) -> bool:
    return LABEL_KEY_RE.match(name) is not None


def no_duplicate_members(
    contents: Sequence[bytes], records: Sequence[Any], encode: Callable[[Any], bytes]
) -> bool:
    """True when none of the JSON texts ``contents`` (parsed as ``records``) repeats a member name.

    Exact, by counting colons. In JSON text a colon is either the separator of an object member
    or a character inside a string (a literal one, or a ``\\u003a`` escape). Without that escape,
    a text holds one colon per member plus the colons of its strings; its record encoded again
    holds the same count for what the parser kept, and a parser that keeps the last of duplicate
    members drops a repeated member (its colon at least) and nothing else. So each text holds at
    least as many colons as its record encoded, and the same number only when nothing was
    dropped: equal sums over all the texts mean no text lost a member. A text with a ``\\u003``
    sequence (an escaped colon, or a look-alike) is not decided here: False sends it on.
    """
    for content in contents:
        if b"\\" in content and b"\\u003" in content:  # memchr first: most lines have no escape
            return False
    try:
        encoded = encode(list(records))  # a JSON array of the records: no colon of its own
    except (TypeError, ValueError, OverflowError):  # e.g. an integer beyond what the encoder writes
        return False
    return _colons(b"".join(contents)) == _colons(encoded)


def _colons(text: bytes) -> int:
    """How many colons ``text`` holds: numpy's vectorized count runs at several times the speed of
    ``bytes.count`` on the batches this is given."""
    return int(np.count_nonzero(np.frombuffer(text, dtype=np.uint8) == _COLON))


_COLON = ord(":")
