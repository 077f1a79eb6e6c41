"""Background processes of the local stack: spawn, health-check, identify and stop them.

Invariants: each process leads its own session and process group, so stopping it stops its
children and nothing else; a process is stopped only if it is still the very process that was
started (same pid and same start time), never a later process that reused the pid; every wait
is bounded and polls a condition.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.private_files import CHILD_UMASK, open_private_append, private_dir

try:  # psutil comes with Airflow; the emulators alone do not need it.
    import psutil
except ImportError:  # pragma: no cover - exercised only in a bare emulator environment
    psutil = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 2.0
LOG_TAIL_LINES = 15

#: A probe gets the HTTP status and body of one GET and the process, and says whether the
#: answer comes from the expected service.
Probe = Callable[[int, bytes, "ManagedProcess"], bool]


class ProcessStartError(RuntimeError):
    """A process exited or did not answer its health check in time."""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct ports that were free a moment ago (bound to port 0 together)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_marker(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if it does not exist.

    Together with the pid this names one process: a reused pid has a later start time.
    Without psutil, 0.0 stands for "exists, start time unknown".
    """
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc.create_time()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return None
    return 0.0


@dataclass(frozen=True)
class ServiceSpec:
    """How to run and health-check one emulator.

    :param name: Required. Short name used in logs, the state file and the log file name.
    :param description: Required. What a person calls it in an error ("BigQuery emulator").
    :param argv: Required. The command line.
    :param port: Required. The TCP port it must listen on.
    :param health_path: Required. The path of its health endpoint (GET).
    :param probe: Required. Decides whether a health answer comes from this service.
    :param env: Optional. Variables added to the inherited environment.
    """

    name: str
    description: str
    argv: Sequence[str]
    port: int
    health_path: str
    probe: Probe
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ManagedProcess:
    """One background process: the record in the state file plus, if we spawned it, its Popen.

    :param name: Required. The service name.
    :param pid: Required. Its pid, also its process group id.
    :param started: Required. Its start time (:func:`start_marker`), to recognise it later.
    :param port: Required. The port it serves on.
    :param log_file: Required. Where its stdout and stderr go.
    :param popen: Optional. The Popen handle when this process spawned it (to reap it).
    """

    name: str
    pid: int
    started: float
    port: int
    log_file: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pgid(self) -> int:
        """Its process group id (it leads its own group)."""
        return self.pid

    def is_ours(self) -> bool:
        """True while the pid still names the process that was started (not a reused pid)."""
        if self.popen is not None and self.popen.poll() is not None:
            return False
        marker = start_marker(self.pid)
        if marker is None:
            return False
        return marker == 0.0 or self.started == 0.0 or abs(marker - self.started) < 0.05

    def owns_pid(self, pid: int) -> bool:
        """Whether ``pid`` is this process or one of its descendants (a server's worker)."""
        if pid == self.pid:
            return True
        if psutil is None:
            return False
        try:
            return pid in {child.pid for child in psutil.Process(self.pid).children(recursive=True)}
        except psutil.Error:
            return False

    def exit_code(self) -> int | None:
        """The exit code if we spawned it and it has exited, else None."""
        return None if self.popen is None else self.popen.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of its log file (empty if there is none)."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def to_dict(self) -> dict[str, object]:
        """The state-file record."""
        return {
            "name": self.name,
            "pid": self.pid,
            "started": self.started,
            "port": self.port,
            "log_file": str(self.log_file),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ManagedProcess:
        """The inverse of :meth:`to_dict` (no Popen: another process spawned it)."""
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),  # type: ignore[arg-type]
            started=float(data["started"]),  # type: ignore[arg-type]
            port=int(data["port"]),  # type: ignore[arg-type]
            log_file=Path(str(data["log_file"])),
        )


def spawn(spec: ServiceSpec, log_dir: Path, cwd: Path) -> ManagedProcess:
    """Start ``spec`` in the background, in a new session, logging to ``log_dir/<name>.log`` (0600)."""
    private_dir(log_dir)
    log_file = log_dir / f"{spec.name}.log"
    env = {**os.environ, **spec.env}
    with open_private_append(log_file) as out:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        out.write(f"=== {stamp} starting: {' '.join(spec.argv)}\n".encode())
        out.flush()
        popen = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            umask=CHILD_UMASK,  # what the emulators write (data, their own files) stays private
        )
    started = start_marker(popen.pid)
    log.info("started %s (pid %d, port %d, log %s)", spec.name, popen.pid, spec.port, log_file)
    return ManagedProcess(
        name=spec.name,
        pid=popen.pid,
        started=started if started is not None else 0.0,
        port=spec.port,
        log_file=log_file,
        popen=popen,
    )


