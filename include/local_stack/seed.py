"""Seed the local stack with sample prompts (a BigQuery prompts table and, per date, a JSONL
input) and sample documents to embed.

Usage (with a stack running, ``make stack-up``)::

    python -m local_stack.seed --rows 1000 --date 2026-01-01            # one day
    python -m local_stack.seed --rows 200 --date 2026-01-01 --days 3     # three days
    python -m local_stack.seed --rows 100 --documents 50                 # and 50 documents a day

What it writes (names are the DAGs' defaults, see ``gemini_batch.pipeline.settings``):

* ``<project>.gemini_batch.prompts`` (``id INT64``, ``prompt STRING``, ``created_at TIMESTAMP``),
  ``--rows`` rows per date, spread over the day; the input of ``gemini_batch_bigquery``.
* ``gs://<project>-gemini-batch/inputs/<date>/requests.jsonl``: the same prompts as Vertex AI
  JSONL requests (the key in ``request.labels.gemini_batch_key``), built from the table by the
  pipeline's own builder; the input of ``gemini_batch_gcs``.
* ``<project>.gemini_batch.documents`` (``id INT64``, ``content STRING``, ``created_at
  TIMESTAMP``), ``--documents`` rows per date: the input of ``gemini_batch_embeddings``.

Invariants: seeding is idempotent per date (a date's rows are replaced, never added twice); ids
are ``YYYYMMDD`` followed by a six-digit row number, so keys are unique across dates; prompts are
deterministic, so two seeds of the same date are identical.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery, storage

    from gemini_batch.pipeline.refs import TableRef

INCLUDE = Path(__file__).resolve().parent.parent
SAMPLE_PROMPTS = INCLUDE / "sample_data" / "prompts.json"
PROMPTS_SQL = INCLUDE / "sql" / "prompts_for_interval.sql"
REQUEST_TEMPLATE = INCLUDE / "templates" / "request.json"

PROMPTS_SCHEMA = (
    ("id", "INT64", "REQUIRED"),
    ("prompt", "STRING", "REQUIRED"),
    ("created_at", "TIMESTAMP", "REQUIRED"),
)

DOCUMENTS_SCHEMA = (
    ("id", "INT64", "REQUIRED"),
    ("content", "STRING", "REQUIRED"),
    ("created_at", "TIMESTAMP", "REQUIRED"),
)


@dataclass(frozen=True)
class SeededDate:
    """What was seeded for one date.

    :param date: The date (ISO).
    :param rows: Prompts in the table for the date.
    :param gcs_uri: The JSONL input for the date (None with ``gcs=False``).
    """

    date: str
    rows: int
    gcs_uri: str | None


def prompt_rows(date: dt.date, rows: int) -> list[dict[str, Any]]:
    """The sample prompts of ``date``: deterministic, ids ``YYYYMMDD######``, spread over the day."""
    sample = json.loads(SAMPLE_PROMPTS.read_text(encoding="utf-8"))
    templates, subjects = sample["templates"], sample["subjects"]
    start = dt.datetime.combine(date, dt.time(), tzinfo=dt.timezone.utc)
    step = 86_400 / max(rows, 1)
    base = int(date.strftime("%Y%m%d")) * 1_000_000
    return [
        {
            "id": base + index,
            "prompt": templates[index % len(templates)].format(
                subject=subjects[(index // len(templates)) % len(subjects)]
            ),
            "created_at": (start + dt.timedelta(seconds=index * step)).isoformat(),
        }
        for index in range(rows)
    ]


def document_rows(date: dt.date, rows: int) -> list[dict[str, Any]]:
    """The sample documents of ``date``: the prompts' texts made statements, same ids and times."""
    return [
        {"id": row["id"], "content": f"Notes on this: {row['prompt']}", "created_at": row["created_at"]}
        for row in prompt_rows(date, rows)
    ]


def _replace_day_rows(
    client: bigquery.Client, ref: Any, schema: Sequence[Any], rows: list[dict[str, Any]], date: dt.date
) -> None:
    """Replace the rows of ``date`` (by ``created_at``) in table ``ref`` (a TableRef) with ``rows``:
    seeding is idempotent."""
    from google.cloud import bigquery

    from gemini_batch.pipeline import sql

    start = dt.datetime.combine(date, dt.time(), tzinfo=dt.timezone.utc)
    sql.run(
        client,
        f"DELETE FROM {ref.sql} WHERE created_at >= @interval_start AND created_at < @interval_end",
        interval_start=start,
        interval_end=start + dt.timedelta(days=1),
    )
    body = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        schema=list(schema),
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
    )
    # A file object without size: the emulator takes resumable uploads, not multipart ones.
    client.load_table_from_file(io.BytesIO(body), ref.api_repr, job_config=config).result()


def _day_partitioned_table(
    client: bigquery.Client, ref: TableRef, schema: Sequence[tuple[str, str, str]]
) -> bigquery.Table:
    """Create (if missing) ``ref``'s dataset and table, partitioned by day on ``created_at``."""
    from google.cloud import bigquery

    client.create_dataset(f"{ref.project}.{ref.dataset}", exists_ok=True)
    table = bigquery.Table(ref.api_repr, schema=[bigquery.SchemaField(n, t, mode=m) for n, t, m in schema])
    table.time_partitioning = bigquery.TimePartitioning(field="created_at")
    client.create_table(table, exists_ok=True)
    return table


def seed_documents(
    *,
    rows: int,
    dates: Sequence[dt.date],
    project: str,
    dataset: str,
    table: str = "documents",
    bigquery_client: bigquery.Client | None = None,
) -> list[SeededDate]:
    """Seed ``rows`` documents for each of ``dates`` into ``<project>.<dataset>.<table>``.

    Ids are the prompts' (``YYYYMMDD`` and a row number), unique across dates; a date's rows are
    replaced, never added twice.
    """

    from gemini_batch.pipeline.refs import TableRef

    if bigquery_client is None:
        bigquery_client, _ = clients(project)
    ref = TableRef(project, dataset, table)
    documents = _day_partitioned_table(bigquery_client, ref, DOCUMENTS_SCHEMA)
    for date in dates:
        _replace_day_rows(bigquery_client, ref, documents.schema, document_rows(date, rows), date)
    return [SeededDate(date.isoformat(), rows, None) for date in dates]


def _ensure_env() -> None:
    """Point the Google clients at the running stack unless the environment already does."""
    if os.environ.get("BIGQUERY_EMULATOR_HOST") and os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    from local_stack.stack import load_env

    for name, value in load_env().items():
        os.environ.setdefault(name, value)


def clients(project: str) -> tuple[bigquery.Client, storage.Client]:
    """BigQuery and GCS clients of the local stack (anonymous, emulator endpoints)."""
    _ensure_env()
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, storage

    bq = bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": os.environ["BIGQUERY_EMULATOR_HOST"]},
    )
    return bq, storage.Client(project=project, credentials=AnonymousCredentials())


