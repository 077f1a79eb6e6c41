"""A sample of a job's answers and errors from the pipeline's results and errors tables.

Invariants: the tables come from the run's own results Asset event (``extra`` ``table`` and
``errors_table``, written by ``load_results``), so the view needs no Variable and reads exactly
where that run wrote; rows are selected by the job's name (the one query of
:mod:`gemini_batch.pipeline.answer_sample`, shared with ``load_results``'s log); a failure to read (no load yet, no
BigQuery access from the API server) is a note on the page, never an error page.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gemini_batch.backends import DEFAULT_GCP_CONN_ID
from gemini_batch.pipeline.answer_sample import SAMPLE_ROWS, read_sample, table_id

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gemini_batch.ui.jobs import JobRow

log = logging.getLogger(__name__)


def run_tables(session: Session, row: JobRow) -> tuple[str, str] | None:
    """(results, errors) table URIs of the run's results Asset event, or None before a load."""
    from airflow.models.asset import AssetEvent
    from sqlalchemy import select

    query = (
        select(AssetEvent.extra)
        .where(AssetEvent.source_dag_id == row.dag_id, AssetEvent.source_run_id == row.run_id)
        .order_by(AssetEvent.timestamp.desc())
    )
    for (extra,) in session.execute(query):
        if isinstance(extra, dict) and extra.get("table") and extra.get("errors_table"):
            return str(extra["table"]), str(extra["errors_table"])
    return None


def results_sample(
    session: Session, row: JobRow, *, client: Any = None
) -> tuple[list[tuple[str, str, str]], str]:
    """Up to :data:`SAMPLE_ROWS` (key, status, text) rows of the job, and a note saying where from.

    :param client: a ``google.cloud.bigquery.Client``; by default one of the Google Cloud connection.
    """
    tables = run_tables(session, row) if row.job_name else None
    if tables is None:
        return [], "No rows loaded into the results tables for this run yet."
    results, errors = tables
    try:
        if client is None:
            from gemini_batch.pipeline.tasks import bigquery_client

            client = bigquery_client(DEFAULT_GCP_CONN_ID, table_id(results).split(".")[0])
        found = [
            (r.key, r.status, r.text)
            for r in read_sample(client, results=results, errors=errors, job_names=[row.job_name])
        ]
    except Exception as err:  # noqa: BLE001 - the page still shows the manifest
        log.warning("Gemini batch view: cannot read %s: %s", results, err)
        return [], f"Cannot read {results} from the API server: {type(err).__name__}: {err}"
    return found, f"From {results} and {errors} (up to {SAMPLE_ROWS} rows)."
