"""Benchmark loading a Gemini API results file: our loader against the Google provider's way.

For each size (default 10k, 100k and 1M prediction rows) a results file in the Gemini API layout
(``{"key", "response"}`` lines, 1% ``{"key", "error"}``) is put in the local stack's Files API,
then handled twice, each time by a fresh worker process whose peak RSS is measured:

* ``loader``: ``gemini_batch.pipeline.loader.ResultsLoader`` end to end: the file streamed from
  the Files API into GCS in 8 MiB chunks, one BigQuery load job, the typed MERGE into the
  results and errors tables, the reconciliation against a keys table.
* ``provider``: what ``GenAIGeminiCreateBatchJobOperator`` (apache-airflow-providers-google
  22.8.0) does with a results file: ``client.files.download`` into memory, decode, ``splitlines``,
  write to a local file. It ends there: nothing is parsed or loaded anywhere.

With ``--cases structured`` (or ``plain,structured``) the answers are JSON under a response
schema declared by each request (a ``request`` column in the keys table, Gemini's OpenAPI
``responseSchema``), 5% of them broken (bad JSON or a missing required field): the loader then
also streams every answer through the worker page by page to check it against the schema
(pipeline/structured_load.py), so the worker's peak RSS at 1M rows against 100k rows shows
whether that step stays in bounded memory. Only the loader runs that case (the provider's path
does nothing with a schema).

Prints a table (no asserts): seconds, rows/s, the worker's peak RSS, and its RSS before the work
(imports and clients), so the difference is what the work itself holds.

Run: ``PYTHONPATH=plugins:include .venv/bin/python bench/output_load.py [--sizes 10000,100000]``.
It starts its own ephemeral local stack and stops it (or uses a running one: ``--use-env`` with
the variables of ``.local-stack/env`` in the environment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for sub in ("include", "plugins"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

DATASET = "bench_output_load"
FAILED_EVERY = 100  # 1% of the rows are errors
BROKEN_EVERY = 20  # structured case: 5% of the answers break the schema
SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "label": {"type": "STRING", "enum": ["spam", "ham"]},
        "score": {"type": "NUMBER"},
        "n": {"type": "INTEGER"},
    },
    "required": ["label", "score", "n"],
}
STRUCTURED_REQUEST = {
    "contents": [{"role": "user", "parts": [{"text": "classify"}]}],
    "generationConfig": {"responseMimeType": "application/json", "responseSchema": SCHEMA},
}


def say(text: str) -> None:
    print(text, flush=True)


def rss_mb() -> float:
    """Current resident set size of this process, from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM). Not ``ru_maxrss``: Linux keeps that across
    ``execve``, so a worker would report the peak of the process it was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def structured_text(index: int) -> str:
    """A JSON answer under :data:`SCHEMA`; every :data:`BROKEN_EVERY`-th one broken."""
    value = {"label": "spam" if index % 2 else "ham", "score": index % 100 / 100, "n": index}
    if index % BROKEN_EVERY == 7:
        del value["n"]  # a missing required field
    text = json.dumps(value, separators=(",", ":"))
    return text[:-1] if index % BROKEN_EVERY == 17 else text  # bad JSON


def results_line(index: int, structured: bool = False) -> bytes:
    key = f"k{index:09d}"
    if index % FAILED_EVERY == FAILED_EVERY - 1:
        return json.dumps(
            {
                "key": key,
                "error": {
                    "code": 400,
                    "message": "Request contains an invalid argument.",
                    "status": "INVALID_ARGUMENT",
                },
            },
            separators=(",", ":"),
        ).encode()
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "text": structured_text(index)
                            if structured
                            else f"Answer number {index}: forty-two."
                        }
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 8, "totalTokenCount": 20},
        "modelVersion": "gemini-2.5-flash",
    }
    return json.dumps({"key": key, "response": response}, separators=(",", ":")).encode()


def write_results_file(path: Path, rows: int, structured: bool = False) -> int:
    with path.open("wb") as out:
        for start in range(0, rows, 10_000):
            out.write(
                b"".join(results_line(i, structured) + b"\n" for i in range(start, min(rows, start + 10_000)))
            )
    return path.stat().st_size


def genai_client() -> Any:
    from google import genai
    from google.genai import types

    return genai.Client(
        api_key=os.environ["GEMINI_API_KEY"],
        http_options=types.HttpOptions(base_url=os.environ["GOOGLE_GEMINI_BASE_URL"], timeout=600_000),
    )


def bigquery_client() -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=os.environ["GOOGLE_CLOUD_PROJECT"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": os.environ["BIGQUERY_EMULATOR_HOST"]},
    )


# --- the two workers (each run in its own process) -----------------------------------------------


def worker_loader(
    file_name: str, rows: int, bucket: str, keys_table: str, structured: bool = False
) -> dict[str, Any]:
    from google.cloud import storage

    from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader

    loader = ResultsLoader(
        bigquery_client=bigquery_client(),
        storage_client=storage.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"]),
        genai_client=genai_client(),
        staging_gcs=f"gs://{bucket}/staging",
    )
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    # Warm up every client (lazy imports, connection pools) so the baseline holds them.
    loader.bq.get_dataset(f"{project}.{DATASET}")
    loader.gcs.lookup_bucket(bucket)
    loader.genai.files.get(name=file_name)
    baseline = rss_mb()
    started = time.perf_counter()
    counts = loader.load(
        [JobOutput("gemini_file", f"batches/bench-{rows}", file_name, model="gemini-2.5-flash")],
        logical_date="2026-01-01",
        input_keys=InputKeys.from_table(keys_table, request_column="request" if structured else None),
        results_table=f"{project}.{DATASET}.results_{rows}{'_structured' if structured else ''}",
        errors_table=f"{project}.{DATASET}.errors_{rows}{'_structured' if structured else ''}",
    )
    seconds = time.perf_counter() - started
    assert counts.succeeded + counts.failed == rows and counts.missing == 0, counts
    if structured:  # the broken answers among those that did not fail
        broken = sum(
            1 for i in range(rows) if i % BROKEN_EVERY in (7, 17) and i % FAILED_EVERY != FAILED_EVERY - 1
        )
        assert counts.invalid_output == broken, (counts.invalid_output, broken)
    return {
        "seconds": seconds,
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "counts": counts.to_dict(),
        "phases": loader.last_phase_seconds,
    }


