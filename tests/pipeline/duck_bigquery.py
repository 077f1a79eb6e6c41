"""A small fake ``google.cloud.bigquery.Client`` that really executes the pipeline's SQL, in-process.

Each statement is translated from BigQuery SQL to DuckDB SQL by the same translator the local
BigQuery emulator (bqemulator) uses, and run on an in-memory DuckDB with the emulator's built-in
functions (``FARM_FINGERPRINT``, JSON helpers...). So the fast unit loop executes the very text
the loader, the sharding and the checks render (MERGE, reconcile, shard plan...): a mutation of
that SQL changes rows, and a unit test sees it. No HTTP, no server, no thread.

Why not the emulator itself: it is a server (1-1.5 s to start, plus HTTP per call); the
integration tests use it. Why bqemulator's translator rather than hand-written DuckDB SQL: a
second copy of the SQL would be a second implementation of the rules under test.

Only the client surface the pipeline uses is here: ``project``, ``query``, ``create_dataset``,
``create_table``, ``get_table``, ``update_table``, ``delete_table`` and ``load_table_from_file``
(NDJSON); a query's result also pages (``result(page_size=...).pages``), as the client's RowIterator.
Every statement issued is kept in :attr:`DuckBigQuery.statements`, with its parameters, for the
golden files.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb
from bqemulator.domain.result import Err
from bqemulator.sql.builtin_udfs import register_builtin_udfs
from bqemulator.sql.translator import SQLTranslator
from google.api_core.exceptions import BadRequest, Conflict, NotFound
from google.cloud import bigquery

_TO_DUCKDB = {
    "STRING": "VARCHAR", "JSON": "JSON", "INT64": "BIGINT", "INTEGER": "BIGINT", "FLOAT64": "DOUBLE",
    "FLOAT": "DOUBLE", "BOOL": "BOOLEAN", "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ",
    "BYTES": "BLOB", "NUMERIC": "DECIMAL(38, 9)",
}  # fmt: skip
_FROM_DUCKDB = {
    "VARCHAR": "STRING", "JSON": "JSON", "BIGINT": "INT64", "INTEGER": "INT64", "DOUBLE": "FLOAT64",
    "BOOLEAN": "BOOL", "DATE": "DATE", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "BLOB": "BYTES",
}  # fmt: skip
_TRANSLATOR = SQLTranslator()
# A statement ends with ';' at the end of a line (the pipeline's SQL has no ';' inside strings).
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")


@dataclass(frozen=True)
class Statement:
    """One statement as the pipeline issued it: BigQuery SQL text and its query parameters."""

    text: str
    params: Mapping[str, Any]


class _Row(dict):
    """A result row: ``row["name"]`` and ``row.items()``, as the BigQuery client's Row."""


class _Rows(list):
    """A query's rows, iterable as a list or, as the client's RowIterator, ``pages`` of ``page_size``."""

    def __init__(self, rows: Sequence[_Row], page_size: int | None) -> None:
        super().__init__(rows)
        self.page_size = page_size

    @property
    def pages(self) -> list[list[_Row]]:
        size = self.page_size or len(self) or 1
        return [self[start : start + size] for start in range(0, len(self), size)]


class _Job:
    def __init__(self, rows: Sequence[_Row] = (), page_sizes: list[int | None] | None = None) -> None:
        self._rows = list(rows)
        self._page_sizes = page_sizes if page_sizes is not None else []

    def result(self, page_size: int | None = None) -> _Rows:
        """The rows, in pages of ``page_size`` (the real client pages the same way); the size is noted."""
        self._page_sizes.append(page_size)
        return _Rows(self._rows, page_size)


