"""Golden files of the SQL that moves rows: every statement a pipeline step sends, as sent.

Each scenario runs one step (build, validate, shard, load) against
:class:`~tests.pipeline.duck_bigquery.DuckBigQuery`, which executes the statements and records
them; the record (text and query parameters, in order) must equal ``golden/<scenario>.sql``. A
change to a ``.sql`` file or to the code that fills it shows up here as a diff to review.

Regenerate after an intended change, then review ``git diff tests/pipeline/golden``::

    GEMINI_BATCH_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/pipeline/test_sql_golden.py
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline.bigquery_checks import validate_bigquery_requests
from gemini_batch.pipeline.builder import RequestTemplate, build_bigquery_requests
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
from gemini_batch.pipeline.refs import TableRef
from gemini_batch.pipeline.sharding import shard_bigquery_table

from .conftest import answers
from .duck_bigquery import DuckBigQuery
from .test_loader_sql import inline_job
from .test_structured_load import load_structured

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("GEMINI_BATCH_REGENERATE_GOLDEN") == "1"
REQUESTS = TableRef("proj", "ds", "requests")
TEMPLATE = RequestTemplate.from_dict({"generationConfig": {"temperature": 0.2}})


def requests_table(bq: DuckBigQuery, count: int = 6) -> TableRef:
    bq.create_table(bigquery.Table(REQUESTS.api_repr, schema=[
        bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON"),
    ]))  # fmt: skip
    bq.insert(REQUESTS.uri, [
        {"key": f"k{i:04d}", "request": {"contents": [{"role": "user", "parts": [{"text": f"prompt {i}"}]}]}}
        for i in range(count)
    ])  # fmt: skip
    return REQUESTS


def build_requests(bq: DuckBigQuery) -> None:
    prompts = "proj.ds.prompts"
    bq.create_table(bigquery.Table(prompts, schema=[
        bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("prompt", "STRING"),
        bigquery.SchemaField("created_at", "TIMESTAMP"),
    ]))  # fmt: skip
    bq.insert(prompts, [{"id": i, "prompt": f"prompt {i}", "created_at": dt.datetime(2026, 1, 1, i, tzinfo=dt.timezone.utc)}
                        for i in range(3)])  # fmt: skip
    source = (Path(__file__).parents[2] / "include" / "sql" / "prompts_for_interval.sql").read_text()
    from gemini_batch.pipeline import sql

    built = build_bigquery_requests(
        bq,
        source_sql=sql.render_text(source, prompts_table=f"`{prompts}`"),
        params={"interval_start": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                "interval_end": dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)},
        destination=REQUESTS,
        template=TEMPLATE,
        expires=dt.timedelta(days=7),
    )  # fmt: skip
    assert built == 3


def validate_requests(bq: DuckBigQuery) -> None:
    assert validate_bigquery_requests(requests_table(bq), bigquery_client=bq).requests == 6


def shard_requests(bq: DuckBigQuery) -> None:
    shards = shard_bigquery_table(
        bq, requests_table(bq, 9), limits=JobLimits(max_requests=4, max_bytes=10**9)
    )
    assert sum(shard.requests for shard in shards) == 9


def load_inline_keys(bq: DuckBigQuery) -> None:
    rows = answers(4, failed=[1])
    ResultsLoader(bigquery_client=bq).load(
        [inline_job("batches/1", rows)], logical_date="2026-01-01",
        input_keys=InputKeys.from_keys([row.key for row in rows]),
        results_table="bq://proj.ds.results", errors_table="bq://proj.ds.errors",
    )  # fmt: skip


def load_vertex_table(bq: DuckBigQuery) -> None:
    """A Vertex AI BigQuery output table, reconciled against the requests table."""
    requests_table(bq, 3)
    output = "proj.ds.predictions"
    bq.create_table(bigquery.Table(output, schema=[
        bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON"),
        bigquery.SchemaField("response", "JSON"), bigquery.SchemaField("status", "STRING"),
        bigquery.SchemaField("processed_time", "TIMESTAMP"),
    ]))  # fmt: skip
    rows = answers(3, failed=[2])
    bq.insert(output, [
        {"key": row.key, "request": row.request(), "response": row.response(), "status": row.error or "",
         "processed_time": dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone.utc)}
        for row in rows
    ])  # fmt: skip
    counts = ResultsLoader(bigquery_client=bq).load(
        [JobOutput("vertex_bigquery", "projects/p/locations/l/batchPredictionJobs/1", f"bq://{output}",
                   model="gemini-2.5-flash", end_time="2026-01-01T11:00:00Z")],
        logical_date="2026-01-01", input_keys=InputKeys.from_table(REQUESTS.uri),
        results_table="bq://proj.ds.results", errors_table="bq://proj.ds.errors",
    )  # fmt: skip
    assert (counts.succeeded, counts.failed, counts.missing) == (2, 1, 0)


def publish_requests(bq: DuckBigQuery) -> None:
    """A built requests table published under its content fingerprint (twice: kept, not replaced)."""
    from gemini_batch.pipeline.builder import keep_by_content

    first, fingerprint = keep_by_content(bq, requests_table(bq, 3), name="requests_20260101")
    again, same = keep_by_content(bq, requests_table(bq, 3), name="requests_20260101")
    assert (first, fingerprint) == (again, same) and first.table == f"requests_20260101_{fingerprint}"


def load_day_of_shards(bq: DuckBigQuery) -> None:
    """Two shard tables' job loaded as a part of the day; the day's keys replace the date's rows."""
    requests_table(bq, 4)
    shards = [TableRef("proj", "ds", f"requests_shard_{i}") for i in range(3)]
    for i, shard in enumerate(shards):
        bq.query(f"CREATE TABLE {shard.sql} AS SELECT * FROM {REQUESTS.sql} WHERE key = 'k000{i}'").result()
    rows = answers(2)
    ResultsLoader(bigquery_client=bq).load(
        [inline_job("batches/1", rows)], logical_date="2026-01-01",
        input_keys=InputKeys.from_tables([shards[0].uri, shards[1].uri, shards[0].uri]), day_keys=InputKeys.from_table(REQUESTS.uri),
        results_table="bq://proj.ds.results", errors_table="bq://proj.ds.errors", skip_loaded=True,
    )  # fmt: skip


