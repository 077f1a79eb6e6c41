"""The costs table: one row per batch job (date, DAG, run, task, job, model, backend, tokens by kind,
estimated cost at batch prices, the prices' date), and the cost per day and model.

Invariants:
- Written by the load (``tasks.load_results``) after the MERGE of the results, for every job of
  the load (a job already loaded by an earlier try is written again, identically).
- One row per job, MERGEd on the job's name (merge_costs.sql): a re-load replaces it, never adds one.
- Where a job's tokens come from (:func:`job_cost`, ONE rule): a Gemini API job whose manifest
  counted them (inline responses) takes the manifest's tokens and estimated cost, so the manifest,
  the load's counts and the table agree to the digit; every other job (Vertex AI, Gemini API
  results files) is summed server-side from the results table's usage columns for its rows of the
  day (job_token_sums.sql: only sums come back), by price tier, and priced by gemini_batch.costs.
- An embeddings load (its manifests' ``task`` is ``embed``) reads the same way from the
  embeddings table: its rows' ``token_count`` (job_embedding_sums.sql; no output tokens, one
  tier), and for a job whose input is a ``bq://`` table the billable characters of the
  ``content`` it embedded (embedded_characters.sql: code points without white space), which is
  what a character-priced model (Vertex AI text-embedding-00x) is billed by
  (``billable_characters``; 0 where not counted).
- Thinking tokens from the results table: ``total_tokens - prompt_tokens - output_tokens`` (the
  table keeps no thoughtsTokenCount; both services count thoughts in the total), never below 0.
- An unknown model has a NULL cost, never 0; a load's cost is None when any of its jobs has none
  (a partial sum would mislead).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gemini_batch.costs import PriceTable, Tier, Usage, cost_of, model_id
from gemini_batch.pipeline import sql

if TYPE_CHECKING:
    from google.cloud import bigquery

    from gemini_batch.pipeline.refs import TableRef
    from gemini_batch.pipeline.settings import PipelineSettings

__all__ = [
    "COSTS_SCHEMA",
    "COSTS_SUMMARY_SCHEMA",
    "COSTS_TABLE",
    "COSTS_SUMMARY_TABLE",
    "JobCost",
    "LoadCost",
    "TokenSums",
    "ensure_costs_table",
    "job_cost",
    "read_embedding_sums",
    "read_token_sums",
    "record_costs",
    "record_load_costs",
    "summarize_costs",
]

log = logging.getLogger(__name__)

#: The costs table's name, next to the results table (``<project>.<dataset>.costs``).
COSTS_TABLE = "costs"
#: The cost per day and model, kept by the summary DAG.
COSTS_SUMMARY_TABLE = "costs_daily_summary"

#: Where a job's tokens were read.
TokensFrom = Literal["manifest", "results"]

#: (name, type, mode)
COSTS_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("logical_date", "DATE", "REQUIRED"),
    ("dag_id", "STRING", "NULLABLE"),
    ("run_id", "STRING", "NULLABLE"),
    ("task_id", "STRING", "NULLABLE"),
    ("job_name", "STRING", "REQUIRED"),
    ("model", "STRING", "NULLABLE"),
    ("backend", "STRING", "NULLABLE"),
    ("requests", "INT64", "NULLABLE"),
    ("prompt_tokens", "INT64", "NULLABLE"),
    ("output_tokens", "INT64", "NULLABLE"),
    ("thinking_tokens", "INT64", "NULLABLE"),
    ("total_tokens", "INT64", "NULLABLE"),
    ("billable_characters", "INT64", "NULLABLE"),
    ("estimated_cost_usd", "FLOAT64", "NULLABLE"),
    ("prices_retrieved", "STRING", "NULLABLE"),
    ("tokens_from", "STRING", "NULLABLE"),
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
    ("billable_characters", "INT64", "NULLABLE"),
    ("estimated_cost_usd", "FLOAT64", "NULLABLE"),
    ("unpriced_jobs", "INT64", "NULLABLE"),
    ("updated_at", "TIMESTAMP", "NULLABLE"),
)

#: A prompt length no request reaches: the tier threshold of a model with one price tier.
NO_TIER = 2**62


@dataclass(frozen=True)
class TokenSums:
    """One job's answered rows of one day, from the results table: how many, and tokens per tier."""

    requests: int = 0
    by_tier: Mapping[Tier, Usage] | None = None

    def usage(self) -> dict[Tier, Usage]:
        return dict(self.by_tier or {})