def worker_provider(file_name: str, rows: int, out_dir: str) -> dict[str, Any]:
    client = genai_client()
    client.files.get(name=file_name)  # warm up, as for the loader
    baseline = rss_mb()
    started = time.perf_counter()
    # GenAIGeminiCreateBatchJobOperator._prepare_results_for_xcom, providers-google 22.8.0:
    file_content_bytes = client.files.download(file=file_name)
    file_content = file_content_bytes.decode("utf-8")
    path_to_file = Path(out_dir) / f"{file_name.replace('/', '_')}.jsonl"
    with open(path_to_file, "w") as file_with_results:
        file_with_results.writelines(file_content.splitlines(True))
    seconds = time.perf_counter() - started
    lines = file_content.count("\n")
    assert lines == rows, (lines, rows)
    return {"seconds": seconds, "baseline_mb": baseline, "peak_mb": peak_rss_mb()}


def run_worker(kind: str, **kwargs: Any) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "plugins"), str(REPO / "include")]))
    command = [sys.executable, __file__, "--worker", kind, "--args", json.dumps(kwargs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the orchestration ---------------------------------------------------------------------------


def bench(sizes: list[int], workdir: Path, cases: list[str]) -> list[dict[str, Any]]:
    from google.cloud import storage

    from gemini_batch.pipeline import sql

    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    bq = bigquery_client()
    bq.create_dataset(f"{project}.{DATASET}", exists_ok=True)
    bucket = f"{project}-bench-output-load"
    gcs = storage.Client(project=project)
    if gcs.lookup_bucket(bucket) is None:
        gcs.create_bucket(bucket)
    client = genai_client()
    rows_out = []
    for case in cases:
        structured = case == "structured"
        for rows in sizes:
            rows_out += bench_one(rows, structured, workdir, bq, client, bucket, sql)
    return rows_out


def bench_one(
    rows: int, structured: bool, workdir: Path, bq: Any, client: Any, bucket: str, sql: Any
) -> list[dict[str, Any]]:
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    rows_out = []
    case = "structured" if structured else "plain"
    path = workdir / f"results-{rows}-{case}.jsonl"
    size = write_results_file(path, rows, structured)
    uploaded = client.files.upload(
        file=str(path), config={"mime_type": "jsonl", "display_name": f"bench {rows} {case}"}
    )
    keys_table = f"{project}.{DATASET}.keys_{rows}_{case}"
    request = f", JSON '{json.dumps(STRUCTURED_REQUEST)}' AS request" if structured else ""
    sql.run(
        bq,
        f"CREATE OR REPLACE TABLE `{keys_table}` AS "
        f"SELECT FORMAT('k%09d', n) AS key{request} FROM UNNEST(GENERATE_ARRAY(0, @last)) AS n",
        last=rows - 1,
    )
    say(f"{rows:>9,} rows ({case}): results file {size / 2**20:,.1f} MiB uploaded as {uploaded.name}")
    for kind in ("loader",) if structured else ("loader", "provider"):
        args: dict[str, Any] = {"file_name": uploaded.name, "rows": rows}
        if kind == "loader":
            args.update(bucket=bucket, keys_table=keys_table, structured=structured)
        else:
            args.update(out_dir=str(workdir))
        result = run_worker(kind, **args)
        result.update(kind=f"{kind} ({case})", rows=rows, file_mb=size / 2**20)
        rows_out.append(result)
        phases = f"  phases (s): {result['phases']}" if "phases" in result else ""
        say(
            f"{'':>9}  {kind:<8} {result['seconds']:8.2f} s  {rows / result['seconds']:>10,.0f} rows/s  "
            f"peak RSS {result['peak_mb']:7.1f} MiB (before the work {result['baseline_mb']:6.1f} MiB){phases}"
        )
    path.unlink()
    client.files.delete(name=uploaded.name)
    return rows_out


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | file MiB | path | seconds | rows/s | worker peak RSS MiB | RSS before the work MiB "
        "| held by the work MiB | loader phases s (stage / parse / structured / merge / reconcile) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['file_mb']:,.1f} | {r['kind']} | {r['seconds']:.2f} | {r['rows'] / r['seconds']:,.0f} "
            f"| {r['peak_mb']:,.1f} | {r['baseline_mb']:,.1f} | {r['peak_mb'] - r['baseline_mb']:,.1f} "
            f"| {' / '.join(f'{v:.1f}' for v in r['phases'].values()) if 'phases' in r else ''} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--cases", default="plain", help="comma-separated: plain, structured")
    parser.add_argument("--use-env", action="store_true", help="use the stack named by the environment")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        function = {"loader": worker_loader, "provider": worker_provider}[args.worker]
        print(json.dumps(function(**json.loads(args.args))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-output-load-") as tmp:
        workdir = Path(tmp)
        stack = None
        if not args.use_env:
            from local_stack.stack import start

            stack = start(workdir / "stack", ephemeral=True)
            os.environ.update(stack.endpoints.env())
            say(f"local stack up in {stack.startup_s:.1f} s")
        try:
            results = bench(sizes, workdir, args.cases.split(","))
        finally:
            if stack is not None:
                stack.stop()
    say("")
    say(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
