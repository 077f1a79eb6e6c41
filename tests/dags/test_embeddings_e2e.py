"""gemini_batch_embeddings end to end: real Airflow (``dag.test``) against the local stack.

Seeds documents, runs the DAG, and checks the embeddings table key by key against the
emulator's deterministic vectors (``embedding_values``): one vector per document of the day, of
text-embedding-005's 768 dimensions, with its token count; a re-run (manual or Clear) makes no
new job and no second row. The costs are checked against prices.json by hand, its numbers
written out here (never computed with gemini_batch.costs): text-embedding-005 on Vertex AI is
billed per character (UTF-8 code points, white space excluded), 0.025 USD per 1M online, 20% off
in batch: 0.02 USD per 1M characters; prices retrieved 2026-12-06.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

from local_stack.emulator.embedding import embedding_values
from local_stack.seed import document_rows, seed_documents

from .conftest import Pipeline, clear_and_rerun, task_states

pytestmark = pytest.mark.integration

MODEL = "text-embedding-005"
DIMENSION = 768
#: A date no other test uses: the metadata DB is shared by the session.
DAY = "2026-05-01"
DOCUMENTS = 12
#: text-embedding-005's batch price, USD per billable character (prices.json: 0.025 per 1M, 20% off).
CHARACTER_USD = 0.025 * 0.8 / 1e6
PRICES_RETRIEVED = "2026-12-06"


def billable(text: str) -> int:
    """Vertex AI's billable characters, counted by hand: code points that are not white space."""
    return len(re.sub(r"\s", "", text))


def check_costs(pipeline: Pipeline, contents: dict[str, str], job_name: str, run_id: str) -> dict:
    """The day's one costs row: the documents' tokens and billable characters, and their cost."""
    tokens = sum(math.ceil(len(text) / 4) for text in contents.values())
    characters = sum(billable(text) for text in contents.values())
    assert characters > 0 and characters != tokens
    (row,) = [
        dict(r.items()) for r in pipeline.bq.query(f"SELECT * FROM `{pipeline.table('costs')}`").result()
    ]
    assert (row["job_name"], row["model"], row["backend"], row["logical_date"].isoformat()) == (
        job_name, MODEL, "vertex", DAY,
    )  # fmt: skip
    assert (row["dag_id"], row["run_id"], row["task_id"]) == (
        "gemini_batch_embeddings",
        run_id,
        "load_embeddings",
    )
    assert (row["requests"], row["prompt_tokens"], row["output_tokens"], row["thinking_tokens"]) == (
        DOCUMENTS, tokens, 0, 0,
    )  # fmt: skip
    assert (row["total_tokens"], row["billable_characters"]) == (tokens, characters)
    assert row["estimated_cost_usd"] == pytest.approx(characters * CHARACTER_USD, abs=1e-15)
    assert (row["prices_retrieved"], row["tokens_from"]) == (PRICES_RETRIEVED, "results")
    return row


def seed(pipeline: Pipeline, *days: str) -> dict[str, str]:
    """Seed DOCUMENTS documents per day; the first day's content by key."""
    dates = [dt.date.fromisoformat(day) for day in days]
    seed_documents(
        rows=DOCUMENTS,
        dates=dates,
        project=pipeline.project,
        dataset=pipeline.dataset,
        bigquery_client=pipeline.bq,
    )
    return {str(row["id"]): row["content"] for row in document_rows(dates[0], DOCUMENTS)}


def check_vectors(pipeline: Pipeline, contents: dict[str, str]) -> list[dict]:
    """Every document of DAY has exactly one row: its vector, dimension and token count."""
    rows = pipeline.rows("embeddings", DAY)
    assert [row["key"] for row in rows] == sorted(contents)  # each key once
    for row in rows:
        text = contents[row["key"]]
        assert (row["dimension"], len(row["embedding"])) == (DIMENSION, DIMENSION)
        assert list(row["embedding"]) == embedding_values(MODEL, text), row["key"]
        assert row["token_count"] == math.ceil(len(text) / 4)
        assert (row["status"], row["model"]) == ("succeeded", MODEL)
    assert pipeline.rows("embedding_errors", DAY) == []
    return rows


