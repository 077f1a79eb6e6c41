"""Structured output through the loader's SQL on DuckDB: response_json for matching answers,
``invalid_output`` in errors (with the text and the first problem) for the others.

The schema rules themselves are tabled in test_structured.py; here the rows must move.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
from gemini_batch.pipeline.results import LoadCounts
from gemini_batch.pipeline.row_retry import RowRetryPolicy
from gemini_batch.pipeline.structured_load import check_answers

from .duck_bigquery import DuckBigQuery
from .test_loader_sql import by_key

DATE = "2026-01-01"
OUTPUT = "proj.ds.predictions"
REQUESTS = "proj.ds.requests"

OPENAPI = {
    "type": "OBJECT",
    "properties": {"label": {"type": "STRING", "enum": ["spam", "ham"]}, "score": {"type": "NUMBER"}},
    "required": ["label", "score"],
    "propertyOrdering": ["label", "score"],
}
JSON_SCHEMA = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["tags"],
}

#: key -> (generationConfig or None, answer text, expected problem or None (None: valid))
ROWS: dict[str, tuple[dict[str, Any] | None, str, str | None]] = {
    "k01": ({"responseMimeType": "application/json", "responseSchema": OPENAPI}, '{"label":"spam","score":0.5}', None),
    "k02": ({"responseMimeType": "application/json", "responseSchema": OPENAPI}, '{"label":"eggs","score":1}',
            '$.label: "eggs" is not one of ["spam", "ham"]'),
    "k03": ({"responseMimeType": "application/json", "responseSchema": OPENAPI}, '{"label":"ham"}',
            "$.score: required field missing"),
    "k04": ({"responseMimeType": "application/json", "responseSchema": OPENAPI}, '{"label":"ham",',
            "$: not valid JSON (Expecting property name enclosed in double quotes)"),
    "k05": ({"responseMimeType": "application/json", "responseJsonSchema": JSON_SCHEMA}, '{"tags":["a","b"]}', None),
    "k06": ({"response_mime_type": "application/json", "response_json_schema": JSON_SCHEMA}, '{"tags":["a",2]}',
            "$.tags[1]: expected string, got integer"),
    "k07": (None, "plain text, no schema", None),
    "k08": ({"responseMimeType": "text/plain", "responseSchema": OPENAPI}, "not json at all", None),
}  # fmt: skip


def _response(text: str) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10},
        "modelVersion": "gemini-2.5-flash-001",
    }


def structured_output_table(bq: DuckBigQuery, rows: dict[str, tuple[Any, str, Any]] = ROWS) -> JobOutput:
    """A Vertex AI BigQuery output table whose requests (echoed) declare response schemas."""
    bq.create_table(bigquery.Table(OUTPUT, schema=[
        bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON"),
        bigquery.SchemaField("response", "JSON"), bigquery.SchemaField("status", "STRING"),
        bigquery.SchemaField("processed_time", "TIMESTAMP"),
    ]))  # fmt: skip
    bq.create_table(bigquery.Table(REQUESTS, schema=[bigquery.SchemaField("key", "STRING")]))
    bq.insert(REQUESTS, [{"key": key} for key in rows])
    output = []
    for key, (config, text, _) in rows.items():
        request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": f"prompt {key}"}]}]}
        if config is not None:
            request["generationConfig"] = config
        output.append({"key": key, "request": request, "response": _response(text), "status": "",
                       "processed_time": dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone.utc)})  # fmt: skip
    bq.insert(OUTPUT, output)
    return JobOutput("vertex_bigquery", "projects/p/locations/l/batchPredictionJobs/7", f"bq://{OUTPUT}",
                     model="gemini-2.5-flash", end_time="2026-01-01T11:00:00Z")  # fmt: skip


def load_structured(bq: DuckBigQuery) -> LoadCounts:
    return ResultsLoader(bigquery_client=bq).load(
        [structured_output_table(bq)], logical_date=DATE, input_keys=InputKeys.from_table(f"bq://{REQUESTS}"),
        results_table="bq://proj.ds.results", errors_table="bq://proj.ds.errors",
    )  # fmt: skip


@pytest.fixture
def bq() -> DuckBigQuery:
    return DuckBigQuery()


def test_invalid_answers_land_in_errors_with_text_and_first_problem(bq: DuckBigQuery) -> None:
    counts = load_structured(bq)
    invalid = {key: problem for key, (_, _, problem) in ROWS.items() if problem}
    assert (counts.succeeded, counts.failed, counts.invalid_output, counts.missing) == (4, 4, 4, 0)
    errors = by_key(bq, "proj.ds.errors")
    assert {key: row["error"] for key, row in errors.items()} == invalid
    assert {row["status"] for row in errors.values()} == {"invalid_output"}
    assert {key: row["response_text"] for key, row in errors.items()} == {
        key: ROWS[key][1] for key in invalid
    }


def test_matching_answers_have_their_parsed_json_and_others_none(bq: DuckBigQuery) -> None:
    load_structured(bq)
    results = by_key(bq, "proj.ds.results")
    assert set(results) == {"k01", "k05", "k07", "k08"}
    parsed = {key: row["response_json"] for key, row in results.items()}
    parsed = {key: json.loads(value) if isinstance(value, str) else value for key, value in parsed.items()}
    assert parsed == {
        "k01": {"label": "spam", "score": 0.5},
        "k05": {"tags": ["a", "b"]},
        "k07": None,
        "k08": None,
    }
    assert results["k01"]["response_text"] == ROWS["k01"][1]


def test_a_rerun_with_fixed_answers_moves_keys_back_to_results(bq: DuckBigQuery) -> None:
    load_structured(bq)
    fixed = json.dumps(_response('{"label":"ham","score":2}'))
    bq.con.execute("UPDATE proj.ds.predictions SET response = ? WHERE key IN ('k02', 'k03', 'k04')", [fixed])
    counts = ResultsLoader(bigquery_client=bq).load(
        [JobOutput("vertex_bigquery", "projects/p/locations/l/batchPredictionJobs/8", f"bq://{OUTPUT}",
                   model="gemini-2.5-flash", end_time="2026-01-01T12:00:00Z")],
        logical_date=DATE, input_keys=InputKeys.from_table(f"bq://{REQUESTS}"),
        results_table="bq://proj.ds.results", errors_table="bq://proj.ds.errors",
    )  # fmt: skip
    assert (counts.succeeded, counts.invalid_output) == (7, 1)
    assert set(by_key(bq, "proj.ds.errors")) == {"k06"}


def test_rows_of_a_schema_group_are_checked_against_that_groups_schema() -> None:
    rows = [
        {"key": "a", "response_text": '"x"', "schema_dialect": "openapi", "schema_id": "1",
         "schema_text": '{"type": "STRING"}'},
        {"key": "b", "response_text": "3", "schema_dialect": "openapi", "schema_id": "1", "schema_text": None},
        {"key": "c", "response_text": "3", "schema_dialect": "json_schema", "schema_id": "2",
         "schema_text": '{"type": "integer"}'},
        {"key": "d", "response_text": '"x"', "schema_dialect": "json_schema", "schema_id": "2", "schema_text": None},
    ]  # fmt: skip
    assert [(key, str(problem)) for key, problem in check_answers(rows)] == [
        ("b", "$: expected string, got integer"),
        ("d", "$: expected integer, got string"),
    ]


def test_a_group_that_starts_without_its_schema_is_refused() -> None:
    rows = [
        {"key": "a", "response_text": "1", "schema_dialect": "openapi", "schema_id": "1", "schema_text": None}
    ]
    with pytest.raises(ValueError, match="without its schema"):
        list(check_answers(rows))


@pytest.mark.parametrize(("retry_invalid_output", "retryable"), [(False, 0), (True, 4)])
def test_invalid_output_counts_as_retryable_only_when_asked(
    bq: DuckBigQuery, retry_invalid_output: bool, retryable: int
) -> None:
    counts = ResultsLoader(
        bigquery_client=bq, row_retry=RowRetryPolicy(retry_invalid_output=retry_invalid_output)
    ).load(
        [structured_output_table(bq)], logical_date=DATE, input_keys=InputKeys.from_table(f"bq://{REQUESTS}"),
        results_table="bq://proj.ds.results", errors_table="bq://proj.ds.errors",
    )  # fmt: skip
    assert (counts.failed, counts.retryable) == (4, retryable)