@dataclass(frozen=True)
class JobCost:
    """One row of the costs table (without the run's identity)."""

    job_name: str
    backend: str
    model: str | None
    requests: int
    tokens: Usage
    usd: float | None
    prices_retrieved: str | None
    tokens_from: TokensFrom


@dataclass(frozen=True)
class LoadCost:
    """The jobs of one load, and their sums (what load_results adds to its counts)."""

    jobs: tuple[JobCost, ...]

    @property
    def tokens(self) -> Usage:
        return sum((job.tokens for job in self.jobs), Usage())

    @property
    def usd(self) -> float | None:
        """The jobs' costs summed; None when any job has no price (a partial sum would mislead)."""
        costs = [job.usd for job in self.jobs]
        if any(c is None for c in costs):
            return None
        return round(sum(c for c in costs if c is not None), 9)

    def as_counts(self) -> dict[str, Any]:
        """``{"tokens": {prompt, output, thinking, total}, "estimated_cost_usd"}``."""
        return {"tokens": self.tokens.as_dict(), "estimated_cost_usd": self.usd}


def job_cost(manifest: Mapping[str, Any], sums: TokenSums, prices: PriceTable) -> JobCost:
    """The cost of one job (the rule of the module docstring): a Gemini API manifest's own tokens
    and estimate when it has them, else the results table's sums priced by ``prices``."""
    backend = str(manifest.get("backend") or "")
    tokens = manifest.get("tokens")
    if backend == "gemini_api" and isinstance(tokens, Mapping):
        usd = manifest.get("estimated_cost_usd")
        return JobCost(
            job_name=str(manifest["job_name"]),
            backend=backend,
            model=model_id(manifest.get("model")) or None,
            requests=sums.requests,
            tokens=Usage(
                int(tokens.get("prompt") or 0),
                int(tokens.get("candidates") or 0),
                int(tokens.get("thoughts") or 0),
            ),
            usd=None if usd is None else float(usd),
            prices_retrieved=manifest.get("prices_retrieved") if usd is not None else None,
            tokens_from="manifest",
        )
    cost = cost_of(prices, manifest.get("model"), backend, sums.usage())
    return JobCost(
        job_name=str(manifest["job_name"]),
        backend=backend,
        model=cost.model,
        requests=sums.requests,
        tokens=cost.tokens,
        usd=cost.usd,
        prices_retrieved=cost.prices_retrieved,
        tokens_from="results",
    )


def tier_threshold(manifest: Mapping[str, Any], prices: PriceTable) -> int:
    """The prompt tokens above which a request of this job is billed at its model's long price."""
    model_prices = prices.lookup(manifest.get("model"), str(manifest.get("backend") or ""))
    if model_prices is None or model_prices.long_above is None:
        return NO_TIER
    return model_prices.long_above


def read_token_sums(
    client: bigquery.Client,
    manifests: Sequence[Mapping[str, Any]],
    *,
    results: TableRef,
    day: dt.date,
    prices: PriceTable,
) -> dict[str, TokenSums]:
    """The answered rows and tokens per tier of each job's rows of ``day`` (job_token_sums.sql).

    One query per distinct tier threshold among the jobs' models (one for a run of one model).
    """
    by_threshold: dict[int, list[str]] = {}
    for manifest in manifests:
        by_threshold.setdefault(tier_threshold(manifest, prices), []).append(str(manifest["job_name"]))
    sums: dict[str, TokenSums] = {}
    for above, names in sorted(by_threshold.items()):
        rows = sql.query_rows(
            client,
            sql.render("job_token_sums.sql", results=results.sql),
            above=above,
            logical_date=day,
            jobs=sorted(set(names)),
        )
        sums.update(token_sums(rows))
    return sums


