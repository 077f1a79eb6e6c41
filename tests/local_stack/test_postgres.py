"""`make airflow`'s metadata database: a real PostgreSQL started, restarted and stopped by
``local_stack.postgres`` (Debian's server programs, which make test installs)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import psutil
import psycopg2
import pytest
from sqlalchemy.engine import make_url

from local_stack import postgres

pytestmark = pytest.mark.integration


def servers_of(root: str) -> list[psutil.Process]:
    """Live PostgreSQL server processes whose data folder is under ``root``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if root in " ".join(proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.NoSuchProcess:  # ended while we looked
            continue
    return found


def query(url: str, sql: str) -> list[tuple]:
    parts = make_url(url)
    conn = psycopg2.connect(
        host=parts.host, port=parts.port, user=parts.username, password=parts.password, dbname=parts.database
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.fixture
def home(tmp_path: Path):
    home = tmp_path / "airflow"
    yield home
    postgres.stop(home)


def test_start_serves_the_airflow_database_on_localhost_and_stop_leaves_nothing(home: Path) -> None:
    cluster = postgres.start(home)
    url = cluster.url()

    assert make_url(url).host == "127.0.0.1" and make_url(url).database == "airflow"
    assert query(url, "SELECT current_database(), current_user") == [("airflow", "airflow")]
    listening = {
        c.laddr.ip for p in servers_of(cluster.root) for c in p.net_connections() if c.status == "LISTEN"
    }
    assert listening == {"127.0.0.1"}
    # The password never lies in a file others can read, nor in the state file.
    assert stat.S_IMODE(os.stat(cluster.password_file).st_mode) == 0o600
    assert make_url(url).password not in (home / postgres.STATE_FILE).read_text()

    postgres.stop(home)

    assert not servers_of(cluster.root)
    assert not (home / postgres.STATE_FILE).exists()
    if cluster.throwaway:
        assert not Path(cluster.root).exists()
    postgres.stop(home)  # nothing runs: a no-op


def test_a_second_start_stops_the_first_server_and_serves_again(home: Path) -> None:
    first = postgres.start(home)
    query(first.url(), "CREATE TABLE kept (x int)")
    second = postgres.start(home)  # as after a make airflow that was SIGKILLed

    assert not servers_of(first.root), "the first server still runs"
    assert query(second.url(), "SELECT 1") == [(1,)]
    state = json.loads((home / postgres.STATE_FILE).read_text())
    assert state == {"root": second.root, "port": second.port, "throwaway": second.throwaway}
    if not second.throwaway:  # our own user: the data is kept between runs
        assert query(second.url(), "SELECT count(*) FROM kept") == [(0,)]


def test_the_cluster_is_kept_for_a_user_and_a_throwaway_for_root(tmp_path: Path) -> None:
    root, throwaway = postgres._cluster_root(tmp_path, None if os.geteuid() else postgres.service_user())
    try:
        assert throwaway == (os.geteuid() == 0)
        assert (root == tmp_path / "postgres") == (not throwaway)
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    finally:
        if throwaway:
            root.rmdir()
