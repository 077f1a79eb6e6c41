"""The local stack's seeding script: prompts table and per-date JSONL inputs, idempotent."""

from __future__ import annotations

import datetime as dt

import pytest

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.jsonl_scan import scan_gcs_jsonl
from local_stack import seed as seed_module
from local_stack.seed import prompt_rows, seed


def test_prompt_rows_are_deterministic_with_dated_ids() -> None:
    rows = prompt_rows(dt.date(2026, 1, 2), 3)
    assert [r["id"] for r in rows] == [20260102000000, 20260102000001, 20260102000002]
    assert rows == prompt_rows(dt.date(2026, 1, 2), 3)
    assert rows[0]["created_at"].startswith("2026-01-02T00:00:00")
    assert rows[2]["created_at"].startswith("2026-01-02T16:00:00")


@pytest.mark.integration
def test_seed_is_idempotent_and_writes_valid_jsonl_per_date(
    bq_client, gcs_client, bq_dataset, gcs_bucket
) -> None:
    kwargs = dict(
        project=bq_client.project,
        dataset=bq_dataset.dataset_id,
        bucket=gcs_bucket.name,
        bigquery_client=bq_client,
        storage_client=gcs_client,
    )
    dates = [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
    first = seed(rows=12, dates=dates, **kwargs)
    second = seed(rows=12, dates=dates, **kwargs)
    assert first == second
    assert [s.gcs_uri for s in first] == [
        f"gs://{gcs_bucket.name}/inputs/{d}/requests.jsonl" for d in ("2026-01-01", "2026-01-02")
    ]
    table = f"`{bq_client.project}.{bq_dataset.dataset_id}.prompts`"
    counts = sql.query_rows(
        bq_client,
        f"SELECT DATE(created_at) AS day, COUNT(*) AS n, COUNT(DISTINCT id) AS ids "
        f"FROM {table} GROUP BY day ORDER BY day",
    )
    assert [(r["day"], r["n"], r["ids"]) for r in counts] == [(dates[0], 12, 12), (dates[1], 12, 12)]
    for item in first:
        assert scan_gcs_jsonl(item.gcs_uri, storage_client=gcs_client).requests == 12


@pytest.mark.integration
def test_seed_command_line(bq_client, gcs_client, bq_dataset, gcs_bucket, capsys) -> None:
    code = seed_module.main(
        [
            "--rows",
            "5",
            "--date",
            "2026-03-01",
            "--days",
            "2",
            "--dataset",
            bq_dataset.dataset_id,
            "--bucket",
            gcs_bucket.name,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"2026-03-01: 5 prompts in {bq_client.project}.{bq_dataset.dataset_id}.prompts and "
        f"gs://{gcs_bucket.name}/inputs/2026-03-01/requests.jsonl"
    )
    assert len(out) == 2
