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
    seed(
        rows=rows,
        dates=[dt.date.fromisoformat(d) for d in days],
        project=pipeline.project,
        dataset=pipeline.dataset,
        bucket=pipeline.bucket,
        gcs=gcs,
        bigquery_client=pipeline.bq,
        storage_client=pipeline.gcs,
    )


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


def test_three_day_backfill_and_a_rerun_leave_one_row_per_key_and_date(pipeline: Pipeline) -> None:
    from .conftest import clear_and_rerun

    # Dates no other test uses: the metadata DB is shared by the session, and a backfill takes over
    # (clears) any run that already has its logical date.
    days = ("2026-02-01", "2026-02-02", "2026-02-03")
    seed_days(pipeline, 12, *days)

    runs = pipeline.backfill("gemini_batch_bigquery", days[0], days[-1])

    assert [(r.run_type, r.logical_date.date().isoformat(), r.state) for r in runs] == [
        ("backfill", day, "success") for day in days
    ]
    for day in days:
        check_results(pipeline, day, 12)
    assert len(pipeline.admin.jobs()) == 3
    before = pipeline.rows("results", days[1])

    # A re-run by "Clear": the same run, new tries; the job task re-attaches to its finished job.
    cleared = clear_and_rerun("gemini_batch_bigquery", runs[1].run_id)
    assert cleared.state == "success", task_states(cleared)
    assert len(pipeline.admin.jobs()) == 3  # no second job for the same work
    after = pipeline.rows("results", days[1])
    assert [(r["key"], r["job_name"], r["response_text"]) for r in after] == [
        (r["key"], r["job_name"], r["response_text"]) for r in before
    ]

    # A manual run of a day the backfill already answered: same interval, same prompts, no new job.
    rerun = pipeline.run_dag("gemini_batch_bigquery", days[1])
    assert rerun.state == "success", task_states(rerun)
    assert len(pipeline.admin.jobs()) == 3
    assert {r["job_name"] for r in pipeline.rows("results", days[1])} == {r["job_name"] for r in before}

    # Unless the run asks for a fresh job: a new job, whose answers replace the day's rows.
    fresh = pipeline.run_dag("gemini_batch_bigquery", days[1], fresh_job=True)
    assert fresh.state == "success", task_states(fresh)
    assert len(pipeline.admin.jobs()) == 4
    rows = pipeline.rows("results")
    assert len(rows) == 36 == len({(row["key"], row["logical_date"]) for row in rows})
    for day in days:
        check_results(pipeline, day, 12)
    (new_job,) = {row["job_name"] for row in pipeline.rows("results", days[1])}
    assert new_job not in {r["job_name"] for r in before}


def test_a_rerun_after_prompts_changed_leaves_exactly_the_new_keys(pipeline: Pipeline) -> None:
    day = "2026-03-01"
    seed_days(pipeline, 20, day)
    first = pipeline.run_dag("gemini_batch_bigquery", day)
    assert first.state == "success", task_states(first)
    seeded = sorted(str(row["id"]) for row in prompt_rows(dt.date.fromisoformat(day), 20))
    assert sorted(r["key"] for r in pipeline.rows("results", day)) == seeded

    # 6 prompts removed (one of them had failed: it is in the errors table), 8 added.
    prompts = f"`{pipeline.table('prompts')}`"
    removed = seeded[:6]
    pipeline.bq.query(
        f"INSERT INTO `{pipeline.table('errors')}` (key, logical_date, status, error) "
        f"VALUES ('{removed[0]}', DATE '{day}', 'ERROR', 'a failure of the first run')"
    ).result()
    pipeline.bq.query(f"DELETE FROM `{pipeline.table('results')}` WHERE key = '{removed[0]}'").result()
    pipeline.bq.query(f"DELETE FROM {prompts} WHERE CAST(id AS STRING) IN UNNEST({removed!r})").result()
    added = [str(int(seeded[-1]) + 1 + i) for i in range(8)]
    values = ", ".join(f"({key}, 'a new prompt {key}', TIMESTAMP '{day} 12:00:00+00')" for key in added)
    pipeline.bq.query(f"INSERT INTO {prompts} (id, prompt, created_at) VALUES {values}").result()

    second = pipeline.run_dag("gemini_batch_bigquery", day)

    assert second.state == "success", task_states(second)
    assert len(pipeline.admin.jobs()) == 2  # changed prompts: a new job, the old one not adopted
    keys = sorted(seeded[6:] + added)
    assert sorted(r["key"] for r in pipeline.rows("results", day)) == keys
    assert pipeline.rows("errors", day) == []
    counts = second.get_task_instance("load_results").xcom_pull(task_ids="load_results")
    assert (counts["input"], counts["succeeded"], counts["stale"], counts["missing"]) == (22, 22, 0, 0)

    # And once more without a change: no job.
    third = pipeline.run_dag("gemini_batch_bigquery", day)
    assert third.state == "success", task_states(third)
    assert len(pipeline.admin.jobs()) == 2
    assert sorted(r["key"] for r in pipeline.rows("results", day)) == keys


