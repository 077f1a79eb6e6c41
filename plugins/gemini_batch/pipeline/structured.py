"""Check one structured answer (JSON text) against the schema its request declared.

Two schema dialects, as the services take them:

``openapi``
    ``generationConfig.responseSchema``: Gemini's OpenAPI subset. ``type`` names in either case
    (``STRING``, ``INTEGER``, ``NUMBER``, ``BOOLEAN``, ``ARRAY``, ``OBJECT``), ``nullable``,
    ``enum``, ``properties``, ``required``, ``items``, ``anyOf``, ``minItems`` / ``maxItems``,
    ``minimum`` / ``maximum``, ``minLength`` / ``maxLength``; ``propertyOrdering`` and
    ``format`` only steer generation and are not checked.
``json_schema``
    ``generationConfig.responseJsonSchema``: JSON Schema. ``type`` (a name or a list of names),
    ``enum``, ``const``, ``properties``, ``required``, ``additionalProperties: false``, ``items``,
    ``prefixItems``, ``anyOf``, ``oneOf``, ``allOf``, ``$ref`` into the root (``$defs``), the
    numeric bounds (``exclusiveMinimum`` / ``exclusiveMaximum`` as numbers), ``minItems`` /
    ``maxItems``, ``minLength`` / ``maxLength``. ``format`` and ``pattern`` are annotations here.

Why not the ``jsonschema`` library: it is not among the product's dependencies, it does not
speak Gemini's OpenAPI subset (``nullable``, upper-case type names), and one small checker for
both dialects keeps one rule per keyword.

Invariants: a check is pure and holds one answer at a time (memory is the answer and its
schema); it returns the FIRST problem in document order (properties in schema order, then
array items by index) as a :class:`Problem` with a JSONPath-like path (``$.items[2].name``),
or None when the answer matches. Text that is not strict JSON (``NaN``, ``Infinity``, trailing
data) is a problem at ``$``. A schema keyword the checker does not know constrains nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Dialect", "Problem", "SchemaChecker", "check_answer", "parse_answer"]

Dialect = Literal["openapi", "json_schema"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: How many ``$ref`` hops one schema node may take (a ``$ref`` cycle that never descends into
#: the value would otherwise loop).
_MAX_REF_HOPS = 32
_TYPE_NAMES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})


@dataclass(frozen=True)
class Problem:
    """Why an answer does not match: where (``$``-rooted path) and what."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