def select_round(bq: DuckBigQuery) -> None:
    """A failed-row retry round picks the previous round's retryable failures (test_rounds.py)."""
    from gemini_batch.pipeline.rounds import select_round_requests

    requests_table(bq, 3)
    ResultsLoader(bigquery_client=bq).load(
        [inline_job("batches/1", answers(3, failed=[1]))], logical_date="2026-01-01",
        input_keys=InputKeys.from_table(REQUESTS.uri), results_table="bq://proj.ds.results",
        errors_table="bq://proj.ds.errors",
    )  # fmt: skip
    bq.query("UPDATE `proj.ds.errors` SET status = 'RESOURCE_EXHAUSTED' WHERE TRUE").result()
    bq.statements.clear()
    select_round_requests(
        bq, day_table=REQUESTS, errors=TableRef("proj", "ds", "errors"), logical_date=dt.date(2026, 1, 1),
        round_number=1, max_row_retries=2, run_tag="run1",
    )  # fmt: skip


def select_round_file(bq: DuckBigQuery) -> None:
    """A round of a JSONL day picks the previous round's retryable keys (test_round_files.py)."""
    from .test_round_files import MemoryStorage, failed_day, lines
    from .test_round_files import select as select_file

    storage = MemoryStorage()
    storage.objects["bkt/in/requests.jsonl"] = b"\n".join(lines(3)) + b"\n"
    failed_day(bq, {"k1": "RESOURCE_EXHAUSTED"})
    bq.statements.clear()
    select_file(bq, storage)


def load_recording_missing(bq: DuckBigQuery) -> None:
    """A pipeline load (record_missing): a key the job's output lacks lands in errors as missing."""
    from dataclasses import replace

    requests_table(bq, 3)
    ResultsLoader(bigquery_client=bq).load(
        [replace(inline_job("batches/1", answers(2)), source=REQUESTS.uri)], logical_date="2026-01-01",
        input_keys=InputKeys.from_table(REQUESTS.uri), day_keys=InputKeys.from_table(REQUESTS.uri),
        results_table="bq://proj.ds.results", errors_table="bq://proj.ds.errors", skip_loaded=True,
        round=1, record_missing=True,
    )  # fmt: skip


SCENARIOS: dict[str, Callable[[DuckBigQuery], None]] = {
    "load_recording_missing": load_recording_missing,
    "select_round": select_round,
    "select_round_file": select_round_file,
    "publish_requests": publish_requests,
    "load_day_of_shards": load_day_of_shards,
    "build_requests": build_requests,
    "validate_requests": validate_requests,
    "shard_requests": shard_requests,
    "load_inline_keys": load_inline_keys,
    "load_vertex_table": load_vertex_table,
    "load_structured": load_structured,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rendered_sql_matches_the_golden_file(name: str) -> None:
    bq = DuckBigQuery()
    SCENARIOS[name](bq)
    text = bq.transcript()
    golden = GOLDEN / f"{name}.sql"
    if REGENERATE:
        golden.write_text(text, encoding="utf-8")
        pytest.skip(f"regenerated {golden.name}; review the diff")
    assert golden.exists(), f"no {golden}: regenerate (see this module's docstring)"
    assert text == golden.read_text(encoding="utf-8"), (
        f"the SQL sent by {name} differs from {golden}; if intended, regenerate and review the diff"
    )


def test_every_pipeline_sql_file_is_in_a_golden_file() -> None:
    from importlib import resources

    record = "".join((GOLDEN / f"{name}.sql").read_text(encoding="utf-8") for name in SCENARIOS)
    missing = set()
    for path in resources.files("gemini_batch.pipeline.sql").iterdir():
        if path.name.endswith(".sql"):
            lines = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("--")
            ]
            if lines[0].split("{{", 1)[0] not in record:  # its first line, up to a placeholder
                missing.add(path.name)
    # Staged from a GCS load job, or exported through the worker: the integration tests run them.
    assert missing <= {"stage_vertex_gcs.sql", "export_requests.sql"}
