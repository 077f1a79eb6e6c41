"""Run bqemulator with one DuckDB cursor per thread: ``python -m local_stack.bigquery_emulator start ...``.

Why: bqemulator 1.4.0 serves every request through ONE ``duckdb.DuckDBPyConnection``
(``bqemulator.storage.engine.DuckDBEngine``), on the belief that DuckDB makes one connection
safe across threads. It does not: ``execute`` leaves its result on the connection and
returns the connection itself, so when two requests run at once (FastAPI runs the sync
routes, ``tabledata.list`` among them, on a thread pool; gRPC uses its own) one thread
fetches the rows of the other thread's statement. Readers then silently get another
table's rows, the wrong count, or a 500. It happens between processes too (the Gemini batch
emulator, an Airflow worker and the loader share one server), so a lock in a client cannot
fix it; it has to be fixed in the server.

The fix is DuckDB's documented rule for threads: each thread uses its own cursor
(``connection.cursor()``, a connection to the same database). :func:`apply` makes
``DuckDBEngine.connection`` (which ``execute`` and ``fetch_arrow`` go through, as do the
``register``/``unregister`` calls) return the calling thread's cursor. Cursors share the
database, its catalog, extensions and functions; only session settings are per cursor, so
each new cursor gets the engine's one session setting (``TimeZone``, see
``DuckDBEngine._apply_session_pragmas``).

Invariants: after :func:`apply`, no two threads ever use the same DuckDB connection object;
the root connection is used only to make cursors, under a lock; :func:`apply` is idempotent
and refuses to run (raises) against a bqemulator whose engine no longer looks like the one
patched here, rather than silently doing nothing.
"""

from __future__ import annotations

import threading
from typing import Any

#: The session settings ``DuckDBEngine._apply_session_pragmas`` makes on its connection;
#: every cursor gets them too (BigQuery TIMESTAMP is UTC).
SESSION_SETUP: tuple[str, ...] = ("SET TimeZone = 'UTC'",)

_PATCHED_FLAG = "_local_stack_thread_cursors"


def _thread_connection(engine: Any) -> Any:
    """The calling thread's cursor on ``engine``'s database (made on first use)."""
    from bqemulator.domain.errors import InternalError

    root = engine._connection
    if root is None:
        raise InternalError("DuckDBEngine not started")
    local: threading.local = engine.__dict__.setdefault("_local_stack_threads", threading.local())
    cursor = getattr(local, "cursor", None)
    if cursor is None or getattr(local, "root", None) is not root:
        lock: threading.Lock = engine.__dict__.setdefault("_local_stack_cursor_lock", threading.Lock())
        with lock:
            cursor = root.cursor()
        for statement in SESSION_SETUP:
            cursor.execute(statement)
        local.cursor, local.root = cursor, root
    return cursor


def apply() -> None:
    """Patch ``DuckDBEngine.connection`` to hand each thread its own cursor (idempotent).

    :raises RuntimeError: The installed bqemulator's engine is not shaped as expected.
    """
    from bqemulator.storage.engine import DuckDBEngine

    if getattr(DuckDBEngine, _PATCHED_FLAG, False):
        return
    current = DuckDBEngine.__dict__.get("connection")
    if not isinstance(current, property) or not hasattr(DuckDBEngine, "_apply_session_pragmas"):
        raise RuntimeError(
            "bqemulator's DuckDBEngine changed shape (no `connection` property): re-check whether "
            "it still shares one DuckDB connection across threads before patching it"
        )
    DuckDBEngine.connection = property(  # type: ignore[method-assign,assignment]
        _thread_connection, doc="The calling thread's own DuckDB cursor (local_stack patch)."
    )
    setattr(DuckDBEngine, _PATCHED_FLAG, True)


def main() -> None:
    """Patch, then run bqemulator's own command line (same arguments as ``bqemulator``)."""
    apply()
    from bqemulator.cli import main as bqemulator_main

    bqemulator_main()


if __name__ == "__main__":
    main()
