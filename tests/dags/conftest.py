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
    return bag.dags[dag_id]


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

    def backfill(self, dag_id: str, from_day: str, to_day: str) -> list[Any]:
        return backfill(dag_id, from_day, to_day)

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


def register_dag(dag: Any) -> None:
    """Write a parsed DAG into the metadata DB, as the DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


def run_existing_dagrun(dag: Any, run_id: str) -> Any:
    """Run every task of an existing DagRun in-process, as ``dag.test`` runs the one it creates.

    The loop of ``DAG.test`` (Airflow 3.3) for a run made elsewhere, e.g. by a backfill: mark
    schedulable tasks scheduled, run them with ``_run_task`` (a deferred task's trigger in
    line), until the run is finished.
    """
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag.dag_id, run_id=run_id).one()
        run.dag = scheduler_dag
        run.state = DagRunState.RUNNING
        session.commit()
        while run.state == DagRunState.RUNNING:
            session.expire_all()
            schedulable, _ = run.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            for ti in [
                t for t in run.get_task_instances(session=session) if t.state == TaskInstanceState.SCHEDULED
            ]:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
    with create_session() as session:
        return session.query(DagRun).filter_by(dag_id=dag.dag_id, run_id=run_id).one()


def clear_and_rerun(dag_id: str, run_id: str) -> Any:
    """Clear a finished DagRun (the UI's "Clear") and run it again in-process: same run id, new tries."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    dag = parse_dag(dag_id)
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with create_session() as session:
        scheduler_dag.clear(run_id=run_id, dag_run_state=DagRunState.QUEUED, session=session, dry_run=False)
    return run_existing_dagrun(dag, run_id)


def backfill(dag_id: str, from_day: str, to_day: str) -> list[Any]:
    """``airflow backfill create --dag-id ... --from-date ... --to-date ...``, then run its DagRuns.

    The runs are made by the backfill code the CLI and REST API call, so their logical dates and
    data intervals are exactly a real backfill's; they are then run in-process, oldest first.
    """
    from airflow.models.backfill import ReprocessBehavior, _create_backfill
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    dag = parse_dag(dag_id)
    register_dag(dag)
    day = lambda text: dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)  # noqa: E731
    created = _create_backfill(
        dag_id=dag_id, from_date=day(from_day), to_date=day(to_day), max_active_runs=3, reverse=False,
        dag_run_conf=None, triggering_user_name="test", reprocess_behavior=ReprocessBehavior.COMPLETED,
    )  # fmt: skip
    with create_session() as session:
        run_ids = [
            r.run_id
            for r in session.query(DagRun)
            .filter_by(dag_id=dag_id, backfill_id=created.id)
            .order_by(DagRun.logical_date)
        ]
    return [run_existing_dagrun(dag, run_id) for run_id in run_ids]


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
