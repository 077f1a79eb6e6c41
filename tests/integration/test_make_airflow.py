"""`make airflow` as a user runs it: the UI answers, clicks at the same time all succeed, a manual run
of the ad hoc DAG succeeds through the REST API, and Ctrl-C stops every process it started
(Airflow's, its PostgreSQL and the local stack's)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Api:
    """A tiny REST client of the Airflow API server (stdlib only)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, body); (0, why) when the server does not answer in time.

        The time allowed is a browser's: an answer that is slow on a loaded machine is not an error.
        """
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
            return 0, f"no answer from {method} {path}: {err!r}"


def server_errors(log: Path) -> str:
    """The API server's logged database errors (it answers 500 "Database error" with only an id)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    hits = [i for i, line in enumerate(lines) if "Error with id" in line or "OperationalError" in line]
    return "\n".join("\n".join(lines[i : i + 12]) for i in hits[:3]) or "(no database error logged)"


def dag_is_listed_unpaused(api: Api, dag_id: str) -> bool:
    """The DAG is parsed and listed, and unpaused (ours that run on demand start unpaused)."""
    status, dag = api.call("GET", f"/api/v2/dags/{dag_id}")
    if status != 200:
        return False
    assert dag["is_paused"] is False, f"{dag_id} should start unpaused: {dag}"
    return True


def clean_env(**extra: str) -> dict[str, str]:
    """The user's shell: none of the test session's Airflow or stack settings."""
    drop = ("AIRFLOW", "STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "GOOGLE_", "GEMINI_", "LOCAL_STACK")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, **extra}


@pytest.fixture
def make_airflow(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Api, Path]]:
    port = free_port()
    stack_dir = tmp_path / "stack"
    env = clean_env(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        LOCAL_STACK_DIR=str(stack_dir),
        AIRFLOW__API__PORT=str(port),
    )
    log = (tmp_path / "make-airflow.log").open("w")
    # Its own session, like a terminal's foreground job: Ctrl-C is SIGINT to the whole group, and
    # SIGINT is not ignored (as it is when pytest itself runs as a background job: a shell cannot
    # trap a signal ignored on entry).
    proc = subprocess.Popen(
        ["make", "airflow"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        yield proc, Api(f"http://127.0.0.1:{port}"), stack_dir
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                clean_up_after_a_killed_make_airflow(env)
        log.close()


def clean_up_after_a_killed_make_airflow(env: dict[str, str]) -> None:
    """What a SIGKILLed `make airflow` leaves: Airflow's own process group, and PostgreSQL and the
    local stack (both detached). Airflow's groups are found by a leader that inherited our
    AIRFLOW_HOME (forked workers rename themselves over their environment) and killed; PostgreSQL
    and the stack are stopped by their own commands."""
    home = env["AIRFLOW_HOME"]
    groups = set()
    for stray in psutil.process_iter(["name"]):
        try:
            if stray.environ().get("AIRFLOW_HOME") == home and not stray.info["name"].startswith("postgres"):
                groups.add(os.getpgid(stray.pid))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ProcessLookupError):
            continue
    for group in groups - {os.getpgid(0)}:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run(
        [python, "-m", "local_stack.postgres", "stop", home], env=env, cwd=ROOT / "include", check=False
    )
    subprocess.run([python, "-m", "local_stack", "down"], env=env, cwd=ROOT / "include", check=False)


def test_make_airflow_serves_the_ui_runs_the_adhoc_dag_and_stops_cleanly(
    make_airflow, tmp_path: Path
) -> None:
    proc, api, stack_dir = make_airflow

    def healthy() -> bool:
        if proc.poll() is not None:
            pytest.fail(
                f"make airflow exited with {proc.returncode}: {(tmp_path / 'make-airflow.log').read_text()[-3000:]}"
            )
        status, _ = api.call("GET", "/api/v2/monitor/health")
        return status == 200

    wait_for(healthy, timeout=180, what="the Airflow API server")
    status, token = api.call("POST", "/auth/token", {"username": "admin", "password": "admin"})
    assert status in (200, 201), token
    api.token = token["access_token"]

    wait_for(
        lambda: dag_is_listed_unpaused(api, "gemini_batch_adhoc"),
        timeout=120,
        what="the dag-processor to pick up gemini_batch_adhoc",
    )

    # Four users click Trigger at once, twice each. On SQLite (standalone's default) the API server's
    # audit-log commit blocks its event loop while another click holds the database's write lock:
    # 3 of these 8 answered 500 "Database error" after 30 s. The DAG stays paused: its runs only queue.
    def trigger_paused_dag(_: int) -> tuple[int, Any]:
        return api.call("POST", "/api/v2/dags/gemini_batch_bigquery/dagRuns", {"logical_date": None})

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(trigger_paused_dag, range(8)))
    failed = [body for status, body in answers if status != 200]
    assert not failed, f"{failed}\n{server_errors(tmp_path / 'make-airflow.log')}"

    prompts = ["Name a prime number.", "Name a colour.", "Name a river."]
    status, run = api.call(
        "POST",
        "/api/v2/dags/gemini_batch_adhoc/dagRuns",
        {"logical_date": None, "conf": {"prompts": prompts, "temperature": 0.1}},
    )
    assert status == 200, f"{run}\n{server_errors(tmp_path / 'make-airflow.log')}"
    run_id = run["dag_run_id"]

    def finished() -> dict | None:
        status, body = api.call("GET", f"/api/v2/dags/gemini_batch_adhoc/dagRuns/{run_id}")
        return body if status == 200 and body["state"] in ("success", "failed") else None

    final = wait_for(finished, timeout=300, what=f"run {run_id} to finish", interval=2)
    status, tis = api.call("GET", f"/api/v2/dags/gemini_batch_adhoc/dagRuns/{run_id}/taskInstances")
    states = {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}
    assert final["state"] == "success", states

    status, links = api.call(
        "GET", f"/api/v2/dags/gemini_batch_adhoc/dagRuns/{run_id}/taskInstances/run_job/links"
    )
    assert status == 200, links
    # The local stack: the link opens the job in the Gemini batch view (offline), on this API server.
    assert links["extra_links"]["Gemini batch job"].startswith(f"{api.base}/gemini-batch/job?"), links

    status, xcom = api.call(
        "GET",
        f"/api/v2/dags/gemini_batch_adhoc/dagRuns/{run_id}/taskInstances/load_results/xcomEntries/return_value",
    )
    assert status == 200, xcom
    assert str(len(prompts)) in json.dumps(xcom["value"])

    # Ctrl-C: every process it started goes away, the stack's and PostgreSQL's (pg_ctl detaches it) included.
    children = psutil.Process(proc.pid).children(recursive=True)
    stack_pids = [p["pid"] for p in json.loads((stack_dir / "stack.json").read_text())["processes"]]
    postgres_state = tmp_path / "airflow" / "postgres.json"
    postgres_root = json.loads(postgres_state.read_text())["root"]
    postgres_pids = [
        p.pid for p in psutil.process_iter(["cmdline"]) if postgres_root in " ".join(p.info["cmdline"] or [])
    ]
    assert children and stack_pids and postgres_pids
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=90)

    def all_gone() -> bool:
        alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        return not alive and not any(
            psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            for pid in stack_pids + postgres_pids
        )

    wait_for(all_gone, timeout=30, what="every process of make airflow to stop")
    assert not (stack_dir / "stack.json").exists()
    assert not postgres_state.exists()