def test_one_failed_shard_of_three_loads_the_others_and_a_rerun_submits_only_it(
    pipeline: Pipeline, monkeypatch
) -> None:
    from gemini_batch.hooks import GeminiBatchHook
    from gemini_batch.pipeline import dag_config

    from .conftest import clear_and_rerun

    monkeypatch.setenv("GEMINI_BATCH_MAX_REQUESTS_PER_JOB", "10")
    monkeypatch.setattr(dag_config, "JOB_RETRIES", 0)
    day = "2026-03-05"
    seed_days(pipeline, 25, day, gcs=True)
    broken = {"shard": "shard-00001-of-00003"}
    create_job = GeminiBatchHook.create_job

    def create_with_fault(self, *args, **kwargs):  # the emulator's job_failure fault, for one shard's job
        source = kwargs["source"]
        failing = bool(broken["shard"]) and broken["shard"] in source.describe()
        pipeline.admin.set_faults(job_failure="injected: the shard's job fails" if failing else None)
        return create_job(self, *args, **kwargs)

    monkeypatch.setattr(GeminiBatchHook, "create_job", create_with_fault)

    dag_run = pipeline.run_dag("gemini_batch_gcs", day)

    states = task_states(dag_run)
    assert dag_run.state == "failed", states
    assert (states["run_job[0]"], states["run_job[1]"], states["run_job[2]"]) == (
        "success",
        "failed",
        "success",
    )
    assert states["load_results"] == "failed"
    jobs = pipeline.admin.jobs()
    assert [job["state"] for job in jobs].count("JOB_STATE_FAILED") == 1 and len(jobs) == 3
    loaded = pipeline.rows("results", day)
    succeeded_jobs = {job["name"] for job in jobs if job["state"] == "JOB_STATE_SUCCEEDED"}
    assert {row["job_name"] for row in loaded} == succeeded_jobs
    assert 10 <= len(loaded) < 25
    loaded_at = {row["key"]: row["loaded_at"] for row in loaded}

    broken["shard"] = ""
    rerun = clear_and_rerun("gemini_batch_gcs", dag_run.run_id)

    assert rerun.state == "success", task_states(rerun)
    jobs = pipeline.admin.jobs()
    assert len(jobs) == 4  # one new job: the failed shard's
    check_results(pipeline, day, 25)
    after = {row["key"]: row for row in pipeline.rows("results", day)}
    assert all(after[key]["loaded_at"] == at for key, at in loaded_at.items())  # not loaded twice
    assert {row["job_name"] for row in after.values()} == succeeded_jobs | {jobs[-1]["name"]}


def test_failed_rows_go_to_the_errors_table_and_the_counts_add_up(pipeline: Pipeline) -> None:
    seed_days(pipeline, 200, "2026-01-01")
    pipeline.admin.set_faults(row_failure_ratio=0.05)

    dag_run = pipeline.run_dag(
        "gemini_batch_bigquery", "2026-01-01", max_row_retries=0
    )  # rounds: test_rounds_e2e

    assert dag_run.state == "success", task_states(dag_run)
    (job,) = pipeline.admin.jobs()
    failed = job["counts"]["failed"]
    assert 0 < failed < 30  # about 5% of 200
    counts = dag_run.get_task_instance("load_results").xcom_pull(task_ids="load_results")
    assert (counts["input"], counts["succeeded"], counts["failed"], counts["missing"]) == (
        200,
        200 - failed,
        failed,
        0,
    )
    errors = pipeline.rows("errors", "2026-01-01")
    assert len(errors) == failed
    for row in errors:
        assert row["status"] and row["error"] and row["job_name"] == job["name"]
        assert row["request"]["contents"][0]["parts"][0]["text"]  # the request that failed, for a re-run
    check_results(pipeline, "2026-01-01", 200, failed={row["key"] for row in errors})


