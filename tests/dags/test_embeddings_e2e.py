"""gemini_batch_embeddings end to end: real Airflow (``dag.test``) against the local stack.

Seeds documents, runs the DAG, and checks the embeddings table key by key against the
emulator's deterministic vectors (``embedding_values``): one vector per document of the day, of
text-embedding-005's 768 dimensions, with its token count; a re-run (manual or Clear) makes no
new job and no second row.
"""

from __future__ import annotations

import datetime as dt
import math

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
