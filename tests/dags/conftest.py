"""Fixtures for running the project's DAGs end to end against the local stack.

``pipeline`` gives each test its own dataset and bucket (through the ``gemini_batch_dataset`` and
``gemini_batch_bucket`` Variables, set in the environment), a fast poll interval, and the DAGs
parsed from dags/ with those settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


def parse_dag(dag_id: str) -> Any:
    """Parse ``dags/<dag_id>.py`` as the DAG processor does and return the DAG."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


@dataclass
class Pipeline:
    """One test's pipeline environment: its dataset, bucket and clients, and a DAG runner."""

    project: str
    dataset: str
    bucket: str
    bq: Any
    gcs: Any
    admin: Any
    run: Callable[..., Any]

    def table(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def rows(self, name: str, date: str | None = None) -> list[dict[str, Any]]:
        where = f" WHERE logical_date = DATE '{date}'" if date else ""
        query = f"SELECT * FROM `{self.table(name)}`{where} ORDER BY logical_date, key"
        return [dict(row.items()) for row in self.bq.query(query).result()]

    def run_dag(self, dag_id: str, day: str | None = None, **conf: Any) -> Any:
        """Run one DAG run in-process (``dag.test``) that processes ``day``; return the DagRun.

        ``dag.test`` makes a manual run, whose data interval is the one that ends at its logical
        date (as Airflow infers for manual runs): the run at ``day + 1`` processes ``day``, exactly
        the interval that the scheduled or backfill run of ``day`` has.
        """
        dag = parse_dag(dag_id)
        kwargs: dict[str, Any] = {}
        if day is not None:
            start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
            kwargs["logical_date"] = start + dt.timedelta(days=1)
        if conf:
            kwargs["run_conf"] = conf
        return self.run(dag, **kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {
        ti.task_id + ("" if ti.map_index < 0 else f"[{ti.map_index}]"): ti.state
        for ti in dag_run.get_task_instances()
    }


@pytest.fixture
def pipeline(
    local_stack: Any,
    stack_admin: Any,
    bq_client: Any,
    gcs_client: Any,
    bq_dataset: Any,
    gcs_bucket: Any,
    run_dag: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pipeline]:
    monkeypatch.setenv("AIRFLOW_VAR_GEMINI_BATCH_DATASET", bq_dataset.dataset_id)
    monkeypatch.setenv("AIRFLOW_VAR_GEMINI_BATCH_BUCKET", gcs_bucket.name)
    monkeypatch.setenv("GEMINI_BATCH_POLL_INTERVAL", "0.5")
    yield Pipeline(
        project=local_stack.project,
        dataset=bq_dataset.dataset_id,
        bucket=gcs_bucket.name,
        bq=bq_client,
        gcs=gcs_client,
        admin=stack_admin,
        run=run_dag,
    )
