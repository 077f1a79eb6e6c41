"""The pipeline DAGs fail before they pay: real Airflow (``dag.test``) against the local stack.

A typo'd model or a bad Variable ends the run after one try of the failing task (the job task has
retries=3), with zero jobs in the emulator's job list, a message that names the problem, and
nothing left behind (what the ad hoc DAG staged is deleted).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Pipeline, task_states

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> Any:
    from gemini_batch.preflight import clear_model_cache

    clear_model_cache()
    yield
    clear_model_cache()


def staged_of(dag_run: Any) -> list[str]:
    return dag_run.get_task_instance("prepare").xcom_pull(task_ids="prepare", key="staged")


@pytest.mark.parametrize(
    ("backend", "gemini_input"),
    [("vertex", "inline"), ("gemini_api", "file")],
    ids=["vertex-gcs", "gemini-file"],
)
def test_a_typod_model_makes_no_job_and_leaves_nothing_behind(
    pipeline: Pipeline, capsys: Any, backend: str, gemini_input: str
) -> None:
    dag_run = pipeline.run_dag(
        "gemini_batch_adhoc",
        backend=backend,
        gemini_input=gemini_input,
        prompts=["hi"],
        model="gemini-2.5-flsh",
    )

    states = task_states(dag_run)
    assert states["run_job"] == "failed", states
    assert dag_run.get_task_instance("run_job").try_number == 1
    assert pipeline.admin.jobs() == []
    assert "gemini-2.5-flsh" in capsys.readouterr().out
    staged = staged_of(dag_run)
    assert len(staged) == 1
    assert states["delete_unsubmitted_inputs"] == "success"
    cleanup = dag_run.get_task_instance("delete_unsubmitted_inputs").xcom_pull(
        task_ids="delete_unsubmitted_inputs"
    )
    assert cleanup == {"deleted": staged, "kept_for": []}
    if backend == "vertex":
        name = staged[0].removeprefix(f"gs://{pipeline.bucket}/")
        assert not pipeline.gcs.bucket(pipeline.bucket).blob(name).exists()
    else:
        import os

        from google import genai
        from google.genai import errors

        client = genai.Client(
            api_key=os.environ["GEMINI_API_KEY"],
            http_options={"base_url": os.environ["GOOGLE_GEMINI_BASE_URL"]},
        )
        with pytest.raises(errors.ClientError) as gone:
            client.files.get(name=staged[0])
        assert gone.value.code in (403, 404)


def test_a_successful_run_keeps_what_its_job_read(pipeline: Pipeline) -> None:
    dag_run = pipeline.run_dag("gemini_batch_adhoc", backend="vertex", prompts=["hi"])
    assert dag_run.state == "success", task_states(dag_run)
    (job,) = pipeline.admin.jobs()
    cleanup = dag_run.get_task_instance("delete_unsubmitted_inputs").xcom_pull(
        task_ids="delete_unsubmitted_inputs"
    )
    assert cleanup == {"deleted": [], "kept_for": [job["name"]]}


@pytest.mark.parametrize(
    ("dag_id", "first_task"),
    [
        ("gemini_batch_adhoc", "prepare"),
        ("gemini_batch_bigquery", "build_requests"),
        ("gemini_batch_gcs", "validate_input"),
    ],
)
@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("GEMINI_BATCH_MODEL", "models/gemini-2.5-flash", "Variable gemini_batch_model"),
        ("GEMINI_BATCH_LOCATION", "us central1", "Variable gemini_batch_location"),
        ("GEMINI_BATCH_DATASET", "no_such_dataset", "gemini_batch_dataset"),
    ],
)
def test_a_bad_variable_fails_the_first_task_at_once(
    pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    dag_id,
    first_task,
    variable,
    value,
    words,
) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{variable}", value)
    dag_run = pipeline.run_dag(dag_id)
    states = task_states(dag_run)
    assert states[first_task] == "failed", states
    assert dag_run.get_task_instance(first_task).try_number == 1
    assert pipeline.admin.jobs() == []
    assert words in capsys.readouterr().out


def test_a_bad_bucket_variable_fails_the_gcs_dag_at_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_GEMINI_BATCH_BUCKET", "no-such-bucket-anywhere")
    dag_run = pipeline.run_dag("gemini_batch_gcs")
    assert task_states(dag_run)["validate_input"] == "failed"
    assert dag_run.get_task_instance("validate_input").try_number == 1
    assert "Bucket gs://no-such-bucket-anywhere does not exist" in capsys.readouterr().out
