"""Concurrent reads from the stack's BigQuery emulator return exactly the rows of the table asked for.

bqemulator 1.4.0 shares one DuckDB connection across its request threads, so concurrent readers
got another table's rows, a short count or a 500 (see ``local_stack.bigquery_emulator``).
The reads here are the real ones: the Gemini batch emulator's ``cloud.read_bq_rows`` (its
client construction, ``get_table`` + ``list_rows``) on a pool of the emulator's own
``IO_THREADS``, alone and interleaved with the product's queries (``pipeline.sql.query_rows``),
as an Airflow worker or the loader runs them while the emulator reads. Every row of every
table is compared.

Measured with bqemulator run unpatched (``python -m bqemulator``): 10 of 10 runs of each case
failed; patched: 0 of 10. A run takes about 3 s (emulator) and 7 s (emulator_and_product)
after 5 s of loading the tables.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import pytest

from gemini_batch.pipeline import sql
from local_stack.emulator import cloud
from local_stack.emulator.service import IO_THREADS

if TYPE_CHECKING:
    from local_stack.endpoints import StackEndpoints

pytestmark = pytest.mark.integration

#: Tables read at once and their size: enough that an unpatched server fails every run.
TABLE_COUNT = 32
ROWS_PER_TABLE = 300
#: Each round reads every table once, through a pool of the emulator's IO_THREADS.
ROUNDS = 3

#: Who reads: the Gemini emulator alone, or it and the product's queries at once.
ReadPath = Literal["emulator", "emulator_and_product"]
#: How one read is made: the emulator's ``list_rows`` or the product's query.
ReadHow = Literal["list_rows", "query"]


def table_rows(table: int) -> list[dict[str, Any]]:
    """Rows only table ``table`` has: every value names the table."""
    return [
        {
            "id": table * 1_000_000 + i,
            "request": {"contents": [{"role": "user", "parts": [{"text": f"table {table} row {i}"}]}]},
            "note": f"t{table}:{i}",
        }
        for i in range(ROWS_PER_TABLE)
    ]


@pytest.fixture(scope="module")
def tables(local_stack: StackEndpoints) -> Iterator[dict[str, list]]:
    """``{table_id: expected rows}`` for TABLE_COUNT tables in a dataset of their own."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=local_stack.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": local_stack.bigquery_url},
    )
    dataset = client.create_dataset(f"concurrency_{uuid.uuid4().hex[:12]}")
    schema = [
        bigquery.SchemaField("id", "INT64"),
        bigquery.SchemaField("request", "JSON"),
        bigquery.SchemaField("note", "STRING"),
    ]
    config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
    expected: dict[str, list] = {}
    for table in range(TABLE_COUNT):
        table_id = f"{client.project}.{dataset.dataset_id}.t{table}"
        rows = table_rows(table)
        body = "".join(json.dumps(row) + "\n" for row in rows).encode()
        client.load_table_from_file(io.BytesIO(body), table_id, job_config=config).result()
        expected[table_id] = rows
    yield expected
    client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def read_table(clients: cloud.CloudClients, table_id: str, how: ReadHow) -> list[dict]:
    """The table's rows as dicts: as the Gemini emulator reads them, or as the product queries them."""
    if how == "list_rows":
        rows = cloud.read_bq_rows(clients, f"bq://{table_id}")[1]
    else:
        rows = sql.query_rows(clients.bigquery(), f"SELECT id, request, note FROM `{table_id}`")
    return [{**row, "request": _json(row["request"])} for row in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def wrong_reads(clients: cloud.CloudClients, expected: dict[str, list], path: ReadPath) -> dict[str, str]:
    """One round: read every table at once (each twice for ``emulator_and_product``: once as the
    emulator reads it, once as the product queries it); ``{read: what was wrong}`` for each bad read.
    """
    hows: tuple[ReadHow, ...] = ("list_rows",) if path == "emulator" else ("list_rows", "query")
    reads = [(table_id, how) for table_id in expected for how in hows]
    with ThreadPoolExecutor(max_workers=IO_THREADS) as pool:
        futures = {read: pool.submit(read_table, clients, *read) for read in reads}
    problems: dict[str, str] = {}
    for (table_id, how), future in futures.items():
        name = f"{how} {table_id}"
        try:
            got = sorted(future.result(), key=lambda row: row["id"])
        except Exception as exc:  # noqa: BLE001 - a failed read is a finding, reported below
            problems[name] = f"read failed: {type(exc).__name__}: {str(exc)[:200]}"
            continue
        if got != expected[table_id]:
            own = table_id.rsplit(".", 1)[1]
            foreign = sorted({str(row.get("note", "?")).split(":")[0] for row in got} - {own})
            problems[name] = (
                f"{len(got)} rows for {len(expected[table_id])}; rows of other tables: {foreign or 'none'}"
            )
    return problems


@pytest.mark.parametrize("path", ["emulator", "emulator_and_product"])
def test_concurrent_readers_get_exactly_their_tables_rows(
    tables: dict[str, list], local_stack: StackEndpoints, path: ReadPath
) -> None:
    assert IO_THREADS > 1  # the emulator really reads concurrently, or this test proves nothing
    clients = cloud.CloudClients(local_stack.project)

    problems = {
        f"round {n}: {read}": what
        for n in range(ROUNDS)
        for read, what in wrong_reads(clients, tables, path).items()
    }

    assert problems == {}
