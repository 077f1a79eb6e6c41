"""Checks of a BigQuery requests table before it is submitted as ``bq://`` input.

Invariants: the schema is checked from metadata first, then server-side queries
(``sql/validate_requests.sql`` for keys, JSON and figures; ``sql/validate_request_shape.sql`` for
the request-shape rules, with the field lists, roles and data fields of
:mod:`~gemini_batch.pipeline.request_shape` as query parameters) check every row; only counts and
sample keys come back, never the rows. A table of exactly ``limits.max_requests`` rows is accepted, one more is rejected
(unless the caller shards, ``enforce_limits=False``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gemini_batch.pipeline.findings import InputScan, InputValidationError, Issues, ValidationIssue
from gemini_batch.pipeline.limits import VERTEX_LIMITS, JobLimits
from gemini_batch.pipeline.request_shape import (
    DATA_FIELDS,
    ROLES,
    ROW_RULES,
    WIRE_SCHEMA,
    suggest,
    wire_names,
)

if TYPE_CHECKING:
    from google.cloud import bigquery

    from gemini_batch.pipeline.refs import TableRef

__all__ = ["validate_bigquery_requests"]


# BigQuery column types the Vertex AI batch service rejects in an input table.
_REJECTED_TYPES = {"RECORD", "STRUCT", "RANGE", "DATETIME", "GEOGRAPHY"}
_OUTPUT_COLUMNS = {"response", "status", "processed_time"}
_KEY_TYPES = {"STRING", "INTEGER", "INT64", "NUMERIC", "BIGNUMERIC", "DATE", "TIMESTAMP", "BYTES"}


# The wire object types whose field names validate_request_shape.sql checks.
_SQL_CHECKED_TYPES = (
    "GenerateContentRequest", "Content", "Part", "Blob", "FileData", "GenerationConfig", "ToolConfig",
    "SafetySetting", "Tool",
)  # fmt: skip
# The query parameters of validate_request_shape.sql: the same field lists, roles and data fields
# as the JSONL and inline checks (request_shape.py), so both paths apply one set of rules.
_SHAPE_PARAMETERS: dict[str, list[str]] = {
    "known_fields": sorted(f"{model}.{name}" for model in _SQL_CHECKED_TYPES for name in WIRE_SCHEMA[model]),
    "quoted_roles": [json.dumps(role) for role in ROLES],
    # both spellings of each (camelCase and snake_case name one field spec)
    "data_fields": sorted(name for name, spec in WIRE_SCHEMA["Part"].items() if spec.name in DATA_FIELDS),
}


def _samples(keys: Any) -> str:
    """`` (sample keys: a, b)`` for the sample keys a query returned; ``''`` for none."""
    listed = ", ".join(str(key) for key in keys or [])
    return f" (sample keys: {listed})" if listed else ""


def _shape_message(rule: str, detail: str, requests: int, sample_keys: Any) -> str:
    """The message of one rule broken in the table: the field path, the rule and remedy, samples."""
    if rule == "unknown_field":
        model, _, path = detail.partition("|")
        field = path.rpartition(".")[2]
        what = f"{path} is not a field of {model}{suggest(field, wire_names(model))}; fix the spelling or remove it"
    elif rule == "bad_role":
        path, _, role = detail.partition("=")
        what = f"{path} is {role}: {ROW_RULES[rule]}"
    else:
        what = f"{detail or 'the request'} {ROW_RULES[rule]}"
    return f"{requests:,} requests: {what}{_samples(sample_keys)}"


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
    processed_time). Then two server-side queries: keys present and unique, requests parse as JSON,
    the row count under ``limits.max_requests``; and the request-shape rules of
    :mod:`~gemini_batch.pipeline.request_shape` over every row, every content and every part
    (``sql/validate_request_shape.sql``: roles, parts, non-blank text, part kinds, unknown fields).

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
    issues = Issues(50)
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
    rows = row["requests"]
    checks = (
        ("null_keys", key_column, "rows have a NULL key; every request needs a key"),
        ("duplicate_keys", key_column, "keys appear more than once; keys must be unique in a job"),
        ("invalid_json", request_column, "rows do not hold valid JSON"),
    )
    for name, column_name, what in checks:
        if row[name]:
            issues.add(
                f"{source} column `{column_name}`", f"{row[name]:,} {what}{_samples(row[f'{name}_sample'])}"
            )
    shape = sql.render(
        "validate_request_shape.sql",
        table=table.sql,
        key=sql.ident(key_column),
        request_json=column if is_json else f"SAFE.PARSE_JSON({column})",
    )
    for found in sql.query_rows(bigquery_client, shape, sample_size=sample_size, **_SHAPE_PARAMETERS):
        issues.add(
            f"{source} column `{request_column}`",
            _shape_message(found["rule"], found["detail"], found["requests"], found["sample_keys"]),
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
    # no NULL sum: a table with no requests, or a NULL request, was refused above
    return InputScan(source, "bigquery", rows, row["bytes"], limits)
