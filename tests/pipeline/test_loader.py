"""The results loader against the GCS and BigQuery emulators, with outputs in the documented layouts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
from gemini_batch.pipeline.results import ReconciliationError

from .conftest import Answer, FakeGenai, Layouts, answers, jsonl

DATE = "2026-01-01"


def manifest(job: str, **output: object) -> dict:
    base = {
        "job_name": job, "backend": "vertex", "model": "gemini-2.5-flash", "state": "JOB_STATE_SUCCEEDED",
        "outcome": "succeeded", "gcs_output_directory": None, "bigquery_output_table": None,
        "file_name": None, "inline_responses": None, "end_time": "2026-01-01T11:00:00Z",
    }  # fmt: skip
    base.update(output)
    return base


# --- manifest -> output (unit) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "kind", "location"),
    [
        (
            {"gcs_output_directory": "gs://b/out/prediction-model-x"},
            "vertex_gcs",
            "gs://b/out/prediction-model-x",
        ),
        ({"bigquery_output_table": "bq://p.d.t"}, "vertex_bigquery", "bq://p.d.t"),
        ({"backend": "gemini_api", "file_name": "files/abc"}, "gemini_file", "files/abc"),
        ({"backend": "gemini_api", "inline_responses": [{"response": {}}]}, "gemini_inline", "jobs/1"),
    ],
)
def test_manifest_names_the_output_kind(output: dict, kind: str, location: str) -> None:
    job = JobOutput.from_manifest(manifest("jobs/1", **output))
    assert (job.kind, job.location, job.job_name, job.model) == (kind, location, "jobs/1", "gemini-2.5-flash")


def test_failed_job_or_manifest_without_output_is_refused() -> None:
    with pytest.raises(ValueError, match="ended JOB_STATE_FAILED: it has no results to load"):
        JobOutput.from_manifest(manifest("jobs/1", outcome="failed", state="JOB_STATE_FAILED"))
    with pytest.raises(ValueError, match="names no output"):
        JobOutput.from_manifest(manifest("jobs/1"))


def test_input_keys_round_trip_through_xcom_form() -> None:
    for keys in (
        InputKeys.from_table("bq://p.d.t"),
        InputKeys.from_gcs("gs://b/a.jsonl"),
        InputKeys.from_keys(["a"]),
    ):
        assert InputKeys.from_dict(json.loads(json.dumps(keys.to_dict()))) == keys


# --- loads against the emulators ---------------------------------------------------------------


def loader(bq_client, gcs_client, genai=None, bucket=None) -> ResultsLoader:
    return ResultsLoader(
        bigquery_client=bq_client,
        storage_client=gcs_client,
        genai_client=genai,
        staging_gcs=f"gs://{bucket.name}/staging" if bucket is not None else None,
    )


def check_tables(layouts: Layouts, rows: list[Answer], *, job: str, date: str = DATE) -> None:
    """Every answer is in exactly one table, with the right typed values."""
    results = layouts.rows(layouts.table("results"), date)
    errors = layouts.rows(layouts.table("errors"), date)
    assert set(results) | set(errors) == {row.key for row in rows}
    assert not set(results) & set(errors)
    for row in rows:
        if row.error is not None:
            got = errors[row.key]
            assert got["error"] == row.error
            assert got["status"] in (row.error, "INVALID_ARGUMENT", "code 400")
            assert got["job_name"] == job
            continue
        got = results[row.key]
        assert got["job_name"] == job
        assert got["logical_date"] == dt.date.fromisoformat(date)
        assert (got["prompt_tokens"], got["output_tokens"], got["total_tokens"]) == (4, 6, 10)
        if row.blocked:
            assert (got["status"], got["error"], got["response_text"]) == ("blocked", "SAFETY", None)
        else:
            assert got["status"] == "succeeded"
            assert got["response_text"] == row.text  # parts joined, the thought part left out
            assert got["finish_reason"] == "STOP"
            assert got["model"] == "gemini-2.5-flash-001"
            assert got["error"] is None


@pytest.mark.integration
def test_vertex_gcs_output_folder_loads_every_prediction_file(layouts, bq_client, gcs_client) -> None:
    rows = answers(40, failed=[3, 17], blocked=[5])
    folder = layouts.vertex_gcs(rows, files=3)
    keys = layouts.requests_table([row.key for row in rows])
    counts = loader(bq_client, gcs_client).load(
        [manifest("projects/p/locations/l/batchPredictionJobs/1", gcs_output_directory=folder)],
        logical_date=DATE,
        input_keys=InputKeys.from_table(keys),
        results_table=layouts.table("results"),
        errors_table=layouts.table("errors"),
    )
    assert (counts.input, counts.succeeded, counts.failed, counts.missing, counts.staged) == (
        40,
        38,
        2,
        0,
        40,
    )
    check_tables(layouts, rows, job="projects/p/locations/l/batchPredictionJobs/1")
    # the failed rows keep the request the service echoed
    errors = layouts.rows(layouts.table("errors"))
    assert json.loads(json.dumps(errors["k0003"]["request"]))["labels"] == {"gemini_batch_key": "k0003"}


@pytest.mark.integration
def test_vertex_bigquery_output_table_is_read_in_place(layouts, bq_client, gcs_client) -> None:
    rows = answers(25, failed=[0, 24])
    table = layouts.vertex_bigquery(rows)
    counts = loader(bq_client, gcs_client).load(
        [manifest("jobs/bq", bigquery_output_table=table)],
        logical_date=DATE,
        input_keys=InputKeys.from_keys([row.key for row in rows]),
        results_table=layouts.table("results"),
        errors_table=layouts.table("errors"),
    )
    assert (counts.succeeded, counts.failed, counts.missing) == (23, 2, 0)
    check_tables(layouts, rows, job="jobs/bq")


@pytest.mark.integration
def test_gemini_api_results_file_is_streamed_to_gcs_then_loaded(
    layouts, bq_client, gcs_client, gcs_bucket
) -> None:
    rows = answers(30, failed=[7])
    genai = FakeGenai(files={"files/results-1": jsonl([row.gemini_line() for row in rows])})
    input_uri = layouts.write(
        "in/requests.jsonl", jsonl([{"key": r.key, "request": r.request()} for r in rows])
    )
    counts = loader(bq_client, gcs_client, genai, gcs_bucket).load(
        [manifest("batches/1", backend="gemini_api", file_name="files/results-1")],
        logical_date=DATE,
        input_keys=InputKeys.from_gcs(input_uri),
        results_table=layouts.table("results"),
        errors_table=layouts.table("errors"),
    )
    assert (counts.succeeded, counts.failed, counts.missing) == (29, 1, 0)
    assert genai.files.calls == ["files/results-1"]
    check_tables(layouts, rows, job="batches/1")
    failed = layouts.rows(layouts.table("errors"))["k0007"]
    assert (failed["status"], failed["error_code"]) == ("INVALID_ARGUMENT", 400)
    assert failed["request"] is not None  # taken from the input: the Gemini API echoes no request
    assert [b.name for b in gcs_client.list_blobs(gcs_bucket, prefix="staging/")] == []  # staged file removed


@pytest.mark.integration
def test_gemini_api_inline_responses_load(layouts, bq_client, gcs_client) -> None:
    from google.genai import types

    rows = answers(6, failed=[2])
    inlined = []
    for row in rows:
        if row.error:
            inlined.append(
                types.InlinedResponse(
                    metadata={"key": row.key}, error=types.JobError(code=400, message=row.error)
                )
            )
        else:
            inlined.append(
                types.InlinedResponse(
                    metadata={"key": row.key},
                    response=types.GenerateContentResponse.model_validate(row.response()),
                )
            )
    job = types.BatchJob(name="batches/inline", dest=types.BatchJobDestination(inlined_responses=inlined))
    tables = {"results_table": layouts.table("results"), "errors_table": layouts.table("errors")}
    keys = InputKeys.from_keys([row.key for row in rows])
    # as the operator's manifest carries them (snake_case dumps, see gemini_batch.manifest)
    carried = [item.model_dump(mode="json", exclude_none=True) for item in inlined]
    counts = loader(bq_client, gcs_client).load(
        [manifest("batches/inline", backend="gemini_api", inline_responses=carried)],
        logical_date=DATE,
        input_keys=keys,
        **tables,
    )
    assert (counts.succeeded, counts.failed, counts.missing) == (5, 1, 0)
    check_tables(layouts, rows, job="batches/inline")
    # without them in the manifest, they are fetched from the job
    fetched = loader(bq_client, gcs_client, FakeGenai(jobs={"batches/inline": job})).load(
        [JobOutput("gemini_inline", "batches/inline", "batches/inline", model="gemini-2.5-flash")],
        logical_date="2026-01-02",
        input_keys=keys,
        **tables,
    )
    assert (fetched.succeeded, fetched.failed) == (5, 1)
    check_tables(layouts, rows, job="batches/inline", date="2026-01-02")


@pytest.mark.integration
def test_rerun_replaces_rows_and_moves_keys_between_results_and_errors(
    layouts, bq_client, gcs_client
) -> None:
    keys = InputKeys.from_keys([f"k{i:04d}" for i in range(10)])
    tables = {"results_table": layouts.table("results"), "errors_table": layouts.table("errors")}
    first = answers(10, failed=[1, 2])
    loader(bq_client, gcs_client).load(
        [manifest("jobs/a", bigquery_output_table=layouts.vertex_bigquery(first, name="out_a"))],
        logical_date=DATE,
        input_keys=keys,
        **tables,
    )
    again = answers(10, failed=[2, 9])  # k0001 now succeeds, k0009 now fails
    for _ in range(2):  # the same load twice changes nothing the second time
        counts = loader(bq_client, gcs_client).load(
            [manifest("jobs/b", bigquery_output_table=layouts.table("out_b"))]
            if _
            else [manifest("jobs/b", bigquery_output_table=layouts.vertex_bigquery(again, name="out_b"))],
            logical_date=DATE,
            input_keys=keys,
            **tables,
        )
        assert (counts.succeeded, counts.failed, counts.missing, counts.duplicated) == (8, 2, 0, 0)
        check_tables(layouts, again, job="jobs/b")
    # another date is another partition: nothing of DATE changes
    other = loader(bq_client, gcs_client).load(
        [manifest("jobs/c", bigquery_output_table=layouts.table("out_a"))],
        logical_date="2026-01-02",
        input_keys=keys,
        **tables,
    )
    assert (other.succeeded, other.failed) == (8, 2)
    check_tables(layouts, again, job="jobs/b")
    check_tables(layouts, first, job="jobs/c", date="2026-01-02")


@pytest.mark.integration
def test_shards_of_one_run_load_into_the_same_results(layouts, bq_client, gcs_client) -> None:
    rows = answers(20, failed=[15])
    shard_a = layouts.vertex_gcs(rows[:12], files=1, prefix="shard-0")
    shard_b = layouts.vertex_gcs(rows[12:], files=2, prefix="shard-1")
    counts = loader(bq_client, gcs_client).load(
        [manifest("jobs/0", gcs_output_directory=shard_a), manifest("jobs/1", gcs_output_directory=shard_b)],
        logical_date=DATE,
        input_keys=InputKeys.from_keys([row.key for row in rows]),
        results_table=layouts.table("results"),
        errors_table=layouts.table("errors"),
    )
    assert (counts.jobs, counts.input, counts.succeeded, counts.failed, counts.missing) == (2, 20, 19, 1, 0)
    results = layouts.rows(layouts.table("results"))
    assert {results[k]["job_name"] for k in ("k0000", "k0011")} == {"jobs/0"}
    assert results["k0019"]["job_name"] == "jobs/1"


@pytest.mark.integration
def test_missing_keys_fail_the_load_with_count_and_sample(layouts, bq_client, gcs_client) -> None:
    rows = answers(12)
    folder = layouts.vertex_gcs(rows[:9], files=1)  # three answers never came back
    with pytest.raises(ReconciliationError) as caught:
        loader(bq_client, gcs_client).load(
            [manifest("jobs/x", gcs_output_directory=folder)],
            logical_date=DATE,
            input_keys=InputKeys.from_keys([row.key for row in rows]),
            results_table=layouts.table("results"),
            errors_table=layouts.table("errors"),
        )
    error = caught.value
    assert (error.counts.missing, error.counts.input, error.counts.succeeded) == (3, 12, 9)
    assert error.missing_sample == ("k0009", "k0010", "k0011")
    assert "3 of 12 input keys have no row in results or errors for 2026-01-01" in str(error)
    # the answers that did come back are loaded all the same, and the scratch tables are gone
    assert len(layouts.rows(layouts.table("results"))) == 9
    names = {t.table_id for t in bq_client.list_tables(layouts.dataset)}
    assert names == {"results", "errors"}


@pytest.mark.integration
def test_empty_output_folder_is_a_clear_error(layouts, bq_client, gcs_client, gcs_bucket) -> None:
    with pytest.raises(FileNotFoundError, match="no \\*.jsonl prediction files in gs://"):
        loader(bq_client, gcs_client).load(
            [manifest("jobs/x", gcs_output_directory=f"gs://{gcs_bucket.name}/nothing")],
            logical_date=DATE,
            input_keys=InputKeys.from_keys(["a"]),
            results_table=layouts.table("results"),
            errors_table=layouts.table("errors"),
        )
