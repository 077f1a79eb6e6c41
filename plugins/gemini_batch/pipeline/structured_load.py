"""The loader's structured-output step: check every structured answer of a load against its schema.

Runs between finalize.sql and merge_results.sql, on the load's ``final`` scratch table (one
row per key, with ``response_schema``, ``schema_dialect`` and the server-parsed
``response_json``). BigQuery has no JSON Schema check, so the answers stream through the worker:

1. structured_answers.sql: the answered rows whose request declared a JSON schema, grouped by
   schema, read page by page (``page_size`` rows at a time);
2. each answer is parsed and checked alone (:mod:`gemini_batch.pipeline.structured`); the
   failures, as ``{"key", "problem"}`` lines, go to a spooled file (memory up to
   ``chunk_size``, then disk) and are loaded into a scratch table by one load job;
3. structured_invalid.sql turns those rows into ``invalid_output`` failures in ``final``.

Invariants: memory is one page of answers, one schema and the spool's in-memory part, whatever
the number of rows; a load without structured requests reads one empty page and writes nothing.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.structured import Problem, SchemaChecker, parse_answer

if TYPE_CHECKING:
    from google.cloud import bigquery

    from gemini_batch.pipeline.refs import TableRef

__all__ = ["INVALID_SCHEMA", "StructuredCheck", "check_answers", "check_structured_output"]

log = logging.getLogger(__name__)

INVALID_SCHEMA: tuple[tuple[str, str], ...] = (("key", "STRING"), ("problem", "STRING"))
_PAGE_ROWS = 10_000


@dataclass(frozen=True)
class StructuredCheck:
    """What the check saw: ``checked`` structured answers, ``invalid`` of them rejected."""

    checked: int = 0
    invalid: int = 0


def check_answers(rows: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, Problem]]:
    """The (key, first problem) of each answer that fails its schema, in the rows' order.

    :param rows: Rows of structured_answers.sql (``key``, ``response_text``, ``schema_dialect``,
        ``schema_id``, and ``schema_text`` on the first row of each schema group).
    :raises ValueError: A row starts a schema group without the schema's text (the query's
        grouping is broken: checking against the wrong schema would be silent).
    """
    current_id: str | None = None
    checker: SchemaChecker | None = None
    for row in rows:
        if row["schema_id"] != current_id:
            if row["schema_text"] is None:
                raise ValueError(
                    f"row {row['key']!r} starts schema group {row['schema_id']} without its schema"
                )
            current_id = row["schema_id"]
            checker = SchemaChecker(json.loads(row["schema_text"]), row["schema_dialect"])
        assert checker is not None
        value, problem = parse_answer(row["response_text"])
        problem = problem or checker.check(value)
        if problem is not None:
            yield row["key"], problem


def check_structured_output(
    client: bigquery.Client,
    *,
    final: TableRef,
    invalid_table: Callable[[Sequence[tuple[str, str]]], TableRef],
    chunk_size: int,
    page_size: int = _PAGE_ROWS,
) -> StructuredCheck:
    """Check the structured answers in ``final`` and mark the invalid ones (see the module docstring).

    :param final: The load's final scratch table (finalize.sql).
    :param invalid_table: Creates the (empty) scratch table for the rejected keys, given its schema.
    :param chunk_size: Bytes of rejected-key lines kept in memory before the spool goes to disk.
    :param page_size: Rows per page read from BigQuery.
    """
    from google.cloud import bigquery

    rows = client.query(sql.render("structured_answers.sql", final=final.sql)).result(page_size=page_size)
    checked = invalid = 0

    def counted(source: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
        nonlocal checked
        for row in source:
            checked += 1
            yield row

    # mode "r+b": the BigQuery client refuses to upload from a file opened "w+b".
    with tempfile.SpooledTemporaryFile(max_size=chunk_size, mode="r+b") as spool:
        for key, problem in check_answers(counted(rows)):
            line = {"key": key, "problem": str(problem)}
            spool.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
            invalid += 1
        if not checked:
            return StructuredCheck()
        table = invalid_table(INVALID_SCHEMA)
        if invalid:
            spool.seek(0)
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                schema=[bigquery.SchemaField(name, kind) for name, kind in INVALID_SCHEMA],
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            )
            client.load_table_from_file(spool, table.api_repr, job_config=config).result()
    sql.run(client, sql.render("structured_invalid.sql", final=final.sql, invalid=table.sql))
    log.info("checked %d structured answers against their schema: %d invalid_output", checked, invalid)
    return StructuredCheck(checked=checked, invalid=invalid)
