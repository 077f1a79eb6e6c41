"""The costs table: the per-job rule, and the real SQL (sums, MERGE, summary) run on DuckDB.

Every expected figure is worked out by hand from prices.json (USD per 1M tokens, batch = half):
gemini-2.5-flash 0.30 in / 2.50 out / 2.50 thinking; gemini-2.5-pro 1.25 / 10 / 10, and above
200,000 prompt tokens 2.50 / 15 / 15.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from google.cloud import bigquery

from gemini_batch.costs import Usage, load_prices
from gemini_batch.pipeline.costs_table import (
    COSTS_SCHEMA,
    COSTS_SUMMARY_SCHEMA,
    COSTS_SUMMARY_TABLE,
    COSTS_TABLE,
    JobCost,
    LoadCost,
    RunIdentity,
    TokenSums,
    job_cost,
    read_embedding_sums,
    record_costs,
    summarize_costs,
    token_sums,
)
from gemini_batch.pipeline.refs import TableRef
from gemini_batch.pipeline.results import RESULTS_SCHEMA

from .duck_bigquery import DuckBigQuery

RESULTS = TableRef("proj", "ds", "results")
COSTS = TableRef("proj", "ds", COSTS_TABLE)
SUMMARY = TableRef("proj", "ds", COSTS_SUMMARY_TABLE)
SUMMARY_SQL = Path(__file__).resolve().parents[2] / "include" / "sql" / "costs_daily_summary.sql"
DAY = dt.date(2026, 1, 1)
RUN = RunIdentity("gemini_batch_bigquery", "manual__1", "load_results")
PRICES = load_prices()

FLASH_JOB = {
    "job_name": "jobs/flash",
    "backend": "vertex",
    "model": "publishers/google/models/gemini-2.5-flash",
}
PRO_JOB = {"job_name": "jobs/pro", "backend": "vertex", "model": "gemini-2.5-pro"}
GEMINI_JOB = {
    "job_name": "batches/g1",
    "backend": "gemini_api",
    "model": "models/gemini-2.5-flash",
    "tokens": {"prompt": 7, "candidates": 3, "thoughts": 2, "total": 12},
    "estimated_cost_usd": 0.0000123,
    "prices_retrieved": "2026-03-01",
}
UNPRICED_JOB = {"job_name": "jobs/mine", "backend": "vertex", "model": "my-own-model"}

# flash: (150 x 0.30 + 30 x 2.50 + 10 x 2.50) / 2 / 1e6
FLASH_USD = 0.0000725
# the flash job's rows of the day, its blocked row's 5 prompt tokens too: (155 x 0.30 + ...) / 2 / 1e6
FLASH_ROWS_USD = 0.00007325
# pro: long (250,000 x 2.50 + 1,000 x 15 + 500 x 15) + standard (201,000 x 1.25 + 100 x 10), / 2 / 1e6
PRO_USD = 0.449875


def result_row(
    job: str, key: str, prompt: int | None, output: int | None, total: int | None, day=DAY
) -> dict:
    return {
        "key": key, "logical_date": day, "status": "succeeded", "job_name": job,
        "prompt_tokens": prompt, "output_tokens": output, "total_tokens": total,
    }  # fmt: skip


@pytest.fixture
def bq() -> DuckBigQuery:
    duck = DuckBigQuery()
    fields = [bigquery.SchemaField(name, kind) for name, kind, *_ in RESULTS_SCHEMA]
    duck.create_table(bigquery.Table(RESULTS.api_repr, schema=fields))
    duck.insert(
        RESULTS.uri,
        [
            result_row("jobs/flash", "a", 100, 20, 130),  # 10 thinking tokens
            result_row("jobs/flash", "b", 50, 10, 60),
            result_row("jobs/flash", "c", 5, None, None),  # blocked: no output, thinking never below 0
            result_row("jobs/flash", "z", 1000, 1000, 2000, day=dt.date(2026, 1, 2)),  # another day
            result_row("jobs/other", "y", 1000, 1000, 2000),  # a job not in the load
            result_row("jobs/pro", "d", 250_000, 1_000, 251_500),  # long tier, 500 thinking
            result_row("jobs/pro", "e", 1_000, 100, 1_100),
            result_row("jobs/pro", "e2", 200_000, 0, 200_000),  # at the threshold: still the standard tier
            result_row("batches/g1", "f", 3, 1, 4),
            result_row("batches/g1", "g", 4, 2, 6),
            result_row("jobs/mine", "h", 10, 10, 20),
        ],
    )
    return duck


def record(bq: DuckBigQuery, *manifests: dict, run: RunIdentity = RUN) -> LoadCost:
    return record_costs(
        bq, list(manifests), results=RESULTS, costs=COSTS, logical_date=DAY, prices=PRICES, run=run
    )


def costs_rows(bq: DuckBigQuery) -> dict[str, dict[str, Any]]:
    """The costs table by job; it must hold each job once."""
    rows = bq.rows(COSTS.uri, order_by="job_name")
    by_job = {row["job_name"]: row for row in rows}
    assert len(by_job) == len(rows), f"a job has two costs rows: {[r['job_name'] for r in rows]}"
    return by_job


@pytest.mark.parametrize(
    ("manifest", "sums", "want"),
    [
        pytest.param(
            GEMINI_JOB, TokenSums(2, {"standard": Usage(7000, 1, 0)}),
            JobCost("batches/g1", "gemini_api", "gemini-2.5-flash", 2, Usage(7, 3, 2), 0.0000123, "2026-03-01", "manifest"),
            id="gemini-api-manifest-counted-its-tokens",
        ),
        pytest.param(
            {**GEMINI_JOB, "tokens": None, "estimated_cost_usd": None},
            TokenSums(2, {"standard": Usage(7, 3, 0)}),
            # (7 x 0.30 + 3 x 2.50) / 2 / 1e6
            JobCost("batches/g1", "gemini_api", "gemini-2.5-flash", 2, Usage(7, 3, 0), 0.0000048, "2026-03-01", "results"),
            id="gemini-api-results-file-summed-from-results",
        ),
        pytest.param(
            {**FLASH_JOB, "tokens": {"prompt": 1, "candidates": 1, "thoughts": 0, "total": 2}},
            TokenSums(3, {"standard": Usage(150, 30, 10)}),
            JobCost("jobs/flash", "vertex", "gemini-2.5-flash", 3, Usage(150, 30, 10), FLASH_USD, "2026-03-01", "results"),
            id="vertex-always-from-results",
        ),
        pytest.param(
            {**GEMINI_JOB, "estimated_cost_usd": None},
            TokenSums(2),
            JobCost("batches/g1", "gemini_api", "gemini-2.5-flash", 2, Usage(7, 3, 2), None, None, "manifest"),
            id="gemini-api-manifest-without-a-price",
        ),
        pytest.param(
            UNPRICED_JOB, TokenSums(1, {"standard": Usage(10, 10, 0)}),
            JobCost("jobs/mine", "vertex", "my-own-model", 1, Usage(10, 10, 0), None, None, "results"),
            id="unknown-model-has-no-cost-not-zero",
        ),
        pytest.param(
            {**GEMINI_JOB, "tokens": {"prompt": 0, "candidates": 0, "total": 0}},
            TokenSums(1),
            JobCost("batches/g1", "gemini_api", "gemini-2.5-flash", 1, Usage(0, 0, 0), 0.0000123, "2026-03-01", "manifest"),
            id="gemini-api-manifest-zero-and-missing-kinds-are-zero",
        ),
        pytest.param(
            FLASH_JOB, TokenSums(),
            JobCost("jobs/flash", "vertex", "gemini-2.5-flash", 0, Usage(), 0.0, "2026-03-01", "results"),
            id="no-answered-rows-cost-nothing",
        ),
    ],
)  # fmt: skip
def test_job_cost_takes_the_manifest_only_for_gemini_api_tokens(
    manifest: dict, sums: TokenSums, want: JobCost
) -> None:
    got = job_cost(manifest, sums, PRICES)
    assert got == JobCost(**{**vars(want), "usd": got.usd})
    assert got.usd is None if want.usd is None else got.usd == pytest.approx(want.usd, abs=1e-12)


def test_token_sums_add_the_tiers_requests_and_keep_them_apart() -> None:
    rows = [
        {"job_name": "j", "long_tier": False, "requests": 2, "prompt": 10, "output": 4, "thinking": 1},
        {"job_name": "j", "long_tier": True, "requests": 1, "prompt": 300_000, "output": 5, "thinking": 0},
        {"job_name": "k", "long_tier": False, "requests": 1, "prompt": 0, "output": 1, "thinking": 0},
    ]
    assert token_sums(rows) == {
        "j": TokenSums(3, {"standard": Usage(10, 4, 1), "long": Usage(300_000, 5, 0)}),
        "k": TokenSums(1, {"standard": Usage(0, 1, 0)}),
    }


def test_record_costs_writes_one_row_per_job_priced_by_hand(bq: DuckBigQuery) -> None:
    load = record(bq, FLASH_JOB, PRO_JOB, GEMINI_JOB)

    rows = costs_rows(bq)
    assert set(rows) == {"jobs/flash", "jobs/pro", "batches/g1"}
    flash, pro, gemini = rows["jobs/flash"], rows["jobs/pro"], rows["batches/g1"]
    assert {k: flash[k] for k in ("requests", "prompt_tokens", "output_tokens", "thinking_tokens", "total_tokens")} == {
        "requests": 3, "prompt_tokens": 155, "output_tokens": 30, "thinking_tokens": 10, "total_tokens": 195,
    }  # fmt: skip
    assert flash["estimated_cost_usd"] == pytest.approx(FLASH_ROWS_USD, abs=1e-12)
    assert (flash["model"], flash["backend"], flash["prices_retrieved"], flash["tokens_from"]) == (
        "gemini-2.5-flash", "vertex", "2026-03-01", "results",
    )  # fmt: skip
    assert (flash["dag_id"], flash["run_id"], flash["task_id"], flash["logical_date"]) == (
        "gemini_batch_bigquery", "manual__1", "load_results", DAY,
    )  # fmt: skip
    assert (pro["prompt_tokens"], pro["output_tokens"], pro["thinking_tokens"]) == (451_000, 1_100, 500)
    assert pro["estimated_cost_usd"] == pytest.approx(PRO_USD, abs=1e-12)
    assert (gemini["requests"], gemini["prompt_tokens"], gemini["thinking_tokens"], gemini["total_tokens"]) == (
        2, 7, 2, 12,
    )  # fmt: skip
    assert (gemini["estimated_cost_usd"], gemini["tokens_from"]) == (0.0000123, "manifest")
    assert load.as_counts()["tokens"] == {
        "prompt": 451_162,
        "output": 1_133,
        "thinking": 512,
        "total": 452_807,
    }
    assert load.usd == pytest.approx(FLASH_ROWS_USD + PRO_USD + 0.0000123, abs=1e-12)


def test_a_reload_replaces_the_jobs_rows_and_never_adds_one(bq: DuckBigQuery) -> None:
    record(bq, FLASH_JOB, PRO_JOB)
    bq.query(f"UPDATE {RESULTS.sql} SET output_tokens = 40, total_tokens = 150 WHERE key = 'a'")

    record(bq, FLASH_JOB, run=RunIdentity("gemini_batch_bigquery", "manual__2", "load_results"))

    rows = costs_rows(bq)
    assert set(rows) == {"jobs/flash", "jobs/pro"}
    assert (rows["jobs/flash"]["output_tokens"], rows["jobs/flash"]["run_id"]) == (50, "manual__2")
    assert rows["jobs/pro"]["run_id"] == "manual__1"


def test_an_unpriced_job_has_a_null_cost_and_the_load_none(bq: DuckBigQuery) -> None:
    load = record(bq, FLASH_JOB, UNPRICED_JOB)

    rows = costs_rows(bq)
    assert rows["jobs/mine"]["estimated_cost_usd"] is None and rows["jobs/mine"]["prices_retrieved"] is None
    assert rows["jobs/flash"]["estimated_cost_usd"] > 0
    assert load.usd is None and load.tokens.total == 195 + 20


def test_the_load_logs_its_tokens_and_cost(bq: DuckBigQuery, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gemini_batch.pipeline.costs_table"):
        record(bq, GEMINI_JOB)
    assert caplog.messages[-1] == (
        f"costs of 1 job(s) for 2026-01-01 written to {COSTS.uri}: tokens prompt=7 output=3 thinking=2 "
        "total=12; estimated cost 0.000012300 USD at batch prices"
    )  # no billable characters: a generation load has none, so the line says nothing of them


def test_a_manifest_without_a_backend_records_none_and_no_price() -> None:
    manifest = {"job_name": "jobs/old", "model": "gemini-2.5-flash"}
    got = job_cost(manifest, TokenSums(1, {"standard": Usage(prompt=10)}), PRICES)
    assert (got.backend, got.usd) == ("", None)


def test_the_summary_has_the_cost_per_day_and_model(bq: DuckBigQuery) -> None:
    record(bq, FLASH_JOB, PRO_JOB, GEMINI_JOB, UNPRICED_JOB)
    bq.query(f"UPDATE {RESULTS.sql} SET job_name = 'jobs/flash2' WHERE key = 'z'")
    record_costs(bq, [{**FLASH_JOB, "job_name": "jobs/flash2"}], results=RESULTS, costs=COSTS,
                 logical_date="2026-01-02", prices=PRICES, run=RUN)  # fmt: skip

    days = summarize_costs(bq, costs=COSTS, summary=SUMMARY, days=None, sql_path=str(SUMMARY_SQL))

    assert days == ["2026-01-01", "2026-01-02"]
    got = {
        (row["logical_date"].isoformat(), row["model"]): (
            row["jobs"], row["requests"], row["total_tokens"], row["estimated_cost_usd"], row["unpriced_jobs"],
        )
        for row in bq.rows(SUMMARY.uri, order_by="logical_date")
    }  # fmt: skip
    flash_day1 = FLASH_ROWS_USD + 0.0000123  # the Vertex job and the Gemini API job
    # day 2: (1,000 x 0.30 + 1,000 x 2.50) / 2 / 1e6
    assert got == {
        ("2026-01-01", "gemini-2.5-flash"): (2, 5, 207, pytest.approx(flash_day1, abs=1e-12), 0),
        ("2026-01-01", "gemini-2.5-pro"): (1, 3, 452_600, pytest.approx(PRO_USD, abs=1e-12), 0),
        ("2026-01-01", "my-own-model"): (1, 1, 20, None, 1),
        ("2026-01-02", "gemini-2.5-flash"): (1, 1, 2000, pytest.approx(0.0014, abs=1e-12), 0),
    }

    # A day's re-summary replaces its figures.
    bq.query(f"DELETE FROM {COSTS.sql} WHERE job_name = 'batches/g1'")
    summarize_costs(bq, costs=COSTS, summary=SUMMARY, days=["2026-01-01"], sql_path=str(SUMMARY_SQL))
    (flash,) = [r for r in bq.rows(SUMMARY.uri, order_by="logical_date") if r["model"] == "gemini-2.5-flash"
                and r["logical_date"] == DAY]  # fmt: skip
    assert (flash["jobs"], flash["total_tokens"]) == (1, 195)


def test_the_loads_counts_name_its_tokens_and_its_cost_to_nine_decimals() -> None:
    def job(usd: float | None, tokens: Usage | None = None) -> JobCost:
        return JobCost("j", "vertex", "m", 1, tokens or Usage(1, 2, 3), usd, None, "results")

    assert LoadCost((job(0.0000000004), job(0.1, Usage(10, 0, 0)))).as_counts() == {
        "tokens": {"prompt": 11, "output": 2, "thinking": 3, "total": 16},
        "estimated_cost_usd": 0.1,
    }
    assert LoadCost((job(0.0000000004),)).usd == 0.0  # nano-dollars, as the manifest rounds
    assert LoadCost((job(0.000000004),)).usd == 0.000000004
    assert LoadCost(()).as_counts() == {"tokens": Usage().as_dict(), "estimated_cost_usd": 0}


class RecordingClient:
    """Keeps the tables create_table was given (the real client's arguments)."""

    def __init__(self) -> None:
        self.created: list[tuple[bigquery.Table, bool]] = []

    def create_table(self, table: bigquery.Table, exists_ok: bool = False) -> bigquery.Table:
        self.created.append((table, exists_ok))
        return table


def test_the_costs_table_is_made_partitioned_by_day_clustered_by_job_with_its_modes() -> None:
    from gemini_batch.pipeline.costs_table import COSTS_SCHEMA, ensure_costs_table

    client = RecordingClient()
    ensure_costs_table(client, COSTS)

    ((table, exists_ok),) = client.created
    assert exists_ok is True and table.reference.path == "/projects/proj/datasets/ds/tables/costs"
    assert table.time_partitioning.field == "logical_date"
    assert table.clustering_fields == ["job_name"]
    assert [(f.name, f.field_type, f.mode) for f in table.schema] == list(COSTS_SCHEMA)
    assert dict((n, m) for n, _, m in COSTS_SCHEMA)["job_name"] == "REQUIRED"


def test_jobs_without_rows_or_model_and_failed_shards(bq: DuckBigQuery) -> None:
    load = record(bq, None, {}, {"job_name": "jobs/empty", "backend": "vertex"}, FLASH_JOB)

    rows = costs_rows(bq)
    assert set(rows) == {"jobs/empty", "jobs/flash"}  # a failed shard (no manifest) has no row
    empty = rows["jobs/empty"]
    assert (empty["model"], empty["requests"], empty["total_tokens"], empty["estimated_cost_usd"]) == (
        "",
        0,
        0,
        None,
    )
    assert [job.job_name for job in load.jobs] == ["jobs/empty", "jobs/flash"]


def test_a_priced_job_without_rows_costs_zero(bq: DuckBigQuery) -> None:
    record(bq, {**FLASH_JOB, "job_name": "jobs/none"})

    (row,) = costs_rows(bq).values()
    assert (row["requests"], row["estimated_cost_usd"], row["prices_retrieved"]) == (0, 0.0, "2026-03-01")


def test_a_load_of_no_job_reads_nothing_and_costs_nothing(bq: DuckBigQuery) -> None:
    before = len(bq.statements)

    load = record(bq)

    assert load == LoadCost(()) and load.usd == 0
    assert not [s for s in bq.statements[before:] if "SELECT" in s.text or "MERGE" in s.text]


def test_outside_a_task_the_row_names_no_dag_run_or_task(bq: DuckBigQuery) -> None:
    record_costs(bq, [FLASH_JOB], results=RESULTS, costs=COSTS, logical_date=DAY, prices=PRICES)

    row = costs_rows(bq)["jobs/flash"]
    assert (row["dag_id"], row["run_id"], row["task_id"]) == ("", "", "")


def test_inside_a_task_the_row_names_its_dag_run_and_task(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import airflow.sdk

    ti = types.SimpleNamespace(dag_id="d", run_id="r", task_id="t")
    monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: {"ti": ti})
    assert RunIdentity.current() == RunIdentity("d", "r", "t")


def test_the_task_entry_prices_with_the_variable_over_the_shipped_table(
    bq: DuckBigQuery, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    import airflow.sdk

    from gemini_batch.pipeline.costs_table import record_load_costs
    from gemini_batch.pipeline.settings import PipelineSettings

    override = {"models": {"my-own-model": {"vertex": {"input": 2.0, "output": 4.0}}}}
    asked = []

    def variable_get(key: str, default: Any = KeyError) -> Any:
        asked.append((key, default))
        return json.dumps(override) if key == "gemini_batch_prices" else default

    monkeypatch.setattr(airflow.sdk.Variable, "get", staticmethod(variable_get))
    with caplog.at_level(logging.INFO, logger="gemini_batch.pipeline.costs_table"):
        load = record_load_costs(
            bq,
            [UNPRICED_JOB],
            settings=PipelineSettings(project="proj", dataset="ds"),
            logical_date="2026-01-01",
        )

    assert asked == [("gemini_batch_prices", None)]  # an unset Variable is no override, not an error
    # (10 x 2.0 + 10 x 4.0) / 2 / 1e6
    assert load.usd == pytest.approx(0.00003, abs=1e-12)
    assert costs_rows(bq)["jobs/mine"]["estimated_cost_usd"] == pytest.approx(0.00003, abs=1e-12)
    assert "written to bq://proj.ds.costs" in caplog.text


def test_an_unpriced_load_logs_its_cost_as_unknown(
    bq: DuckBigQuery, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gemini_batch.pipeline.costs_table"):
        record(bq, UNPRICED_JOB)
    assert "total=20; estimated cost unknown (a model has no price) USD at batch prices" in caplog.text


def test_the_summary_logs_its_days_and_table(bq: DuckBigQuery, caplog: pytest.LogCaptureFixture) -> None:
    record(bq, FLASH_JOB)
    with caplog.at_level(logging.INFO, logger="gemini_batch.pipeline.costs_table"):
        summarize_costs(bq, costs=COSTS, summary=SUMMARY, days=None, sql_path=str(SUMMARY_SQL))
    assert caplog.messages[-1] == (
        "summarized the costs of 1 day(s) into bq://proj.ds.costs_daily_summary: ['2026-01-01']"
    )


# --- embeddings loads -----------------------------------------------------------------------------

EMBEDDINGS = TableRef("proj", "ds", "embeddings")
DOCUMENTS = TableRef("proj", "ds", "documents_20260101_abc")
TEXT_JOB = {
    "job_name": "jobs/embed",
    "backend": "vertex",
    "model": "publishers/google/models/text-embedding-005",
    "task": "embed",
    "source": f"bq://{DOCUMENTS.project}.{DOCUMENTS.dataset}.{DOCUMENTS.table}",
}
GEMINI_EMBED_JOB = {"job_name": "batches/e1", "backend": "gemini_api", "model": "models/gemini-embedding-001",
                    "task": "embed", "source": "files/docs"}  # fmt: skip


@pytest.fixture
def embedded() -> DuckBigQuery:
    from gemini_batch.pipeline.results import EMBEDDINGS_SCHEMA

    duck = DuckBigQuery()
    fields = [bigquery.SchemaField(name, kind) for name, kind, *_ in EMBEDDINGS_SCHEMA]
    duck.create_table(bigquery.Table(EMBEDDINGS.api_repr, schema=fields))
    duck.create_table(
        bigquery.Table(
            DOCUMENTS.api_repr,
            schema=[bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("content", "STRING")],
        )
    )
    duck.insert(
        DOCUMENTS.uri,
        [
            {"key": "1", "content": "a cat sat"},  # 7 billable characters
            {"key": "2", "content": " dogs\trun\n"},  # 7
            {"key": "3", "content": "never embedded"},  # no vector: not billed
        ],
    )

    def vector(job: str, key: str, tokens: int, day: dt.date = DAY) -> dict:
        return {
            "key": key,
            "logical_date": day,
            "job_name": job,
            "token_count": tokens,
            "status": "succeeded",
        }

    duck.insert(
        EMBEDDINGS.uri,
        [
            vector("jobs/embed", "1", 3),
            vector("jobs/embed", "2", 3),
            vector("jobs/embed", "1", 99, day=dt.date(2026, 1, 2)),  # another day
            vector("batches/e1", "x", 1_000),
            vector("batches/e1", "y", 500),
        ],
    )
    return duck


def test_an_embeddings_load_bills_characters_or_tokens_with_no_output(embedded: DuckBigQuery) -> None:
    load = record_costs(
        embedded, [TEXT_JOB, GEMINI_EMBED_JOB], results=EMBEDDINGS, costs=COSTS, logical_date=DAY,
        prices=PRICES, run=RUN,
    )  # fmt: skip

    rows = costs_rows(embedded)
    text, gemini = rows["jobs/embed"], rows["batches/e1"]
    columns = (
        "requests",
        "prompt_tokens",
        "output_tokens",
        "thinking_tokens",
        "total_tokens",
        "billable_characters",
    )
    assert tuple(text[c] for c in columns) == (2, 6, 0, 0, 6, 14)
    # text-embedding-005 bills characters: 14 x 0.025 per 1M, 20% off (its tokens are not billed)
    assert text["estimated_cost_usd"] == pytest.approx(14 * 0.025 * 0.8 / 1e6, abs=1e-15)
    assert (text["model"], text["tokens_from"]) == ("text-embedding-005", "results")
    # gemini-embedding-001 on the Gemini API bills tokens: 1,500 x 0.15 per 1M, half
    assert tuple(gemini[c] for c in columns) == (2, 1_500, 0, 0, 1_500, 0)
    assert gemini["estimated_cost_usd"] == pytest.approx(1_500 * 0.15 / 2 / 1e6, abs=1e-15)
    assert load.usd == pytest.approx((14 * 0.025 * 0.8 + 1_500 * 0.075) / 1e6, abs=1e-15)

    summarize_costs(embedded, costs=COSTS, summary=SUMMARY, days=None, sql_path=str(SUMMARY_SQL))
    got = {
        row["model"]: (row["jobs"], row["requests"], row["total_tokens"], row["billable_characters"])
        for row in embedded.rows(SUMMARY.uri, order_by="model")
    }
    assert got == {"gemini-embedding-001": (1, 2, 1_500, 0), "text-embedding-005": (1, 2, 6, 14)}


def test_an_existing_costs_table_gets_the_billable_characters_column(bq: DuckBigQuery) -> None:
    old = [
        bigquery.SchemaField(name, kind) for name, kind, _ in COSTS_SCHEMA if name != "billable_characters"
    ]
    bq.create_table(bigquery.Table(COSTS.api_repr, schema=old))

    record(bq, FLASH_JOB)

    assert costs_rows(bq)["jobs/flash"]["billable_characters"] == 0


def test_embedding_sums_per_job_and_none_for_a_day_without_vectors(embedded: DuckBigQuery) -> None:
    sums = read_embedding_sums(embedded, [TEXT_JOB, GEMINI_EMBED_JOB], embeddings=EMBEDDINGS, day=DAY)
    assert sums == {
        "jobs/embed": TokenSums(2, {"standard": Usage(prompt=6, characters=14)}),
        "batches/e1": TokenSums(2, {"standard": Usage(prompt=1_500)}),
    }
    quiet_day = dt.date(2026, 1, 3)
    sums = read_embedding_sums(embedded, [TEXT_JOB, GEMINI_EMBED_JOB], embeddings=EMBEDDINGS, day=quiet_day)
    assert sums == {
        "jobs/embed": TokenSums(0, {"standard": Usage()}),
        "batches/e1": TokenSums(0, {"standard": Usage()}),
    }


def test_an_embeddings_load_logs_its_billable_characters(
    embedded: DuckBigQuery, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gemini_batch.pipeline.costs_table"):
        record_costs(
            embedded, [TEXT_JOB], results=EMBEDDINGS, costs=COSTS, logical_date=DAY, prices=PRICES, run=RUN
        )
    assert caplog.messages[-1].endswith(" USD at batch prices (14 billable characters)")


def test_the_task_entry_reads_the_answers_table_it_is_given(
    embedded: DuckBigQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow.sdk

    from gemini_batch.pipeline.costs_table import record_load_costs
    from gemini_batch.pipeline.settings import PipelineSettings

    monkeypatch.setattr(airflow.sdk.Variable, "get", staticmethod(lambda key, default=None: default))
    load = record_load_costs(
        embedded,
        [TEXT_JOB],
        settings=PipelineSettings(project="proj", dataset="ds"),
        logical_date=DAY,
        answers=EMBEDDINGS,
    )
    assert (load.tokens.prompt, load.tokens.characters) == (6, 14)
    assert costs_rows(embedded)["jobs/embed"]["requests"] == 2


def test_an_existing_summary_table_gets_the_columns_it_lacks(bq: DuckBigQuery) -> None:
    old = [
        bigquery.SchemaField(name, kind)
        for name, kind, _ in COSTS_SUMMARY_SCHEMA
        if name not in ("billable_characters", "unpriced_jobs")
    ]
    bq.create_table(bigquery.Table(SUMMARY.api_repr, schema=old))
    record(bq, FLASH_JOB)

    summarize_costs(bq, costs=COSTS, summary=SUMMARY, days=None, sql_path=str(SUMMARY_SQL))

    (row,) = bq.rows(SUMMARY.uri, order_by="model")
    assert (row["model"], row["billable_characters"], row["unpriced_jobs"]) == ("gemini-2.5-flash", 0, 0)
