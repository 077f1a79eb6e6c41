"""Every DAG in dags/ imports cleanly, cheaply (no network, no Variable at parse time), and follows
the project's rules: owners and tags, retries on every job task, the results Asset wiring."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from .conftest import DAGS

PIPELINES = ("gemini_batch_bigquery", "gemini_batch_gcs", "gemini_batch_adhoc")
EXPECTED = {
    *PIPELINES,
    "gemini_batch_embeddings",
    "gemini_batch_housekeeping",
    "gemini_batch_results_summary",
    "gemini_batch_cancel_sweep",
}


@pytest.fixture(scope="module")
def dagbag() -> Any:
    """dags/ parsed with the network and Variables cut off: parsing must need neither."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import Variable

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a DAG file opened a network connection while parsing: {args}")

    def no_variable(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a DAG file read a Variable while parsing: {args}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", no_network)
        patch.setattr(Variable, "get", no_variable)
        return DagBag(dag_folder=str(DAGS))


def test_parsing_imports_no_google_client_and_no_numpy() -> None:
    """Cheap to parse: in a fresh interpreter, parsing every DAG file loads none of the heavy clients."""
    import subprocess
    import sys

    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; bag = DagBag(dag_folder=sys.argv[1]); "
        "assert not bag.import_errors, bag.import_errors; "
        "print(sorted(m for m in ('google.genai', 'google.cloud.bigquery', 'google.cloud.storage', 'numpy') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(DAGS)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_has_tags_owner_and_docs(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert "gemini-batch" in dag.tags
    assert dag.doc_md
    assert {task.owner for task in dag.tasks} == {"data-eng"}


def _job_tasks(dag: Any) -> list[Any]:
    """Tasks that talk to the batch services (the gemini_batch operators, mapped or not)."""
    return [
        task for task in dag.tasks
        if getattr(task, "operator_class", type(task)).__module__.startswith("gemini_batch.")
    ]  # fmt: skip


@pytest.mark.parametrize(
    "dag_id", sorted(EXPECTED - {"gemini_batch_results_summary", "gemini_batch_cancel_sweep"})
)
def test_every_job_task_has_retries(dagbag: Any, dag_id: str) -> None:
    jobs = _job_tasks(dagbag.dags[dag_id])
    assert jobs, f"{dag_id} has no job task"
    for task in jobs:
        assert task.retries >= 3, f"{dag_id}.{task.task_id} has {task.retries} retries"


@pytest.mark.parametrize("dag_id", PIPELINES)
def test_pipelines_wait_deferrably_and_produce_the_results_and_costs_assets(dagbag: Any, dag_id: str) -> None:
    from gemini_batch.pipeline.dag_config import COSTS_ASSET, RESULTS_ASSET

    dag = dagbag.dags[dag_id]
    run_job = dag.get_task("run_job")
    assert getattr(run_job, "operator_class", type(run_job)).__name__ == "GeminiBatchCreateJobOperator"
    partial = getattr(run_job, "partial_kwargs", None) or {"deferrable": run_job.deferrable}
    assert partial["deferrable"] is True
    assert [outlet.name for outlet in dag.get_task("load_results").outlets] == [
        RESULTS_ASSET.name,
        COSTS_ASSET.name,
    ]


@pytest.mark.parametrize("dag_id", PIPELINES)
def test_pipelines_pass_their_budget_param_to_the_job_task(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    param = dag.params.get_param("max_estimated_cost")
    assert param.value is None  # no budget unless the run sets one
    assert param.schema["type"] == ["null", "number"] and param.schema["minimum"] == 0
    run_job = dag.get_task("run_job")
    partial = getattr(run_job, "partial_kwargs", None) or {"max_estimated_cost": run_job.max_estimated_cost}
    assert partial["max_estimated_cost"] == "{{ params.get('max_estimated_cost') }}"


def test_the_embeddings_dag_embeds_with_a_deferrable_job_task_and_produces_the_embeddings_and_costs_assets(
    dagbag: Any,
) -> None:
    from gemini_batch.job_task import task_of
    from gemini_batch.pipeline.dag_config import COSTS_ASSET, EMBEDDINGS_ASSET

    dag = dagbag.dags["gemini_batch_embeddings"]
    run_job = dag.get_task("run_job")
    assert run_job.partial_kwargs["deferrable"] is True
    assert run_job.partial_kwargs["max_estimated_cost"] == "{{ params.get('max_estimated_cost') }}"
    assert task_of(dag.params["model"]) == "embed"
    assert [outlet.name for outlet in dag.get_task("load_embeddings").outlets] == [
        EMBEDDINGS_ASSET.name,
        COSTS_ASSET.name,
    ]


def test_daily_pipelines_use_day_intervals_fit_for_backfills(dagbag: Any) -> None:
    for dag_id in ("gemini_batch_bigquery", "gemini_batch_gcs", "gemini_batch_embeddings"):
        timetable = dagbag.dags[dag_id].timetable
        assert type(timetable).__name__ == "CronDataIntervalTimetable", dag_id


def test_summary_dag_is_scheduled_on_the_results_or_the_costs_asset(dagbag: Any) -> None:
    from gemini_batch.pipeline.dag_config import COSTS_ASSET, RESULTS_ASSET

    dag = dagbag.dags["gemini_batch_results_summary"]
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"  # either one: an embeddings load emits only costs
    assert list(condition.objects) == [RESULTS_ASSET, COSTS_ASSET]


def _event(day: str) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(extra={"logical_date": day})


@pytest.mark.parametrize(
    ("events", "results_days", "costs_days"),
    [
        ({}, None, None),  # a manual run: every day of both
        ({"results": ["2026-01-02", "2026-01-01"], "costs": ["2026-01-02"]}, ["2026-01-01", "2026-01-02"],
         ["2026-01-02"]),
        ({"costs": ["2026-05-01"]}, [], ["2026-05-01"]),  # an embeddings load: its costs only
    ],
)  # fmt: skip
def test_the_summary_summarizes_the_days_each_assets_events_name(
    events: dict, results_days: Any, costs_days: Any
) -> None:
    from gemini_batch_results_summary import event_days

    from gemini_batch.pipeline.dag_config import COSTS_ASSET, RESULTS_ASSET

    assets = {"results": RESULTS_ASSET, "costs": COSTS_ASSET}
    triggering = {assets[name]: [_event(day) for day in days] for name, days in events.items()}
    assert event_days(triggering, RESULTS_ASSET) == results_days
    assert event_days(triggering, COSTS_ASSET) == costs_days


def test_adhoc_form_has_the_documented_fields(dagbag: Any) -> None:
    params = dagbag.dags["gemini_batch_adhoc"].params
    assert {"model", "backend", "prompts", "input_file", "gemini_input", "temperature"} <= set(params.keys())
    assert params.get_param("backend").schema["enum"] == ["gemini_api", "vertex"]


@pytest.mark.parametrize(
    ("dag_id", "paused"),
    [
        ("gemini_batch_adhoc", False),  # manual only: the form works at once
        ("gemini_batch_results_summary", False),  # runs only on the results and costs Assets
        ("gemini_batch_bigquery", True),  # scheduled: the user decides when it starts
        ("gemini_batch_gcs", True),
        ("gemini_batch_embeddings", True),
        ("gemini_batch_housekeeping", True),  # deletes jobs: never on by itself
    ],
)
def test_only_dags_that_run_on_demand_start_unpaused(dagbag: Any, dag_id: str, paused: bool) -> None:
    assert dagbag.dags[dag_id].is_paused_upon_creation in ((None, True) if paused else (False,))


def test_adhoc_prompts_travel_as_a_staged_file_by_default(dagbag: Any) -> None:
    assert dagbag.dags["gemini_batch_adhoc"].params["gemini_input"] == "file"


def test_housekeeping_is_a_dry_run_by_default(dagbag: Any) -> None:
    params = dagbag.dags["gemini_batch_housekeeping"].params
    assert params["dry_run"] is True
    assert params["older_than_days"] == 30


def test_the_cancel_sweep_runs_on_its_own_every_few_minutes_on_both_backends(dagbag: Any) -> None:
    import datetime as dt

    dag = dagbag.dags["gemini_batch_cancel_sweep"]
    assert dt.timedelta(0) < dag.schedule <= dt.timedelta(minutes=5)
    assert dag.is_paused_upon_creation is False
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert sorted(dag.task_ids) == ["sweep_gemini_api", "sweep_vertex"]
    assert dag.params["cancel_orphans"] is False
