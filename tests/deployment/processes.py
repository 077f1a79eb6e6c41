"""The deployment test's processes: Postgres, Redis and Airflow services, each in its own group.

Invariants: every process is started in a new session (its own process group) with the marker
variable ``GEMINI_BATCH_DEPLOYMENT_TEST=<run id>`` in its environment; :meth:`Processes.stop_all`
ends every group (SIGTERM, then SIGKILL after a grace period) and then any process that still
carries the marker, so nothing the test started outlives it, whatever forked or re-parented.
Nothing else is ever signalled.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from local_stack.postgres import postgres_bin, service_user

MARKER = "GEMINI_BATCH_DEPLOYMENT_TEST"


def free_port() -> int:
    """A port free on 127.0.0.1 now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 1.0) -> Any:
    """Call ``condition`` until it returns something truthy (returned); TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Started:
    """One process the test started: the leader of its own process group."""

    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The log's last ``lines`` lines, after its first error line (often the cause) if earlier."""
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        first_error = next((line for line in text[:-lines] if "Error: " in line), None)
        return "\n".join(([f"first error: {first_error}", "..."] if first_error else []) + text[-lines:])


@dataclass
class Processes:
    """Starts processes in their own groups, logs each to a file, and stops them all."""

    log_dir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: dict[str, Started] = field(default_factory=dict)
    #: Folders removed by :meth:`stop_all` once every process is gone (data outside ``log_dir``).
    folders: list[Path] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> Started:
        """Start ``argv`` as ``name`` (unique) in a new session, output to ``<log_dir>/<name>.log``."""
        if name in self.started:
            raise ValueError(f"{name} already started")
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv), env={**env, MARKER: self.run_id}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, user=user,
            )  # fmt: skip
        self.started[name] = Started(name, popen, log)
        return self.started[name]

    def run(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        timeout: float,
        user: str | None = None,
    ) -> None:
        """Run a command to completion in its own group; RuntimeError with its log's tail on failure."""
        proc = self.start(name, argv, env, user=user)
        try:
            code = proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)
            raise RuntimeError(
                f"{name}: {' '.join(argv)} timed out after {timeout} s\n{proc.tail()}"
            ) from None
        if code != 0:
            raise RuntimeError(f"{name}: {' '.join(argv)} exited {code}\n{proc.tail()}")

    def kill(self, name: str) -> None:
        """SIGKILL the whole group of ``name`` (a crash, not a shutdown)."""
        proc = self.started[name].popen
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def marked(self) -> list[psutil.Process]:
        """Live processes carrying this run's marker, wherever they were re-parented."""
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get(MARKER) == self.run_id and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def stop_all(self, grace: float = 20.0) -> None:
        """SIGTERM every group (newest first), SIGKILL what is left after ``grace`` s, then the strays."""
        for proc in reversed(self.started.values()):
            if proc.alive():
                try:
                    os.killpg(proc.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in self.started.values():
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.started.values():
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.popen.wait(timeout=30)
        for stray in self.marked():
            try:
                stray.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(self.marked(), timeout=10)
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Database:
    """A PostgreSQL server the test started: its port and its data folder (removed at the end)."""

    port: int
    data_dir: Path


def start_postgres(
    procs: Processes, *, user: str, password: str, database: str, base_env: Mapping[str, str]
) -> Database:
    """initdb a fresh cluster (scram auth, the compose credentials), start it on a free port, create the DB.

    The folder is a fresh ``mkdtemp`` owned by the server's user (pytest's temp folders are
    private to root); sockets live in it too.
    """
    os_user = service_user()
    data_root = Path(tempfile.mkdtemp(prefix="gemini-batch-postgres-"))
    procs.folders.append(data_root)
    if os_user:
        entry = pwd.getpwnam(os_user)
        os.chown(data_root, entry.pw_uid, entry.pw_gid)
    data_dir = data_root / "data"
    pwfile = data_root / "pwfile"
    pwfile.write_text(password + "\n")
    if os_user:
        os.chown(pwfile, pwd.getpwnam(os_user).pw_uid, -1)
    pwfile.chmod(0o600)
    env = {**base_env, "LC_ALL": "C.UTF-8"}
    procs.run(
        "initdb", [postgres_bin("initdb"), "-D", str(data_dir), "-U", user, f"--pwfile={pwfile}",
                   "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
        env, timeout=120, user=os_user,
    )  # fmt: skip
    port = free_port()
    procs.start(
        "postgres", [postgres_bin("postgres"), "-D", str(data_dir), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                     "-c", f"unix_socket_directories={data_root}", "-c", "fsync=off", "-c", "max_connections=200"],
        env, user=os_user,
    )  # fmt: skip

    import psycopg2

    def connect() -> Any:
        try:
            return psycopg2.connect(
                host="127.0.0.1", port=port, user=user, password=password, dbname="postgres"
            )
        except psycopg2.OperationalError:
            if not procs.started["postgres"].alive():
                raise RuntimeError("postgres exited:\n" + procs.started["postgres"].tail()) from None
            return None

    conn = wait_for(connect, timeout=60, what="postgres to accept connections", interval=0.3)
    conn.autocommit = True
    with conn.cursor() as cur:
        if database != "postgres":
            cur.execute(f'CREATE DATABASE "{database}"')
    conn.close()
    return Database(port=port, data_dir=data_root)


def start_redis(procs: Processes, state_dir: Path, base_env: Mapping[str, str]) -> int:
    """redis-server on a free 127.0.0.1 port, no persistence; returns the port once it answers PING."""
    port = free_port()
    procs.start(
        "redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--dir", str(state_dir)],
        base_env,
    )  # fmt: skip

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            if not procs.started["redis"].alive():
                raise RuntimeError("redis exited:\n" + procs.started["redis"].tail()) from None
            return False

    wait_for(pong, timeout=30, what="redis to answer PING", interval=0.2)
    return port
