"""The task bodies of the failed-row retry rounds (rounds.py): what each round's ``@task`` calls.

Invariants: as tasks.py (JSON-able values in and out, clients built when the task runs, safe to
run again); a round with nothing to do ends its task SKIPPED (so its job and load tasks skip,
and so do the later rounds), naming why in the log.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gemini_batch.pipeline.settings import PipelineSettings

__all__ = ["check_day_failures", "select_gcs_round", "select_round"]

log = logging.getLogger(__name__)


def select_round(
    settings: PipelineSettings,
    *,
    day: str,
    day_table: str,
    day_scope: str,
    round_number: int,
    max_row_retries: Any,
    run_tag: str,
    gcp_conn_id: str,
) -> dict[str, Any]:
    """Pick round ``round_number``'s rows of ``day``, build and shard its requests table.

    :param day_table: Required. ``bq://`` of the day's requests table.
    :param day_scope: Required. The day's job work scope (dag_config.work_scope; ``""``: fresh).
    :param max_row_retries: Required. The run's Param (checked: an int in [0, MAX_ROW_RETRIES]).
    :return: :meth:`RoundSelection.to_dict` with ``shards`` (the job sources) and ``work_scope``.
    :raises AirflowSkipException: The round is disabled or has no retryable row.
    """
    from gemini_batch.pipeline.refs import TableRef
    from gemini_batch.pipeline.results import ensure_results_tables
    from gemini_batch.pipeline.rounds import check_max_row_retries, select_round_requests
    from gemini_batch.pipeline.tasks import RUN_TABLES_EXPIRE, bigquery_client, shard_requests_table

    allowed = check_max_row_retries(max_row_retries)
    client = bigquery_client(gcp_conn_id, settings.project)
    ensure_results_tables(client, settings.results, settings.errors)
    selection = select_round_requests(
        client,
        day_table=TableRef.parse(day_table),
        errors=settings.errors,
        logical_date=dt.date.fromisoformat(day),
        round_number=round_number,
        max_row_retries=allowed,
        run_tag=run_tag,
        expires=RUN_TABLES_EXPIRE,
    )
    _skip_unless_it_runs(selection, allowed)
    assert selection.table is not None  # action "run" always has its table
    shards = shard_requests_table(selection.table, gcp_conn_id=gcp_conn_id, project=settings.project)
    return _round_runs(selection, shards, day_scope)


def select_gcs_round(
    settings: PipelineSettings,
    *,
    day: str,
    day_input: str,
    day_fingerprint: str,
    day_prefix: str,
    day_scope: str,
    round_number: int,
    max_row_retries: Any,
    gcp_conn_id: str,
) -> dict[str, Any]:
    """Pick round ``round_number``'s lines of a JSONL day, write, validate and shard its file.

    :param day_input: Required. ``gs://`` of the day's JSONL input; ``day_fingerprint`` its content's.
    :param day_prefix: Required. ``gs://`` prefix of the day's run files (the round's go under it).
    :return: :meth:`RoundSelection.to_dict` with ``shards`` (``{"src", "dest"}`` per job) and
        ``work_scope``.
    :raises AirflowSkipException: The round is disabled or has no retryable row.
    """
    from gemini_batch.pipeline.refs import GcsUri
    from gemini_batch.pipeline.results import ensure_results_tables
    from gemini_batch.pipeline.round_files import select_round_file
    from gemini_batch.pipeline.rounds import check_max_row_retries
    from gemini_batch.pipeline.tasks import (
        bigquery_client,
        shard_gcs_input,
        storage_client,
        validate_gcs_input,
    )

    allowed = check_max_row_retries(max_row_retries)
    client = bigquery_client(gcp_conn_id, settings.project)
    ensure_results_tables(client, settings.results, settings.errors)
    selection = select_round_file(
        client,
        storage_client(gcp_conn_id),
        day_input=day_input,
        day_fingerprint=day_fingerprint,
        destination_prefix=day_prefix,
        errors=settings.errors,
        logical_date=dt.date.fromisoformat(day),
        round_number=round_number,
        max_row_retries=allowed,
    )
    _skip_unless_it_runs(selection, allowed)
    assert selection.table is not None  # action "run" always has its file
    scan = validate_gcs_input(selection.table, gcp_conn_id=gcp_conn_id)
    prefix = GcsUri.parse(day_prefix).child(f"r{round_number}/{selection.fingerprint}")
    shards = shard_gcs_input(scan, str(prefix), gcp_conn_id=gcp_conn_id)
    return _round_runs(selection, shards, day_scope)


def check_day_failures(
    settings: PipelineSettings, *, day: str, max_failed_ratio: float, gcp_conn_id: str
) -> dict[str, Any]:
    """After a day's last round: fail when more of its rows failed than ``max_failed_ratio`` allows.

    :return: ``{"answered", "failed"}`` (failed per status) of the day.
    :raises AirflowFailException: Too many failed rows (rounds.day_failures_message says which).
    """
    from airflow.sdk.exceptions import AirflowFailException
    from google.cloud import bigquery

    from gemini_batch.pipeline.rounds import day_failures_message
    from gemini_batch.pipeline.tasks import bigquery_client

    client = bigquery_client(gcp_conn_id, settings.project)
    config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("day", "DATE", day)])
    results, errors = settings.results.sql, settings.errors.sql
    answered = next(iter(client.query(
        f"SELECT COUNT(*) AS n FROM {results} WHERE logical_date = @day", job_config=config
    ).result())).n  # fmt: skip
    failed = {
        row.status or "ERROR": row.n
        for row in client.query(
            f"SELECT status, COUNT(*) AS n FROM {errors} WHERE logical_date = @day GROUP BY status",
            job_config=config,
        ).result()
    }
    log.info(
        "day %s after its rounds: %d answered, %d failed %s", day, answered, sum(failed.values()), failed
    )
    message = day_failures_message(
        day=day,
        answered=answered,
        failed=failed,
        max_failed_ratio=max_failed_ratio,
        errors=settings.errors.uri,
    )
    if message:
        raise AirflowFailException(message)
    return {"answered": answered, "failed": failed}


def _round_runs(selection: Any, shards: list, day_scope: str) -> dict[str, Any]:
    """What a round that runs returns (its selection, shards and work scope), logged."""
    from gemini_batch.pipeline.rounds import round_work_scope

    log.info(
        "round %d: %d of %d failed row(s) retried (statuses %s) from %s in %d shard(s)",
        selection.round, selection.retryable, selection.candidates, list(selection.statuses),
        selection.table, len(shards),
    )  # fmt: skip
    return {
        **selection.to_dict(),
        "shards": shards,
        "work_scope": round_work_scope(day_scope, selection.round),
    }


def _skip_unless_it_runs(selection: Any, allowed: int) -> None:
    """End the round's task SKIPPED, saying why, unless the round runs."""
    from airflow.sdk.exceptions import AirflowSkipException

    number = selection.round
    if selection.action == "disabled":
        raise AirflowSkipException(f"round {number}: disabled (max_row_retries={allowed})")
    if selection.action == "nothing_to_retry":
        raise AirflowSkipException(
            f"round {number}: nothing to retry ({selection.candidates} row(s) left by round "
            f"{number - 1}, none with a retryable status)"
        )
