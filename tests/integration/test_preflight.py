"""Fail before you pay, through real Airflow (``dag.test()``) against the local stack.

A typo'd model, a missing source (a BigQuery table, a gs:// object) and an existing dest table
each end with zero jobs in the emulator's job list (which records every job ever created), after
one try although the task has retries=3, with a message that names the problem.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"
REQUEST = {"contents": [{"role": "user", "parts": [{"text": "Name a colour."}]}]}


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    from gemini_batch.hooks import clear_client_cache
    from gemini_batch.preflight import clear_model_cache

    clear_client_cache()
    clear_model_cache()
    yield
    clear_client_cache()
    clear_model_cache()


@pytest.fixture
def bq_table(bq_dataset: Any, bq_client: Any) -> str:
    """``project.dataset.requests``: a requests table of one row."""
    from google.cloud import bigquery

    table_id = f"{bq_dataset.project}.{bq_dataset.dataset_id}.requests"
    table = bigquery.Table(
        table_id, schema=[bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("request", "JSON")]
    )
    bq_client.create_table(table)
    errors = bq_client.insert_rows_json(table_id, [{"id": 1, "request": json.dumps(REQUEST)}])
    assert not errors, errors
    return table_id


def run_one(run_dag: Any, **task_kwargs: Any) -> Any:
    """One GeminiBatchCreateJobOperator (task ``batch``) with retries=3 and no retry delay."""
    from airflow.sdk import DAG

    from gemini_batch import GeminiBatchCreateJobOperator

    task_kwargs.setdefault("model", MODEL)
    with DAG(
        dag_id=f"it_preflight_{uuid.uuid4().hex[:10]}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=0)},
    ) as dag:
        GeminiBatchCreateJobOperator(task_id="batch", poll_interval=0.2, deferrable=False, **task_kwargs)
    return run_dag(dag).get_task_instance("batch")


def assert_failed_before_paying(ti: Any, stack_admin: Any, output: str, *problem: str) -> None:
    assert ti.state == "failed"
    assert ti.try_number == 1, "a permanent problem was retried"
    assert stack_admin.jobs() == []
    for words in problem:
        assert words in output, f"{words!r} not in the task's output"


def test_a_typod_model_makes_no_job(run_dag, stack_admin, bq_table, capsys):
    ti = run_one(run_dag, src=f"bq://{bq_table}", model="gemini-2.5-flsh")
    # The pre-flight models lookup names it (the stack serves models.get as the real services do).
    assert_failed_before_paying(
        ti, stack_admin, capsys.readouterr().out, "The model 'gemini-2.5-flsh' does not exist"
    )


def test_a_missing_bigquery_source_makes_no_job(run_dag, stack_admin, bq_dataset, capsys):
    missing = f"bq://{bq_dataset.project}.{bq_dataset.dataset_id}.no_such_table"
    ti = run_one(run_dag, src=missing)
    assert_failed_before_paying(
        ti, stack_admin, capsys.readouterr().out, f"source table {missing} does not exist"
    )


@pytest.mark.parametrize("path", ["in/missing.jsonl", "in/*.jsonl"])
def test_a_missing_gcs_source_makes_no_job(run_dag, stack_admin, gcs_bucket, capsys, path):
    gcs_bucket.blob("other/requests.jsonl").upload_from_string(json.dumps({"request": REQUEST}) + "\n")
    uri = f"gs://{gcs_bucket.name}/{path}"
    ti = run_one(run_dag, src=uri)
    assert_failed_before_paying(ti, stack_admin, capsys.readouterr().out, uri)


def test_an_existing_dest_table_makes_no_job(run_dag, stack_admin, bq_table, bq_client, capsys):
    from google.cloud import bigquery

    dest = bq_table.rsplit(".", 1)[0] + ".existing_output"
    bq_client.create_table(bigquery.Table(dest, schema=[bigquery.SchemaField("x", "STRING")]))
    ti = run_one(run_dag, src=f"bq://{bq_table}", dest=f"bq://{dest}")
    assert_failed_before_paying(
        ti, stack_admin, capsys.readouterr().out, f"dest table bq://{dest} already exists"
    )


def test_a_missing_gemini_api_file_makes_no_job(run_dag, stack_admin, capsys):
    ti = run_one(run_dag, src="files/no-such-file")
    assert_failed_before_paying(ti, stack_admin, capsys.readouterr().out, "files/no-such-file does not exist")


def test_a_cross_project_source_makes_no_job(run_dag, stack_admin, capsys):
    ti = run_one(run_dag, src="bq://another-project.d.requests")
    assert_failed_before_paying(ti, stack_admin, capsys.readouterr().out, "allow_cross_project=True")


def test_a_source_that_exists_still_runs(run_dag, stack_admin, bq_table):
    ti = run_one(run_dag, src=f"bq://{bq_table}")
    assert ti.state == "success"
    assert len(stack_admin.jobs()) == 1