class _NotJson(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def parse_answer(text: str | None) -> tuple[Any, Problem | None]:
    """The answer text as a JSON value, or the problem that it is not strict JSON."""
    if text is None:
        return None, Problem("$", "no answer text")
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except (ValueError, RecursionError) as exc:
        reason = str(exc).split(":", 1)[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, Problem("$", f"not valid JSON ({reason})")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is(value: Any, kind: str) -> bool:
    """Whether ``value`` is of the JSON type ``kind`` (an integer is a number; 2.0 is an integer)."""
    actual = _json_type(value)
    if kind == "number":
        return actual in ("integer", "number")
    if kind == "integer":
        return actual == "integer" or (actual == "number" and math.isfinite(value) and value.is_integer())
    return actual == kind


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if _IDENTIFIER.match(name) else f"{path}[{json.dumps(name)}]"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class SchemaChecker:
    """Checks values against one root schema in one dialect.

    :param schema: Required. The root schema (a JSON object).
    :param dialect: Required. ``openapi`` (``responseSchema``) or ``json_schema`` (``responseJsonSchema``).
    """

    def __init__(self, schema: Mapping[str, Any], dialect: Dialect) -> None:
        if dialect not in ("openapi", "json_schema"):
            raise ValueError(f"unknown schema dialect {dialect!r}: use 'openapi' or 'json_schema'")
        self.root = schema
        self.dialect = dialect

    def check(self, value: Any) -> Problem | None:
        """The first problem of ``value`` against the root schema, or None."""
        return self._check(value, self.root, "$")

    # --- one node -----------------------------------------------------------------------------

    def _resolve(self, schema: Any) -> Any:
        hops = 0
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
            if hops >= _MAX_REF_HOPS:
                return {}
            target: Any = self.root
            ref = schema["$ref"]
            if ref != "#" and not ref.startswith("#/"):
                return {k: v for k, v in schema.items() if k != "$ref"}  # a remote $ref: not followed
            for token in ref[2:].split("/") if ref != "#" else ():
                token = token.replace("~1", "/").replace("~0", "~")
                target = target.get(token) if isinstance(target, Mapping) else None
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**(target if isinstance(target, Mapping) else {}), **rest}
            hops += 1
        return schema

    def _types(self, schema: Mapping[str, Any]) -> list[str] | None:
        """The allowed JSON types, or None when the schema names none."""
        kind = schema.get("type")
        if kind is None:
            return None
        names = kind if isinstance(kind, list) else [kind]
        types = [str(name).lower() if self.dialect == "openapi" else str(name) for name in names]
        types = [name for name in types if name in _TYPE_NAMES]
        if not types:
            return None  # TYPE_UNSPECIFIED or an unknown name: no constraint
        if self.dialect == "openapi" and schema.get("nullable") is True:
            types.append("null")
        return types

    def _check(self, value: Any, schema: Any, path: str) -> Problem | None:
        schema = self._resolve(schema)
        if not isinstance(schema, Mapping):
            return None  # true / {} / a malformed node: no constraint
        if value is None and self.dialect == "openapi" and schema.get("nullable") is True:
            return None
        types = self._types(schema)
        if types is not None and not any(_is(value, kind) for kind in types):
            expected = " or ".join(types)
            return Problem(path, f"expected {expected}, got {_json_type(value)}")
        if "const" in schema and not _same(value, schema["const"]):
            return Problem(path, f"{_short(value)} is not the constant {_short(schema['const'])}")
        enum = schema.get("enum")
        if isinstance(enum, list) and not any(_same(value, option) for option in enum):
            return Problem(path, f"{_short(value)} is not one of {_short(enum)}")
        return (
            self._combinations(value, schema, path)
            or self._object(value, schema, path)
            or self._array(value, schema, path)
            or self._scalar_bounds(value, schema, path)
        )

    def _combinations(self, value: Any, schema: Mapping[str, Any], path: str) -> Problem | None:
        for part in schema.get("allOf") or ():
            problem = self._check(value, part, path)
            if problem:
                return problem
        any_of = schema.get("anyOf")
        if isinstance(any_of, list) and any_of:
            problems = [self._check(value, option, path) for option in any_of]
            if all(problems):
                return Problem(
                    path, f"matches none of the {len(any_of)} anyOf choices (first: {problems[0]})"
                )
        one_of = schema.get("oneOf")
        if isinstance(one_of, list) and one_of:
            matching = sum(1 for option in one_of if self._check(value, option, path) is None)
            if matching != 1:
                return Problem(
                    path, f"matches {matching} of the {len(one_of)} oneOf choices, not exactly one"
                )
        return None

    def _object(self, value: Any, schema: Mapping[str, Any], path: str) -> Problem | None:
        if not isinstance(value, dict):
            return None
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        for name in schema.get("required") or ():
            if name not in value:
                return Problem(_child(path, str(name)), "required field missing")
        for name, sub in properties.items():
            if name in value:
                problem = self._check(value[name], sub, _child(path, name))
                if problem:
                    return problem
        extra = schema.get("additionalProperties")
        if self.dialect == "json_schema" and extra is not None and extra is not True:
            for name in value:
                if name in properties:
                    continue
                if extra is False:
                    return Problem(_child(path, name), "field not allowed by the schema")
                problem = self._check(value[name], extra, _child(path, name))
                if problem:
                    return problem
        return None

    def _array(self, value: Any, schema: Mapping[str, Any], path: str) -> Problem | None:
        if not isinstance(value, list):
            return None
        low = _number(schema, "minItems")
        high = _number(schema, "maxItems")
        if low is not None and len(value) < low:
            return Problem(path, f"has {len(value)} items, fewer than minItems {low:g}")
        if high is not None and len(value) > high:
            return Problem(path, f"has {len(value)} items, more than maxItems {high:g}")
        prefix = schema.get("prefixItems") if self.dialect == "json_schema" else None
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else items
            if sub is False:
                return Problem(f"{path}[{index}]", "item not allowed by the schema")
            problem = self._check(item, sub, f"{path}[{index}]")
            if problem:
                return problem
        return None

    def _scalar_bounds(self, value: Any, schema: Mapping[str, Any], path: str) -> Problem | None:
        if isinstance(value, str):
            low, high = _number(schema, "minLength"), _number(schema, "maxLength")
            if low is not None and len(value) < low:
                return Problem(path, f"has {len(value)} characters, fewer than minLength {low:g}")
            if high is not None and len(value) > high:
                return Problem(path, f"has {len(value)} characters, more than maxLength {high:g}")
            return None
        if not _is(value, "number"):
            return None
        for keyword, fails in (
            ("minimum", lambda bound: value < bound),
            ("maximum", lambda bound: value > bound),
            ("exclusiveMinimum", lambda bound: value <= bound),
            ("exclusiveMaximum", lambda bound: value >= bound),
        ):
            bound = _number(schema, keyword)
            if bound is not None and fails(bound):
                return Problem(path, f"{_short(value)} is outside {keyword} {bound:g}")
        return None


def _number(schema: Mapping[str, Any], keyword: str) -> float | None:
    """A numeric keyword's value (a string holding a number counts: Gemini's Schema sends int64
    fields such as ``minItems`` as strings); None when absent or not a number."""
    raw = schema.get(keyword)
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def check_answer(text: str | None, schema: Mapping[str, Any], dialect: Dialect) -> Problem | None:
    """The first problem of an answer's text against a schema (parse, then check), or None."""
    value, problem = parse_answer(text)
    return problem or SchemaChecker(schema, dialect).check(value)
