"""manifest.py: where the results are, never the results (except small inline ones)."""

from __future__ import annotations

import json

import pytest
from google.genai import types

from gemini_batch.exceptions import GeminiBatchInlineResultsTooLarge
from gemini_batch.manifest import AI_STUDIO_BATCHES, build_manifest, console_url

VERTEX_NAME = "projects/p1/locations/us-central1/batchPredictionJobs/42"


def test_vertex_gcs_job():
    job = types.BatchJob(
        name=VERTEX_NAME,
        display_name="d awid-1",
        state="JOB_STATE_SUCCEEDED",
        model="publishers/google/models/gemini-2.5-flash",
        create_time="2026-01-01T00:00:00Z",
        start_time="2026-01-01T00:01:00Z",
        end_time="2026-01-01T01:00:00Z",
        completion_stats=types.CompletionStats(successful_count=10, failed_count=0, incomplete_count=0),
        output_info=types.BatchJobOutputInfo(gcs_output_directory="gs://bkt/out/prediction-model-x"),
    )
    manifest = build_manifest(
        job, backend="vertex", source="gs://bkt/in.jsonl", work_id="1", model="m"
    ).as_dict()
    assert manifest["gcs_output_directory"] == "gs://bkt/out/prediction-model-x"
    assert manifest["counts"] == {"succeeded": 10, "failed": 0, "incomplete": 0, "total": 10}
    assert manifest["outcome"] == "succeeded"
    assert manifest["model"] == "publishers/google/models/gemini-2.5-flash"
    assert manifest["create_time"] == "2026-01-01T00:00:00+00:00"
    assert manifest["end_time"] == "2026-01-01T01:00:00+00:00"
    assert manifest["console_url"] == (
        "https://console.cloud.google.com/vertex-ai/locations/us-central1/batch-predictions/42?project=p1"
    )
    json.dumps(manifest)


@pytest.mark.parametrize(
    ("table", "dest", "expected_table", "expected_dataset"),
    [
        ("predictions_2026", "bq://p1.ds", "bq://p1.ds.predictions_2026", "bq://p1.ds"),
        ("bq://p1.ds.out", "bq://p1.ds.out", "bq://p1.ds.out", "bq://p1.ds"),
        ("p1.ds.out", None, "bq://p1.ds.out", "bq://p1.ds"),
    ],
)
def test_bigquery_output_table_and_dataset(table, dest, expected_table, expected_dataset):
    job = types.BatchJob(
        name=VERTEX_NAME,
        state="JOB_STATE_SUCCEEDED",
        dest=types.BatchJobDestination(format="bigquery", bigquery_uri=dest) if dest else None,
        output_info=types.BatchJobOutputInfo(bigquery_output_table=table),
    )
    manifest = build_manifest(job, backend="vertex")
    assert (manifest.bigquery_output_table, manifest.bigquery_output_dataset) == (
        expected_table,
        expected_dataset,
    )


def test_gemini_api_file_job():
    job = types.BatchJob(
        name="batches/abc",
        state="JOB_STATE_SUCCEEDED",
        dest=types.BatchJobDestination(file_name="files/results-1"),
    )
    manifest = build_manifest(job, backend="gemini_api", model="gemini-2.5-flash")
    assert manifest.file_name == "files/results-1"
    assert manifest.model == "gemini-2.5-flash"
    assert manifest.counts is None
    assert manifest.console_url == AI_STUDIO_BATCHES


def test_failed_job_carries_its_error_message():
    job = types.BatchJob(
        name="1", state="JOB_STATE_FAILED", error=types.JobError(code=3, message="bad table")
    )
    manifest = build_manifest(job, backend="vertex", project="p", location="l")
    assert manifest.outcome == "failed"
    assert manifest.error == "bad table"


def test_inline_cap():
    responses = [types.InlinedResponse(metadata={"key": str(i)}) for i in range(100)]
    job = types.BatchJob(
        name="batches/x",
        state="JOB_STATE_SUCCEEDED",
        dest=types.BatchJobDestination(inlined_responses=responses),
    )
    assert len(build_manifest(job, backend="gemini_api").inline_responses) == 100
    with pytest.raises(GeminiBatchInlineResultsTooLarge, match="above the XCom cap of 100 bytes"):
        build_manifest(job, backend="gemini_api", max_inline_bytes=100)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("vertex", "7", "p", "us-central1"),
            "https://console.cloud.google.com/vertex-ai/locations/us-central1/batch-predictions/7?project=p",
        ),
        (("vertex", "7", None, None), None),
        (("vertex", None, "p", "l"), None),
        (("gemini_api", "batches/x", None, None), AI_STUDIO_BATCHES),
    ],
)
def test_console_url(args, expected):
    assert console_url(*args) == expected
