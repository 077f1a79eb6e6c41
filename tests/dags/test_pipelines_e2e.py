"""The pipeline DAGs end to end: real Airflow (``dag.test``) against the local stack.

Each test seeds prompts, runs the DAG, and checks the results table row by row against the
inputs: every key once, the emulator's deterministic answer, the token counts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gemini_batch.pipeline.builder import RequestTemplate
from local_stack.emulator.model import answer_text
from local_stack.seed import REQUEST_TEMPLATE, prompt_rows, seed

from .conftest import Pipeline, task_states

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"


def seed_days(pipeline: Pipeline, rows: int, *days: str, gcs: bool = False) -> None:
    seed(rows=rows, dates=[dt.date.fromisoformat(d) for d in days], project=pipeline.project,
         dataset=pipeline.dataset, bucket=pipeline.bucket, gcs=gcs,
         bigquery_client=pipeline.bq, storage_client=pipeline.gcs)


def expected(day: str, rows: int) -> dict[str, dict[str, Any]]:
    """What the emulator answers for each seeded prompt of ``day``, by key."""
    template = RequestTemplate.from_file(REQUEST_TEMPLATE)
    return {
        str(row["id"]): {"response_text": answer_text(MODEL, template.render(row["prompt"]))}
        for row in prompt_rows(dt.date.fromisoformat(day), rows)
    }


def check_results(pipeline: Pipeline, day: str, rows: int, *, failed: set[str] = frozenset()) -> None:
    """The results and errors tables hold every seeded key of ``day`` exactly once, as answered."""
    want = expected(day, rows)
    results = pipeline.rows("results", day)
    errors = pipeline.rows("errors", day)
    got = {row["key"]: row for row in results}
    assert len(got) == len(results), "a key is in the results twice"
    assert {row["key"] for row in errors} == failed
    assert set(got) == set(want) - failed
    for key, row in got.items():
        assert row["response_text"] == want[key]["response_text"], key
        assert (row["status"], row["finish_reason"]) == ("succeeded", "STOP")
        assert row["prompt_tokens"] > 0 and row["total_tokens"] == row["prompt_tokens"] + row["output_tokens"]
        assert row["logical_date"] == dt.date.fromisoformat(day)


def test_bigquery_dag_answers_every_prompt_of_the_day(pipeline: Pipeline) -> None:
    seed_days(pipeline, 30, "2026-01-01", "2026-01-02")

    dag_run = pipeline.run_dag("gemini_batch_bigquery", "2026-01-01")

    assert dag_run.state == "success", task_states(dag_run)
    check_results(pipeline, "2026-01-01", 30)
    assert pipeline.rows("results", "2026-01-02") == []  # the next day's prompts are not read
    counts = dag_run.get_task_instance("load_results").xcom_pull(task_ids="load_results")
    assert (counts["input"], counts["succeeded"], counts["failed"], counts["missing"]) == (30, 30, 0, 0)
    jobs = pipeline.admin.jobs()
    assert len(jobs) == 1 and jobs[0]["backend"] == "vertex"


def test_gcs_dag_shards_the_input_and_loads_every_shard(pipeline: Pipeline, monkeypatch) -> None:
    monkeypatch.setenv("GEMINI_BATCH_MAX_REQUESTS_PER_JOB", "10")
    seed_days(pipeline, 25, "2026-01-01", gcs=True)

    dag_run = pipeline.run_dag("gemini_batch_gcs", "2026-01-01")

    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert [k for k in states if k.startswith("run_job")] == ["run_job[0]", "run_job[1]", "run_job[2]"]
    check_results(pipeline, "2026-01-01", 25)
    assert {row["job_name"] for row in pipeline.rows("results", "2026-01-01")} == {
        job["name"] for job in pipeline.admin.jobs()
    }
    assert len(pipeline.admin.jobs()) == 3