def test_the_embeddings_dag_loads_one_vector_per_document_and_a_rerun_adds_no_job_and_no_row(
    pipeline: Pipeline,
) -> None:
    contents = seed(pipeline, DAY, "2026-05-02")

    first = pipeline.run_dag("gemini_batch_embeddings", DAY)

    assert first.state == "success", task_states(first)
    before = check_vectors(pipeline, contents)
    assert pipeline.rows("embeddings", "2026-05-02") == []  # the next day's documents are not read
    counts = first.get_task_instance("load_embeddings").xcom_pull(task_ids="load_embeddings")
    assert (counts["input"], counts["succeeded"], counts["failed"], counts["missing"]) == (
        DOCUMENTS,
        DOCUMENTS,
        0,
        0,
    )
    manifest = first.get_task_instance("run_job", map_index=0).xcom_pull(task_ids="run_job", map_indexes=0)
    assert (manifest["task"], manifest["backend"]) == ("embed", "vertex")
    [job] = pipeline.admin.jobs()
    assert (job["task"], job["backend"], job["name"]) == ("embed", "vertex", manifest["job_name"])
    costs = check_costs(pipeline, contents, job["name"], first.run_id)
    assert counts["estimated_cost_usd"] == pytest.approx(costs["estimated_cost_usd"], abs=1e-15)
    assert counts["tokens"] == {"prompt": costs["prompt_tokens"], "output": 0, "thinking": 0,
                                "total": costs["prompt_tokens"]}  # fmt: skip

    # The UI's Clear (same run, new tries), then a manual run of the same day (dag.test replaces
    # the run of its logical date, so the Clear comes first).
    cleared = clear_and_rerun("gemini_batch_embeddings", first.run_id)
    rerun = pipeline.run_dag("gemini_batch_embeddings", DAY)

    for run in (cleared, rerun):
        assert run.state == "success", task_states(run)
    assert len(pipeline.admin.jobs()) == 1  # the day's job adopted, never a second one
    after = check_vectors(pipeline, contents)
    assert [(r["key"], r["job_name"]) for r in after] == [(r["key"], r["job_name"]) for r in before]
    assert len(pipeline.rows("embeddings")) == DOCUMENTS
    costs = check_costs(pipeline, contents, job["name"], rerun.run_id)  # still one row: replaced

    # The summary DAG's cost per day and model (run by hand: every day of the costs table).
    summary = pipeline.run_dag("gemini_batch_results_summary")
    assert summary.state == "success", task_states(summary)
    (day,) = [
        dict(r.items())
        for r in pipeline.bq.query(f"SELECT * FROM `{pipeline.table('costs_daily_summary')}`").result()
    ]
    assert (day["logical_date"].isoformat(), day["model"], day["jobs"], day["requests"]) == (
        DAY,
        MODEL,
        1,
        DOCUMENTS,
    )
    assert (day["total_tokens"], day["billable_characters"]) == (
        costs["total_tokens"],
        costs["billable_characters"],
    )
    assert day["estimated_cost_usd"] == pytest.approx(costs["estimated_cost_usd"], abs=1e-15)


def test_an_embeddings_run_over_its_budget_creates_no_job_and_says_why(
    pipeline: Pipeline, capfd, caplog
) -> None:
    over_day = "2026-05-11"
    seed_documents(
        rows=DOCUMENTS, dates=[dt.date.fromisoformat(over_day)], project=pipeline.project,
        dataset=pipeline.dataset, bigquery_client=pipeline.bq,
    )  # fmt: skip
    texts = [row["content"] for row in document_rows(dt.date.fromisoformat(over_day), DOCUMENTS)]
    characters = sum(billable(text) for text in texts)
    tokens = sum(math.ceil(len(text) / 4) for text in texts)
    assert characters * CHARACTER_USD > 0.000001

    dag_run = pipeline.run_dag("gemini_batch_embeddings", over_day, max_estimated_cost=0.000001)

    states = task_states(dag_run)
    assert dag_run.state == "failed", states
    assert states["run_job[0]"] == "failed" and states["build_documents"] == "success", states
    assert pipeline.admin.jobs() == []  # nothing was submitted
    assert dag_run.get_task_instance("run_job", map_index=0).try_number == 1  # not retried
    logs = capfd.readouterr().out + caplog.text  # the task log: where dag.test's logging sends it
    expected = (
        f"Not submitting the batch job: its estimated cost {characters * CHARACTER_USD:.9f} USD is above "
        f"max_estimated_cost=1e-06 ({DOCUMENTS} request(s), about {tokens:,} input and 0 output tokens, "
        f"{characters:,} billable characters at batch prices of {MODEL} retrieved {PRICES_RETRIEVED}; "
        "input estimated as the embedded text's characters / 4, no output for an embedding). "
        "No job was created. Raise max_estimated_cost"
    )
    assert expected in logs, logs[-4000:]
