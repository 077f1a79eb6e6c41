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


def _answered(prompt: int, candidates: int, thoughts: int) -> types.InlinedResponse:
    return types.InlinedResponse(
        response=types.GenerateContentResponse(
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=prompt,
                candidates_token_count=candidates,
                thoughts_token_count=thoughts,
                total_token_count=prompt + candidates + thoughts,
            )
        )
    )


def test_inline_tokens_by_kind_and_cost_each_request_in_its_own_tier():
    job = types.BatchJob(
        name="batches/1",
        state="JOB_STATE_SUCCEEDED",
        model="models/gemini-2.5-pro",
        dest=types.BatchJobDestination(
            inlined_responses=[_answered(1000, 100, 50), _answered(300_000, 10, 0)]
        ),
    )
    manifest = build_manifest(job, backend="gemini_api").as_dict()
    assert manifest["tokens"] == {"prompt": 301_000, "candidates": 110, "thoughts": 50, "total": 301_160}
    # By hand, batch = half of: standard (1000 x 1.25 + 100 x 10 + 50 x 10) + long (300k x 2.50 + 10 x 15), per 1M
    assert manifest["estimated_cost_usd"] == pytest.approx((1250 + 1000 + 500 + 750_000 + 150) / 2e6)
    assert manifest["prices_retrieved"]


def test_no_tokens_no_cost_and_unknown_models_have_no_cost():
    vertex = types.BatchJob(name=VERTEX_NAME, state="JOB_STATE_SUCCEEDED", model="gemini-2.5-flash")
    assert build_manifest(vertex, backend="vertex").as_dict()["estimated_cost_usd"] is None
    job = types.BatchJob(
        name="batches/1",
        state="JOB_STATE_SUCCEEDED",
        model="models/my-tuned-model",
        dest=types.BatchJobDestination(inlined_responses=[_answered(10, 1, 0)]),
    )
    manifest = build_manifest(job, backend="gemini_api").as_dict()
    assert manifest["tokens"]["total"] == 11
    assert manifest["estimated_cost_usd"] is None and manifest["prices_retrieved"] is None
