"""The batch jobs of recent runs, read from the XCom our job tasks leave in the metadata DB.

Invariants: one query per page (the job marker, the manifest and the failed manifest are outer
joins of one select), never a call to the batch service; only DAGs in ``dag_ids`` are read, so a
user sees the jobs of the DAGs they may read and no other. A job task is one that stored the job
link (:data:`gemini_batch.links.XCOM_KEY`): every operator and sensor that knows a job does, while
it is deferred too. Its manifest is its ``return_value`` (success) or the failed manifest.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gemini_batch.finish import FAILED_MANIFEST_XCOM_KEY
from gemini_batch.links import XCOM_KEY as LINK_XCOM_KEY
from gemini_batch.states import Counts

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

RETURN_VALUE_KEY = "return_value"


def decode_xcom(raw: Any) -> Any:
    """An XCom value as stored (a JSON text from ``serialize_value``, or JSON the DB decoded)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


@dataclass(frozen=True)
class JobRow:
    """One job task instance and what its XCom says about the job.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the job task.
    :param map_index: the mapped index (-1 when not mapped).
    :param ti_state: the task instance's state (``deferred`` while the job runs), or None.
    :param when: the task's start (else the XCom's time), for ordering and the per-day chart.
    :param link: the URL the job's extra link opens (links.py).
    :param manifest: the manifest once the job ended, else None.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    ti_state: str | None
    when: dt.datetime | None
    link: str | None
    manifest: dict[str, Any] | None

    @property
    def job_name(self) -> str | None:
        return (self.manifest or {}).get("job_name")

    @property
    def backend(self) -> str | None:
        return (self.manifest or {}).get("backend")

    @property
    def state(self) -> str:
        """The job's state from its manifest, else the task's (``deferred``: the job is running)."""
        return (self.manifest or {}).get("state") or (self.ti_state or "unknown")

    @property
    def console(self) -> str | None:
        """The job's page at Google (the AI Studio batch list for the Gemini API), else the stored link."""
        return (self.manifest or {}).get("console_url") or self.link

    @property
    def counts(self) -> Counts | None:
        return Counts.from_dict((self.manifest or {}).get("counts"))

    @property
    def total_tokens(self) -> int | None:
        tokens = (self.manifest or {}).get("tokens") or {}
        value = tokens.get("total")
        return int(value) if value is not None else None

    @property
    def estimated_cost_usd(self) -> float | None:
        """The job's cost at batch prices (costs.py), when its tokens are known (inline answers)."""
        value = (self.manifest or {}).get("estimated_cost_usd")
        return float(value) if value is not None else None


def progress(counts: Counts | None) -> tuple[int, int] | None:
    """(done %, failed %) of a job's rows for the progress bar, or None when the total is unknown."""
    if counts is None or counts.total <= 0:
        return None
    done = min(100, round(100 * counts.succeeded / counts.total))
    failed = min(100 - done, round(100 * counts.failed / counts.total))
    return done, failed


@dataclass(frozen=True)
class DayTotals:
    """Rows, failed rows, tokens and known estimated cost of the jobs that started on one day (UTC)."""

    day: dt.date
    jobs: int
    rows: int
    failed: int
    tokens: int
    cost_usd: float = 0.0


def per_day(rows: Iterable[JobRow]) -> list[DayTotals]:
    """Totals per UTC day, oldest first; jobs with no time are left out, unknown figures count 0."""
    totals: dict[dt.date, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for row in rows:
        if row.when is None:
            continue
        day = totals[row.when.astimezone(dt.timezone.utc).date() if row.when.tzinfo else row.when.date()]
        counts = row.counts
        day[0] += 1
        day[1] += counts.total if counts else 0
        day[2] += counts.failed if counts else 0
        day[3] += row.total_tokens or 0
        day[4] += row.estimated_cost_usd or 0.0
    return [DayTotals(day, *values) for day, values in sorted(totals.items())]


def _select(dag_ids: Sequence[str]):
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import and_, func, select
    from sqlalchemy.orm import aliased

    link = aliased(XComModel, name="link")
    done = aliased(XComModel, name="done")
    failed = aliased(XComModel, name="failed")

    def same_task(other: Any, key: str) -> Any:
        return and_(
            other.dag_run_id == link.dag_run_id,
            other.task_id == link.task_id,
            other.map_index == link.map_index,
            other.key == key,
        )

    when = func.coalesce(TaskInstance.start_date, link.timestamp)
    query = (
        select(
            link.dag_id,
            link.run_id,
            link.task_id,
            link.map_index,
            TaskInstance.state,
            when.label("when"),
            link.value.label("link"),
            done.value.label("done"),
            failed.value.label("failed"),
        )
        .outerjoin(done, same_task(done, RETURN_VALUE_KEY))
        .outerjoin(failed, same_task(failed, FAILED_MANIFEST_XCOM_KEY))
        .outerjoin(
            TaskInstance,
            and_(
                TaskInstance.dag_id == link.dag_id,
                TaskInstance.run_id == link.run_id,
                TaskInstance.task_id == link.task_id,
                TaskInstance.map_index == link.map_index,
            ),
        )
        .where(link.key == LINK_XCOM_KEY, link.dag_id.in_(list(dag_ids)))
    )
    return query, link, when


def _row(record: Any) -> JobRow:
    manifest = decode_xcom(record.done)
    if not (isinstance(manifest, dict) and "job_name" in manifest):
        manifest = decode_xcom(record.failed)
    link = decode_xcom(record.link)
    return JobRow(
        dag_id=record.dag_id,
        run_id=record.run_id,
        task_id=record.task_id,
        map_index=record.map_index,
        ti_state=str(record.state.value if hasattr(record.state, "value") else record.state)
        if record.state
        else None,
        when=record.when,
        link=link if isinstance(link, str) else None,
        manifest=manifest if isinstance(manifest, dict) and "job_name" in manifest else None,
    )


def recent_jobs(
    session: Session, *, dag_ids: Sequence[str], limit: int = 50, offset: int = 0
) -> list[JobRow]:
    """One page of job tasks, newest first (one query).

    :param session: a metadata DB session.
    :param dag_ids: the DAGs the user may read; nothing else is read.
    :param limit: page size.
    :param offset: rows to skip.
    """
    if not dag_ids:
        return []
    query, link, when = _select(dag_ids)
    query = query.order_by(when.desc(), link.task_id, link.map_index).limit(limit).offset(offset)
    return [_row(record) for record in session.execute(query)]


def one_job(
    session: Session, *, dag_ids: Sequence[str], dag_id: str, run_id: str, task_id: str, map_index: int
) -> JobRow | None:
    """The job of one task instance, or None (unknown, or a DAG the user may not read)."""
    if dag_id not in dag_ids:
        return None
    query, link, _ = _select([dag_id])
    query = query.where(link.run_id == run_id, link.task_id == task_id, link.map_index == map_index)
    record = session.execute(query).first()
    return _row(record) if record is not None else None