def seed(
    *,
    rows: int,
    dates: Sequence[dt.date],
    project: str,
    dataset: str,
    bucket: str,
    table: str = "prompts",
    gcs: bool = True,
    bigquery_client: bigquery.Client | None = None,
    storage_client: storage.Client | None = None,
) -> list[SeededDate]:
    """Seed ``rows`` prompts for each of ``dates``; return what was written.

    :param rows: Required. Prompts per date.
    :param dates: Required. The dates.
    :param project: Required. The project (``local-project`` on the stack).
    :param dataset: Required. The dataset of the prompts table (created if missing).
    :param bucket: Required. The bucket of the JSONL inputs (created if missing).
    :param gcs: Optional. Also write the per-date JSONL inputs (default True).
    """
    from google.api_core.exceptions import NotFound

    from gemini_batch.pipeline import sql
    from gemini_batch.pipeline.builder import RequestTemplate, export_requests_jsonl
    from gemini_batch.pipeline.refs import TableRef

    if bigquery_client is None or storage_client is None:
        bigquery_client, storage_client = clients(project)
    ref = TableRef(project, dataset, table)
    prompts = _day_partitioned_table(bigquery_client, ref, PROMPTS_SCHEMA)
    if gcs:
        try:
            storage_client.get_bucket(bucket)
        except NotFound:
            storage_client.create_bucket(bucket)
    template = RequestTemplate.from_file(REQUEST_TEMPLATE)
    source = sql.render_file(PROMPTS_SQL, prompts_table=ref.sql)
    seeded = []
    for date in dates:
        start = dt.datetime.combine(date, dt.time(), tzinfo=dt.timezone.utc)
        interval = {"interval_start": start, "interval_end": start + dt.timedelta(days=1)}
        _replace_day_rows(bigquery_client, ref, prompts.schema, prompt_rows(date, rows), date)
        uri = None
        if gcs:
            built = export_requests_jsonl(
                bigquery_client,
                storage_client,
                source_sql=source,
                params=interval,
                destination=f"gs://{bucket}/inputs/{date.isoformat()}/requests.jsonl",
                template=template,
            )
            uri = built[0].uri
        seeded.append(SeededDate(date.isoformat(), rows, uri))
    return seeded


def main(argv: Sequence[str] | None = None) -> int:
    from gemini_batch.pipeline.settings import DEFAULT_DATASET, default_bucket

    parser = argparse.ArgumentParser(prog="python -m local_stack.seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000, help="prompts per date (default 1000)")
    parser.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        default=dt.date(2026, 1, 1),
        help="first date, YYYY-MM-DD (default 2026-01-01)",
    )
    parser.add_argument("--days", type=int, default=1, help="how many consecutive dates (default 1)")
    parser.add_argument("--project", default=None, help="default: $GOOGLE_CLOUD_PROJECT or local-project")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--bucket", default=None, help="default: <project>-gemini-batch")
    parser.add_argument("--no-gcs", action="store_true", help="only the BigQuery table, no JSONL inputs")
    parser.add_argument(
        "--documents", type=int, default=0, help="documents to embed per date (default 0: none)"
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.days < 1 or args.documents < 0:
        parser.error("--rows and --days must be positive, --documents not negative")
    _ensure_env()
    project = args.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "local-project"
    dates = [args.date + dt.timedelta(days=offset) for offset in range(args.days)]
    for item in seed(
        rows=args.rows,
        dates=dates,
        project=project,
        dataset=args.dataset,
        bucket=args.bucket or default_bucket(project),
        gcs=not args.no_gcs,
    ):
        where = f" and {item.gcs_uri}" if item.gcs_uri else ""
        print(f"{item.date}: {item.rows} prompts in {project}.{args.dataset}.prompts{where}")
    if args.documents:
        for item in seed_documents(rows=args.documents, dates=dates, project=project, dataset=args.dataset):
            print(f"{item.date}: {item.rows} documents in {project}.{args.dataset}.documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
