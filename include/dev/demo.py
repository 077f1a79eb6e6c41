"""`make demo`: the main pipeline end to end on the embedded local stack, then a short summary.

Starts a private local stack (GCS, BigQuery and Gemini batch emulators) under
``.local-stack/demo``, seeds 1,000 prompts for one date, runs ``gemini_batch_bigquery`` for that
date with ``airflow dags test`` (the deferred job task included) in a fresh SQLite Airflow home,
prints what came out, and stops the stack. Exits non-zero if anything failed, including a
results table that does not account for every prompt exactly once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "gemini_batch_bigquery"


def airflow_env(stack_env: dict[str, str], airflow_home: Path) -> dict[str, str]:
    """The environment of the Airflow commands: the stack's endpoints and a private SQLite home."""
    venv_bin = Path(sys.executable).parent
    return {
        **os.environ,
        **stack_env,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("plugins", "include", "dags")),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The local stack answers in seconds: poll it often (production default: 30 s).
        "GEMINI_BATCH_POLL_INTERVAL": os.environ.get("GEMINI_BATCH_POLL_INTERVAL", "1"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    }


def run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    """Run an Airflow command, its output to ``log``; on failure show the log's tail and stop."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        code = subprocess.call(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        tail = log.read_text().splitlines()[-40:]
        raise SystemExit(f"`{' '.join(cmd)}` failed (exit {code}); last lines of {log}:\n" + "\n".join(tail))


def summarize(project: str, day: dt.date, rows_in: int) -> list[str]:
    """Query the results and errors tables; return problems (empty when every prompt is accounted for)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from gemini_batch.pipeline.settings import DEFAULT_DATASET

    client = bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": os.environ["BIGQUERY_EMULATOR_HOST"]},
    )
    dataset = f"{project}.{DEFAULT_DATASET}"

    def one(sql: str) -> bigquery.Row:
        return next(iter(client.query(sql).result()))

    params = f"DATE '{day.isoformat()}'"
    stats = one(
        f"SELECT COUNT(*) AS answered, COALESCE(SUM(total_tokens), 0) AS tokens, "
        f"COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens, "
        f"STRING_AGG(DISTINCT job_name) AS jobs FROM `{dataset}.results` WHERE logical_date = {params}"
    )
    failed = one(f"SELECT COUNT(*) AS n FROM `{dataset}.errors` WHERE logical_date = {params}").n
    samples = list(
        client.query(
            f"SELECT key, response_text FROM `{dataset}.results` WHERE logical_date = {params} "
            f"ORDER BY key LIMIT 3"
        ).result()
    )
    print(f"  rows in        {rows_in:,}")
    print(f"  rows answered  {stats.answered:,}")
    print(f"  rows failed    {failed:,}")
    print(
        f"  tokens         {stats.tokens:,} ({stats.prompt_tokens:,} prompt + {stats.output_tokens:,} output)"
    )
    print(f"  job            {stats.jobs}")
    print(f"  results table  {dataset}.results (errors: {dataset}.errors)")
    print("  a few answers:")
    for row in samples:
        print(f"    {row.key}: {row.response_text[:100]}")
    problems = []
    if stats.answered + failed != rows_in:
        problems.append(f"{rows_in:,} prompts but {stats.answered:,} answered + {failed:,} failed")
    if stats.answered == 0:
        problems.append("no answers in the results table")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="prompts to seed (default 1000)")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1))
    args = parser.parse_args(argv)

    started = time.monotonic()
    from local_stack.stack import start

    state_dir = ROOT / ".local-stack" / "demo"
    airflow_home = ROOT / ".airflow" / "demo"
    shutil.rmtree(airflow_home, ignore_errors=True)
    airflow_home.mkdir(parents=True)
    log = airflow_home / "demo.log"

    print(f"Starting the local stack ({state_dir.relative_to(ROOT)})...")
    stack = start(state_dir, ephemeral=True)
    try:
        stack_env = stack.endpoints.env()
        os.environ.update(stack_env)
        from gemini_batch.pipeline.settings import DEFAULT_DATASET, default_bucket
        from local_stack.seed import seed

        project = stack_env["GOOGLE_CLOUD_PROJECT"]
        seeded = seed(
            rows=args.rows,
            dates=[args.date],
            project=project,
            dataset=DEFAULT_DATASET,
            bucket=default_bucket(project),
            gcs=False,
        )
        rows_in = sum(item.rows for item in seeded)
        print(f"Seeded {rows_in:,} prompts for {args.date}.")

        env = airflow_env(stack_env, airflow_home)
        # A manual run processes the data interval that ends at its logical date: the day before.
        run_date = (args.date + dt.timedelta(days=1)).isoformat()
        print(
            f"Running `airflow dags test {DAG_ID} {run_date}`, which processes {args.date} "
            f"(log: {log.relative_to(ROOT)})..."
        )
        run(["airflow", "db", "migrate"], env, log)
        run(["airflow", "dags", "test", DAG_ID, run_date], env, log)

        print(f"\n{DAG_ID} for {args.date}:")
        problems = summarize(project, args.date, rows_in)
    finally:
        stack.stop()
    print(f"  wall time      {time.monotonic() - started:.1f} s")
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("Demo succeeded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
