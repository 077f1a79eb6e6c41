"""Background processes: health waits name the culprit, stops hit exactly our process groups."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from local_stack.processes import (
    ManagedProcess,
    ProcessStartError,
    ServiceSpec,
    free_ports,
    json_body,
    listens_on,
    spawn,
    start_marker,
    stop_processes,
    wait_until_healthy,
)

# A tiny HTTP server that answers {"service": "fake", "pid": <its pid>} and starts a child
# (`sleep`) in its process group, so a group stop must end both.
SERVER = textwrap.dedent(
    """
    import http.server, json, os, subprocess, sys
    subprocess.Popen(["sleep", "300"])
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"service": "fake", "pid": os.getpid()}).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a): pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


def _fake_probe(status: int, body: bytes, proc: ManagedProcess) -> bool:
    return status == 200 and json_body(body) == {"service": "fake", "pid": proc.pid}


def _spec(argv: list[str], port: int, name: str = "fake") -> ServiceSpec:
    return ServiceSpec(
        name=name, description="fake service", argv=argv, port=port, health_path="/", probe=_fake_probe
    )


@pytest.fixture
def fake_service(tmp_path: Path):
    (port,) = free_ports(1)
    spec = _spec([sys.executable, "-c", SERVER, str(port)], port)
    proc = spawn(spec, tmp_path / "logs", cwd=tmp_path)
    yield spec, proc
    stop_processes([proc], grace_s=2)


def test_free_ports_are_distinct() -> None:
    ports = free_ports(4)
    assert len(set(ports)) == 4


def test_wait_returns_once_the_service_answers_as_itself(fake_service) -> None:
    spec, proc = fake_service

    ready = wait_until_healthy([(spec, proc)], timeout=20)

    assert set(ready) == {"fake"}
    assert listens_on(proc, spec.port) is True


def test_a_process_that_exits_is_named_with_its_log(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    spec = _spec([sys.executable, "-c", "print('boom: bad flag'); raise SystemExit(3)"], port, name="broken")
    proc = spawn(spec, tmp_path / "logs", cwd=tmp_path)

    with pytest.raises(ProcessStartError) as err:
        wait_until_healthy([(spec, proc)], timeout=20)

    message = str(err.value)
    assert "broken" in message and "exited with code 3" in message
    assert str(tmp_path / "logs" / "broken.log") in message
    assert "boom: bad flag" in message


def test_a_process_that_never_answers_times_out_with_its_name(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    spec = _spec([sys.executable, "-c", "import time; time.sleep(60)"], port, name="silent")
    proc = spawn(spec, tmp_path / "logs", cwd=tmp_path)
    try:
        with pytest.raises(ProcessStartError, match=r"silent.*did not answer / on port \d+ within 1 s"):
            wait_until_healthy([(spec, proc)], timeout=1)
    finally:
        stop_processes([proc], grace_s=2)


def test_another_program_on_the_port_is_not_taken_for_ours(fake_service, tmp_path: Path) -> None:
    spec, proc = fake_service
    wait_until_healthy([(spec, proc)], timeout=20)
    impostor = spawn(
        _spec([sys.executable, "-c", "import time; time.sleep(60)"], spec.port, "impostor"),
        tmp_path / "logs",
        cwd=tmp_path,
    )
    try:
        # The impostor never binds the port: the answer comes from another process.
        assert listens_on(impostor, spec.port) is False
    finally:
        stop_processes([impostor], grace_s=2)


def test_stop_ends_the_whole_group_and_nothing_else(fake_service) -> None:
    spec, proc = fake_service
    wait_until_healthy([(spec, proc)], timeout=20)
    group = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)] + [proc.pid]
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        stopped = stop_processes([proc], grace_s=5)

        assert stopped == ["fake"]
        assert all(start_marker(pid) is None for pid in group)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_reused_pid_is_not_ours(fake_service) -> None:
    _, proc = fake_service
    stranger = ManagedProcess(
        name="x", pid=proc.pid, started=proc.started - 1000, port=0, log_file=Path("/dev/null")
    )

    assert proc.is_ours()
    assert not stranger.is_ours()
    assert stop_processes([stranger]) == []
    assert proc.is_ours()
