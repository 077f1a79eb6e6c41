"""Failed-row retry rounds: the decisions (tables of cases) and the SQL, executed on DuckDB.

A day of ten keys goes through the loader and two rounds exactly as the BigQuery pipeline runs
them: round 0 loads the day's job, each round picks the previous round's retryable failures into
a table of the same requests, and its load (``round=N``) reconciles the day's whole input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
from gemini_batch.pipeline.refs import TableRef
from gemini_batch.pipeline.results import ERRORS_SCHEMA, LoadCounts, ensure_results_tables
from gemini_batch.pipeline.rounds import (
    MAX_ROW_RETRIES,
    RoundSelection,
    check_max_row_retries,
    day_failures_message,
    round_action,
    round_group_id,
    round_work_scope,
    select_round_requests,
)
from gemini_batch.pipeline.row_retry import RowRetryPolicy

from .conftest import Answer
from .duck_bigquery import DuckBigQuery

DAY = dt.date(2026, 1, 1)
DAY_TABLE = TableRef("proj", "ds", "requests_20260101_abc")
RESULTS = TableRef("proj", "ds", "results")
ERRORS = TableRef("proj", "ds", "errors")
KEYS = [f"k{i:04d}" for i in range(10)]


@pytest.mark.parametrize(
    ("round_number", "max_row_retries", "retryable", "action"),
    [
        (1, 2, 5, "run"),
        (2, 2, 1, "run"),
        (1, 2, 0, "nothing_to_retry"),
        (2, 2, 0, "nothing_to_retry"),
        (1, 0, 5, "disabled"),
        (2, 1, 5, "disabled"),
        (3, 2, 5, "disabled"),
        (1, 1, 1, "run"),
        (1, 0, 0, "disabled"),
    ],
)
def test_a_round_runs_only_when_allowed_and_there_is_something_to_retry(
    round_number: int, max_row_retries: int, retryable: int, action: str
) -> None:
    assert round_action(round_number, max_row_retries, retryable) == action


@pytest.mark.parametrize("round_number", [0, -1])
def test_rounds_are_numbered_from_one(round_number: int) -> None:
    with pytest.raises(ValueError, match="numbered from 1"):
        round_action(round_number, 2, 1)


@pytest.mark.parametrize(("value", "ok"), [(0, True), (1, True), (2, True), (3, False), (-1, False),
                                           (True, False), ("2", False), (1.0, False), (None, False)])  # fmt: skip
def test_max_row_retries_is_an_int_up_to_the_rounds_the_dag_has(value: object, ok: bool) -> None:
    if ok:
        assert check_max_row_retries(value) == value
    else:
        with pytest.raises(ValueError, match="from 0 to 2"):
            check_max_row_retries(value)
    assert MAX_ROW_RETRIES == 2


@pytest.mark.parametrize(
    ("scope", "round_number", "expected"),
    [("2026-01-01--2026-01-02/fp", 1, "2026-01-01--2026-01-02/fp/r1"), ("a/b", 2, "a/b/r2"), ("", 1, "")],
)
def test_a_rounds_work_scope_is_the_days_and_the_round(scope: str, round_number: int, expected: str) -> None:
    assert round_work_scope(scope, round_number) == expected


def test_round_groups_are_named_by_number() -> None:
    assert [round_group_id(n) for n in (1, 2)] == ["round_1", "round_2"]


def test_a_selection_travels_as_a_dict() -> None:
    selection = RoundSelection(1, "run", 4, 3, ("code 429",), "bq://p.d.t", "f" * 16)
    assert selection.to_dict() == {
        "round": 1, "action": "run", "candidates": 4, "retryable": 3, "statuses": ["code 429"],
        "table": "bq://p.d.t", "fingerprint": "f" * 16,
    }  # fmt: skip


# --- the SQL, executed ---------------------------------------------------------------------------


def day_table(bq: DuckBigQuery, keys: Sequence[str] = KEYS) -> TableRef:
    bq.create_table(bigquery.Table(DAY_TABLE.api_repr, schema=[
        bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON"),
    ]))  # fmt: skip
    bq.insert(DAY_TABLE.uri, [{"key": key, "request": Answer(key).request()} for key in keys])
    return DAY_TABLE


def job(name: str, answered: Sequence[str], failed: Mapping[str, int]) -> JobOutput:
    """A Gemini API inline job: ``answered`` keys answered, ``failed`` keys with their error code."""
    from google.genai import types

    items = [
        types.InlinedResponse(
            metadata={"key": key},
            response=types.GenerateContentResponse.model_validate(Answer(key, "ok").response()),
        )
        for key in answered
    ] + [
        types.InlinedResponse(metadata={"key": key}, error=types.JobError(code=code, message=f"failed {key}"))
        for key, code in failed.items()
    ]
    return JobOutput(
        "gemini_inline", name, name, model="gemini-2.5-flash", end_time="2026-01-02T01:00:00Z",
        inline_responses=tuple(item.model_dump(mode="json", exclude_none=True) for item in items),
    )  # fmt: skip


def load(bq: DuckBigQuery, output: JobOutput, round_number: int, *, skip_loaded: bool = True) -> LoadCounts:
    day = InputKeys.from_table(DAY_TABLE.uri)
    return ResultsLoader(bigquery_client=bq).load(
        [output], logical_date=DAY, input_keys=day, day_keys=day, results_table=RESULTS.uri,
        errors_table=ERRORS.uri, skip_loaded=skip_loaded, round=round_number,
    )  # fmt: skip


def select(bq: DuckBigQuery, round_number: int, max_row_retries: int = 2) -> RoundSelection:
    return select_round_requests(
        bq, day_table=DAY_TABLE, errors=ERRORS, logical_date=DAY, round_number=round_number,
        max_row_retries=max_row_retries, run_tag="run1",
    )  # fmt: skip


def keys_of(bq: DuckBigQuery, table: str | None) -> list[str]:
    assert table is not None
    return [row["key"] for row in bq.rows(TableRef.parse(table).api_repr)]


def errors_by_key(bq: DuckBigQuery) -> dict[str, tuple[str, int | None]]:
    return {row["key"]: (row["status"], row["round"]) for row in bq.rows(ERRORS.api_repr)}


@pytest.fixture
def bq() -> DuckBigQuery:
    client = DuckBigQuery()
    day_table(client)
    return client


def test_two_rounds_answer_the_transient_failures_and_keep_the_permanent_ones(bq: DuckBigQuery) -> None:
    first = load(bq, job("batches/r0", KEYS[:6], {"k0006": 429, "k0007": 429, "k0008": 503, "k0009": 400}), 0)
    assert (first.answered, first.succeeded, first.failed, first.retryable) == (6, 6, 4, 3)
    assert errors_by_key(bq) == {"k0006": ("code 429", 0), "k0007": ("code 429", 0),
                                 "k0008": ("code 503", 0), "k0009": ("code 400", 0)}  # fmt: skip

    one = select(bq, 1)
    assert (one.action, one.candidates, one.retryable, one.statuses) == (
        "run",
        4,
        3,
        ("code 429", "code 503"),
    )
    assert one.table == f"bq://proj.ds.requests_20260101_abc_r1_{one.fingerprint}"
    assert keys_of(bq, one.table) == ["k0006", "k0007", "k0008"]
    assert bq.rows(TableRef.parse(one.table).api_repr) == [
        row for row in bq.rows(DAY_TABLE.api_repr) if row["key"] in {"k0006", "k0007", "k0008"}
    ]  # the same requests as the day's
    assert not any("_build_" in name for name in bq.table_names("proj.ds"))

    second = load(bq, job("batches/r1", ["k0006", "k0008"], {"k0007": 429}), 1)
    assert (second.round, second.answered, second.input, second.succeeded, second.failed) == (1, 2, 10, 8, 2)
    assert (second.missing, second.duplicated, second.stale) == (0, 0, 0)  # the whole day reconciled
    assert errors_by_key(bq) == {"k0007": ("code 429", 1), "k0009": ("code 400", 0)}
    assert {row["key"]: row["job_name"] for row in bq.rows(RESULTS.api_repr)} == {
        **{key: "batches/r0" for key in KEYS[:6]}, "k0006": "batches/r1", "k0008": "batches/r1",
    }  # fmt: skip

    two = select(bq, 2)
    assert (two.action, two.candidates, two.retryable) == ("run", 1, 1)
    assert keys_of(bq, two.table) == ["k0007"]
    third = load(bq, job("batches/r2", ["k0007"], {}), 2)
    assert (third.answered, third.succeeded, third.failed) == (1, 9, 1)
    assert errors_by_key(bq) == {"k0009": ("code 400", 0)}
    assert first.answered + second.answered + third.answered + third.failed == third.input

    # A re-run of the whole day after its rounds: nothing is left for either round.
    assert (select(bq, 1).action, select(bq, 2).action) == ("nothing_to_retry", "nothing_to_retry")
    assert select(bq, 1).candidates == 1  # the refused row: a candidate, never retryable


def test_a_round_picks_only_the_rows_the_previous_round_left(bq: DuckBigQuery) -> None:
    load(bq, job("batches/r0", KEYS[:8], {"k0008": 429, "k0009": 429}), 0)
    load(bq, job("batches/r1", [], {"k0008": 429}), 1)  # k0009 is not in round 1's job: it keeps round 0

    assert keys_of(bq, select(bq, 2).table) == ["k0008"]
    assert keys_of(bq, select(bq, 1).table) == ["k0009"]


def test_a_disabled_round_reads_nothing(bq: DuckBigQuery) -> None:
    load(bq, job("batches/r0", KEYS[:9], {"k0009": 429}), 0)
    before = len(bq.statements)

    assert select(bq, 2, max_row_retries=1) == RoundSelection(2, "disabled", 0, 0)
    assert select(bq, 1, max_row_retries=0).action == "disabled"
    assert len(bq.statements) == before


def test_invalid_output_is_retried_only_when_the_policy_says_so(bq: DuckBigQuery) -> None:
    load(bq, job("batches/r0", KEYS[:9], {"k0009": 429}), 0)
    bq.query(f"UPDATE {ERRORS.sql} SET status = 'invalid_output' WHERE key = 'k0009'").result()

    assert select(bq, 1).action == "nothing_to_retry"
    picked = select_round_requests(
        bq, day_table=DAY_TABLE, errors=ERRORS, logical_date=DAY, round_number=1, max_row_retries=2,
        run_tag="t", policy=RowRetryPolicy(retry_invalid_output=True),
    )  # fmt: skip
    assert keys_of(bq, picked.table) == ["k0009"]


def test_an_errors_table_from_before_rounds_gets_the_column_and_its_rows_count_as_round_0() -> None:
    bq = DuckBigQuery()
    day_table(bq)
    old = [field for field in ERRORS_SCHEMA if field[0] != "round"]
    bq.create_table(bigquery.Table(ERRORS.api_repr, schema=[bigquery.SchemaField(n, t) for n, t, *_ in old]))
    bq.query(
        f"INSERT INTO {ERRORS.sql} (key, logical_date, status, job_name, loaded_at) "
        "VALUES ('k0003', DATE '2026-01-01', 'RESOURCE_EXHAUSTED', 'batches/old', CURRENT_TIMESTAMP())"
    ).result()

    ensure_results_tables(bq, RESULTS, ERRORS)
    ensure_results_tables(bq, RESULTS, ERRORS)  # again: nothing to add

    assert "round" in {field.name for field in bq.get_table(ERRORS.api_repr).schema}
    assert errors_by_key(bq) == {"k0003": ("RESOURCE_EXHAUSTED", None)}
    assert keys_of(bq, select(bq, 1).table) == ["k0003"]


def test_a_missing_required_column_is_still_refused() -> None:
    bq = DuckBigQuery()
    old = [field for field in ERRORS_SCHEMA if field[0] != "job_name"]
    bq.create_table(bigquery.Table(ERRORS.api_repr, schema=[bigquery.SchemaField(n, t) for n, t, *_ in old]))
    with pytest.raises(ValueError, match="without column"):
        ensure_results_tables(bq, RESULTS, ERRORS)


# --- rows missing from a job's output --------------------------------------------------------------


def with_source(output: JobOutput, source: str | None) -> JobOutput:
    from dataclasses import replace

    return replace(output, source=source)


def load_recording_missing(bq: DuckBigQuery, output: JobOutput, round_number: int) -> LoadCounts:
    day = InputKeys.from_table(DAY_TABLE.uri)
    return ResultsLoader(bigquery_client=bq).load(
        [output], logical_date=DAY, input_keys=day, day_keys=day, results_table=RESULTS.uri,
        errors_table=ERRORS.uri, skip_loaded=True, round=round_number, record_missing=True,
    )  # fmt: skip


def test_keys_missing_from_an_output_land_in_errors_and_the_next_round_retries_them(bq: DuckBigQuery) -> None:
    first = load_recording_missing(bq, with_source(job("batches/r0", KEYS[:8], {}), DAY_TABLE.uri), 0)

    assert (first.missing, first.succeeded, first.failed, first.retryable, first.answered) == (0, 8, 2, 2, 8)
    errors = {row["key"]: row for row in bq.rows(ERRORS.api_repr)}
    assert {key: (row["status"], row["round"], row["job_name"]) for key, row in errors.items()} == {
        "k0008": ("missing", 0, "batches/r0"), "k0009": ("missing", 0, "batches/r0"),
    }  # fmt: skip
    assert errors["k0008"]["error"] == "the output of job batches/r0 has no row for this key"
    assert errors["k0008"]["request"] == Answer("k0008").request()  # the submitted request
    one = select(bq, 1)
    assert keys_of(bq, one.table) == ["k0008", "k0009"]

    # Round 1's job answers one and again lacks the other: only round 1's source counts.
    second = load_recording_missing(bq, with_source(job("batches/r1", ["k0008"], {}), one.table), 1)
    assert (second.succeeded, second.failed, second.answered) == (9, 1, 1)
    assert errors_by_key(bq) == {"k0009": ("missing", 1)}


@pytest.mark.parametrize("source", [None, "inline:3 requests", "files/abc", "gs://bkt/in/*.jsonl"])
def test_a_source_without_a_key_list_records_nothing_and_reconciliation_still_fails(
    bq: DuckBigQuery, source: str | None
) -> None:
    from gemini_batch.pipeline.results import ReconciliationError

    with pytest.raises(ReconciliationError, match="2 of 10 input keys have no row"):
        load_recording_missing(bq, with_source(job("batches/r0", KEYS[:8], {}), source), 0)


def test_without_record_missing_a_missing_key_still_fails_reconciliation(bq: DuckBigQuery) -> None:
    from gemini_batch.pipeline.results import ReconciliationError

    with pytest.raises(ReconciliationError, match="2 of 10 input keys have no row"):
        load(bq, with_source(job("batches/r0", KEYS[:8], {}), DAY_TABLE.uri), 0)


def test_an_already_loaded_job_is_not_taken_for_missing_rows(bq: DuckBigQuery) -> None:
    output = with_source(job("batches/r0", KEYS, {}), DAY_TABLE.uri)
    load_recording_missing(bq, output, 0)
    bq.query(f"CREATE TABLE `proj.ds.one_key` AS SELECT * FROM {DAY_TABLE.sql} WHERE key = 'k0001'").result()
    other = with_source(job("batches/other", [], {"k0001": 429}), "bq://proj.ds.one_key")
    day = InputKeys.from_table(DAY_TABLE.uri)

    counts = ResultsLoader(bigquery_client=bq).load(
        [output, other], logical_date=DAY, input_keys=day, day_keys=day, results_table=RESULTS.uri,
        errors_table=ERRORS.uri, skip_loaded=True, record_missing=True,
    )  # fmt: skip

    assert (counts.succeeded, counts.failed) == (
        9,
        1,
    )  # r0 is skipped: its source is not compared with this stage
    assert errors_by_key(bq) == {"k0001": ("code 429", 0)}


def test_a_manifest_names_the_jobs_source() -> None:
    manifest = {"job_name": "j", "backend": "vertex", "outcome": "succeeded", "source": "bq://p.d.t",
                "bigquery_output_table": "bq://p.d.out"}  # fmt: skip
    assert JobOutput.from_manifest(manifest).source == "bq://p.d.t"


@pytest.mark.parametrize(
    ("answered", "failed", "limit", "fails"),
    [
        (90, {"INVALID_ARGUMENT": 10}, 0.1, False),  # exactly the limit: accepted
        (89, {"INVALID_ARGUMENT": 11}, 0.1, True),
        (89, {"INVALID_ARGUMENT": 6, "RESOURCE_EXHAUSTED": 5}, 0.1, True),  # every status counts
        (100, {}, 0.0, False),
        (99, {"missing": 1}, 0.0, True),
        (0, {"INTERNAL": 3}, 1.0, False),  # 1.0: any share
        (0, {}, 0.1, False),  # an empty day
    ],
)
def test_a_day_fails_only_when_its_failed_rows_after_the_rounds_pass_the_limit(
    answered: int, failed: dict[str, int], limit: float, fails: bool
) -> None:
    message = day_failures_message(
        day="2026-01-01", answered=answered, failed=failed, max_failed_ratio=limit, errors="bq://p.d.errors"
    )
    assert (message is not None) is fails


def test_the_days_failure_names_the_counts_the_statuses_the_table_and_what_to_do() -> None:
    message = day_failures_message(
        day="2026-01-01",
        answered=80,
        failed={"INVALID_ARGUMENT": 5, "RESOURCE_EXHAUSTED": 15},
        max_failed_ratio=0.1,
        errors="bq://p.d.errors",
    )
    assert message is not None
    assert "20 of 100 rows of 2026-01-01" in message and "(20.0%, above max_failed_ratio=0.1)" in message
    assert "RESOURCE_EXHAUSTED 15, INVALID_ARGUMENT 5" in message  # most frequent first
    assert "bq://p.d.errors" in message and "GEMINI_BATCH_MAX_FAILED_RATIO" in message
