"""The costs table: one row per batch job (date, DAG, task, job, model, tokens by kind, estimated cost).

Invariants:
- Written by the load, after the MERGE of the results: the tokens are read back from the results
  table (the answered rows of this job and day, as the loader parsed their ``usageMetadata``), so
  the costs table, the load's counts and the results always agree.
- One row per job, MERGEd on the job's name: a re-load replaces it (exactly once).
- Prices come from gemini_batch.costs (ONE rule): batch price per tier, each request's tier by
  its own prompt; an unknown model has a NULL cost, never 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gemini_batch.costs import Cost, PriceTable, Tier, Usage, cost_of
from gemini_batch.pipeline import sql

if TYPE_CHECKING:
    from google.cloud import bigquery

    from gemini_batch.pipeline.refs import TableRef

__all__ = [
    "COSTS_SCHEMA",
    "COSTS_SUMMARY_SCHEMA",
    "JobCost",
    "LoadCost",
    "ensure_costs_table",
    "record_costs",
    "summarize_costs",
]

#: (name, type, mode)
COSTS_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("logical_date", "DATE", "REQUIRED"),
    ("dag_id", "STRING", "NULLABLE"),
    ("task_id", "STRING", "NULLABLE"),
    ("job_name", "STRING", "REQUIRED"),
    ("model", "STRING", "NULLABLE"),
    ("backend", "STRING", "NULLABLE"),
    ("requests", "INT64", "NULLABLE"),
    ("prompt_tokens", "INT64", "NULLABLE"),
    ("output_tokens", "INT64", "NULLABLE"),
    ("thinking_tokens", "INT64", "NULLABLE"),
    ("total_tokens", "INT64", "NULLABLE"),
    ("estimated_cost_usd", "FLOAT64", "NULLABLE"),
    ("prices_retrieved", "STRING", "NULLABLE"),
    ("loaded_at", "TIMESTAMP", "NULLABLE"),
)

#: The cost per day and model (include/sql/costs_daily_summary.sql).
COSTS_SUMMARY_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("logical_date", "DATE", "REQUIRED"),
    ("model", "STRING", "NULLABLE"),
    ("jobs", "INT64", "NULLABLE"),
    ("requests", "INT64", "NULLABLE"),
    ("prompt_tokens", "INT64", "NULLABLE"),
    ("output_tokens", "INT64", "NULLABLE"),
    ("thinking_tokens", "INT64", "NULLABLE"),
    ("total_tokens", "INT64", "NULLABLE"),
    ("estimated_cost_usd", "FLOAT64", "NULLABLE"),
    ("unpriced_jobs", "INT64", "NULLABLE"),
    ("updated_at", "TIMESTAMP", "NULLABLE"),
)

#: A threshold no prompt reaches: the tier split of a model with one price tier.
_NO_TIER = 2**62


@dataclass(frozen=True)
class JobCost:
    """The tokens and cost of one job's answered rows of one day."""

    job_name: str
    backend: str
    requests: int
    cost: Cost


@dataclass(frozen=True)
class LoadCost:
    """The jobs of one load, and their sums (what load_results adds to its counts)."""

    jobs: tuple[JobCost, ...]

    @property
    def tokens(self) -> Usage:
        return sum((job.cost.tokens for job in self.jobs), Usage())

    @property
    def usd(self) -> float | None:
        """The sum of the jobs' costs; None when any job has no price (a partial sum would mislead)."""
        costs = [job.cost.usd for job in self.jobs]
        return None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 9)

    def as_counts(self) -> dict[str, Any]:
        return {"tokens": self.tokens.as_dict(), "estimated_cost_usd": self.usd}


def ensure_costs_table(client: bigquery.Client, ref: TableRef) -> None:
    """Create the costs table (partitioned by day, clustered by job) if it does not exist."""
    from google.cloud import bigquery

    table = bigquery.Table(
        ref.api_repr, schema=[bigquery.SchemaField(n, t, mode=m) for n, t, m in COSTS_SCHEMA]
    )
    table.time_partitioning = bigquery.TimePartitioning(field="logical_date")
    table.clustering_fields = ["job_name"]
    client.create_table(table, exists_ok=True)


def _job_cost(
    client: bigquery.Client,
    manifest: Mapping[str, Any],
    *,
    results: TableRef,
    day: dt.date,
    prices: PriceTable,
) -> JobCost:
    backend = str(manifest.get("backend") or "")
    model = manifest.get("model")
    model_prices = prices.lookup(model, backend)
    above = model_prices.long_above if model_prices and model_prices.long_above is not None else _NO_TIER
    rows = sql.query_rows(
        client,
        sql.render("job_token_sums.sql", results=results.sql),
        above=above,
        logical_date=day,
        job_name=manifest["job_name"],
    )
    usage: dict[Tier, Usage] = {}
    for row in rows:
        tier: Tier = "long" if row["long_tier"] else "standard"
        usage[tier] = Usage(int(row["prompt"] or 0), int(row["output"] or 0), int(row["thinking"] or 0))
    requests = sum(int(row["requests"] or 0) for row in rows)
    return JobCost(manifest["job_name"], backend, requests, cost_of(prices, model, backend, usage))


def record_costs(
    client: bigquery.Client,
    manifests: Sequence[Mapping[str, Any]],
    *,
    results: TableRef,
    costs: TableRef,
    logical_date: dt.date | str,
    dag_id: str | None,
    task_id: str | None,
    prices: PriceTable,
) -> LoadCost:
    """Write one costs row per job of a load (MERGE on the job) and return the load's sums."""
    day = dt.date.fromisoformat(logical_date) if isinstance(logical_date, str) else logical_date
    ensure_costs_table(client, costs)
    jobs = []
    for manifest in manifests:
        job = _job_cost(client, manifest, results=results, day=day, prices=prices)
        tokens = job.cost.tokens
        sql.run(
            client,
            sql.render("merge_costs.sql", costs=costs.sql),
            logical_date=day,
            dag_id=dag_id or "",
            task_id=task_id or "",
            job_name=job.job_name,
            model=job.cost.model or "",
            backend=job.backend,
            requests=job.requests,
            prompt_tokens=tokens.prompt,
            output_tokens=tokens.output,
            thinking_tokens=tokens.thinking,
            total_tokens=tokens.total,
            has_cost=job.cost.usd is not None,
            estimated_cost_usd=float(job.cost.usd or 0.0),
            prices_retrieved=job.cost.prices_retrieved or "",
        )
        jobs.append(job)
    return LoadCost(tuple(jobs))


def summarize_costs(
    client: bigquery.Client,
    *,
    costs: TableRef,
    summary: TableRef,
    days: Sequence[str] | None,
    sql_path: str,
) -> list[str]:
    """MERGE the cost per day and model of ``days`` (all days of the costs table when None).

    :return: the days summarized.
    """
    from google.cloud import bigquery

    ensure_costs_table(client, costs)
    client.create_table(
        bigquery.Table(
            summary.api_repr, schema=[bigquery.SchemaField(n, t, mode=m) for n, t, m in COSTS_SUMMARY_SCHEMA]
        ),
        exists_ok=True,
    )
    if days is None:
        rows = sql.query_rows(
            client, f"SELECT DISTINCT CAST(logical_date AS STRING) AS day FROM {costs.sql} ORDER BY day"
        )
        days = [row["day"] for row in rows]
    if days:
        sql.run(client, sql.render_file(sql_path, summary=summary.sql, costs=costs.sql), dates=list(days))
    return list(days)
