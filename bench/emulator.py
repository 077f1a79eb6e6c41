"""Benchmark the Gemini batch emulator; prints figures (no asserts on time).

1. A 100,000-row ``gs://`` JSONL job end to end through the SDK (Vertex mode): upload, create,
   poll, verify the predictions file.
2. The same for a 100,000-row ``bq://`` table (``--skip-bq`` to leave it out).
3. 10,000 jobs created (kept PENDING with ``queue_delay_s``), then polled concurrently with the
   SDK's async client and with plain aiohttp; requests/s, latencies, and the emulator's own CPU
   time per request (its capacity at one full core).

The emulator is pinned to CPU 0 and this process to the other CPUs, so the figures are those of
one core. It starts its own ephemeral stack (``local_stack.stack.start``) and stops it.

Run: ``make bench`` or ``PYTHONPATH=include:plugins .venv/bin/python bench/emulator.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for sub in ("include", "plugins"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

from local_stack.admin import AdminClient  # noqa: E402
from local_stack.stack import start  # noqa: E402

TERMINAL = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
}


def say(text: str) -> None:
    print(text, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_line(i: int) -> dict[str, Any]:
    text = f"Summarize support ticket {i}: the customer reports that the export button does nothing."
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def vertex_client(endpoints: Any) -> Any:
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    return genai.Client(
        vertexai=True,
        project=endpoints.project,
        location=endpoints.location,
        credentials=Credentials(token="local"),
        http_options=types.HttpOptions(base_url=endpoints.gemini_url),
    )


def run_job(client: Any, src: str, label: str, rows: int, emulator_pid: int) -> Any:
    """Create a job, poll it to the end; print the timings; return the finished job."""
    cpu_before = cpu_seconds(emulator_pid)
    began = time.monotonic()
    job = client.batches.create(model="gemini-2.5-flash", src=src)
    created = time.monotonic()
    polls = 0
    max_poll_ms = 0.0
    while True:
        t0 = time.monotonic()
        current = client.batches.get(name=job.name)
        max_poll_ms = max(max_poll_ms, (time.monotonic() - t0) * 1000)
        polls += 1
        if current.state.value in TERMINAL:
            break
        time.sleep(0.2)
    total = time.monotonic() - began
    running = (current.end_time - current.start_time).total_seconds() if current.start_time else float("nan")
    stats = current.completion_stats
    say(
        f"  {label}: {current.state.value} in {total:.1f} s wall (create {1000 * (created - began):.0f} ms, "
        f"running {running:.1f} s = {rows / running:,.0f} rows/s), "
        f"{stats.successful_count:,} succeeded / {stats.failed_count:,} failed, "
        f"{polls} polls (slowest {max_poll_ms:.0f} ms while running), "
        f"emulator CPU {cpu_seconds(emulator_pid) - cpu_before:.1f} s"
    )
    return current


def bench_gcs(endpoints: Any, rows: int, emulator_pid: int) -> None:
    from google.cloud import storage

    gcs = storage.Client(project=endpoints.project)
    bucket = gcs.create_bucket(f"bench-{int(time.time())}")
    data = "".join(json.dumps({"request": request_line(i)}) + "\n" for i in range(rows)).encode()
    t0 = time.monotonic()
    bucket.blob("input/requests.jsonl").upload_from_string(data, content_type="application/jsonl")
    say(f"  uploaded {rows:,} rows ({len(data) / 1e6:.1f} MB) to GCS in {time.monotonic() - t0:.1f} s")
    client = vertex_client(endpoints)
    done = run_job(
        client, f"gs://{bucket.name}/input/requests.jsonl", f"gs:// {rows:,} rows", rows, emulator_pid
    )
    directory = done.output_info.gcs_output_directory
    name = directory[len(f"gs://{bucket.name}/") :] + "/predictions.jsonl"
    blob = bucket.blob(name)
    output = blob.download_as_bytes()
    lines = output.count(b"\n")
    say(f"  output {directory}/predictions.jsonl: {lines:,} lines, {len(output) / 1e6:.1f} MB")


def bench_bq(endpoints: Any, rows: int, emulator_pid: int) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    bq = bigquery.Client(
        project=endpoints.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoints.bigquery_url},
    )
    bq.create_dataset("bench", exists_ok=True)
    schema = [bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("request", "JSON")]
    table_id = f"{endpoints.project}.bench.prompts"
    data = "".join(json.dumps({"id": i, "request": request_line(i)}) + "\n" for i in range(rows)).encode()
    t0 = time.monotonic()
    config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
    bq.load_table_from_file(io.BytesIO(data), table_id, job_config=config).result()
    say(f"  loaded {rows:,} rows into {table_id} in {time.monotonic() - t0:.1f} s")
    client = vertex_client(endpoints)
    done = run_job(client, f"bq://{table_id}", f"bq:// {rows:,} rows", rows, emulator_pid)
    output = done.dest.bigquery_uri[len("bq://") :]
    count = list(bq.query(f"SELECT COUNT(*) AS n FROM `{output}`").result())[0]["n"]
    say(f"  output table {output}: {count:,} rows")


async def create_jobs(endpoints: Any, count: int, src: str, concurrency: int) -> list[str]:
    import aiohttp

    parent = f"projects/{endpoints.project}/locations/{endpoints.location}"
    url = f"{endpoints.gemini_url}/v1beta1/{parent}/batchPredictionJobs"
    body = {
        "displayName": "poll-bench",
        "model": "publishers/google/models/gemini-2.5-flash",
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [src]}},
        "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": src + "-out"}},
    }
    names: list[str] = []
    queue = list(range(count))
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer local"}) as session:

        async def worker() -> None:
            while queue:
                queue.pop()
                async with session.post(url, json=body) as response:
                    names.append((await response.json())["name"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return names


async def poll_with_sdk(
    endpoints: Any, names: list[str], concurrency: int, rounds: int
) -> tuple[int, float, list[float]]:
    client = vertex_client(endpoints)
    latencies: list[float] = []
    work = [name for _ in range(rounds) for name in names]
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(work):
            name = work[position]
            position += 1
            t0 = time.perf_counter()
            job = await client.aio.batches.get(name=name)
            latencies.append(time.perf_counter() - t0)
            assert job.state is not None

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(work), time.perf_counter() - began, latencies


async def poll_with_aiohttp(
    endpoints: Any, names: list[str], concurrency: int, rounds: int
) -> tuple[int, float, list[float]]:
    import aiohttp

    work = [f"{endpoints.gemini_url}/v1beta1/{name}" for _ in range(rounds) for name in names]
    latencies: list[float] = []
    position = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Authorization": "Bearer local"}
    ) as session:

        async def worker() -> None:
            nonlocal position
            while position < len(work):
                url = work[position]
                position += 1
                t0 = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200
                latencies.append(time.perf_counter() - t0)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(work), time.perf_counter() - began, latencies


def report(label: str, result: tuple[int, float, list[float]], cpu: float) -> None:
    count, elapsed, latencies = result
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    say(
        f"  {label}: {count:,} gets in {elapsed:.1f} s = {count / elapsed:,.0f} req/s "
        f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms); emulator CPU {cpu:.2f} s = "
        f"{1e6 * cpu / count:.0f} us/request -> {count / cpu:,.0f} req/s per core"
    )


def bench_polling(endpoints: Any, jobs: int, concurrency: int, emulator_pid: int) -> None:
    from google.cloud import storage

    admin = AdminClient(endpoints.admin_url)
    admin.reset()
    admin.set_faults(queue_delay_s=3600)  # they stay PENDING while polled: no input reads
    bucket = storage.Client(project=endpoints.project).create_bucket(f"poll-{int(time.time())}")
    bucket.blob("one.jsonl").upload_from_string(json.dumps({"request": request_line(0)}) + "\n")
    src = f"gs://{bucket.name}/one.jsonl"
    t0 = time.monotonic()
    cpu0 = cpu_seconds(emulator_pid)
    names = asyncio.run(create_jobs(endpoints, jobs, src, 64))
    elapsed = time.monotonic() - t0
    say(
        f"  created {len(names):,} jobs in {elapsed:.1f} s = {len(names) / elapsed:,.0f} creates/s "
        f"(emulator CPU {cpu_seconds(emulator_pid) - cpu0:.1f} s, each persisted to disk)"
    )
    cpu0 = cpu_seconds(emulator_pid)
    sdk = asyncio.run(poll_with_sdk(endpoints, names, concurrency, 1))
    report(f"SDK client.aio, {concurrency} in flight, every job once", sdk, cpu_seconds(emulator_pid) - cpu0)
    cpu0 = cpu_seconds(emulator_pid)
    raw = asyncio.run(poll_with_aiohttp(endpoints, names, concurrency, 3))
    report(f"aiohttp, {concurrency} in flight, every job 3 times", raw, cpu_seconds(emulator_pid) - cpu0)
    t0 = time.monotonic()
    listed = admin.jobs()
    say(f"  admin /jobs with {len(listed):,} jobs: {1000 * (time.monotonic() - t0):.0f} ms")
    admin.reset()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--skip-bq", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("NO_GCE_CHECK", "True")
    state_dir = Path(tempfile.mkdtemp(prefix="emulator-bench-"))
    say(f"starting an ephemeral stack in {state_dir}")
    stack = start(state_dir, ephemeral=True)
    try:
        os.environ.update(stack.endpoints.env())
        emulator = next(p for p in stack.processes if p.name == "gemini")
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(emulator.pid, {cpus[0]})
        if len(cpus) > 1:
            os.sched_setaffinity(0, set(cpus[1:]))
        say(f"stack up in {stack.startup_s:.1f} s; emulator pid {emulator.pid} pinned to CPU {cpus[0]}")
        say(f"[1] gs:// JSONL job, {args.rows:,} rows")
        bench_gcs(stack.endpoints, args.rows, emulator.pid)
        if not args.skip_bq:
            say(f"[2] bq:// table job, {args.rows:,} rows")
            bench_bq(stack.endpoints, args.rows, emulator.pid)
        say(f"[3] {args.jobs:,} jobs polled concurrently")
        bench_polling(stack.endpoints, args.jobs, args.concurrency, emulator.pid)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
