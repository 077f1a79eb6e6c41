"""Concurrent reads from the BigQuery emulator: bqemulator as released against our patched launch.

Starts the BigQuery emulator twice on free ports, in memory: as released (``python -m
bqemulator``) and as the local stack runs it (``python -m local_stack.bigquery_emulator``, one
DuckDB cursor per thread). Into each it loads ``--tables`` tables whose every row names its
table, then reads them for ``--rounds`` rounds, every row compared, in two ways:

* ``1 process x N threads``: as the Gemini batch emulator reads BigQuery sources
  (``cloud.read_bq_rows`` on a pool of its ``IO_THREADS``);
* ``2 processes, locked``: two processes that each serialize their own reads with a lock: what
  a client-side lock in the Gemini emulator would give while an Airflow worker also reads.

Prints, per server and way: failed rounds, wrong or failed reads, rows read against rows
expected (a failed read counts 0), and seconds per round. No asserts.

Run: ``PYTHONPATH=plugins:include .venv/bin/python bench/bigquery_concurrency.py [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for sub in ("include", "plugins"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

from local_stack import stack  # noqa: E402
from local_stack.emulator import cloud  # noqa: E402
from local_stack.emulator.service import IO_THREADS  # noqa: E402
from local_stack.endpoints import StackEndpoints  # noqa: E402
from local_stack.processes import free_ports, spawn, stop_processes, wait_until_healthy  # noqa: E402

DATASET = "bench_concurrency"


@dataclass(frozen=True)
class Tally:
    """What one reader saw over all its rounds."""

    rounds: int = 0
    failed_rounds: int = 0
    reads: int = 0
    bad_reads: int = 0
    rows_read: int = 0
    rows_expected: int = 0
    seconds: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            *(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=False))
        )


def note_of(table: int, row: int) -> str:
    return f"t{table}:{row}"


def start_bigquery(module: str, state_dir: Path) -> tuple[Any, StackEndpoints]:
    """The stack's BigQuery emulator spec, run as ``python -m <module>``; its process and endpoints."""
    storage, bigquery, grpc, gemini = free_ports(4)
    endpoints = StackEndpoints(storage, bigquery, grpc, gemini)
    (spec,) = [s for s in stack.service_specs(state_dir, endpoints, ephemeral=True) if s.name == "bigquery"]
    spec = dataclasses.replace(spec, argv=[module if a == stack.BIGQUERY_MODULE else a for a in spec.argv])
    proc = spawn(spec, state_dir / "logs", cwd=state_dir)
    try:
        wait_until_healthy([(spec, proc)], timeout=60)
    except BaseException:
        stop_processes([proc])
        raise
    return proc, endpoints


def load_tables(endpoints: StackEndpoints, tables: int, rows: int) -> None:
    os.environ["BIGQUERY_EMULATOR_HOST"] = endpoints.bigquery_url
    from google.cloud import bigquery

    client = cloud.CloudClients(endpoints.project).bigquery()
    client.create_dataset(DATASET)
    schema = [bigquery.SchemaField("request", "JSON"), bigquery.SchemaField("note", "STRING")]
    config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
    for table in range(tables):
        lines = (
            {"request": {"contents": [{"parts": [{"text": note_of(table, i)}]}]}, "note": note_of(table, i)}
            for i in range(rows)
        )
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        table_id = table_uri(endpoints.project, table).removeprefix("bq://")
        client.load_table_from_file(io.BytesIO(body), table_id, job_config=config).result()


def table_uri(project: str, table: int) -> str:
    return f"bq://{project}.{DATASET}.t{table}"


def read_rounds(args: tuple[str, str, int, int, int, int, bool]) -> Tally:
    """``rounds`` rounds of reading every table with ``threads`` threads (one at a time if ``locked``)."""
    url, project, tables, rows, rounds, threads, locked = args
    os.environ["BIGQUERY_EMULATOR_HOST"] = url
    clients = cloud.CloudClients(project)
    lock = threading.Lock() if locked else None

    def read(table: int) -> tuple[bool, int]:
        try:
            if lock is None:
                got = cloud.read_bq_rows(clients, table_uri(project, table))[1]
            else:
                with lock:
                    got = cloud.read_bq_rows(clients, table_uri(project, table))[1]
        except Exception:  # noqa: BLE001 - a failed read is what is measured
            return False, 0
        right = sorted(str(r.get("note")) for r in got) == sorted(note_of(table, i) for i in range(rows))
        return right, len(got)

    total = Tally()
    for _ in range(rounds):
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = list(pool.map(read, range(tables)))
        bad = sum(not right for right, _ in outcomes)
        total += Tally(
            rounds=1,
            failed_rounds=int(bad > 0),
            reads=tables,
            bad_reads=bad,
            rows_read=sum(n for _, n in outcomes),
            rows_expected=tables * rows,
            seconds=time.perf_counter() - began,
        )
    return total


def measure(
    endpoints: StackEndpoints, tables: int, rows: int, rounds: int, processes: int, locked: bool
) -> Tally:
    job = (endpoints.bigquery_url, endpoints.project, tables, rows, rounds, IO_THREADS, locked)
    if processes == 1:
        return read_rounds(job)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        tallies = pool.map(read_rounds, [job] * processes)
    return sum(tallies, Tally())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=32)
    parser.add_argument("--rows", type=int, default=300, help="rows per table")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    print(
        f"bqemulator {version('bqemulator')}, duckdb {version('duckdb')}; {args.tables} tables x "
        f"{args.rows} rows, {args.rounds} rounds; Gemini emulator IO_THREADS = {IO_THREADS}",
        flush=True,
    )
    header = (
        f"{'server':<34} {'readers':<22} {'failed rounds':>13} {'bad reads':>13} "
        f"{'rows read/expected':>22} {'s/round':>8}"
    )
    print(header)
    print("-" * len(header))
    servers = {
        "as released (python -m bqemulator)": "bqemulator",
        "patched (local_stack)": stack.BIGQUERY_MODULE,
    }
    for label, module in servers.items():
        bench_server(label, module, args)


def bench_server(label: str, module: str, args: argparse.Namespace) -> None:
    """Start one server, load the tables, print one line per way of reading."""
    ways = [(f"1 process x {IO_THREADS} threads", 1, False), ("2 processes, locked", 2, True)]
    with tempfile.TemporaryDirectory(prefix="bench-bq-") as tmp:
        proc, endpoints = start_bigquery(module, Path(tmp))
        try:
            load_tables(endpoints, args.tables, args.rows)
            for way, processes, locked in ways:
                t = measure(endpoints, args.tables, args.rows, args.rounds, processes, locked)
                print(
                    f"{label:<34} {way:<22} {t.failed_rounds:>6}/{t.rounds:<6} {t.bad_reads:>6}/{t.reads:<6} "
                    f"{t.rows_read:>10}/{t.rows_expected:<11} {t.seconds / t.rounds:>8.2f}",
                    flush=True,
                )
        finally:
            stop_processes([proc])


if __name__ == "__main__":
    main()