def read_embedding_sums(
    client: bigquery.Client,
    manifests: Sequence[Mapping[str, Any]],
    *,
    embeddings: TableRef,
    day: dt.date,
) -> dict[str, TokenSums]:
    """The embedded rows, tokens and billable characters of each embedding job's rows of ``day``
    (job_embedding_sums.sql; embedded_characters.sql for a job whose input is a ``bq://`` table)."""
    from gemini_batch.pipeline.refs import TableRef

    sums: dict[str, TokenSums] = {}
    for manifest in manifests:
        name = str(manifest["job_name"])
        row = sql.query_one(
            client,
            sql.render("job_embedding_sums.sql", embeddings=embeddings.sql),
            job=name,
            logical_date=day,
        )
        characters = 0
        source = str(manifest.get("source") or "")
        if source.startswith("bq://"):
            documents = TableRef.parse(source)
            counted = sql.query_one(
                client,
                sql.render("embedded_characters.sql", embeddings=embeddings.sql, documents=documents.sql),
                job=name,
                logical_date=day,
            )
            characters = int(counted["characters"] or 0)
        usage = Usage(prompt=int(row["prompt"] or 0), characters=characters)
        sums[name] = TokenSums(int(row["requests"] or 0), {"standard": usage})
    return sums


def token_sums(rows: Iterable[Mapping[str, Any]]) -> dict[str, TokenSums]:
    """job_token_sums.sql's rows (job_name, long_tier, requests, prompt, output, thinking) per job."""
    requests: dict[str, int] = {}
    usage: dict[str, dict[Tier, Usage]] = {}
    for row in rows:
        name = str(row["job_name"])
        tier: Tier = "long" if row["long_tier"] else "standard"
        # COUNT and SUMs of COALESCEd columns over a non-empty group: never NULL.
        requests[name] = requests.get(name, 0) + int(row["requests"])
        usage.setdefault(name, {})[tier] = Usage(int(row["prompt"]), int(row["output"]), int(row["thinking"]))
    return {name: TokenSums(requests[name], usage[name]) for name in requests}


def _schema(spec: Sequence[tuple[str, str, str]]) -> list[Any]:
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, kind, mode=mode) for name, kind, mode in spec]


def ensure_costs_table(client: bigquery.Client, ref: TableRef) -> None:
    """Create the costs table (partitioned by day, clustered by job) if it does not exist; add the
    columns a later version added (billable_characters) to one that does."""
    from google.cloud import bigquery

    from gemini_batch.pipeline.results import add_nullable_columns

    table = bigquery.Table(ref.api_repr, schema=_schema(COSTS_SCHEMA))
    table.time_partitioning = bigquery.TimePartitioning(field="logical_date")
    table.clustering_fields = ["job_name"]
    add_nullable_columns(client, ref, client.create_table(table, exists_ok=True), COSTS_SCHEMA)


@dataclass(frozen=True)
class RunIdentity:
    """Which task wrote a costs row."""

    dag_id: str = ""
    run_id: str = ""
    task_id: str = ""

    @classmethod
    def current(cls) -> RunIdentity:
        """The running task instance's ids; empty outside a task (a script, a unit test)."""
        try:
            from airflow.sdk import get_current_context

            ti = get_current_context()["ti"]
        except Exception:  # noqa: BLE001 - outside a task: the row names no DAG, run or task
            return cls()
        return cls(str(ti.dag_id), str(ti.run_id), str(ti.task_id))


