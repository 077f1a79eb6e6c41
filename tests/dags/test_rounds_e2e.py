"""Failed-row retry rounds end to end: real Airflow (``dag.test``) against the local stack.

One DAG run of 200 prompts with 10% of rows failing RESOURCE_EXHAUSTED in their first two jobs
(``row_failure_tries: 2``) and 2% refused INVALID_ARGUMENT in every job: round 0 answers the
rest, round 1 fails the transient rows again, round 2 answers them. Then a clear of round 2's
job task, and of the whole run: neither makes a job.
"""

from __future__ import annotations

from typing import Any

import pytest

from gemini_batch.pipeline import dag_config

from .conftest import Pipeline, clear_and_rerun, parse_dag, run_existing_dagrun, task_states
from .test_pipelines_e2e import expected, seed_days

pytestmark = pytest.mark.integration

DAY = "2026-04-01"  # a date no other test uses: the metadata DB is shared by the session
ROWS = 200


def clear_tasks_and_rerun(dag_id: str, run_id: str, task_ids: list[str]) -> Any:
    """Clear some tasks of a finished run (the UI's "Clear" on them) and run it again in-process."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    dag = parse_dag(dag_id)
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with create_session() as session:
        scheduler_dag.clear(
            task_ids=task_ids, run_id=run_id, dag_run_state=DagRunState.QUEUED, session=session, dry_run=False
        )
    return run_existing_dagrun(dag, run_id)


def load_counts(dag_run: Any, task_id: str) -> dict[str, Any]:
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def test_two_rounds_answer_every_transient_row_and_a_clear_makes_no_job(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default limit (10% failed): round 0 fails about 12% of its rows, the day ends under it.
    assert dag_config.MAX_FAILED_RATIO == 0.1
    seed_days(pipeline, ROWS, DAY)
    pipeline.admin.set_faults(row_failure_ratio=0.1, row_failure_tries=2, row_permanent_failure_ratio=0.02)

    dag_run = pipeline.run_dag("gemini_batch_bigquery", DAY)

    states = task_states(dag_run)
    assert dag_run.state == "success", states
    for task_id in (
        "load_results",
        "round_1.select_rows",
        "round_1.load_results",
        "round_2.load_results",
        "check_failed_rows",
    ):
        assert states[task_id] == "success", states
    jobs = pipeline.admin.jobs()
    assert len(jobs) == 3, jobs  # one job per round that had work
    first, second, third = (job["counts"] for job in jobs)
    refused, transient = first["failed"] - second["total"], second["total"]
    assert 8 <= transient <= 35 and 1 <= refused <= 12, (transient, refused)
    assert first["total"] == ROWS
    assert (second["failed"], third["total"], third["failed"]) == (transient, transient, 0)

    # The rounds' counts add up: answered per round, plus what is left in errors, is the day.
    counts = [
        load_counts(dag_run, t) for t in ("load_results", "round_1.load_results", "round_2.load_results")
    ]
    assert [c["round"] for c in counts] == [0, 1, 2]
    assert [c["answered"] for c in counts] == [ROWS - refused - transient, 0, transient]
    assert [c["input"] for c in counts] == [ROWS] * 3  # every round reconciles the whole day
    assert [(c["missing"], c["duplicated"], c["stale"]) for c in counts] == [(0, 0, 0)] * 3
    assert sum(c["answered"] for c in counts) + counts[-1]["failed"] == ROWS
    assert (counts[-1]["succeeded"], counts[-1]["failed"], counts[-1]["retryable"]) == (
        ROWS - refused,
        refused,
        0,
    )
    assert counts[0]["retryable"] == counts[1]["retryable"] == transient
    checked = load_counts(dag_run, "check_failed_rows")
    assert checked["answered"] == ROWS - refused and sum(checked["failed"].values()) == refused

    # Every transient key answered (by round 2's job), the refused ones in errors with reason and round.
    want = expected(DAY, ROWS)
    results = {row["key"]: row for row in pipeline.rows("results", DAY)}
    errors = {row["key"]: row for row in pipeline.rows("errors", DAY)}
    assert len(results) == ROWS - refused and not set(results) & set(errors)
    assert set(results) | set(errors) == set(want)
    assert all(row["response_text"] == want[key]["response_text"] for key, row in results.items())
    by_job = {
        job["name"]: sum(1 for row in results.values() if row["job_name"] == job["name"]) for job in jobs
    }
    assert list(by_job.values()) == [ROWS - refused - transient, 0, transient]
    for row in errors.values():
        assert "INVALID_ARGUMENT" in row["status"] and row["error"] and row["round"] == 0
        assert row["job_name"] == jobs[0]["name"]

    # A clear of round 2's job task re-attaches to its job; a clear of the whole run finds nothing left.
    rerun = clear_tasks_and_rerun(
        "gemini_batch_bigquery", dag_run.run_id, ["round_2.run_job", "round_2.load_results"]
    )
    assert rerun.state == "success", task_states(rerun)
    assert rerun.get_task_instance("round_2.run_job", map_index=0).try_number == 2  # it ran again
    assert len(pipeline.admin.jobs()) == 3
    again = clear_and_rerun("gemini_batch_bigquery", dag_run.run_id)
    again_states = task_states(again)
    assert again.state == "success", again_states
    assert len(pipeline.admin.jobs()) == 3  # no extra job in any round
    assert (again_states["round_1.select_rows"], again_states["round_2.select_rows"]) == (
        "skipped",
        "skipped",
    )
    assert {row["key"]: row["job_name"] for row in pipeline.rows("results", DAY)} == {
        key: row["job_name"] for key, row in results.items()
    }
    assert {row["key"] for row in pipeline.rows("errors", DAY)} == set(errors)


def test_the_gcs_pipeline_retries_the_failed_lines_in_one_round(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A limit below the permanent failures: every round runs, then the day fails, naming them.
    monkeypatch.setattr(dag_config, "MAX_FAILED_RATIO", 0.001)
    day = "2026-04-02"
    seed_days(pipeline, ROWS, day, gcs=True)
    pipeline.admin.set_faults(row_failure_ratio=0.1, row_failure_tries=1, row_permanent_failure_ratio=0.02)

    dag_run = pipeline.run_dag("gemini_batch_gcs", day)

    states = task_states(dag_run)
    assert dag_run.state == "failed", states
    assert (states["round_1.load_results"], states["round_2.select_rows"]) == ("success", "skipped"), states
    assert states["check_failed_rows"] == "failed", states
    assert {state for task, state in states.items() if task != "check_failed_rows"} <= {"success", "skipped"}
    first, second = pipeline.admin.jobs()  # round 2 had nothing to retry: no job
    transient = second["counts"]["total"]
    refused = first["counts"]["failed"] - transient
    assert 8 <= transient <= 35 and 1 <= refused <= 12, (transient, refused)
    assert second["counts"]["failed"] == 0
    counts = [load_counts(dag_run, t) for t in ("load_results", "round_1.load_results")]
    assert [(c["round"], c["answered"], c["input"]) for c in counts] == [
        (0, ROWS - refused - transient, ROWS),
        (1, transient, ROWS),
    ]
    assert (counts[1]["succeeded"], counts[1]["failed"], counts[1]["stale"]) == (ROWS - refused, refused, 0)
    want = expected(day, ROWS)
    results = {row["key"]: row for row in pipeline.rows("results", day)}
    errors = {row["key"]: row for row in pipeline.rows("errors", day)}
    assert set(results) | set(errors) == set(want) and len(results) + len(errors) == ROWS
    assert all(row["response_text"] == want[key]["response_text"] for key, row in results.items())
    assert sum(row["job_name"] == second["name"] for row in results.values()) == transient
    assert all("INVALID_ARGUMENT" in row["status"] and row["round"] == 0 for row in errors.values())
    round_files = [
        b.name for b in pipeline.gcs.list_blobs(pipeline.bucket, prefix=f"runs/gemini_batch_gcs/{day}/")
    ]
    assert sum(name.endswith("/requests.jsonl") and "/r1/" in name for name in round_files) == 1
