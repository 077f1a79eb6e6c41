"""The bqemulator patch in ``local_stack.bigquery_emulator``, on bqemulator's own engine in-process.

Each test starts a real ``DuckDBEngine`` (in memory) and uses it as bqemulator's request
threads do. Without the patch, ``test_concurrent_reads_each_get_their_own_table`` fails at once
(measured: 13 of 200 reads wrong or raising); the others pin what the patch must keep: one
database for all threads and the engine's UTC session.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local_stack import bigquery_emulator

TABLES = 16
ROWS = 2000
READS = 200
THREADS = 4


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    """A started in-memory engine with the patch applied; the class is restored afterwards."""
    from bqemulator.config import PersistenceMode, Settings
    from bqemulator.storage.engine import DuckDBEngine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DuckDBEngine, "connection", DuckDBEngine.__dict__["connection"])
        patch.setattr(DuckDBEngine, bigquery_emulator._PATCHED_FLAG, False, raising=False)
        bigquery_emulator.apply()
        engine = DuckDBEngine(Settings(persistence_mode=PersistenceMode.EPHEMERAL))
        asyncio.run(engine.start())
        yield engine
        asyncio.run(engine.stop())


def in_thread(func: Any, *args: Any) -> Any:
    """``func(*args)`` run in a new thread (as a request on bqemulator's pool), its result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(func, *args).result()


def test_concurrent_reads_each_get_their_own_table(engine: Any) -> None:
    for table in range(TABLES):
        engine.execute(f"CREATE TABLE t{table} AS SELECT {table} AS tab, range AS i FROM range({ROWS})")

    def read(table: int) -> tuple[int, list[int], int]:
        result = engine.fetch_arrow(f"SELECT tab, i FROM t{table}")
        return table, sorted(set(result.column("tab").to_pylist())), result.num_rows

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(read, n % TABLES) for n in range(READS)]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except Exception as exc:  # noqa: BLE001 - an error is a wrong read too
            outcomes.append(repr(exc))

    assert [o for o in outcomes if not isinstance(o, tuple) or o[1:] != ([o[0]], ROWS)] == []


def test_a_table_made_on_one_thread_is_read_on_another(engine: Any) -> None:
    in_thread(engine.execute, "CREATE TABLE made_elsewhere AS SELECT 42 AS answer")

    assert in_thread(lambda: engine.execute("SELECT answer FROM made_elsewhere").fetchall()) == [(42,)]
    assert engine.execute("SELECT answer FROM made_elsewhere").fetchall() == [(42,)]


def test_every_thread_has_the_engines_utc_session(engine: Any) -> None:
    root_zone = engine._connection.execute("SELECT current_setting('TimeZone')").fetchone()[0]

    zones = {in_thread(lambda: engine.execute("SELECT current_setting('TimeZone')").fetchone()[0])}

    assert zones == {root_zone} == {"UTC"}


def test_threads_never_share_a_connection(engine: Any) -> None:
    barrier = threading.Barrier(THREADS)

    def grab() -> Any:
        barrier.wait()  # all threads alive at once, so each is a different thread
        return engine.connection

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        connections = [f.result() for f in [pool.submit(grab) for _ in range(THREADS)]]
    connections += [engine.connection, engine._connection]

    assert len({id(c) for c in connections}) == len(connections)  # references held: ids are unique


def test_apply_refuses_an_engine_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    from bqemulator.storage.engine import DuckDBEngine

    monkeypatch.setattr(DuckDBEngine, bigquery_emulator._PATCHED_FLAG, False, raising=False)
    monkeypatch.setattr(DuckDBEngine, "connection", lambda self: None)

    with pytest.raises(RuntimeError, match="changed shape"):
        bigquery_emulator.apply()
