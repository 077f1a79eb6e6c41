"""`make results`: the latest answers (and failed rows) in the local stack's results tables.

Reads the tables the pipelines write (PipelineSettings' defaults: ``<project>.gemini_batch.results``
and ``.errors``) through the local BigQuery emulator named in ``.local-stack/env``; it needs a
running stack (`make airflow` or `make stack-up`). Read-only.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from local_stack.envfile import read_env_file

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    args = parser.parse_args(argv)
    env_file = Path(os.environ.get("LOCAL_STACK_DIR", ROOT / ".local-stack")) / "env"
    if not env_file.exists():
        print(f"No local stack ({env_file} is missing): start it with `make airflow` or `make stack-up`.")
        return 1
    os.environ.update(read_env_file(env_file))

    from google.api_core.exceptions import NotFound
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from gemini_batch.pipeline.settings import PipelineSettings

    settings = PipelineSettings(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    client = bigquery.Client(
        project=settings.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": os.environ["BIGQUERY_EMULATOR_HOST"]},
    )
    results, errors = (ref.uri.removeprefix("bq://") for ref in (settings.results, settings.errors))
    sql = f"""
        SELECT logical_date, key, status, response_text AS text, total_tokens, job_name, loaded_at
        FROM `{results}`
        UNION ALL
        SELECT logical_date, key, status, error AS text, NULL AS total_tokens, job_name, loaded_at
        FROM `{errors}`
        ORDER BY loaded_at DESC, key
        LIMIT {int(args.limit)}
    """
    try:
        rows = list(client.query(sql).result())
    except NotFound:
        print(f"No results yet ({results} does not exist): run a DAG first, e.g. gemini_batch_adhoc.")
        return 0
    print(f"Latest {len(rows)} rows of {results} and {errors}:")
    for row in rows:
        text = textwrap.shorten(str(row["text"] or ""), width=70, placeholder="...")
        tokens = f"{row['total_tokens']} tokens" if row["total_tokens"] is not None else ""
        print(f"{row['logical_date']}  {row['key']:<28} {row['status']:<10} {tokens:>11}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
