"""Jobs, files and faults survive a restart of the emulator process; a running job finishes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from emulator_helpers import jsonl, user_request, wait_for_job
from google.genai import types

from local_stack.admin import AdminClient

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
S = types.JobState


class EmulatorProcess:
    """Our own emulator process on a given state directory, sharing the stack's GCS and BigQuery."""

    def __init__(self, state_dir: Path, stack) -> None:
        self.state_dir = state_dir
        self.stack = stack
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "include"), os.environ.get("PYTHONPATH", "")]),
            "STORAGE_EMULATOR_HOST": self.stack.storage_url,
            "BIGQUERY_EMULATOR_HOST": self.stack.bigquery_url,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "local_stack.emulator", "--port", "0", "--state-dir", str(self.state_dir),
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            match = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                return
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"emulator did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None

    @property
    def endpoints(self):
        return replace(self.stack, gemini_port=self.port)


@pytest.fixture
def emulator(local_stack, tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path / "gemini", local_stack)
    process.start()
    yield process
    process.stop()


def test_jobs_files_and_faults_survive_a_restart_and_a_running_job_finishes(
    emulator, gcs_bucket, gcs_client
) -> None:
    from conftest import make_gemini_client, make_vertex_client

    vertex = make_vertex_client(emulator.endpoints)
    gemini = make_gemini_client(emulator.endpoints)
    gcs_bucket.blob("small.jsonl").upload_from_string(jsonl([{"request": user_request("small")}]))
    gcs_bucket.blob("big.jsonl").upload_from_string(
        jsonl([{"request": user_request(f"r{i}")} for i in range(400)])
    )
    finished = wait_for_job(
        vertex,
        vertex.batches.create(model="gemini-2.5-flash", src=f"gs://{gcs_bucket.name}/small.jsonl").name,
    )
    uploaded = gemini.files.upload(
        file=jsonl_file(), config={"mime_type": "application/jsonl", "name": "kept"}
    )
    admin = AdminClient(emulator.endpoints.admin_url)
    admin.set_faults(row_latency_ms=10)
    running = vertex.batches.create(model="gemini-2.5-flash", src=f"gs://{gcs_bucket.name}/big.jsonl")
    wait_for_job(vertex, running.name, states={S.JOB_STATE_RUNNING})

    emulator.stop()
    emulator.start()
    vertex = make_vertex_client(emulator.endpoints)
    gemini = make_gemini_client(emulator.endpoints)
    admin = AdminClient(emulator.endpoints.admin_url)
    assert admin.faults()["row_latency_ms"] == 10
    admin.set_faults(row_latency_ms=0)  # the running job keeps its snapshot: it still takes ~4 s

    assert vertex.batches.get(name=finished.name).output_info == finished.output_info
    assert gemini.files.get(name=uploaded.name).size_bytes == uploaded.size_bytes
    assert gemini.files.download(file=uploaded.name) == jsonl_file().getvalue()
    resumed = wait_for_job(vertex, running.name, timeout=60)
    assert resumed.state == S.JOB_STATE_SUCCEEDED
    assert resumed.completion_stats.successful_count == 400
    bucket, _, prefix = resumed.output_info.gcs_output_directory[5:].partition("/")
    lines = gcs_client.bucket(bucket).blob(f"{prefix}/predictions.jsonl").download_as_bytes().splitlines()
    assert len(lines) == 400 and all(json.loads(line)["status"] == "" for line in lines)
    assert [j["name"] for j in admin.jobs()] == [finished.name, running.name]


def jsonl_file():
    import io

    return io.BytesIO(jsonl([{"key": "a", "request": user_request("kept")}]))
