"""The test harness itself: ``dag.test()`` runs a DAG with a deferred task to success in-process.

If this fails, every other integration test that runs a DAG fails for the same reason: read
this one first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytestmark = pytest.mark.integration

RESUMED = "resumed-after-trigger"


def _build_dag() -> Any:
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.sdk import DAG, BaseOperator, task, timezone

    class DeferOnce(BaseOperator):
        """Defers to a one-second DateTimeTrigger, then returns a marker from the resume method."""

        def execute(self, context: Any) -> None:
            moment = timezone.utcnow() + dt.timedelta(seconds=1)
            self.defer(trigger=DateTimeTrigger(moment=moment), method_name="resume")

        def resume(self, context: Any, event: Any = None) -> str:
            return RESUMED

    with DAG(
        dag_id="test_airflow_harness",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
    ) as dag:
        deferred = DeferOnce(task_id="defer_once")
        sensor = TimeDeltaSensor(task_id="time_delta", delta=dt.timedelta(seconds=2), deferrable=True)

        @task
        def check(value: str) -> str:
            assert value == RESUMED
            return value

        [deferred, sensor] >> check(deferred.output)
    return dag


def test_dag_test_runs_a_deferred_task_to_success(run_dag: Any) -> None:
    dag = _build_dag()

    dag_run = run_dag(dag)

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", states
    assert states == {"defer_once": "success", "time_delta": "success", "check": "success"}
    resumed = dag_run.get_task_instance("defer_once").xcom_pull(task_ids="defer_once")
    assert resumed == RESUMED
