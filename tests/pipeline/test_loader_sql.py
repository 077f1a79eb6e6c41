"""The loader's SQL, executed: stage, finalize, MERGE and reconcile move rows on an in-memory DuckDB.

Unit speed, no stack: :class:`~tests.pipeline.duck_bigquery.DuckBigQuery` runs the text the loader
renders (translated as the BigQuery emulator translates it), so a change to the SQL that moves
rows fails here. The same loads against the emulators are in test_loader.py (integration).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
from gemini_batch.pipeline.results import LoadCounts, ReconciliationError

from .conftest import Answer, answers
from .duck_bigquery import DuckBigQuery

DATE = "2026-01-01"
RESULTS = "bq://proj.ds.results"
ERRORS = "bq://proj.ds.errors"


def inline_job(name: str, rows: Sequence[Answer], *, end_time: str = "2026-01-01T11:00:00Z") -> JobOutput:
    """A Gemini API inline job's output, as the operator's manifest carries it."""
    from google.genai import types

    items = []
    for row in rows:
        if row.error is not None:
            item = types.InlinedResponse(
                metadata={"key": row.key}, error=types.JobError(code=400, message=row.error)
            )
        else:
            response = types.GenerateContentResponse.model_validate(row.response())
            item = types.InlinedResponse(metadata={"key": row.key}, response=response)
        items.append(item.model_dump(mode="json", exclude_none=True))
    return JobOutput("gemini_inline", name, name, model="gemini-2.5-flash", end_time=end_time,
                     inline_responses=tuple(items))  # fmt: skip


def load(bq: DuckBigQuery, jobs: Sequence[JobOutput], keys: Sequence[str], date: str = DATE) -> LoadCounts:
    return ResultsLoader(bigquery_client=bq).load(
        jobs,
        logical_date=date,
        input_keys=InputKeys.from_keys(keys),
        results_table=RESULTS,
        errors_table=ERRORS,
    )


def by_key(bq: DuckBigQuery, table: str, date: str = DATE) -> dict[str, dict[str, Any]]:
    rows = [row for row in bq.rows(table) if row["logical_date"] == dt.date.fromisoformat(date)]
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        assert row["key"] not in found, f"{row['key']} twice in {table} for {date}"
        found[row["key"]] = row
    return found


@pytest.fixture
def bq() -> DuckBigQuery:
    return DuckBigQuery()


def test_each_input_key_lands_once_with_typed_values(bq: DuckBigQuery) -> None:
    rows = answers(6, failed=[2], blocked=[4])
    counts = load(bq, [inline_job("batches/a", rows)], [row.key for row in rows])

    assert counts == LoadCounts(DATE, jobs=1, staged=6, input=6, succeeded=5, failed=1, missing=0, duplicated=0,
                                unexpected=0, unkeyed=0, answered=5)  # fmt: skip
    results, errors = by_key(bq, RESULTS), by_key(bq, ERRORS)
    assert sorted(results) == ["k0000", "k0001", "k0003", "k0004", "k0005"]
    assert sorted(errors) == ["k0002"]
    answer = results["k0001"]
    assert (answer["response_text"], answer["finish_reason"], answer["status"], answer["error"]) == (
        "answer 1",
        "STOP",
        "succeeded",
        None,
    )  # the thought part is left out, the two text parts joined
    assert (answer["prompt_tokens"], answer["output_tokens"], answer["total_tokens"]) == (4, 6, 10)
    assert (answer["model"], answer["job_name"]) == ("gemini-2.5-flash-001", "batches/a")
    assert answer["processed_time"] == dt.datetime(2026, 1, 1, 11, tzinfo=dt.timezone.utc)  # the job's end
    blocked = results["k0004"]
    assert (blocked["status"], blocked["error"], blocked["response_text"], blocked["model"]) == (
        "blocked",
        "SAFETY",
        None,
        "gemini-2.5-flash",
    )
    failed = errors["k0002"]
    assert (failed["status"], failed["error_code"], failed["error"], failed["job_name"]) == (
        "code 400",
        400,
        "Bad request 2",
        "batches/a",
    )
    assert bq.table_names("proj.ds") == {"results", "errors"}  # scratch tables dropped


@pytest.mark.parametrize("success_first", [True, False], ids=["success-job-first", "failure-job-first"])
def test_a_key_with_a_failed_and_a_succeeded_row_lands_in_results_only(
    bq: DuckBigQuery, success_first: bool
) -> None:
    keys = ["k0000", "k0001", "k0002"]
    failing = inline_job(
        "batches/fail",
        [Answer("k0001", error="Bad request"), Answer("k0002", text="two")],
        end_time="2026-01-01T12:00:00Z",
    )  # the later job: success still wins
    succeeding = inline_job("batches/ok", [Answer("k0000", text="zero"), Answer("k0001", text="one")])
    jobs = [succeeding, failing] if success_first else [failing, succeeding]

    counts = load(bq, jobs, keys)

    assert (counts.staged, counts.succeeded, counts.failed, counts.duplicated) == (4, 3, 0, 0)
    results = by_key(bq, RESULTS)
    assert sorted(results) == keys
    assert (results["k0001"]["response_text"], results["k0001"]["job_name"]) == ("one", "batches/ok")
    assert by_key(bq, ERRORS) == {}


def test_among_failures_of_one_key_the_latest_is_kept(bq: DuckBigQuery) -> None:
    early = inline_job("batches/early", [Answer("k0000", error="first try")], end_time="2026-01-01T10:00:00Z")
    late = inline_job("batches/late", [Answer("k0000", error="second try")], end_time="2026-01-01T12:00:00Z")
    for jobs in ([early, late], [late, early]):
        load(bq, jobs, ["k0000"])
        assert (by_key(bq, ERRORS)["k0000"]["error"], by_key(bq, ERRORS)["k0000"]["job_name"]) == (
            "second try",
            "batches/late",
        )


def test_rerun_replaces_rows_and_moves_keys_between_tables(bq: DuckBigQuery) -> None:
    keys = [f"k{i:04d}" for i in range(5)]
    load(bq, [inline_job("batches/1", answers(5, failed=[1, 2]))], keys)
    again = answers(5, failed=[2, 4])  # k0001 now succeeds, k0004 now fails
    for _ in range(2):  # the same load twice leaves the same state
        counts = load(bq, [inline_job("batches/2", again)], keys)
        assert (counts.succeeded, counts.failed, counts.missing, counts.duplicated) == (3, 2, 0, 0)
        results, errors = by_key(bq, RESULTS), by_key(bq, ERRORS)
        assert (sorted(results), sorted(errors)) == (["k0000", "k0001", "k0003"], ["k0002", "k0004"])
        assert {row["job_name"] for row in [*results.values(), *errors.values()]} == {"batches/2"}
        assert len(bq.rows(RESULTS)) + len(bq.rows(ERRORS)) == 5
    # another date is another partition: the first date keeps its rows
    load(bq, [inline_job("batches/3", answers(5))], keys, date="2026-01-02")
    assert sorted(by_key(bq, RESULTS, "2026-01-02")) == keys
    assert sorted(by_key(bq, ERRORS)) == ["k0002", "k0004"]
    assert sorted(by_key(bq, RESULTS)) == ["k0000", "k0001", "k0003"]


def test_a_key_twice_in_the_results_table_fails_reconciliation_with_count_and_sample(
    bq: DuckBigQuery,
) -> None:
    rows = answers(4)
    load(bq, [inline_job("batches/1", rows)], [row.key for row in rows])
    stale = {**by_key(bq, RESULTS)["k0003"], "job_name": "batches/stale"}
    bq.insert(RESULTS, [stale])  # e.g. an append by hand: now k0003 is there twice

    with pytest.raises(ReconciliationError) as caught:
        load(bq, [inline_job("batches/2", rows)], [row.key for row in rows])

    error = caught.value
    assert (error.counts.duplicated, error.counts.succeeded, error.counts.missing) == (1, 3, 0)
    assert error.duplicated_sample == ("k0003",)
    assert "1 input keys are in results or errors more than once for 2026-01-01 (sample: k0003)" in str(error)


def test_a_key_in_both_tables_fails_reconciliation_with_count_and_sample(bq: DuckBigQuery) -> None:
    rows = answers(3, failed=[2])
    load(bq, [inline_job("batches/1", rows)], [row.key for row in rows])
    stale = {"key": "k0002", "logical_date": dt.date(2026, 1, 1), "status": "succeeded", "job_name": "batches/0",
             "loaded_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}  # fmt: skip
    bq.insert(RESULTS, [stale])  # k0002 is now in errors (this load's answer) and in results

    with pytest.raises(ReconciliationError) as caught:  # a load without k0002 leaves both rows alone
        load(bq, [inline_job("batches/2", rows[:2])], [row.key for row in rows])

    error = caught.value
    assert (error.counts.duplicated, error.counts.succeeded, error.counts.failed) == (1, 2, 0)
    assert error.duplicated_sample == ("k0002",)


def test_a_succeeded_key_leaves_the_errors_table(bq: DuckBigQuery) -> None:
    rows = answers(3, failed=[1])
    load(bq, [inline_job("batches/1", rows)], [row.key for row in rows])
    stale = {"key": "k0000", "logical_date": dt.date(2026, 1, 1), "status": "ERROR", "job_name": "batches/0",
             "loaded_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}  # fmt: skip
    bq.insert(ERRORS, [stale])  # k0000 failed in an earlier load that its results row did not replace

    counts = load(bq, [inline_job("batches/2", rows)], [row.key for row in rows])

    assert (counts.succeeded, counts.failed, counts.duplicated) == (2, 1, 0)
    assert sorted(by_key(bq, ERRORS)) == ["k0001"]
    assert sorted(by_key(bq, RESULTS)) == ["k0000", "k0002"]


def test_missing_keys_fail_reconciliation_with_count_and_sample(bq: DuckBigQuery) -> None:
    rows = answers(5)
    with pytest.raises(ReconciliationError) as caught:
        load(bq, [inline_job("batches/1", rows[:3])], [row.key for row in rows])
    error = caught.value
    assert (error.counts.missing, error.counts.input, error.counts.succeeded) == (2, 5, 3)
    assert error.missing_sample == ("k0003", "k0004")
    assert "2 of 5 input keys have no row in results or errors for 2026-01-01 (sample: k0003, k0004)" in str(
        error
    )
    assert sorted(by_key(bq, RESULTS)) == ["k0000", "k0001", "k0002"]  # what came back is loaded all the same


def test_output_keys_that_are_not_input_keys_are_counted(bq: DuckBigQuery) -> None:
    counts = load(bq, [inline_job("batches/1", answers(3))], ["k0000", "k0001"], date=DATE)
    assert (counts.input, counts.succeeded, counts.unexpected, counts.staged) == (2, 2, 1, 3)


# --- the day's whole input: removed keys deleted, loaded jobs not staged again ---------------------


def load_day(
    bq: DuckBigQuery, jobs: Sequence[JobOutput], keys: Sequence[str], day: Sequence[str], **kwargs: Any
) -> LoadCounts:
    return ResultsLoader(bigquery_client=bq).load(
        jobs, logical_date=DATE, input_keys=InputKeys.from_keys(keys), results_table=RESULTS,
        errors_table=ERRORS, day_keys=InputKeys.from_keys(day), **kwargs,
    )  # fmt: skip


def test_a_load_of_the_whole_day_deletes_the_keys_no_longer_input(bq: DuckBigQuery) -> None:
    old = answers(6, failed=[1, 4])
    load(bq, [inline_job("batches/old", old)], [row.key for row in old])
    load(bq, [inline_job("batches/other-day", answers(2))], ["k0000", "k0001"], date="2026-01-02")
    new = answers(8, failed=[7])[2:]  # k0000, k0001 removed (k0001 was an error); k0006, k0007 added

    counts = load_day(bq, [inline_job("batches/new", new)], [r.key for r in new], [r.key for r in new])

    assert (counts.input, counts.succeeded, counts.failed, counts.missing, counts.stale) == (6, 5, 1, 0, 0)
    assert sorted(by_key(bq, RESULTS)) == ["k0002", "k0003", "k0004", "k0005", "k0006"]
    assert sorted(by_key(bq, ERRORS)) == ["k0007"]
    assert sorted(by_key(bq, RESULTS, "2026-01-02")) == ["k0000", "k0001"]  # other days untouched


def test_without_the_day_keys_a_load_only_adds(bq: DuckBigQuery) -> None:
    first, second = answers(4)[:2], answers(4)[2:]
    load(bq, [inline_job("batches/1", first)], [r.key for r in first])
    counts = load(bq, [inline_job("batches/2", second)], [r.key for r in second])
    assert counts.stale == 0
    assert sorted(by_key(bq, RESULTS)) == ["k0000", "k0001", "k0002", "k0003"]


def test_a_part_of_the_day_is_reconciled_and_the_rest_of_the_day_kept(bq: DuckBigQuery) -> None:
    rows = answers(6)
    load(bq, [inline_job("batches/all", rows)], [r.key for r in rows])
    part = rows[:3]  # the shards that finished this time; the others keep their rows

    counts = load_day(bq, [inline_job("batches/part", part)], [r.key for r in part], [r.key for r in rows])

    assert (counts.input, counts.succeeded, counts.stale) == (3, 3, 0)
    results = by_key(bq, RESULTS)
    assert sorted(results) == [r.key for r in rows]
    assert {results[k]["job_name"] for k in ("k0000", "k0002")} == {"batches/part"}
    assert results["k0005"]["job_name"] == "batches/all"


def test_a_key_left_behind_is_reported_stale(bq: DuckBigQuery, monkeypatch) -> None:
    rows = answers(3)
    load(bq, [inline_job("batches/1", rows)], [r.key for r in rows])
    real_render = __import__("gemini_batch.pipeline.sql", fromlist=["render"]).render

    def no_delete(name: str, **identifiers: str) -> str:  # a MERGE that forgets to delete
        if name == "merge_results.sql":
            identifiers["replace_day"] = "FALSE"
        return real_render(name, **identifiers)

    monkeypatch.setattr("gemini_batch.pipeline.sql.render", no_delete)
    with pytest.raises(ReconciliationError, match="1 keys in results or errors") as error:
        load_day(
            bq, [inline_job("batches/2", rows[1:])], [r.key for r in rows[1:]], [r.key for r in rows[1:]]
        )
    assert error.value.stale_sample == ("k0000",) and error.value.counts.stale == 1


def test_skip_loaded_stages_only_the_jobs_without_rows_for_the_day(bq: DuckBigQuery) -> None:
    first, second = answers(6)[:3], answers(6)[3:]
    load_day(bq, [inline_job("batches/1", first)], [r.key for r in first], [r.key for r in first + second],
             reconcile=False)  # fmt: skip
    before = by_key(bq, RESULTS)
    bq.statements.clear()

    counts = load_day(
        bq, [inline_job("batches/1", first), inline_job("batches/2", second)],
        [r.key for r in first + second], [r.key for r in first + second], skip_loaded=True,
    )  # fmt: skip

    assert (counts.staged, counts.succeeded, counts.missing) == (3, 6, 0)
    after = by_key(bq, RESULTS)
    assert all(after[r.key]["loaded_at"] == before[r.key]["loaded_at"] for r in first)
    assert {after[r.key]["job_name"] for r in second} == {"batches/2"}
