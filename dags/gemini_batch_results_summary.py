"""gemini_batch_results_summary: keeps a per-day summary of the results, whenever they change.

Scheduled on the results Asset that every pipeline's load_results produces, or the costs Asset
that every load (the embeddings' too) produces: it runs after each load and MERGEs the days the
results events name (their counts and tokens) into ``results_daily_summary``, and the days the
costs events name (cost per model, from the ``costs`` table, one row per job) into
``costs_daily_summary``. A run with no event (manual) summarizes every day of both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from gemini_batch.backends import DEFAULT_GCP_CONN_ID
from gemini_batch.pipeline.dag_config import COSTS_ASSET, DEFAULT_ARGS, INCLUDE_DIR, RESULTS_ASSET


def event_days(triggering_asset_events: Any, asset: Any) -> list[str] | None:
    """The days ``asset``'s triggering events name; None (every day) for a run without any event
    (a manual run), [] when only other assets' events triggered it."""
    events = triggering_asset_events or {}
    if not any(events.get(a) for a in (RESULTS_ASSET, COSTS_ASSET)):
        return None
    return sorted(
        {e.extra["logical_date"] for e in events.get(asset, []) if (e.extra or {}).get("logical_date")}
    )


with DAG(
    dag_id="gemini_batch_results_summary",
    description="Per-day counts, tokens and cost per model of the Gemini batch results, refreshed on every load",
    schedule=RESULTS_ASSET | COSTS_ASSET,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    # Runs only on the Assets' events, so unpaused is safe (paused, it silently never ran).
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS,
    tags=["gemini-batch", "downstream"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def summarize(triggering_asset_events: Any = None) -> dict:
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import summarize_results

        return summarize_results(
            PipelineSettings.resolve(DEFAULT_GCP_CONN_ID),
            days=event_days(triggering_asset_events, RESULTS_ASSET),
            sql_path=INCLUDE_DIR / "sql" / "results_daily_summary.sql",
            gcp_conn_id=DEFAULT_GCP_CONN_ID,
        )

    @task
    def summarize_costs(triggering_asset_events: Any = None) -> list[str]:
        from gemini_batch.pipeline.costs_table import COSTS_SUMMARY_TABLE, COSTS_TABLE, summarize_costs
        from gemini_batch.pipeline.settings import PipelineSettings
        from gemini_batch.pipeline.tasks import bigquery_client

        settings = PipelineSettings.resolve(DEFAULT_GCP_CONN_ID)
        return summarize_costs(
            bigquery_client(DEFAULT_GCP_CONN_ID, settings.project),
            costs=settings.table(COSTS_TABLE),
            summary=settings.table(COSTS_SUMMARY_TABLE),
            days=event_days(triggering_asset_events, COSTS_ASSET),
            sql_path=str(INCLUDE_DIR / "sql" / "costs_daily_summary.sql"),
        )

    summarize()
    summarize_costs()
