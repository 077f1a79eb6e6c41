"""``python -m local_stack up|down|status|env`` run as a user runs it, and the Python API.

Each CLI call is a subprocess with ``LOCAL_STACK_DIR`` pointing at a temp dir, so a stack the
developer runs by hand in ``.local-stack/`` is never touched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.endpoints import ENV_NAMES
from local_stack.envfile import read_env_file
from local_stack.processes import free_ports, start_marker
from local_stack.stack import RunningStack, gcs_object_root, start

pytestmark = pytest.mark.integration

INCLUDE = Path(__file__).resolve().parents[2] / "include"


def cli(state_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m local_stack ARGS`` with ``LOCAL_STACK_DIR=state_dir``."""
    env = {
        **os.environ,
        "LOCAL_STACK_DIR": str(state_dir),
        "PYTHONPATH": os.pathsep.join([str(INCLUDE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "local_stack", *args],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=timeout,
    )


def recorded_pids(state_dir: Path) -> dict[str, int]:
    """Process name -> pid, from the state file."""
    state = json.loads((state_dir / "stack.json").read_text())
    return {proc["name"]: proc["pid"] for proc in state["processes"]}


@pytest.fixture(scope="module")
def cli_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stack started with ``python -m local_stack up``; its state dir. ``down`` at the end."""
    state_dir = tmp_path_factory.mktemp("cli-stack")
    up = cli(state_dir, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    yield state_dir
    cli(state_dir, "down")


def test_up_writes_exactly_the_design_names(cli_stack: Path) -> None:
    env = read_env_file(cli_stack / "env")

    assert list(env) == list(ENV_NAMES)
    for line in (cli_stack / "env").read_text().splitlines():
        if not line.startswith("#"):
            _, _, value = line.partition("=")
            assert value.startswith("'") and value.endswith("'"), line


def test_a_shell_sourcing_the_env_file_gets_the_same_values(cli_stack: Path) -> None:
    script = f"set -a; . '{cli_stack / 'env'}'; set +a; env -0"
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, env={}).stdout
    sourced = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)

    expected = read_env_file(cli_stack / "env")
    assert {name: sourced[name] for name in expected} == expected
    assert json.loads(sourced["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"])["extra"]["is_anonymous"] is True


def test_the_gemini_emulator_answers_at_the_admin_url(cli_stack: Path) -> None:
    env = read_env_file(cli_stack / "env")
    pids = recorded_pids(cli_stack)

    with urllib.request.urlopen(env["LOCAL_STACK_ADMIN_URL"] + "/health", timeout=5) as response:
        health = json.load(response)

    assert health == {**health, "service": "gemini-batch-emulator", "pid": pids["gemini"]}


def test_real_clients_round_trip_through_the_env_values(cli_stack: Path, monkeypatch) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, storage

    env = read_env_file(cli_stack / "env")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    gcs = storage.Client(project=env["GOOGLE_CLOUD_PROJECT"])
    bq = bigquery.Client(
        project=env["GOOGLE_CLOUD_PROJECT"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": env["BIGQUERY_EMULATOR_HOST"]},
    )

    bucket = gcs.create_bucket("roundtrip")
    bucket.blob("in/rows.jsonl").upload_from_string('{"n": 1, "s": "a"}\n{"n": 2, "s": "b"}\n')
    assert gcs.bucket("roundtrip").blob("in/rows.jsonl").download_as_text().count("\n") == 2
    assert (gcs_object_root(cli_stack) / "roundtrip" / "in" / "rows.jsonl").is_file()

    bq.create_dataset("roundtrip")
    load = bq.load_table_from_uri(
        "gs://roundtrip/in/rows.jsonl",
        "roundtrip.rows",
        job_config=bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=[bigquery.SchemaField("n", "INT64"), bigquery.SchemaField("s", "STRING")],
        ),
    )
    load.result(timeout=60)
    rows = list(
        bq.query("SELECT SUM(n) AS total, STRING_AGG(s ORDER BY s) AS s FROM roundtrip.rows").result()
    )

    assert (rows[0]["total"], rows[0]["s"]) == (3, "a,b")


def test_the_stack_state_is_its_owners_only(cli_stack: Path) -> None:
    import stat

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(cli_stack) == 0o700
    private_files = [cli_stack / "env", cli_stack / "stack.json", *(cli_stack / "logs").iterdir()]
    assert {p.name: mode(p) for p in private_files} == {p.name: 0o600 for p in private_files}
    data = [p for p in (cli_stack / "gemini").rglob("*")]
    assert data and all(mode(p) & 0o077 == 0 for p in data)  # what the emulator writes, too


def test_the_api_key_is_on_no_command_line(cli_stack: Path) -> None:
    key = read_env_file(cli_stack / "env")["GEMINI_API_KEY"]
    for name, pid in recorded_pids(cli_stack).items():
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert key not in command_line, name
    gemini = recorded_pids(cli_stack)["gemini"]
    assert f"GEMINI_EMULATOR_API_KEY={key}".encode() in Path(f"/proc/{gemini}/environ").read_bytes().split(
        b"\0"
    )


def test_a_second_up_says_so_and_changes_nothing(cli_stack: Path) -> None:
    before_env = (cli_stack / "env").read_text()
    before_pids = recorded_pids(cli_stack)

    again = cli(cli_stack, "up")

    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert (cli_stack / "env").read_text() == before_env
    assert recorded_pids(cli_stack) == before_pids


def test_status_and_env_describe_the_running_stack(cli_stack: Path) -> None:
    status = cli(cli_stack, "status")
    exported = cli(cli_stack, "env")

    assert status.returncode == 0
    assert status.stdout.startswith("local stack: running from")
    for name, pid in recorded_pids(cli_stack).items():
        assert re.search(rf"^  {name} +running +pid {pid} ", status.stdout, re.MULTILINE), status.stdout
    assert exported.returncode == 0
    assert exported.stdout.splitlines()[0].startswith("export STORAGE_EMULATOR_HOST='http://127.0.0.1:")


def test_down_stops_exactly_its_processes_and_frees_the_ports(tmp_path: Path) -> None:
    assert cli(tmp_path, "up").returncode == 0
    pids = recorded_pids(tmp_path)
    env = read_env_file(tmp_path / "env")
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        down = cli(tmp_path, "down")

        assert down.returncode == 0, down.stderr
        assert "stopped: gcs, bigquery, gemini" in down.stdout
        assert all(start_marker(pid) is None for pid in pids.values())
        assert bystander.poll() is None
        assert not (tmp_path / "stack.json").exists() and not (tmp_path / "env").exists()
        assert (tmp_path / "logs" / "bigquery.log").is_file()
        for url in (
            env["STORAGE_EMULATOR_HOST"],
            env["BIGQUERY_EMULATOR_HOST"],
            env["GOOGLE_GEMINI_BASE_URL"],
        ):
            with pytest.raises(OSError):
                urllib.request.urlopen(url, timeout=2)
    finally:
        bystander.kill()
        bystander.wait()

    again = cli(tmp_path, "down")
    status = cli(tmp_path, "status")
    assert again.returncode == 0 and "nothing to stop" in again.stdout
    assert status.returncode == 3 and "not running" in status.stdout


def test_start_replaces_a_stale_state_file_and_stop_is_clean(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (port,) = free_ports(1)
    stale = {
        "endpoints": {
            "storage_port": port,
            "bigquery_port": port,
            "bigquery_grpc_port": port,
            "gemini_port": port,
        },
        "processes": [
            {"name": "gcs", "pid": dead.pid, "started": 1.0, "port": port, "log_file": "/dev/null"}
        ],
    }
    (tmp_path / "stack.json").write_text(json.dumps(stale))

    stack = start(tmp_path, ephemeral=True)
    pids = [proc.pid for proc in stack.processes]
    try:
        assert stack.is_running()
        assert RunningStack.attach(tmp_path).endpoints == stack.endpoints
        assert stack.startup_s is not None and stack.startup_s < 60
    finally:
        stopped = stack.stop()

    assert stopped == ["gcs", "bigquery", "gemini"]
    assert all(start_marker(pid) is None for pid in pids)
    assert all(proc.popen is not None and proc.popen.returncode is not None for proc in stack.processes)
    assert stack.stop() == []