def http_get(host: str, port: int, path: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[int, bytes]:
    """One GET; returns (status, body). Raises OSError when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def json_body(body: bytes) -> dict[str, object]:
    """The body parsed as a JSON object, or an empty dict."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def listens_on(proc: ManagedProcess, port: int) -> bool | None:
    """Whether ``proc`` or one of its descendants holds the listening socket of ``port``.

    None when that cannot be told (no psutil, or the OS refuses to say).
    """
    if psutil is None:
        return None
    try:
        root = psutil.Process(proc.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return False
    undecided = False
    for member in family:
        try:
            connections = member.net_connections(kind="tcp")
        except psutil.AccessDenied:
            undecided = True
            continue
        except psutil.Error:
            continue
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return True
    return None if undecided else False


def _failure(spec: ServiceSpec, proc: ManagedProcess, reason: str) -> ProcessStartError:
    tail = proc.log_tail()
    detail = f"\n--- last lines of {proc.log_file} ---\n{tail}" if tail else ""
    return ProcessStartError(
        f"{spec.description} ({spec.name}, pid {proc.pid}) {reason}; see its log {proc.log_file}{detail}"
    )


def wait_until_healthy(
    pairs: Sequence[tuple[ServiceSpec, ManagedProcess]],
    *,
    timeout: float,
    host: str = "127.0.0.1",
) -> dict[str, float]:
    """Poll every process's health endpoint each 50 ms until all answer as themselves.

    A process counts as up when its health endpoint answers, the probe recognises the
    service, and (where the OS tells) the listening socket belongs to that process, so another
    program that grabbed the port is never mistaken for ours.

    :return: Seconds each service took, by name.
    :raises ProcessStartError: A process exited, or one did not answer within ``timeout``;
        the message names the process and its log file.
    """
    begin = time.monotonic()
    deadline = begin + timeout
    pending = list(pairs)
    ready: dict[str, float] = {}
    while pending:
        for spec, proc in list(pending):
            code = proc.exit_code()
            if code is not None:
                raise _failure(spec, proc, f"exited with code {code} before answering on port {spec.port}")
            try:
                status, body = http_get(host, spec.port, spec.health_path)
            except OSError:
                continue
            if not spec.probe(status, body, proc):
                continue
            owner = listens_on(proc, spec.port)
            if owner is False:
                if proc.exit_code() is not None:
                    continue  # reported as an exit on the next round
                raise _failure(
                    spec, proc, f"is not the process answering on port {spec.port} (another program holds it)"
                )
            ready[spec.name] = time.monotonic() - begin
            log.info("%s is up on port %d after %.2f s", spec.name, spec.port, ready[spec.name])
            pending.remove((spec, proc))
        if not pending:
            break
        if time.monotonic() >= deadline:
            spec, proc = pending[0]
            names = ", ".join(s.name for s, _ in pending)
            raise _failure(
                spec,
                proc,
                f"did not answer {spec.health_path} on port {spec.port} within {timeout:.0f} s"
                f" (still waiting for: {names})",
            )
        time.sleep(POLL_INTERVAL_S)
    return ready


def _group_alive(proc: ManagedProcess) -> bool:
    """Whether the process, or any process left in its group, still runs."""
    if proc.popen is not None:
        proc.popen.poll()  # reap our own child so it does not linger as a zombie
    try:
        os.killpg(proc.pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if psutil is None:
        return True
    # Members exist; zombies waiting for a reaper (e.g. PID 1 of a container) do not count.
    for other in psutil.process_iter(["pid", "status"]):
        try:
            if other.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(other.info["pid"]) == proc.pgid:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


def _signal_group(proc: ManagedProcess, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pgid, sig)


def stop_processes(procs: Sequence[ManagedProcess], *, grace_s: float = 10.0) -> list[str]:
    """Stop these processes and their process groups: SIGTERM, then SIGKILL after ``grace_s``.

    A process that is no longer the one that was started (exited, pid reused) is left alone.

    :return: The names of the processes that were running and have been stopped.
    """
    running = [proc for proc in procs if proc.is_ours()]
    for proc in running:
        log.info("stopping %s (process group %d) with SIGTERM", proc.name, proc.pgid)
        _signal_group(proc, signal.SIGTERM)
    if not _wait_gone(running, grace_s):
        for proc in running:
            if _group_alive(proc):
                log.warning("%s (pid %d) ignored SIGTERM for %.0f s: SIGKILL", proc.name, proc.pid, grace_s)
                _signal_group(proc, signal.SIGKILL)
        if not _wait_gone(running, 5.0):
            left = ", ".join(f"{p.name} (pid {p.pid})" for p in running if _group_alive(p))
            raise RuntimeError(f"could not stop: {left}")
    for proc in running:
        if proc.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=1)
    return [proc.name for proc in running]


def _wait_gone(procs: Sequence[ManagedProcess], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not any(_group_alive(proc) for proc in procs):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
