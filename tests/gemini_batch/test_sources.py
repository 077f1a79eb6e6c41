"""sources.py: every source kind, every bad argument, destinations and job names."""

from __future__ import annotations

import pytest

from gemini_batch.exceptions import GeminiBatchConfigError
from gemini_batch.sources import (
    BatchSource,
    JobRef,
    default_destination,
    is_templated,
    parse_destination,
    parse_source,
)

INLINE = [{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}]


@pytest.mark.parametrize(
    ("src", "kind", "backend"),
    [
        ("bq://my-project.my_dataset.requests", "bigquery", "vertex"),
        ("bq://example.com:my-project.ds.t", "bigquery", "vertex"),
        ("gs://my-bucket/batch/requests.jsonl", "gcs", "vertex"),
        ("gs://my-bucket/batch/*.jsonl", "gcs", "vertex"),
        ("gs://my-bucket/batch/*", "gcs", "vertex"),
        (["gs://my-bucket/a.jsonl", "gs://my-bucket/b.jsonl"], "gcs", "vertex"),
        ("files/abc-123", "file", "gemini_api"),
        (INLINE, "inline", "gemini_api"),
        ("  bq://p.d.t  ", "bigquery", "vertex"),
    ],
)
def test_backend_is_inferred_from_the_source(src, kind, backend):
    source = parse_source(src)
    assert (source.kind, source.backend) == (kind, backend)


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("s3://bucket/requests.jsonl", "unknown scheme 's3://'"),
        ("requests.jsonl", "no recognised prefix"),
        ("bq://my-project.requests", "bq://PROJECT.DATASET.TABLE"),
        ("bq://requests", "missing project or dataset"),
        ("gs://my-bucket/batch/", "is a folder"),
        ("gs://my-bucket/batch/requests.csv", "is not a .jsonl file"),
        ("gs://my-bucket/batch/*.csv", "end it with '*.jsonl'"),
        ("gs://my-bucket", "gs://BUCKET/OBJECT"),
        ("files/", "files/NAME"),
        ([], "empty"),
        ([{"contents": []}, "files/abc"], "not both"),
        (["files/abc"], "not both"),
        ([{"key": "1", "request": {"contents": []}}], "looks like a JSONL line"),
        ([{"text": "hi"}], "has no 'contents'"),
        (["hello"], "inline request dicts"),
        ([1], "not a dict"),
        (None, "src is required"),
        (42, "src has type int"),
    ],
)
def test_bad_sources_say_what_to_change(src, message):
    with pytest.raises(GeminiBatchConfigError, match=None) as error:
        parse_source(src)
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("src", "backend", "message"),
    [
        ("bq://p.d.t", "gemini_api", "The Gemini API has no BigQuery source"),
        ("gs://my-bucket/r.jsonl", "gemini_api", "cannot read gs://"),
        ("files/abc", "vertex", "Vertex AI cannot read Gemini API files"),
        (INLINE, "vertex", "takes no inline requests"),
        ("bq://p.d.t", "openai", "backend must be one of"),
    ],
)
def test_a_backend_that_contradicts_the_source_is_an_error(src, backend, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        parse_source(src, backend=backend)
    assert message in str(error.value)


def test_matching_backend_is_accepted():
    assert parse_source("bq://p.d.t", backend="vertex").backend == "vertex"
    assert parse_source(INLINE, backend="gemini_api").backend == "gemini_api"


def test_inline_requests_above_the_limit_fail_before_any_call(monkeypatch):
    monkeypatch.setattr(BatchSource, "MAX_INLINE_BYTES", 100)
    with pytest.raises(GeminiBatchConfigError) as error:
        parse_source([{"contents": [{"parts": [{"text": "x" * 200}]}]}])
    assert "above the Gemini API limit of 100 bytes" in str(error.value)
    assert "files/NAME" in str(error.value)


@pytest.mark.parametrize(
    ("spare", "accepted"), [(0, True), (-1, False)], ids=["at-the-limit", "one-byte-over"]
)
def test_operator_and_pipeline_measure_inline_requests_the_same_way(monkeypatch, spare, accepted):
    from gemini_batch.backends import inline_request_bytes
    from gemini_batch.pipeline.findings import InputValidationError
    from gemini_batch.pipeline.limits import JobLimits
    from gemini_batch.pipeline.request_shape import validate_inline_requests

    requests = [{"contents": [{"parts": [{"text": "é" * 50}]}], "metadata": {"key": "a"}}]
    limit = inline_request_bytes(requests) + spare
    monkeypatch.setattr(BatchSource, "MAX_INLINE_BYTES", limit)
    wire = [{"request": {"contents": r["contents"]}, "metadata": r["metadata"]} for r in requests]
    limits = JobLimits(max_requests=10, max_bytes=inline_request_bytes(wire) + spare)
    if accepted:
        assert parse_source(requests).kind == "inline"
        assert validate_inline_requests(wire, limits=limits).bytes == inline_request_bytes(wire)
        return
    with pytest.raises(GeminiBatchConfigError, match=f"above the Gemini API limit of {limit:,} bytes"):
        parse_source(requests)
    with pytest.raises(InputValidationError, match="bytes of inline requests exceed"):
        validate_inline_requests(wire, limits=limits)


def test_sdk_src_and_description_per_kind():
    assert parse_source("bq://p.d.t").sdk_src() == "bq://p.d.t"
    assert parse_source(INLINE).sdk_src() == INLINE
    assert parse_source(INLINE).describe() == "inline:1 requests"
    multi = parse_source(["gs://bkt/a.jsonl", "gs://bkt/b.jsonl"])
    assert multi.sdk_src() == {"format": "jsonl", "gcs_uri": ["gs://bkt/a.jsonl", "gs://bkt/b.jsonl"]}
    assert multi.describe() == "gs://bkt/a.jsonl,gs://bkt/b.jsonl"


def test_fingerprint_changes_with_the_inputs_only():
    assert parse_source(INLINE).fingerprint() == parse_source(list(INLINE)).fingerprint()
    other = [{"contents": [{"role": "user", "parts": [{"text": "something else"}]}]}]
    assert parse_source(INLINE).fingerprint() != parse_source(other).fingerprint()


@pytest.mark.parametrize(
    ("dest", "src", "expected"),
    [
        (None, "bq://p.d.t", None),
        ("gs://out-bucket/results/", "gs://bkt/r.jsonl", "gs://out-bucket/results"),
        ("bq://p.out", "bq://p.d.t", "bq://p.out"),
        ("bq://p.out.table", "bq://p.d.t", "bq://p.out.table"),
        ("bq://p", "bq://p.d.t", "bq://p"),  # Vertex AI creates a dataset and a table
    ],
)
def test_parse_destination(dest, src, expected):
    assert parse_destination(dest, parse_source(src)) == expected


@pytest.mark.parametrize(
    ("dest", "src", "message"),
    [
        ("gs://bkt/out", INLINE, "applies to Vertex AI only"),
        ("bq://p..t", "bq://p.d.t", "bq://PROJECT.DATASET"),
        ("bq://p.d.t.x", "bq://p.d.t", "bq://PROJECT.DATASET"),
        ("s3://x/y", "bq://p.d.t", "unknown scheme"),
        ("gs://B/x", "bq://p.d.t", "gs://BUCKET/prefix"),
        (5, "bq://p.d.t", "must be a gs:// or bq:// URI"),
    ],
)
def test_bad_destinations(dest, src, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        parse_destination(dest, parse_source(src))
    assert message in str(error.value)


def test_default_destination_is_run_scoped_and_never_reuses_a_failed_jobs_output():
    bq = parse_source("bq://p.d.requests")
    gcs = parse_source("gs://bkt/in/requests.jsonl")
    assert (
        default_destination(bq, work_id="w1", dag_id="d", task_id="t") == "bq://p.d.requests_predictions_w1"
    )
    assert default_destination(bq, work_id="w2", dag_id="d", task_id="t") != default_destination(
        bq, work_id="w1", dag_id="d", task_id="t"
    )
    assert default_destination(bq, work_id="w1", dag_id="d", task_id="t", submission=2).endswith("_w1_2")
    assert (
        default_destination(gcs, work_id="w1", dag_id="my dag", task_id="grp.task")
        == "gs://bkt/gemini-batch-output/my_dag/grp.task/w1"
    )
    assert default_destination(parse_source(INLINE), work_id="w", dag_id="d", task_id="t") is None


@pytest.mark.parametrize(
    ("name", "backend", "job_id", "project", "location"),
    [
        ("projects/p1/locations/europe-west4/batchPredictionJobs/123", "vertex", "123", "p1", "europe-west4"),
        ("123", "vertex", "123", None, None),
        ("batches/abc-1_x", "gemini_api", "abc-1_x", None, None),
    ],
)
def test_job_names_give_their_backend(name, backend, job_id, project, location):
    ref = JobRef.parse(name)
    assert (ref.backend, ref.job_id, ref.project, ref.location) == (backend, job_id, project, location)


@pytest.mark.parametrize(
    ("name", "backend", "message"),
    [
        ("jobs/1", None, "neither a Vertex AI batch prediction job"),
        ("projects/p/locations/l/batchPredictionJobs/abc", None, "neither"),
        ("", None, "non-empty string"),
        (None, None, "non-empty string"),
        ("batches/x", "vertex", "is a gemini_api job name, but backend='vertex'"),
    ],
)
def test_bad_job_names(name, backend, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        JobRef.parse(name, backend=backend)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ params.table }}", True),
        ("{% if x %}a{% endif %}", True),
        (["{{ a }}"], True),
        ({"k": "{{ a }}"}, True),
        ("bq://p.d.t", False),
        ([{"contents": []}], False),
        (None, False),
    ],
)
def test_is_templated(value, expected):
    assert is_templated(value) is expected
