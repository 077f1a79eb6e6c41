"""Failed-row retry rounds: after a day's load, a follow-up job made of exactly the rows that failed
for a retryable reason, up to ``max_row_retries`` times.

A round N (1, 2, ...) of a day:

1. picks the keys the previous round left in the errors table (``round = N - 1``; the day's
   first jobs are round 0) whose status is retryable (:class:`~.row_retry.RowRetryPolicy`, ONE
   rule, applied by the worker to the few distinct statuses: round_candidates.sql);
2. builds, server-side, the round's requests table from the day's requests table
   (round_requests.sql: the same rows, the same requests), published by content as
   ``<day table>_r<N>_<fingerprint>`` (builder.keep_by_content), and shards it;
3. runs the job operator on it (same operator; work scope ``<day scope>/r<N>``, task ids
   ``round_<N>.*``), then loads it with ``round=N`` against the day's whole input.

Invariants:

* A round with no retryable row submits nothing (:func:`round_action` says why).
* Round N only ever picks rows round N - 1 failed: a re-run of a whole day after its rounds
  finds nothing left for them (the rows still failing carry the last round), so a clear or a
  re-run creates no job; a clear of one round's job task re-attaches to its job by identity
  (the round's work scope, task id and content-named source).
* Every load of a round reconciles the day's whole input (every day key in results or errors
  exactly once, stale keys deleted against the whole day, never only the round's keys).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.refs import TableRef
from gemini_batch.pipeline.row_retry import RowRetryPolicy

if TYPE_CHECKING:
    from google.cloud import bigquery

__all__ = [
    "MAX_ROW_RETRIES",
    "ROUNDS_PARAM",
    "RoundAction",
    "RoundSelection",
    "check_max_row_retries",
    "day_failures_message",
    "pick_round",
    "round_action",
    "round_group_id",
    "round_work_scope",
    "select_round_requests",
]

#: Rounds the pipelines unroll at DAG definition (the ``max_row_retries`` Param can lower it).
MAX_ROW_RETRIES = 2

RoundAction = Literal["run", "disabled", "nothing_to_retry"]

#: The pipelines' ``max_row_retries`` Param.
ROUNDS_PARAM = (
    "Failed-row retry rounds after the day's job: rows that failed with a retryable status "
    f"(quota, overload, transient server errors) go into a follow-up job, up to this many times (0..{MAX_ROW_RETRIES})"
)


def check_max_row_retries(value: Any, *, ceiling: int = MAX_ROW_RETRIES) -> int:
    """``max_row_retries`` as an int in [0, ceiling] (the rounds a DAG has are its ceiling).

    :raises ValueError: Not an int, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ceiling:
        raise ValueError(f"max_row_retries must be an integer from 0 to {ceiling}, got {value!r}")
    return value


def round_action(round_number: int, max_row_retries: int, retryable: int) -> RoundAction:
    """Whether round ``round_number`` (1-based) submits a job: pure, one decision.

    :param max_row_retries: The rounds the run allows (0: none).
    :param retryable: Rows the previous round left with a retryable status.
    """
    if round_number < 1:
        raise ValueError(f"rounds are numbered from 1, got {round_number}")
    if round_number > max_row_retries:
        return "disabled"
    if retryable <= 0:
        return "nothing_to_retry"
    return "run"


def round_work_scope(day_scope: str, round_number: int) -> str:
    """The work scope of a round's job task: the day's scope and the round; ``""`` stays ``""``
    (a ``fresh_job`` run: the run's own work; the round's task id still tells the rounds apart)."""
    return f"{day_scope}/r{round_number}" if day_scope else ""


def round_group_id(round_number: int) -> str:
    """The task group of round ``round_number`` in the pipelines (``round_1``...)."""
    return f"round_{round_number}"


@dataclass(frozen=True)
class RoundSelection:
    """What a round picked (JSON-able through :meth:`to_dict`, it travels as XCom).

    :param round: The round (1-based).
    :param action: :func:`round_action`'s answer.
    :param candidates: Rows the previous round left in the errors table.
    :param retryable: Those of them with a retryable status (the round's rows when it runs).
    :param statuses: The retryable statuses, as stored.
    :param table: ``bq://`` of the round's requests table (None when it does not run).
    :param fingerprint: Its content fingerprint.
    """

    round: int
    action: RoundAction
    candidates: int
    retryable: int
    statuses: tuple[str, ...] = ()
    table: str | None = None
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["statuses"] = list(self.statuses)
        return data


