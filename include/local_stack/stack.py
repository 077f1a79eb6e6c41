"""Start and stop the local stack: GCS, BigQuery and Gemini batch emulators on free ports.

Invariants: one state directory holds at most one running stack (a lock file and the state
file guard it); :func:`start` either returns a stack whose three processes all answer as
themselves, or stops whatever it started and raises; :meth:`RunningStack.stop` stops exactly
the processes the state file names and nothing else.

The state directory and everything in it are its owner's only (directories 0700, files 0600,
the emulators run with umask 077): the env file holds the Gemini API key, which reaches the
emulator through its environment, never its command line.

Layout of a state directory (default ``<repo>/.local-stack``, or ``$LOCAL_STACK_DIR``)::

    env            KEY='value' lines for a shell (see docs/design.md)
    stack.json     pids, start times, ports: what ``down`` stops
    logs/<name>.log  stdout and stderr of each process
    gcs/ bq/ gemini/ the emulators' data
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Collection, Generator
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.endpoints import StackEndpoints
from local_stack.envfile import read_env_file, write_env_file
from local_stack.private_files import open_private_update, private_dir, write_private_text
from local_stack.processes import (
    ManagedProcess,
    ServiceSpec,
    free_ports,
    json_body,
    spawn,
    stop_processes,
    wait_until_healthy,
)

log = logging.getLogger(__name__)

#: Upper bound for all three processes to answer (bqemulator alone takes 1.1-1.5 s idle).
START_TIMEOUT_S = float(os.environ.get("LOCAL_STACK_START_TIMEOUT", "60"))
#: How long ``stop`` waits after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0

ENV_FILE = "env"
STATE_FILE = "stack.json"
LOCK_FILE = ".lock"
LOG_DIR = "logs"
GCS_DIR = "gcs"
BQ_DIR = "bq"
GEMINI_DIR = "gemini"

SERVICES: tuple[str, ...] = ("gcs", "bigquery", "gemini")
#: How the BigQuery emulator is run: bqemulator, patched so concurrent reads get their own rows.
BIGQUERY_MODULE = "local_stack.bigquery_emulator"
#: Where the Gemini batch emulator reads its API key (``local_stack.emulator.__main__``).
GEMINI_KEY_ENV = "GEMINI_EMULATOR_API_KEY"

_INCLUDE_DIR = Path(__file__).resolve().parent.parent
_REPO_ROOT = _INCLUDE_DIR.parent


class StackAlreadyRunning(RuntimeError):
    """A stack from this state directory is already running; ``.stack`` is it."""

    def __init__(self, stack: RunningStack) -> None:
        pids = ", ".join(f"{p.name} pid {p.pid}" for p in stack.processes)
        super().__init__(f"a local stack is already running from {stack.state_dir} ({pids})")
        self.stack = stack


def default_state_dir() -> Path:
    """``$LOCAL_STACK_DIR`` if set, else ``.local-stack`` at the repository root."""
    override = os.environ.get("LOCAL_STACK_DIR")
    return Path(override).resolve() if override else _REPO_ROOT / ".local-stack"


def gcs_object_root(state_dir: Path) -> Path:
    """Where gcp-storage-emulator keeps object files (what ``BQEMU_GCS_LOCAL_ROOT`` names)."""
    return state_dir / GCS_DIR / ".cloudstorage"


def emulator_available() -> bool:
    """Whether the Gemini batch emulator package (``local_stack.emulator``) is present."""
    return (_INCLUDE_DIR / "local_stack" / "emulator" / "__main__.py").is_file()


# --- what to run -------------------------------------------------------------------------


def _gcs_probe(status: int, body: bytes, proc: ManagedProcess) -> bool:
    return status == 200 and json_body(body).get("kind") == "storage#buckets"


def _bigquery_probe(status: int, body: bytes, proc: ManagedProcess) -> bool:
    data = json_body(body)
    return status == 200 and data.get("status") == "ok" and "checks" in data


def _gemini_probe(status: int, body: bytes, proc: ManagedProcess) -> bool:
    data = json_body(body)
    return (
        status == 200
        and data.get("service") == "gemini-batch-emulator"
        and isinstance(data.get("pid"), int)
        and proc.owns_pid(data["pid"])
    )


def service_specs(state_dir: Path, endpoints: StackEndpoints, *, ephemeral: bool) -> list[ServiceSpec]:
    """The three emulators' command lines, environments and health checks."""
    python = sys.executable
    common = {"NO_GCE_CHECK": "True", "PYTHONUNBUFFERED": "1"}
    pythonpath = os.pathsep.join(p for p in (str(_INCLUDE_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return [
        ServiceSpec(
            name="gcs",
            description="GCS emulator (gcp-storage-emulator)",
            argv=[
                python, "-m", "gcp_storage_emulator", "-d", str(state_dir / GCS_DIR),
                "start", "--host", endpoints.host, "--port", str(endpoints.storage_port), "-q",
            ],
            port=endpoints.storage_port,
            health_path=f"/storage/v1/b?project={endpoints.project}",
            probe=_gcs_probe,
            env=common,
        ),
        ServiceSpec(
            name="bigquery",
            description="BigQuery emulator (bqemulator)",
            argv=[
                python, "-m", BIGQUERY_MODULE, "start",
                "--rest-host", endpoints.host, "--rest-port", str(endpoints.bigquery_port),
                "--grpc-host", endpoints.host, "--grpc-port", str(endpoints.bigquery_grpc_port),
                "--project", endpoints.project,
                "--ephemeral" if ephemeral else "--persistent",
                "--data-dir", str(state_dir / BQ_DIR),
                "--log-level", "warning",
            ],
            port=endpoints.bigquery_port,
            health_path="/readyz",
            probe=_bigquery_probe,
            env={**common, "PYTHONPATH": pythonpath, "BQEMU_GCS_LOCAL_ROOT": str(gcs_object_root(state_dir))},
        ),
        ServiceSpec(
            name="gemini",
            description="Gemini batch emulator (python -m local_stack.emulator)",
            argv=[
                python, "-m", "local_stack.emulator",
                "--host", endpoints.host, "--port", str(endpoints.gemini_port),
                "--state-dir", str(state_dir / GEMINI_DIR),
                "--project", endpoints.project, "--location", endpoints.location,
            ],
            port=endpoints.gemini_port,
            health_path="/admin/health",
            probe=_gemini_probe,
            env={
                **common,
                "PYTHONPATH": pythonpath,
                "STORAGE_EMULATOR_HOST": endpoints.storage_url,
                "BIGQUERY_EMULATOR_HOST": endpoints.bigquery_url,
                # the key travels in the environment, never on the command line (``ps``)
                GEMINI_KEY_ENV: endpoints.api_key,
            },
        ),
    ]  # fmt: skip


# --- a running stack ---------------------------------------------------------------------


@dataclass
class RunningStack:
    """A started stack: its endpoints and processes. ``stop()`` ends it; also a context manager.

    :param state_dir: Required. The directory holding its env file, state file, logs and data.
    :param endpoints: Required. Where it answers.
    :param processes: Required. Its processes, one per service.
    :param ephemeral: Optional. True when BigQuery keeps its data in memory only.
    :param startup_s: Optional. Seconds from the first spawn until all answered.
    """

    state_dir: Path
    endpoints: StackEndpoints
    processes: list[ManagedProcess]
    ephemeral: bool = False
    startup_s: float | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def env_file(self) -> Path:
        """The shell-sourceable env file."""
        return self.state_dir / ENV_FILE

    @property
    def state_file(self) -> Path:
        """The pid/state file ``down`` reads."""
        return self.state_dir / STATE_FILE

    def running(self) -> list[ManagedProcess]:
        """The processes that still run (and are still the ones that were started)."""
        return [proc for proc in self.processes if proc.is_ours()]

    def is_running(self) -> bool:
        """True when every process of the stack still runs."""
        return bool(self.processes) and len(self.running()) == len(self.processes)

    def stop(self) -> list[str]:
        """Stop the stack's processes (SIGTERM, SIGKILL after a bound); remove its state and env files.

        Safe to call twice. :return: the names of the processes that were stopped.
        """
        with _locked(self.state_dir):
            return self._stop_unlocked()

    def _stop_unlocked(self) -> list[str]:
        stopped = stop_processes(self.processes, grace_s=STOP_GRACE_S)
        for path in (self.state_file, self.env_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if not self._stopped and stopped:
            log.info("local stack stopped (%s)", ", ".join(stopped))
        self._stopped = True
        return stopped

    def __enter__(self) -> RunningStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def to_dict(self) -> dict[str, object]:
        """The state file's content."""
        return {
            "version": 1,
            "state_dir": str(self.state_dir),
            "ephemeral": self.ephemeral,
            "owner_pid": os.getpid(),
            "written_at": time.time(),
            "endpoints": self.endpoints.to_dict(),
            "processes": [proc.to_dict() for proc in self.processes],
        }

    @classmethod
    def attach(cls, state_dir: Path | None = None) -> RunningStack | None:
        """The stack recorded in ``state_dir`` (running or not), or None if there is none."""
        state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        try:
            data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as err:
            raise RuntimeError(f"unreadable state file {state_dir / STATE_FILE}: {err}") from err
        return cls(
            state_dir=state_dir,
            endpoints=StackEndpoints.from_dict(data["endpoints"]),
            processes=[ManagedProcess.from_dict(p) for p in data["processes"]],
            ephemeral=bool(data.get("ephemeral", False)),
        )

    def write_state(self) -> None:
        """Write the state file atomically."""
        write_private_text(self.state_file, json.dumps(self.to_dict(), indent=2) + "\n")

    def write_env(self) -> None:
        """Write the env file (shell-sourceable, values single-quoted)."""
        header = (
            "Written by `python -m local_stack up`; removed by `down`.\n"
            "Load it into a shell with: set -a; . " + str(self.env_file) + "; set +a"
        )
        write_env_file(self.env_file, self.endpoints.env(), header=header)


# --- start -------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(state_dir: Path) -> Generator[None, None, None]:
    """Hold an exclusive lock on the state directory (two ``up`` at once: one waits)."""
    private_dir(state_dir)
    with open_private_update(state_dir / LOCK_FILE) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _allocate_endpoints() -> StackEndpoints:
    storage, bigquery, grpc, gemini = free_ports(4)
    return StackEndpoints(
        storage_port=storage, bigquery_port=bigquery, bigquery_grpc_port=grpc, gemini_port=gemini
    )


def _clear_stale(state_dir: Path) -> None:
    """Raise if a stack from ``state_dir`` runs; else stop leftovers of a dead one and forget it."""
    previous = RunningStack.attach(state_dir)
    if previous is None:
        return
    if previous.is_running():
        raise StackAlreadyRunning(previous)
    leftovers = previous.running()
    if leftovers:
        log.warning(
            "a previous stack is half dead; stopping what is left of it: %s",
            ", ".join(p.name for p in leftovers),
        )
    previous._stop_unlocked()


def start(
    state_dir: Path | str,
    *,
    ephemeral: bool = False,
    timeout: float = START_TIMEOUT_S,
    services: Collection[str] = SERVICES,
) -> RunningStack:
    """Start GCS, BigQuery and the Gemini batch emulator in the background and wait until they answer.

    The three start in parallel on free ports of 127.0.0.1; health is polled every 50 ms. The
    state file is written as soon as they are spawned (so ``down`` can stop them even if this
    process dies while waiting), the env file once all answer.

    :param state_dir: Required. Directory for the env file, state file, logs and data.
    :param ephemeral: Optional. Keep BigQuery in memory (tests). GCS stays on disk under
        ``state_dir`` either way, because bqemulator reads gs:// objects from its files.
    :param timeout: Optional. Seconds to wait for all three to answer.
    :param services: Optional. A subset of :data:`SERVICES` (debugging); the env file always
        names all endpoints.
    :raises StackAlreadyRunning: A stack from ``state_dir`` is running.
    :raises local_stack.processes.ProcessStartError: One did not come up; names it and its log.
    """
    state_dir = Path(state_dir).resolve()
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown services {sorted(unknown)}; choose from {SERVICES}")
    if "gemini" in services and not emulator_available():
        raise RuntimeError(
            f"the Gemini batch emulator is missing: no {_INCLUDE_DIR / 'local_stack/emulator/__main__.py'}"
        )
    with _locked(state_dir):
        _clear_stale(state_dir)
        for sub in (GCS_DIR, BQ_DIR, GEMINI_DIR):
            private_dir(state_dir / sub)
        private_dir(gcs_object_root(state_dir))
        endpoints = _allocate_endpoints()
        specs = [s for s in service_specs(state_dir, endpoints, ephemeral=ephemeral) if s.name in services]
        stack = RunningStack(state_dir=state_dir, endpoints=endpoints, processes=[], ephemeral=ephemeral)
        began = time.monotonic()
        try:
            for spec in specs:
                stack.processes.append(spawn(spec, state_dir / LOG_DIR, cwd=state_dir))
            stack.write_state()  # so `down` can stop them even if this process dies now
            wait_until_healthy(
                list(zip(specs, stack.processes, strict=False)), timeout=timeout, host=endpoints.host
            )
        except BaseException:
            stack._stop_unlocked()
            raise
        stack.startup_s = time.monotonic() - began
        stack.write_env()
        stack.write_state()
    log.info("local stack up in %.2f s from %s", stack.startup_s, state_dir)
    return stack


def load_env(state_dir: Path | str | None = None) -> dict[str, str]:
    """Read a running stack's env file back (``$LOCAL_STACK_DIR`` or ``<repo>/.local-stack``).

    :raises FileNotFoundError: No stack has been started there (run ``make stack-up``).
    """
    state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
    path = state_dir / ENV_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no local stack env file at {path}: run `make stack-up` first")
    return read_env_file(path)
