"""The budget guard before submit: estimates per source kind, the refusal, the operator's guard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from gemini_batch.budget import (
    GeminiBatchBudgetExceeded,
    RequestReads,
    bigquery_estimate_sql,
    budget_of,
    check_budget,
    estimate_source,
)
from gemini_batch.costs import Usage, load_prices
from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchPreflightError
from gemini_batch.operators import GeminiBatchCreateJobOperator
from gemini_batch.sources import parse_source
from tests.gemini_batch.fakes import make_context

TABLE = load_prices()
# 100 characters of text: 52 + 100 = 152 characters of JSON -> 38 input tokens (checked by hand).
REQUEST = {"contents": [{"role": "user", "parts": [{"text": "x" * 100}]}]}
LINE = json.dumps({"key": "k1", "request": REQUEST}, separators=(",", ":"))


def reads(**kwargs: Any) -> RequestReads:
    return RequestReads(**kwargs)


def test_inline_estimate_is_exact_per_request():
    source = parse_source([REQUEST, {**REQUEST, "config": {"max_output_tokens": 10}}])
    est = estimate_source(source, reads(), table=TABLE, model="gemini-2.5-flash", backend="gemini_api")
    # JSON of the second request: 152 + 35 characters of config = 187 -> 47 tokens
    assert est.requests == 2
    assert est.tokens == Usage(prompt=38 + 47, output=1024 + 10)
    # (85 x 0.30 + 1034 x 2.50) / 1e6 / 2
    assert est.usd == pytest.approx((85 * 0.3 + 1034 * 2.5) / 2e6)


def test_gcs_and_file_lines_are_streamed_and_the_request_member_is_counted():
    lines = [LINE.encode() + b"\n", b"\n", LINE.encode()]
    seen: list[str] = []

    def gcs_lines(uri: str) -> list[bytes]:
        seen.append(uri)
        return lines

    gcs = parse_source(["gs://bkt/a.jsonl", "gs://bkt/c.jsonl"])
    est = estimate_source(
        gcs, reads(gcs_lines=gcs_lines), table=TABLE, model="gemini-2.5-flash", backend="vertex"
    )
    assert seen == ["gs://bkt/a.jsonl", "gs://bkt/c.jsonl"]
    assert est.requests == 4 and est.tokens == Usage(prompt=4 * 38, output=4 * 1024)
    file_est = estimate_source(
        parse_source("files/abc"),
        reads(file_lines=lambda name: [LINE]),
        table=TABLE,
        model="gemini-2.5-flash",
        backend="gemini_api",
        default_output_tokens=7,
    )
    assert file_est.tokens == Usage(prompt=38, output=7)


def test_bigquery_is_summed_server_side_in_the_standard_tier():
    asked: list[tuple[str, dict]] = []

    def query(table: str, params: dict) -> dict:
        asked.append((table, params))
        return {"requests": 3, "prompt": 300_000, "output": 3000}

    est = estimate_source(
        parse_source("bq://p.d.t"),
        reads(bigquery_query=query),
        table=TABLE,
        model="gemini-2.5-pro",
        backend="vertex",
        default_output_tokens=99,
    )
    assert asked == [("p.d.t", {"default_output_tokens": 99})]
    assert est.requests == 3
    # standard tier even though the sum is above 200k: (300k x 1.25 + 3000 x 10) / 1e6 / 2
    assert est.usd == pytest.approx(0.2025)


@pytest.mark.parametrize(
    ("column", "text"), [("JSON", "TO_JSON_STRING(`request`)"), ("STRING", "CAST(`request` AS STRING)")]
)
def test_bigquery_estimate_sql(column, text):
    sql = bigquery_estimate_sql("p.d.t", column)
    assert f"LENGTH({text}) / 4" in sql and "FROM `p.d.t`" in sql and "@default_output_tokens" in sql


def test_a_missing_reader_is_a_value_error():
    with pytest.raises(ValueError, match="BigQuery"):
        estimate_source(parse_source("bq://p.d.t"), reads(), table=TABLE, model="m", backend="vertex")


@pytest.mark.parametrize(
    ("value", "budget"),
    [(None, None), ("", None), ("None", None), (" null ", None), (0, 0.0), ("1.5", 1.5), (2, 2.0)],
)
def test_budget_of(value, budget):
    assert budget_of(value) == budget


@pytest.mark.parametrize("value", ["lots", -1, "-0.5", True, float("nan")])
def test_budget_of_refuses_what_is_not_a_budget(value):
    with pytest.raises(GeminiBatchConfigError, match="max_estimated_cost"):
        budget_of(value)


def check(budget: float | None, model: str = "gemini-2.5-flash") -> Any:
    return check_budget(
        parse_source([REQUEST]), model=model, backend="gemini_api", budget=budget, table=TABLE, reads=reads()
    )


def test_check_budget_decision_table():
    usd = (38 * 0.3 + 1024 * 2.5) / 2e6  # 0.0012857
    assert check(None) is None
    assert check(usd).usd == pytest.approx(usd)
    with pytest.raises(GeminiBatchBudgetExceeded) as over:
        check(0.001)
    message = str(over.value)
    assert "0.0013 USD is above max_estimated_cost=0.001" in message
    assert "1 request(s), about 38 input and 1,024 output tokens" in message
    assert "Raise max_estimated_cost" in message
    assert isinstance(over.value, GeminiBatchPreflightError) and isinstance(over.value, AirflowFailException)
    with pytest.raises(GeminiBatchBudgetExceeded, match="no price for model 'my-model'"):
        check(100.0, model="my-model")


# ---------------------------------------------------------------------------- the operator


def op(**kwargs: Any) -> GeminiBatchCreateJobOperator:
    kwargs.setdefault("task_id", "task")
    kwargs.setdefault("src", [REQUEST])
    kwargs.setdefault("model", "gemini-2.5-flash")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 1)
    kwargs.setdefault("preflight_checks", False)
    return GeminiBatchCreateJobOperator(**kwargs)


def test_the_operator_refuses_before_create_above_the_budget(gemini, sleeps):
    with pytest.raises(GeminiBatchBudgetExceeded, match="above max_estimated_cost=0.0001"):
        op(max_estimated_cost=0.0001).execute(make_context())
    assert gemini.count("create") == 0


def test_the_operator_submits_within_the_budget(gemini, sleeps):
    gemini.default_script = [{"state": "JOB_STATE_SUCCEEDED"}]
    op(max_estimated_cost="0.01").execute(make_context())
    assert gemini.count("create") == 1


def test_the_operators_prices_override_the_table(gemini, sleeps):
    gemini.default_script = [{"state": "JOB_STATE_SUCCEEDED"}]
    free = {"models": {"gemini-2.5-flash": {"gemini_api": {"input": 0.0, "output": 0.0, "thinking": 0.0}}}}
    op(max_estimated_cost=0, prices=free).execute(make_context())
    assert gemini.count("create") == 1


def test_a_bad_budget_fails_at_parse_time():
    with pytest.raises(GeminiBatchConfigError):
        op(max_estimated_cost="ten dollars")


def test_an_embedding_source_is_estimated_from_its_texts_with_no_output():
    # 3 documents of 40 characters with 8 spaces each: 10 tokens and 32 billable characters each
    text = "word " * 8
    inline = estimate_source(
        parse_source([{"contents": [{"parts": [{"text": text}]}]}] * 3, task="embed"),
        reads(),
        table=TABLE,
        model="gemini-embedding-001",
        backend="gemini_api",
        task="embed",
    )
    assert inline.tokens == Usage(prompt=30, characters=96)
    # token priced: 30 tokens x 0.15 per 1M, half
    assert inline.usd == pytest.approx(30 * 0.15 / 2 / 1e6)
    lines = [json.dumps({"content": text})] * 2
    gcs = estimate_source(
        parse_source("gs://bkt/docs.jsonl"),
        reads(gcs_lines=lambda uri: lines),
        table=TABLE,
        model="text-embedding-005",
        backend="vertex",
        task="embed",
    )
    assert gcs.tokens == Usage(prompt=20, characters=64)
    # character priced: 64 characters x 0.025 per 1M, 20% off
    assert gcs.usd == pytest.approx(64 * 0.025 * 0.8 / 1e6)


def test_an_embedding_table_is_summed_from_its_content_column():
    sql = bigquery_estimate_sql("p.d.t", "STRING", "embed")
    assert "LENGTH(COALESCE(`content`, '')) / 4" in sql and "0 AS output" in sql
    assert "REGEXP_REPLACE(COALESCE(`content`, ''), r'\\s', '')" in sql and "`request`" not in sql
    est = estimate_source(
        parse_source("bq://p.d.t"),
        reads(
            bigquery_query=lambda table, params: {"requests": 2, "prompt": 50, "output": 0, "characters": 180}
        ),
        table=TABLE,
        model="text-embedding-005",
        backend="vertex",
        task="embed",
    )
    assert (est.requests, est.tokens) == (2, Usage(prompt=50, characters=180))
    assert est.usd == pytest.approx(180 * 0.025 * 0.8 / 1e6)


def test_an_embedding_refusal_names_characters_and_no_output_advice():
    from gemini_batch.budget import GeminiBatchBudgetExceeded

    with pytest.raises(GeminiBatchBudgetExceeded) as refused:
        check_budget(
            parse_source("gs://bkt/docs.jsonl"),
            model="text-embedding-005",
            backend="vertex",
            budget=0.0,
            table=TABLE,
            reads=reads(gcs_lines=lambda uri: [json.dumps({"content": "x" * 400})]),
            task="embed",
        )
    message = str(refused.value)
    # 400 x 0.025 per 1M, 20% off: 0.000008 USD, in nano-dollars (4 decimals would say 0.0000)
    assert "its estimated cost 0.000008000 USD is above max_estimated_cost=0.0 " in message
    assert "about 100 input and 0 output tokens, 400 billable characters at batch prices" in message
    assert "of text-embedding-005 retrieved 2026-12-06;" in message
    assert "no output for an embedding" in message and "maxOutputTokens" not in message
