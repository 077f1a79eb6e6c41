"""The pipeline's SQL: text in ``*.sql`` files beside this module, and how it is run.

Invariants: identifiers (tables, columns) are the only things formatted into SQL text, as
``{{name}}`` placeholders filled from :class:`~gemini_batch.pipeline.refs.TableRef` or
:func:`ident`; every value is a query parameter, except a date in a multi-statement script,
which is a literal made by :func:`date_literal` from a ``datetime.date``. Every statement runs server-side in BigQuery
and only small results (counts, samples) come back to the worker.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery

__all__ = [
    "date_literal",
    "ident",
    "job_config",
    "query_one",
    "query_rows",
    "render",
    "render_file",
    "render_text",
    "run",
]

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,299}$")


def _statements(text: str) -> str:
    """SQL text without its whole-line ``--`` comments (they document the placeholders)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")) + "\n"


@cache
def _text(name: str) -> str:
    return _statements(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def render_text(text: str, **identifiers: str) -> str:
    """``text`` without comment lines, its ``{{placeholders}}`` filled.

    :raises KeyError: If a placeholder has no value.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in identifiers:
            raise KeyError(f"no value for the SQL placeholder {{{{{name}}}}}; pass {name}=...")
        return identifiers[name]

    return _PLACEHOLDER.sub(fill, _statements(text))


def render(name: str, **identifiers: str) -> str:
    """The pipeline's SQL file ``name`` (beside this module) with its placeholders filled."""
    return render_text(_text(name), **identifiers)


def render_file(path: str | Path, **identifiers: str) -> str:
    """A project SQL file (e.g. ``include/sql/prompts_for_interval.sql``) with its placeholders filled."""
    return render_text(Path(path).read_text(encoding="utf-8"), **identifiers)


def ident(name: str) -> str:
    """A column name, checked and quoted for SQL text."""
    if not _IDENT.fullmatch(name):  # fullmatch: `$` alone would let a trailing newline through
        raise ValueError(f"invalid column name {name!r}: use letters, digits and underscores")
    return f"`{name}`"


def date_literal(value: dt.date) -> str:
    """A ``DATE 'YYYY-MM-DD'`` literal, only from a ``datetime.date`` (never from a string).

    For multi-statement scripts, where the BigQuery emulator binds no query parameters.
    """
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError(f"date_literal takes a datetime.date, got {type(value).__name__}")
    return f"DATE '{value.isoformat()}'"


def _parameter(name: str, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(value, (list, tuple)):
        kind = "INT64" if value and all(isinstance(v, int) for v in value) else "STRING"
        return bigquery.ArrayQueryParameter(name, kind, list(value))
    if isinstance(value, bool):
        return bigquery.ScalarQueryParameter(name, "BOOL", value)
    if isinstance(value, int):
        return bigquery.ScalarQueryParameter(name, "INT64", value)
    if isinstance(value, float):
        return bigquery.ScalarQueryParameter(name, "FLOAT64", value)
    if isinstance(value, dt.datetime):
        return bigquery.ScalarQueryParameter(name, "TIMESTAMP", value)
    if isinstance(value, dt.date):
        return bigquery.ScalarQueryParameter(name, "DATE", value)
    if isinstance(value, str):
        return bigquery.ScalarQueryParameter(name, "STRING", value)
    raise TypeError(f"query parameter @{name} has unsupported type {type(value).__name__}")


def job_config(params: Mapping[str, Any]) -> bigquery.QueryJobConfig:
    """A query job config with ``params`` as typed query parameters."""
    from google.cloud import bigquery

    return bigquery.QueryJobConfig(query_parameters=[_parameter(k, v) for k, v in params.items()])


def run(client: bigquery.Client, text: str, **params: Any) -> bigquery.QueryJob:
    """Run a statement (or script) and wait for it; values go in as query parameters."""
    job = client.query(text, job_config=job_config(params))
    job.result()
    return job


def query_rows(client: bigquery.Client, text: str, **params: Any) -> Sequence[Mapping[str, Any]]:
    """Run a query whose result is small (counts, samples) and return its rows as dicts."""
    return [dict(row.items()) for row in client.query(text, job_config=job_config(params)).result()]


def query_one(client: bigquery.Client, text: str, **params: Any) -> Mapping[str, Any]:
    """Run a query that returns exactly one row and return it as a dict."""
    rows = query_rows(client, text, **params)
    if len(rows) != 1:
        raise RuntimeError(f"expected one row, got {len(rows)} from:\n{text}")
    return rows[0]