class DuckBigQuery:
    """A BigQuery client stand-in over an in-memory DuckDB (see the module docstring).

    :param project: The client's default project.
    """

    def __init__(self, project: str = "proj") -> None:
        self.project = project
        self.con = duckdb.connect()
        register_builtin_udfs(self.con)
        self.statements: list[Statement] = []
        #: The ``page_size`` of every ``result()`` call (what bounds a reader's memory).
        self.page_sizes: list[int | None] = []
        self._catalogs: set[str] = set()

    # --- datasets and tables -----------------------------------------------------------------

    def create_dataset(self, dataset: Any, exists_ok: bool = False) -> None:
        project, name = str(dataset).split(".")
        if project not in self._catalogs:
            self.con.execute(f"ATTACH ':memory:' AS {_quote(project)}")
            self._catalogs.add(project)
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(project)}.{_quote(name)}")

    def create_table(self, table: bigquery.Table, exists_ok: bool = False) -> bigquery.Table:
        self.create_dataset(f"{table.project}.{table.dataset_id}", exists_ok=True)
        if self._exists(table.project, table.dataset_id, table.table_id):
            if not exists_ok:
                raise Conflict(f"Already Exists: Table {table.project}:{table.dataset_id}.{table.table_id}")
            return self.get_table(f"{table.project}.{table.dataset_id}.{table.table_id}")
        columns = ", ".join(f"{_quote(f.name)} {_TO_DUCKDB[f.field_type]}" for f in table.schema)
        self.con.execute(f"CREATE TABLE {_name(table.project, table.dataset_id, table.table_id)} ({columns})")
        return table

    def get_table(self, ref: str) -> bigquery.Table:
        project, dataset, name = str(ref).split(".")
        if not self._exists(project, dataset, name):
            raise NotFound(f"Not found: Table {ref}")
        described = self.con.execute(f"DESCRIBE {_name(project, dataset, name)}").fetchall()
        schema = [
            bigquery.SchemaField(column, _FROM_DUCKDB.get(kind, kind)) for column, kind, *_ in described
        ]
        return bigquery.Table(ref, schema=schema)

    def update_table(self, table: bigquery.Table, fields: Sequence[str]) -> bigquery.Table:
        """Metadata only (``expires``): nothing the SQL reads, so nothing to do."""
        return table

    def delete_table(self, ref: str, not_found_ok: bool = False) -> None:
        project, dataset, name = str(ref).split(".")
        if not self._exists(project, dataset, name):
            if not_found_ok:
                return
            raise NotFound(f"Not found: Table {ref}")
        self.con.execute(f"DROP TABLE {_name(project, dataset, name)}")

    def table_names(self, dataset: str) -> set[str]:
        """The tables of ``project.dataset`` (to check that scratch tables are dropped)."""
        project, name = dataset.split(".")
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = ?",
            [project, name],
        ).fetchall()
        return {row[0] for row in rows}

    def rows(self, ref: str, order_by: str = "key") -> list[dict[str, Any]]:
        """Every row of a table, as dicts (JSON columns parsed)."""
        project, dataset, name = ref.removeprefix("bq://").split(".")
        cursor = self.con.execute(
            f"SELECT * FROM {_name(project, dataset, name)} ORDER BY {_quote(order_by)}"
        )
        names = [d[0] for d in cursor.description]
        kinds = [str(d[1]) for d in cursor.description]
        return [
            {
                n: json.loads(v) if k == "JSON" and v is not None else v
                for n, k, v in zip(names, kinds, row, strict=False)
            }
            for row in cursor.fetchall()
        ]

    def _exists(self, project: str, dataset: str, name: str) -> bool:
        if project not in self._catalogs:
            return False
        return bool(self.con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
            [project, dataset, name],
        ).fetchall())  # fmt: skip

    # --- queries and loads ---------------------------------------------------------------------

    def query(self, text: str, job_config: bigquery.QueryJobConfig | None = None) -> _Job:
        params = {p.name: _value(p) for p in (job_config.query_parameters if job_config else [])}
        self.statements.append(Statement(text, params))
        rows: list[_Row] = []
        for statement in (s for s in _STATEMENT_END.split(text) if s.strip()):
            duck = _translate(statement)
            used = {name: value for name, value in params.items() if f"${name}" in duck}
            try:
                cursor = self.con.execute(duck, used)
            except duckdb.Error as error:
                raise BadRequest(f"{error}\n-- BigQuery:\n{statement}\n-- DuckDB:\n{duck}") from error
            if cursor.description:
                names = [d[0] for d in cursor.description]
                rows = [_Row(zip(names, row, strict=False)) for row in cursor.fetchall()]
        return _Job(rows, self.page_sizes)

    def load_table_from_file(self, file: Any, ref: str, job_config: bigquery.LoadJobConfig) -> _Job:
        """An NDJSON load with an explicit schema (appended, or WRITE_TRUNCATE); unknown values ignored."""
        if job_config.source_format != bigquery.SourceFormat.NEWLINE_DELIMITED_JSON:
            raise NotImplementedError(job_config.source_format)
        project, dataset, name = str(ref).split(".")
        schema = list(job_config.schema)
        if job_config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE:
            self.delete_table(ref, not_found_ok=True)
        self.create_table(bigquery.Table(ref, schema=schema), exists_ok=True)
        lines = [json.loads(line) for line in file.read().decode("utf-8").splitlines() if line.strip()]
        if lines:
            marks = ", ".join("?" for _ in schema)
            values = [
                [json.dumps(line.get(f.name)) if f.field_type == "JSON" and line.get(f.name) is not None
                 else line.get(f.name) for f in schema]
                for line in lines
            ]  # fmt: skip
            self.con.executemany(f"INSERT INTO {_name(project, dataset, name)} VALUES ({marks})", values)
        return _Job()

    def insert(self, ref: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows into an existing table (test set-up)."""
        project, dataset, name = ref.removeprefix("bq://").split(".")
        for row in rows:
            columns = ", ".join(_quote(c) for c in row)
            marks = ", ".join("?" for _ in row)
            values = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in row.values()]
            self.con.execute(
                f"INSERT INTO {_name(project, dataset, name)} ({columns}) VALUES ({marks})", values
            )

    def transcript(self) -> str:
        """Every statement issued so far with its parameters: the text of a golden file."""
        parts = []
        for statement in self.statements:
            params = json.dumps(dict(statement.params), sort_keys=True, default=_jsonable)
            parts.append(f"-- params: {params}\n{statement.text.strip()}\n")
        return "\n".join(parts)


@lru_cache(maxsize=512)
def _translate(statement: str) -> str:
    """BigQuery SQL to DuckDB SQL, as the emulator translates it (cached: tests repeat statements)."""
    translated = _TRANSLATOR.translate(statement)
    if isinstance(translated, Err):
        raise BadRequest(f"{translated.error}: {statement}")
    return translated.value


def _value(parameter: Any) -> Any:
    return list(parameter.values) if isinstance(parameter, bigquery.ArrayQueryParameter) else parameter.value


def _jsonable(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _name(project: str, dataset: str, table: str) -> str:
    return f"{_quote(project)}.{_quote(dataset)}.{_quote(table)}"
