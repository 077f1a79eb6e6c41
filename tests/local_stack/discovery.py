"""Check JSON values against a Google discovery document (the one google-api-python-client ships).

Invariant: :func:`problems` reports every field that the schema does not define, every value of
the wrong JSON type (int64 and uint64 are strings in JSON, int32 numbers), every string outside
its enum and every ``google-datetime`` that is not RFC 3339; an empty list means the value fits.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
#: Documents google-api-python-client does not ship, kept by the tests in discovery form (each
#: says where it was written down from): ``generativelanguage.v1beta.embed``.
LOCAL_DOCUMENTS = Path(__file__).parent / "schemas"


@cache
def schemas(api: str = "aiplatform.v1") -> dict[str, Any]:
    """The ``schemas`` of discovery document ``api`` (e.g. ``aiplatform.v1``), the client's own
    copy or one of :data:`LOCAL_DOCUMENTS`."""
    local = LOCAL_DOCUMENTS / f"{api}.json"
    path = local if local.exists() else DOCUMENTS / f"{api}.json"
    return json.loads(path.read_text(encoding="utf-8"))["schemas"]


def _rfc3339(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return text.endswith("Z") or "+" in text[10:]


def problems(
    value: Any, schema: dict[str, Any] | str, path: str = "$", api: str = "aiplatform.v1"
) -> list[str]:
    """What in ``value`` does not fit ``schema`` (a schema, or a schema name of ``api``)."""
    every = schemas(api)
    if isinstance(schema, str):
        schema = every[schema]
    if "$ref" in schema:
        return problems(value, every[schema["$ref"]], path, api)
    kind = schema.get("type", "object" if "properties" in schema else "any")
    if kind == "any":
        return []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        found: list[str] = []
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                found += problems(item, properties[key], f"{path}.{key}", api)
            elif extra is not None:
                found += problems(item, extra, f"{path}.{key}", api)
            else:
                found.append(f"{path}.{key}: no such field in {schema.get('id', 'the schema')}")
        return found
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected an array, got {type(value).__name__}"]
        return [
            p for i, item in enumerate(value) for p in problems(item, schema["items"], f"{path}[{i}]", api)
        ]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string ({schema.get('format', 'text')}), got {type(value).__name__}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{path}: {value!r} is not one of the enum values"]
        if schema.get("format") in ("int64", "uint64") and not value.lstrip("-").isdigit():
            return [f"{path}: {value!r} is not an {schema['format']}"]
        if schema.get("format") == "google-datetime" and not _rfc3339(value):
            return [f"{path}: {value!r} is not an RFC 3339 time"]
        return []
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected an integer, got {value!r}"]
    if kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean, got {value!r}"]
    return [f"{path}: unknown schema type {kind!r}"]
