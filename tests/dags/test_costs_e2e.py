"""Cost end to end: real Airflow (``dag.test``) against the local stack, one DAG run per case.

The figures are checked against prices.json by hand, its numbers written out here (never computed
with gemini_batch.costs): gemini-2.5-flash, batch price = half of 0.30 USD per 1M input tokens and
2.50 USD per 1M output (and thinking) tokens, on both backends; prices retrieved 2026-03-01.
"""

from __future__ import annotations

import re

import pytest

from .conftest import Pipeline, task_states
from .test_pipelines_e2e import MODEL, PROMPTS, seed_days

pytestmark = pytest.mark.integration

#: gemini-2.5-flash at batch prices (prices.json: 0.30 / 2.50 / 2.50 per 1M, batch_discount 0.5), USD per token.
INPUT_USD, OUTPUT_USD, THINKING_USD = 0.30 / 2 / 1e6, 2.50 / 2 / 1e6, 2.50 / 2 / 1e6
PRICES_RETRIEVED = "2026-03-01"


def by_hand(prompt: int, output: int, thinking: int) -> float:
    return prompt * INPUT_USD + output * OUTPUT_USD + thinking * THINKING_USD


def test_manifest_counts_log_and_costs_table_agree_on_tokens_and_cost(
    pipeline: Pipeline, capfd, caplog
) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from gemini_batch.pipeline.dag_config import COSTS_ASSET

    dag_run = pipeline.run_dag(
        "gemini_batch_adhoc", backend="gemini_api", gemini_input="inline", prompts=PROMPTS, model=MODEL
    )

    assert dag_run.state == "success", task_states(dag_run)
    (job,) = pipeline.admin.jobs()
    day = dag_run.get_task_instance("prepare").xcom_pull(task_ids="prepare", key="day")
    # The answers' own usage, as the results table keeps it (the emulator counts no thinking).
    results = pipeline.rows("results", day)
    prompt = sum(row["prompt_tokens"] for row in results)
    output = sum(row["output_tokens"] for row in results)
    assert len(results) == 3 and prompt > 0 and output > 0
    assert sum(row["total_tokens"] for row in results) == prompt + output
    usd = by_hand(prompt, output, 0)

    manifest = dag_run.get_task_instance("run_job").xcom_pull(task_ids="run_job")
    assert manifest["tokens"] == {
        "prompt": prompt,
        "candidates": output,
        "thoughts": 0,
        "total": prompt + output,
    }
    assert manifest["estimated_cost_usd"] == pytest.approx(usd, abs=1e-12)
    assert manifest["prices_retrieved"] == PRICES_RETRIEVED

    counts = dag_run.get_task_instance("load_results").xcom_pull(task_ids="load_results")
    assert counts["tokens"] == {"prompt": prompt, "output": output, "thinking": 0, "total": prompt + output}
    assert counts["estimated_cost_usd"] == pytest.approx(usd, abs=1e-12)
    assert (counts["input"], counts["succeeded"]) == (3, 3)

    (row,) = [
        dict(r.items()) for r in pipeline.bq.query(f"SELECT * FROM `{pipeline.table('costs')}`").result()
    ]
    assert (row["job_name"], row["backend"], row["model"], row["logical_date"].isoformat()) == (
        job["name"], "gemini_api", MODEL, day,
    )  # fmt: skip
    assert (row["dag_id"], row["run_id"], row["task_id"]) == (
        "gemini_batch_adhoc",
        dag_run.run_id,
        "load_results",
    )
    assert (row["requests"], row["prompt_tokens"], row["output_tokens"], row["thinking_tokens"]) == (
        3, prompt, output, 0,
    )  # fmt: skip
    assert row["total_tokens"] == prompt + output
    assert row["estimated_cost_usd"] == pytest.approx(usd, abs=1e-12)
    assert (row["prices_retrieved"], row["tokens_from"]) == (PRICES_RETRIEVED, "manifest")

    with create_session() as session:
        events = [e.extra for e in session.query(AssetEvent).all() if e.asset.name == COSTS_ASSET.name]
    assert events[-1] == {
        "table": f"bq://{pipeline.table('costs')}",
        "logical_date": day,
        "tokens": counts["tokens"],
        "estimated_cost_usd": counts["estimated_cost_usd"],
    }

    logs = capfd.readouterr().out + caplog.text  # the task log: where dag.test's logging sends it
    assert (
        f"costs of 1 job(s) for {day} written to bq://{pipeline.table('costs')}: tokens prompt={prompt} "
        f"output={output} thinking=0 total={prompt + output}; estimated cost {usd:.9f} USD at batch prices"
    ) in logs


def test_a_run_over_its_budget_creates_no_job_and_says_why(pipeline: Pipeline, capfd, caplog) -> None:
    seed_days(pipeline, 5, "2026-04-01")

    dag_run = pipeline.run_dag("gemini_batch_bigquery", "2026-04-01", max_estimated_cost=0.0001)

    states = task_states(dag_run)
    assert dag_run.state == "failed", states
    assert states["run_job[0]"] == "failed" and states["build_requests"] == "success", states
    assert pipeline.admin.jobs() == []  # nothing was submitted
    assert dag_run.get_task_instance("run_job", map_index=0).try_number == 1  # not retried
    logs = capfd.readouterr().out + caplog.text  # the task log: where dag.test's logging sends it
    refusal = re.search(
        r"Not submitting the batch job: its estimated cost (\d+\.\d{4}) USD is above max_estimated_cost=0\.0001 "
        r"\(5 request\(s\), about ([\d,]+) input and ([\d,]+) output tokens at batch prices of "
        rf"{MODEL} retrieved {PRICES_RETRIEVED};",
        logs,
    )
    assert refusal, logs[-4000:]
    estimate, input_tokens, output_tokens = (refusal.group(i).replace(",", "") for i in (1, 2, 3))
    assert int(output_tokens) == 5 * 256  # the request template's maxOutputTokens, per request
    assert float(estimate) == pytest.approx(by_hand(int(input_tokens), int(output_tokens), 0), abs=0.00005)
    assert "No job was created. Raise max_estimated_cost (the operator argument, or the DAG run's" in logs