def bad_input_file() -> bytes:
    """Every line-level case of the bad-input table, one after the other, in one file."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "pipeline" / "test_jsonl_scan.py"
    spec = importlib.util.spec_from_file_location("bad_input_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parts = []
    for _, content, kwargs, _, _ in module.BAD_INPUTS:
        if kwargs or not content:
            continue  # limit and format cases need their own limits or format
        data = content.encode() if isinstance(content, str) else content
        parts.append(data if data.endswith(b"\n") else data + b"\n")
    return b"".join(parts)


def test_bad_inputs_are_rejected_before_any_job_exists(pipeline: Pipeline, capfd) -> None:
    import io

    pipeline.gcs.bucket(pipeline.bucket).blob("inputs/2026-01-01/requests.jsonl").upload_from_file(
        io.BytesIO(bad_input_file())
    )
    gcs_run = pipeline.run_dag("gemini_batch_gcs", "2026-01-01")
    seed_days(pipeline, 5, "2026-01-03")  # nothing for 2026-01-02: an empty requests table
    bq_run = pipeline.run_dag("gemini_batch_bigquery", "2026-01-02")

    assert (gcs_run.state, bq_run.state) == ("failed", "failed")
    gcs_states, bq_states = task_states(gcs_run), task_states(bq_run)
    assert (gcs_states["validate_input"], gcs_states["run_job"]) == ("failed", "upstream_failed"), gcs_states
    assert (bq_states["validate_requests"], bq_states["run_job"]) == ("failed", "upstream_failed"), bq_states
    assert gcs_run.get_task_instance("validate_input").try_number == 1  # no retry spent on bad data
    assert pipeline.admin.jobs() == []  # nothing was submitted
    logs = capfd.readouterr().out
    assert (
        f"problem(s) in gs://{pipeline.bucket}/inputs/2026-01-01/requests.jsonl; nothing was submitted"
        in logs
    )
    assert "requests.jsonl:2: invalid JSON at column" in logs
    assert "the table holds no requests for this run" in logs


PROMPTS = [
    "Explain tides in one sentence.",
    'A prompt with "quotes", ünïcode and\na newline.',
    "Name a prime.",
]


@pytest.mark.parametrize(
    ("backend", "gemini_input"),
    [("gemini_api", "inline"), ("gemini_api", "file"), ("vertex", "inline")],
    ids=["gemini-inline", "gemini-file", "vertex-gcs"],
)
def test_adhoc_dag_answers_the_prompts_of_the_form(
    pipeline: Pipeline, backend: str, gemini_input: str
) -> None:
    dag_run = pipeline.run_dag(
        "gemini_batch_adhoc",
        backend=backend,
        gemini_input=gemini_input,
        prompts=PROMPTS,
        temperature=0.7,
        model=MODEL,
    )

    assert dag_run.state == "success", task_states(dag_run)
    (job,) = pipeline.admin.jobs()
    assert job["backend"] == backend
    day = dag_run.get_task_instance("prepare").xcom_pull(task_ids="prepare", key="day")
    results = pipeline.rows("results", day)
    template = RequestTemplate.from_file(REQUEST_TEMPLATE).with_generation_config(temperature=0.7)
    assert [row["response_text"] for row in results] == [
        answer_text(MODEL, template.render(p)) for p in PROMPTS
    ]
    assert all(row["key"].startswith("adhoc-") and row["job_name"] == job["name"] for row in results)


def test_adhoc_dag_takes_a_gcs_file_of_requests(pipeline: Pipeline) -> None:
    import io
    import json

    template = RequestTemplate.from_file(REQUEST_TEMPLATE)
    lines = [{"key": f"file-{i}", "request": template.render(p)} for i, p in enumerate(PROMPTS)]
    pipeline.gcs.bucket(pipeline.bucket).blob("adhoc/mine.jsonl").upload_from_file(
        io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    )

    dag_run = pipeline.run_dag(
        "gemini_batch_adhoc",
        backend="gemini_api",
        prompts=None,
        input_file=f"gs://{pipeline.bucket}/adhoc/mine.jsonl",
    )

    assert dag_run.state == "success", task_states(dag_run)
    day = dag_run.get_task_instance("prepare").xcom_pull(task_ids="prepare", key="day")
    assert [row["key"] for row in pipeline.rows("results", day)] == ["file-0", "file-1", "file-2"]


def test_housekeeping_deletes_old_terminal_jobs_only_when_not_a_dry_run(pipeline: Pipeline) -> None:
    assert pipeline.run_dag("gemini_batch_adhoc", prompts=["hello"]).state == "success"
    assert pipeline.run_dag("gemini_batch_adhoc", backend="vertex", prompts=["hello"]).state == "success"

    dry = pipeline.run_dag("gemini_batch_housekeeping", older_than_days=0)
    assert dry.state == "success", task_states(dry)
    assert [job["deleted"] for job in pipeline.admin.jobs()] == [False, False]

    real = pipeline.run_dag("gemini_batch_housekeeping", older_than_days=0, dry_run=False)
    assert real.state == "success", task_states(real)
    assert [job["deleted"] for job in pipeline.admin.jobs()] == [True, True]
    assert sorted(k for k in task_states(real) if k.startswith("delete_job")) == [
        "delete_job[0]",
        "delete_job[1]",
    ]


def test_loads_emit_the_results_asset_and_the_summary_dag_follows_with_the_costs(pipeline: Pipeline) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from gemini_batch.pipeline.dag_config import RESULTS_ASSET

    seed_days(pipeline, 10, "2026-01-01")
    pipeline.admin.set_faults(row_failure_ratio=0.2)
    assert pipeline.run_dag("gemini_batch_bigquery", "2026-01-01").state == "success"
    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all() if e.asset.name == RESULTS_ASSET.name]
    extra = events[-1].extra
    assert extra["logical_date"] == "2026-01-01"
    assert extra["table"] == f"bq://{pipeline.table('results')}"

    summary = pipeline.run_dag("gemini_batch_results_summary")

    assert summary.state == "success", task_states(summary)
    (row,) = [
        dict(r.items())
        for r in pipeline.bq.query(f"SELECT * FROM `{pipeline.table('results_daily_summary')}`").result()
    ]
    assert row["logical_date"] == dt.date(2026, 1, 1)
    assert row["succeeded"] + row["failed"] == 10 and row["succeeded"] == extra["counts"]["succeeded"]

    # The Vertex job's costs row: summed from its answered rows, priced by hand (prices.json, gemini-2.5-flash
    # on Vertex AI at batch prices: half of 0.30 USD per 1M input and 2.50 per 1M output tokens).
    answered = pipeline.rows("results", "2026-01-01")
    prompt, output = sum(r["prompt_tokens"] for r in answered), sum(r["output_tokens"] for r in answered)
    usd = (prompt * 0.30 + output * 2.50) / 2 / 1e6
    (cost,) = [
        dict(r.items()) for r in pipeline.bq.query(f"SELECT * FROM `{pipeline.table('costs')}`").result()
    ]
    assert (cost["backend"], cost["tokens_from"], cost["requests"]) == ("vertex", "results", len(answered))
    assert (cost["prompt_tokens"], cost["output_tokens"], cost["thinking_tokens"]) == (prompt, output, 0)
    assert cost["estimated_cost_usd"] == pytest.approx(usd, abs=1e-12)
    assert extra["counts"]["tokens"]["total"] == prompt + output
    assert extra["counts"]["estimated_cost_usd"] == pytest.approx(usd, abs=1e-12)
    (daily,) = [
        dict(r.items())
        for r in pipeline.bq.query(f"SELECT * FROM `{pipeline.table('costs_daily_summary')}`").result()
    ]
    assert (daily["logical_date"], daily["model"], daily["jobs"], daily["total_tokens"]) == (
        dt.date(2026, 1, 1), MODEL, 1, prompt + output,
    )  # fmt: skip
    assert daily["estimated_cost_usd"] == pytest.approx(usd, abs=1e-12) and daily["unpriced_jobs"] == 0