def record_costs(
    client: bigquery.Client,
    manifests: Sequence[Mapping[str, Any]],
    *,
    results: TableRef,
    costs: TableRef,
    logical_date: dt.date | str,
    prices: PriceTable,
    run: RunIdentity | None = None,
) -> LoadCost:
    """Write one costs row per job of a load (MERGE on the job), log the load's sums, return them.

    :param results: the load's answers table: the results, or for an embeddings load (manifests'
        ``task`` ``embed``) the embeddings table.
    """
    day = dt.date.fromisoformat(logical_date) if isinstance(logical_date, str) else logical_date
    run = run if run is not None else RunIdentity.current()
    jobs = [m for m in manifests if m and m.get("job_name")]
    ensure_costs_table(client, costs)
    if any(m.get("task") == "embed" for m in jobs):
        sums = read_embedding_sums(client, jobs, embeddings=results, day=day)
    else:
        sums = read_token_sums(client, jobs, results=results, day=day, prices=prices)  # no job: no query
    rows = tuple(job_cost(m, sums.get(str(m["job_name"]), TokenSums()), prices) for m in jobs)
    for job in rows:
        sql.run(
            client,
            sql.render("merge_costs.sql", costs=costs.sql),
            logical_date=day,
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=run.task_id,
            job_name=job.job_name,
            model=job.model or "",
            backend=job.backend,
            requests=job.requests,
            prompt_tokens=job.tokens.prompt,
            output_tokens=job.tokens.output,
            thinking_tokens=job.tokens.thinking,
            total_tokens=job.tokens.total,
            billable_characters=job.tokens.characters,
            has_cost=job.usd is not None,
            estimated_cost_usd=float(job.usd or 0.0),
            prices_retrieved=job.prices_retrieved or "",
            tokens_from=job.tokens_from,
        )
    load = LoadCost(rows)
    tokens = load.tokens
    log.info(
        "costs of %d job(s) for %s written to %s: tokens prompt=%d output=%d thinking=%d total=%d; "
        "estimated cost %s USD at batch prices%s",
        len(rows), day.isoformat(), costs.uri, tokens.prompt, tokens.output, tokens.thinking,
        tokens.total, "unknown (a model has no price)" if load.usd is None else f"{load.usd:.9f}",
        f" ({tokens.characters} billable characters)" if tokens.characters else "",
    )  # fmt: skip
    return load


def record_load_costs(
    client: bigquery.Client,
    manifests: Sequence[Mapping[str, Any]],
    *,
    settings: PipelineSettings,
    logical_date: dt.date | str,
    answers: TableRef | None = None,
) -> LoadCost:
    """:func:`record_costs` as the loads run it: the settings' tables, the shipped prices under
    the Variable ``gemini_batch_prices``, the running task's identity.

    :param answers: Optional. The load's answers table (default: the results; an embeddings load:
        the embeddings table).
    """
    from airflow.sdk import Variable

    from gemini_batch.costs import PRICES_VARIABLE, load_prices

    return record_costs(
        client,
        manifests,
        results=answers if answers is not None else settings.results,
        costs=settings.table(COSTS_TABLE),
        logical_date=logical_date,
        prices=load_prices(Variable.get(PRICES_VARIABLE, default=None)),
    )


def summarize_costs(
    client: bigquery.Client,
    *,
    costs: TableRef,
    summary: TableRef,
    days: Sequence[str] | None,
    sql_path: str,
) -> list[str]:
    """MERGE the cost per day and model of ``days`` (every day of the costs table when None).

    :return: the days summarized.
    """
    from google.cloud import bigquery

    from gemini_batch.pipeline.results import add_nullable_columns

    ensure_costs_table(client, costs)
    existing = client.create_table(
        bigquery.Table(summary.api_repr, schema=_schema(COSTS_SUMMARY_SCHEMA)), exists_ok=True
    )
    add_nullable_columns(client, summary, existing, COSTS_SUMMARY_SCHEMA)
    if days is None:
        rows = sql.query_rows(
            client, f"SELECT DISTINCT CAST(logical_date AS STRING) AS day FROM {costs.sql} ORDER BY day"
        )
        days = [row["day"] for row in rows]
    if days:
        sql.run(client, sql.render_file(sql_path, summary=summary.sql, costs=costs.sql), dates=list(days))
    log.info("summarized the costs of %d day(s) into %s: %s", len(days), summary.uri, list(days))
    return list(days)
