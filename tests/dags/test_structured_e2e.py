"""Structured output end to end: real Airflow (``dag.test``) against the local stack.

Requests with a response schema (half Gemini's OpenAPI ``responseSchema``, half
``responseJsonSchema``) go through the ad hoc DAG while the emulator breaks 5% of the structured
answers (``structured_break_ratio``). Every broken answer must land in errors as
``invalid_output`` with its text and first problem; every other one in results with
``response_json`` equal to the model's answer, row by row, and matching its schema.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from gemini_batch.pipeline.structured import check_answer
from local_stack.emulator.model import answer_text

from .conftest import Pipeline, task_states

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"
ROWS = 200
OPENAPI = {
    "type": "OBJECT",
    "properties": {
        "label": {"type": "STRING", "enum": ["spam", "ham", "eggs"]},
        "score": {"type": "NUMBER", "minimum": 0, "maximum": 1},
        "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
        "author": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}, "required": ["name"]},
    },
    "required": ["label", "score", "author"],
    "propertyOrdering": ["label", "score", "tags", "author"],
}
JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "ok": {"type": "boolean"},
        "note": {"type": ["string", "null"]},
    },
    "required": ["count", "ok"],
    "additionalProperties": False,
}


def structured_request(index: int) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The request of row ``index``, its schema and dialect (even rows OpenAPI, odd JSON Schema)."""
    if index % 2 == 0:
        config = {"responseMimeType": "application/json", "responseSchema": OPENAPI}
        schema, dialect = OPENAPI, "openapi"
    else:
        config = {"responseMimeType": "application/json", "responseJsonSchema": JSON_SCHEMA}
        schema, dialect = JSON_SCHEMA, "json_schema"
    request = {
        "contents": [{"role": "user", "parts": [{"text": f"classify message {index}"}]}],
        "generationConfig": config,
    }
    return request, schema, dialect


@pytest.mark.parametrize("backend", ["vertex", "gemini_api"])
def test_broken_structured_answers_are_invalid_output_and_the_rest_parsed(
    pipeline: Pipeline, backend: str
) -> None:
    requests = {f"s{index:04d}": structured_request(index) for index in range(ROWS)}
    lines = []
    for key, (request, _, _) in requests.items():
        if backend == "vertex":
            lines.append({"request": {**request, "labels": {"gemini_batch_key": key}}})
        else:
            lines.append({"key": key, "request": request})
    pipeline.gcs.bucket(pipeline.bucket).blob("adhoc/structured.jsonl").upload_from_file(
        io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    )
    pipeline.admin.set_faults(structured_break_ratio=0.05)

    dag_run = pipeline.run_dag(
        "gemini_batch_adhoc",
        backend=backend,
        prompts=None,
        input_file=f"gs://{pipeline.bucket}/adhoc/structured.jsonl",
        model=MODEL,
    )

    assert dag_run.state == "success", task_states(dag_run)
    day = dag_run.get_task_instance("prepare").xcom_pull(task_ids="prepare", key="day")
    results = {row["key"]: row for row in pipeline.rows("results", day)}
    errors = {row["key"]: row for row in pipeline.rows("errors", day)}
    assert not set(results) & set(errors)
    assert set(results) | set(errors) == set(requests)
    assert 2 <= len(errors) <= 25, len(errors)  # about 5% of 200
    counts = dag_run.get_task_instance("load_results").xcom_pull(task_ids="load_results")
    assert (counts["succeeded"], counts["failed"], counts["invalid_output"]) == (
        len(results),
        len(errors),
        len(errors),
    )
    for key, row in errors.items():
        request, schema, dialect = requests[key]
        assert row["status"] == "invalid_output", key
        assert row["response_text"] != answer_text(MODEL, request), key  # the emulator broke it
        assert row["error"] == str(check_answer(row["response_text"], schema, dialect)), key
        assert row["error"].startswith("$"), key
    for key, row in results.items():
        request, schema, dialect = requests[key]
        assert row["status"] == "succeeded", key
        assert row["response_text"] == answer_text(MODEL, request), key
        parsed = row["response_json"]
        parsed = json.loads(parsed) if isinstance(parsed, str) else parsed
        assert parsed == json.loads(row["response_text"]), key
        assert check_answer(json.dumps(parsed), schema, dialect) is None, key