def pick_round(
    client: bigquery.Client,
    *,
    errors: TableRef,
    logical_date: dt.date,
    round_number: int,
    max_row_retries: int,
    policy: RowRetryPolicy | None = None,
) -> RoundSelection:
    """Whether round ``round_number`` runs, from the statuses the previous round left (a few rows).

    A disabled round reads nothing. The selection names no table yet (the input kind builds it).
    """
    policy = policy or RowRetryPolicy()
    if round_action(round_number, max_row_retries, retryable=1) == "disabled":
        return RoundSelection(round_number, "disabled", candidates=0, retryable=0)
    rows = sql.query_rows(
        client,
        sql.render("round_candidates.sql", errors=errors.sql),
        logical_date=logical_date,
        previous_round=round_number - 1,
    )
    statuses = policy.retryable_statuses(row["status"] for row in rows)
    candidates = sum(row["n"] for row in rows)
    retryable = sum(row["n"] for row in rows if row["status"] in statuses)
    action = round_action(round_number, max_row_retries, retryable)
    return RoundSelection(
        round_number, action, candidates, retryable, tuple(statuses) if action == "run" else ()
    )


def select_round_requests(
    client: bigquery.Client,
    *,
    day_table: TableRef,
    errors: TableRef,
    logical_date: dt.date,
    round_number: int,
    max_row_retries: int,
    run_tag: str,
    policy: RowRetryPolicy | None = None,
    key_column: str = "key",
    expires: dt.timedelta | None = None,
) -> RoundSelection:
    """Pick round ``round_number``'s rows and build its requests table (when it runs).

    :param day_table: Required. The day's requests table (every round reads its requests there).
    :param errors: Required. The errors table.
    :param run_tag: Required. Names the run-scoped build table (concurrent runs never share it).
    :return: The selection; ``table`` is the round's published requests table when it runs.
    """
    from gemini_batch.pipeline.builder import keep_by_content

    selection = pick_round(
        client, errors=errors, logical_date=logical_date, round_number=round_number,
        max_row_retries=max_row_retries, policy=policy,
    )  # fmt: skip
    if selection.action != "run":
        return selection
    previous = round_number - 1
    built = day_table.sibling(f"{day_table.table}_r{round_number}_build_{run_tag}")
    sql.run(
        client,
        sql.render(
            "round_requests.sql",
            destination=built.sql,
            requests=day_table.sql,
            errors=errors.sql,
            key=sql.ident(key_column),
        ),
        logical_date=logical_date,
        previous_round=previous,
        statuses=list(selection.statuses),
    )
    table, fingerprint = keep_by_content(
        client, built, name=f"{day_table.table}_r{round_number}", expires=expires
    )
    return replace(selection, table=table.uri, fingerprint=fingerprint)


def day_failures_message(
    *, day: str, answered: int, failed: dict[str, int], max_failed_ratio: float, errors: str
) -> str | None:
    """Why a day ends failed after its last round, or None when its failed rows are within the limit.

    The limit (the pipelines' ``max_failed_ratio``) applies to the day once its rounds are done, not
    to its first jobs: rows a round may still answer are not held against the day.

    :param answered: the day's rows in the results table.
    :param failed: the day's rows in the errors table, per status.
    :param errors: the errors table, named in the message.
    """
    from gemini_batch.states import Counts

    counts = Counts(succeeded=answered, failed=sum(failed.values()), total=answered + sum(failed.values()))
    if counts.failed_ratio <= max_failed_ratio:
        return None
    statuses = ", ".join(f"{status} {n:,}" for status, n in sorted(failed.items(), key=lambda kv: -kv[1]))
    return (
        f"{counts.failed:,} of {counts.total:,} rows of {day} still failed after the retry rounds "
        f"({counts.failed_ratio:.1%}, above max_failed_ratio={max_failed_ratio}): {statuses}. The answered "
        f"rows are loaded; the failed ones are in {errors} with their status and round. Fix the input "
        "for permanent errors and re-run the day, or raise GEMINI_BATCH_MAX_FAILED_RATIO."
    )
