"""The embeddings pipeline's steps (DAG gemini_batch_embeddings): a day's documents in, vectors out.

Invariants:

* The same rules as the prompts pipelines, through the same code: the day's input table is
  built server-side and published by content (builder.keep_by_content), the job task's work
  scope is the interval and that content (dag_config.work_scope), so a re-run of an unchanged day
  adopts its job; the load is the one loader (loader.py, an ``embed`` load) MERGEd on
  (key, logical_date) against the day's whole input.
* Every load writes one ``costs`` row per job (costs_table.record_load_costs: tokens from the
  embeddings table, billable characters from the input's ``content``) and emits the costs Asset.
* Vectors and their failed rows have their own tables (:data:`EMBEDDINGS_TABLE`,
  :data:`EMBEDDING_ERRORS_TABLE`): a load deletes the day's rows of keys no longer in its input,
  which in the prompts pipelines' errors table would delete their rows of that day.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gemini_batch.pipeline.settings import PipelineSettings

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DOCUMENTS_TABLE",
    "EMBEDDINGS_TABLE",
    "EMBEDDING_ERRORS_TABLE",
    "build_documents_table",
    "load_embeddings",
]

log = logging.getLogger(__name__)

#: The documents table (in the pipelines' dataset): ``id``, ``content``, ``created_at``.
DOCUMENTS_TABLE = "documents"
#: One vector per key and date (results.EMBEDDINGS_SCHEMA).
EMBEDDINGS_TABLE = "embeddings"
#: The failed rows of embedding loads (results.ERRORS_SCHEMA).
EMBEDDING_ERRORS_TABLE = "embedding_errors"
#: Vertex AI's text embedding model: 768 dimensions.
DEFAULT_EMBEDDING_MODEL = "text-embedding-005"


def build_documents_table(
    settings: PipelineSettings,
    *,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    table: str,
    run_tag: str,
    source_sql_path: str | Path,
    gcp_conn_id: str,
) -> dict[str, Any]:
    """Build the input table (``key``, ``content``) of one data interval's documents, named by content.

    Built run-scoped as ``<table>_build_<run_tag>``, then published once as
    ``<table>_<fingerprint>`` over (key, content), as the prompts' requests tables are.

    :return: ``{"table": "bq://...", "documents": n, "day": "YYYY-MM-DD", "fingerprint": "..."}``.
    """
    from gemini_batch.pipeline import sql
    from gemini_batch.pipeline.builder import keep_by_content, set_expiry, source_subquery
    from gemini_batch.pipeline.tasks import RUN_TABLES_EXPIRE, bigquery_client

    client = bigquery_client(gcp_conn_id, settings.project)
    built = settings.table(f"{table}_build_{run_tag}")
    source = sql.render_file(source_sql_path, documents_table=settings.table(DOCUMENTS_TABLE).sql)
    sql.run(
        client,
        sql.render("build_documents.sql", destination=built.sql, source=source_subquery(source)),
        interval_start=interval_start,
        interval_end=interval_end,
    )
    set_expiry(client, built, RUN_TABLES_EXPIRE)
    count = int(sql.query_one(client, f"SELECT COUNT(*) AS n FROM {built.sql}")["n"])
    destination, fingerprint = keep_by_content(
        client, built, name=table, expires=RUN_TABLES_EXPIRE, request_column="content"
    )
    log.info(
        "built %d documents for [%s, %s) in %s (content %s)",
        count, interval_start, interval_end, destination.uri, fingerprint,
    )  # fmt: skip
    return {
        "table": destination.uri,
        "documents": count,
        "day": interval_start.date().isoformat(),
        "fingerprint": fingerprint,
    }


def load_embeddings(
    manifests: Sequence[Mapping[str, Any]],
    *,
    settings: PipelineSettings,
    logical_date: dt.date | str,
    table: str,
    gcp_conn_id: str,
    outlet_events: Any = None,
) -> dict[str, Any]:
    """Load a day's embedding jobs into the embeddings table and reconcile with the day's documents.

    :param manifests: Required. The job task's return values (their ``task`` is ``embed``).
    :param table: Required. The day's input table (``bq://``, :func:`build_documents_table`).
    :param outlet_events: Optional. The task's ``outlet_events``: the embeddings Asset's event gets
        ``{"table", "errors_table", "logical_date", "counts"}``, the costs Asset's ``{"table",
        "logical_date", "tokens", "estimated_cost_usd"}``.
    :return: :meth:`LoadCounts.to_dict` with ``tokens`` and ``estimated_cost_usd`` (at batch prices;
        None when the model has no price).
    :raises ReconciliationError: A document key is in neither table, or in both.
    """
    from gemini_batch.pipeline.costs_table import COSTS_TABLE, record_load_costs
    from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
    from gemini_batch.pipeline.tasks import bigquery_client, storage_client

    finished = [m for m in manifests if m]
    if not finished:
        raise ValueError("no embedding job finished: nothing to load")
    day_keys = InputKeys.from_table(table, request_column=None)
    embeddings, errors = settings.table(EMBEDDINGS_TABLE), settings.table(EMBEDDING_ERRORS_TABLE)
    bigquery = bigquery_client(gcp_conn_id, settings.project)
    counts = ResultsLoader(
        bigquery_client=bigquery,
        storage_client=storage_client(gcp_conn_id),
        staging_gcs=settings.gcs("staging"),
    ).load(
        [JobOutput.from_manifest(m) for m in finished],
        logical_date=logical_date,
        input_keys=day_keys,
        results_table=embeddings.uri,
        errors_table=errors.uri,
        day_keys=day_keys,
        skip_loaded=True,
        record_missing=True,
    )
    load_cost = record_load_costs(
        bigquery, finished, settings=settings, logical_date=counts.logical_date, answers=embeddings
    )
    loaded = {**counts.to_dict(), **load_cost.as_counts()}
    if outlet_events is not None:
        from gemini_batch.pipeline.dag_config import COSTS_ASSET, EMBEDDINGS_ASSET

        outlet_events[EMBEDDINGS_ASSET].extra = {
            "table": embeddings.uri,
            "errors_table": errors.uri,
            "logical_date": counts.logical_date,
            "counts": loaded,
        }
        outlet_events[COSTS_ASSET].extra = {
            "table": settings.table(COSTS_TABLE).uri,
            "logical_date": counts.logical_date,
            **load_cost.as_counts(),
        }
    return loaded
