"""The sample of answers that load_results logs and the view shows: the real query on DuckDB."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline.answer_sample import (
    SAMPLE_ROWS,
    SampleRow,
    format_sample,
    log_answer_sample,
    read_sample,
    sample_sql,
    table_id,
)
from gemini_batch.pipeline.results import ERRORS_SCHEMA, RESULTS_SCHEMA
from tests.pipeline.duck_bigquery import DuckBigQuery

RESULTS = "bq://proj.ds.results"
ERRORS = "bq://proj.ds.errors"


@pytest.fixture
def client() -> DuckBigQuery:
    duck = DuckBigQuery()
    for uri, schema in ((RESULTS, RESULTS_SCHEMA), (ERRORS, ERRORS_SCHEMA)):
        fields = [bigquery.SchemaField(name, kind) for name, kind, *_ in schema]
        duck.create_table(bigquery.Table(table_id(uri), schema=fields))
    duck.insert(
        RESULTS,
        [
            {"key": "b", "status": "succeeded", "response_text": "Seven.", "job_name": "jobs/1"},
            {"key": "a", "status": "succeeded", "response_text": "Blue.", "job_name": "jobs/1"},
            {"key": "c", "status": "succeeded", "response_text": "Other job.", "job_name": "jobs/2"},
            {"key": "d", "status": "succeeded", "response_text": "Third job.", "job_name": "jobs/3"},
        ],
    )
    duck.insert(ERRORS, [{"key": "e", "status": "failed", "error": "429 quota", "job_name": "jobs/1"}])
    return duck


def test_the_sample_holds_only_the_jobs_asked_for_answers_first_then_by_key(client: DuckBigQuery) -> None:
    rows = read_sample(client, results=RESULTS, errors=ERRORS, job_names=["jobs/1", "jobs/2"])

    assert rows == [
        SampleRow("a", "succeeded", "Blue."),
        SampleRow("b", "succeeded", "Seven."),
        SampleRow("c", "succeeded", "Other job."),
        SampleRow("e", "failed", "429 quota"),
    ]
    # Job names are parameters, never text in the SQL.
    assert client.statements[-1].params == {"job_0": "jobs/1", "job_1": "jobs/2"}
    assert "jobs/1" not in client.statements[-1].text


def test_the_sample_is_bounded_and_reads_nothing_for_no_job(client: DuckBigQuery) -> None:
    assert len(read_sample(client, results=RESULTS, errors=ERRORS, job_names=["jobs/1"], limit=2)) == 2
    before = len(client.statements)
    assert read_sample(client, results=RESULTS, errors=ERRORS, job_names=["", None]) == []  # type: ignore[list-item]
    assert len(client.statements) == before
    assert f"LIMIT {SAMPLE_ROWS}" in sample_sql(RESULTS, ERRORS, 1)


@pytest.mark.parametrize(
    ("count", "names"),
    [(1, "(@job_0)"), (3, "(@job_0, @job_1, @job_2)")],
)
def test_sample_sql_binds_one_parameter_per_job(count: int, names: str) -> None:
    sql = sample_sql(RESULTS, ERRORS, count)
    assert sql.count(f"IN {names}") == 2
    assert "`proj.ds.results`" in sql and "`proj.ds.errors`" in sql


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], ""),
        (
            [SampleRow("k1", "succeeded", "Blue."), SampleRow("key-22", "failed", "429 quota")],
            "key     status     answer or error\nk1      succeeded  Blue.\nkey-22  failed     429 quota",
        ),
        (
            [SampleRow("k", "ok", "line one\nline two  " + "x" * 100)],
            "key  status  answer or error\nk    ok      line one line two...",
        ),
        ([SampleRow("k", "ok", "")], "key  status  answer or error\nk    ok      "),
    ],
    ids=["none", "aligned", "one-line-shortened", "empty-text"],
)
def test_format_sample(rows: list[SampleRow], expected: str) -> None:
    assert format_sample(rows, width=30) == expected


def test_load_results_logs_the_table_and_a_read_error_only_warns(
    client: DuckBigQuery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gemini_batch.pipeline.answer_sample")
    log_answer_sample(client, results=RESULTS, errors=ERRORS, job_names=["jobs/2"])
    assert "c    succeeded  Other job." in caplog.text

    class Broken:
        def query(self, *_: Any, **__: Any) -> Any:
            raise RuntimeError("no BigQuery here")

    caplog.clear()
    log_answer_sample(Broken(), results=RESULTS, errors=ERRORS, job_names=["jobs/2"])
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "no BigQuery here" in caplog.text
