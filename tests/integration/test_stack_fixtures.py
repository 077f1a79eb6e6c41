"""The shared fixtures of tests/conftest.py against the session's local stack.

``local_stack`` puts the stack's env into ``os.environ``; ``gcs_bucket`` and ``bq_dataset`` are
fresh per test; ``stack_admin`` starts each test with no faults and no jobs; Airflow's own
Google hooks reach the emulators through ``AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT`` alone.
"""

from __future__ import annotations

import os

import pytest

from local_stack.endpoints import ENV_NAMES

pytestmark = pytest.mark.integration

ROWS = '{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": "b"}\n{"id": 3, "prompt": "c"}\n'


def test_the_stack_env_is_in_os_environ(local_stack) -> None:
    assert {name: os.environ[name] for name in ENV_NAMES} == local_stack.env()


def test_buckets_and_datasets_are_fresh_per_test(gcs_bucket, bq_dataset, gcs_client, bq_client) -> None:
    assert list(gcs_client.list_blobs(gcs_bucket)) == []
    assert list(bq_client.list_tables(bq_dataset)) == []
    assert gcs_bucket.name.startswith("t-test-buckets-and-datasets-are-fresh")


def test_bigquery_loads_what_the_gcs_fixture_holds(gcs_bucket, bq_dataset, bq_client) -> None:
    from google.cloud import bigquery

    gcs_bucket.blob("requests/part-0.jsonl").upload_from_string(ROWS)
    table = f"{bq_dataset.project}.{bq_dataset.dataset_id}.requests"

    bq_client.load_table_from_uri(
        f"gs://{gcs_bucket.name}/requests/*.jsonl",
        table,
        job_config=bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=[bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("prompt", "STRING")],
        ),
    ).result(timeout=60)
    rows = bq_client.query(f"SELECT COUNT(*) AS n FROM `{table}`").result()

    assert next(iter(rows))["n"] == 3


def test_stack_admin_starts_clean_and_sets_faults(stack_admin) -> None:
    assert stack_admin.health()["service"] == "gemini-batch-emulator"
    assert stack_admin.jobs() == []

    applied = stack_admin.set_faults(job_failure="boom")

    assert applied["job_failure"] == "boom"


def test_faults_of_one_test_do_not_leak_into_the_next(stack_admin) -> None:
    assert stack_admin.faults()["job_failure"] is None


def test_airflow_google_hooks_reach_the_emulators(gcs_bucket, bq_dataset, airflow_db) -> None:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    gcs = GCSHook()  # google_cloud_default, from AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT
    gcs.upload(gcs_bucket.name, "hello.txt", data="hi")
    datasets = [
        d.dataset_id for d in BigQueryHook().get_client(project_id=bq_dataset.project).list_datasets()
    ]

    assert gcs.list(gcs_bucket.name) == ["hello.txt"]
    assert bq_dataset.dataset_id in datasets
