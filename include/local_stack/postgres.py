"""``python -m local_stack.postgres start|stop <airflow home>``: the metadata database of `make airflow`.

Why not SQLite (what ``airflow standalone`` defaults to): Airflow 3.3's API server writes its
audit log (``action_logging``) from an ``async`` dependency, a blocking commit on the event loop.
On SQLite that commit waits for the database's single write lock; when the lock is held by a
request in the thread pool (a task's Execution API call, another click) whose own commit needs
the event loop, neither moves until the lock wait times out, and the click answers 500 "Database
error". Measured on SQLite: of 8 triggers sent 4 at a time, 3 answered 500 after 30 s, and the
scheduler got "database is locked" too; CI hit it with one click while the cancel sweep's task ran. PostgreSQL locks rows, not the database, so the two never wait on each other.

- ``start`` initdb-s a cluster when there is none, starts it with ``pg_ctl`` (PostgreSQL's own
  supervisor: it waits until the server accepts connections and detaches it from the terminal,
  so Ctrl-C reaches Airflow first) on a free 127.0.0.1 port, creates the ``airflow`` database and
  prints the SQLAlchemy URL on stdout (for the caller's environment only: it holds the password).
- ``stop`` stops it (``pg_ctl stop -m fast``) and removes a throwaway cluster.

Where the cluster lives: ``<airflow home>/postgres``, kept between runs like the SQLite file was.
As root (a container, CI) the server runs as ``postgres`` or ``nobody`` (initdb refuses root),
which may not reach the Airflow home, so the cluster is a throwaway in a fresh temporary folder.
The password is random, in a 0600 file next to the data; the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from local_stack.private_files import private_dir, write_private_text
from local_stack.processes import free_ports

USER = "airflow"
DATABASE = "airflow"
STATE_FILE = "postgres.json"
START_TIMEOUT_S = 120


def postgres_bin(program: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's ``/usr/lib/postgresql/<newest>/bin``."""
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise FileNotFoundError(
            f"PostgreSQL's {program} not found: install the PostgreSQL server (Debian/Ubuntu: "
            "include/dev/system_packages.sh or apt-get install postgresql; macOS: brew install postgresql)"
        )
    return candidates[-1]


def service_user() -> str | None:
    """The user PostgreSQL runs as: ourselves, or when we are root (initdb refuses it) ``postgres``/``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


@dataclass(frozen=True)
class Cluster:
    """A running cluster of ours: where its files are, its port, and whether ``stop`` removes it."""

    root: str
    port: int
    throwaway: bool

    @property
    def data_dir(self) -> Path:
        return Path(self.root) / "data"

    @property
    def password_file(self) -> Path:
        return Path(self.root) / "password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self) -> str:
        return f"postgresql+psycopg2://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"


def _run(argv: list[str], os_user: str | None) -> None:
    """Run a PostgreSQL program to completion; RuntimeError with its output when it fails."""
    done = subprocess.run(
        argv, user=os_user, env={**os.environ, "LC_ALL": "C.UTF-8"}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} ... exited {done.returncode}:\n{done.stdout}{done.stderr}")


def _cluster_root(home: Path, os_user: str | None) -> tuple[Path, bool]:
    """(folder, throwaway): ``<home>/postgres`` for ourselves, a fresh temporary folder as root."""
    if os_user is None:
        return private_dir(home / "postgres"), False
    root = Path(tempfile.mkdtemp(prefix="gemini-batch-airflow-postgres-"))
    entry = pwd.getpwnam(os_user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    return root, True


def _initdb(cluster: Cluster, os_user: str | None) -> None:
    write_private_text(cluster.password_file, secrets.token_urlsafe(24) + "\n")
    if os_user:
        os.chown(cluster.password_file, pwd.getpwnam(os_user).pw_uid, -1)
    _run(
        [postgres_bin("initdb"), "-D", str(cluster.data_dir), "-U", USER, f"--pwfile={cluster.password_file}",
         "--auth=scram-sha-256", "-E", "UTF8"],
        os_user,
    )  # fmt: skip


def _create_database(cluster: Cluster) -> None:
    import psycopg2

    conn = psycopg2.connect(
        host="127.0.0.1", port=cluster.port, user=USER, password=cluster.password, dbname="postgres"
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        conn.close()


def _pg_ctl_stop(data_dir: Path, os_user: str | None) -> None:
    """Stop the server of ``data_dir`` if one runs (fast: sessions are ended, data is kept)."""
    status = subprocess.run(
        [postgres_bin("pg_ctl"), "-D", str(data_dir), "status"],
        user=os_user,
        capture_output=True,
        check=False,
    )
    if status.returncode == 0:  # 3: no server runs (a stale postmaster.pid included)
        _run([postgres_bin("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], os_user)


def start(home: Path) -> Cluster:
    """Start the cluster of ``home`` (created on first use) on a free port; return it once it serves."""
    os_user = service_user()
    private_dir(home)
    stop(home)  # a server left by a killed run: start afresh on a new free port
    root, throwaway = _cluster_root(home, os_user)
    if not throwaway:
        _pg_ctl_stop(root / "data", os_user)  # one whose state file is gone
    cluster = Cluster(root=str(root), port=free_ports(1)[0], throwaway=throwaway)
    write_private_text(home / STATE_FILE, json.dumps(asdict(cluster)))
    if not (cluster.data_dir / "PG_VERSION").exists():
        _initdb(cluster, os_user)
    options = (
        # TCP on 127.0.0.1 only, no Unix socket (its path would be limited to 107 bytes).
        f"-p {cluster.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        # A developer's database: a crash may lose the last commits, never corrupt it.
        "-c synchronous_commit=off"
    )
    _run(
        [postgres_bin("pg_ctl"), "-D", str(cluster.data_dir), "-l", str(Path(root) / "postgres.log"), "-w",
         "-t", str(START_TIMEOUT_S), "-o", options, "start"],
        os_user,
    )  # fmt: skip
    _create_database(cluster)
    return cluster


def stop(home: Path) -> None:
    """Stop the cluster ``start`` ran for ``home`` (nothing when none runs); remove a throwaway one."""
    state = home / STATE_FILE
    if not state.exists():
        return
    cluster = Cluster(**json.loads(state.read_text()))
    try:
        _pg_ctl_stop(cluster.data_dir, service_user())
    finally:
        if cluster.throwaway:
            shutil.rmtree(cluster.root, ignore_errors=True)
        state.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m local_stack.postgres start|stop <airflow home>", file=sys.stderr)
        return 2
    home = Path(argv[1]).resolve()
    try:
        if argv[0] == "start":
            print(start(home).url())
        else:
            stop(home)
    except (FileNotFoundError, RuntimeError, OSError) as err:
        print(f"local_stack.postgres {argv[0]}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
