"""settings.py: every setting checked against its rule, each problem naming its Variable."""

from __future__ import annotations

import pytest

from gemini_batch.pipeline.settings import PipelineSettings, variable_name


def test_the_defaults_of_the_local_stack_are_valid() -> None:
    assert PipelineSettings("local-project").problems() == []


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"project": "p", "bucket": "b-ok"}, "gemini_batch_project"),  # too short
        ({"project": "My-Project", "bucket": "b-ok"}, "gemini_batch_project"),
        ({"project": "my_project", "bucket": "b-ok"}, "gemini_batch_project"),
        ({"project": "my-project-", "bucket": "b-ok"}, "gemini_batch_project"),
        ({"dataset": "gemini-batch"}, "gemini_batch_dataset"),
        ({"dataset": "proj.gemini_batch"}, "gemini_batch_dataset"),
        ({"bucket": "gs://my-bucket"}, "gemini_batch_bucket"),
        ({"bucket": "My-Bucket"}, "gemini_batch_bucket"),
        ({"bucket": "ab"}, "gemini_batch_bucket"),
        ({"model": "models/gemini-2.5-flash"}, "gemini_batch_model"),
        ({"model": "gemini 2.5 flash"}, "gemini_batch_model"),
        ({"model": "Gemini-2.5-Flash"}, "gemini_batch_model"),
        ({"location": "us central1"}, "gemini_batch_location"),
        ({"location": "US-CENTRAL1"}, "gemini_batch_location"),
        ({"prompts_table": "ds.prompts"}, "gemini_batch_prompts_table"),
        ({"results_table": ""}, "gemini_batch_results_table"),
        ({"errors_table": "errors table"}, "gemini_batch_errors_table"),
    ],
)
def test_each_bad_setting_names_its_variable_and_an_example(overrides: dict, variable: str) -> None:
    (problem,) = PipelineSettings(**{"project": "local-project", **overrides}).problems()
    assert problem.startswith(f"Variable {variable}")
    assert "Set it to e.g." in problem


@pytest.mark.parametrize(
    "overrides",
    [
        {"project": "example.com:my-project", "bucket": "b-ok"},
        {"project": "a12345"},
        {"bucket": "my_bucket-1"},
        {"bucket": "data.example.com"},
        {"model": "gemini-2.0-flash-001"},
        {"location": "global"},
        {"location": "europe-west4"},
        {"location": None},
        {"results_table": "answers-2026", "errors_table": "failed_rows"},
    ],
)
def test_settings_the_services_accept_pass(overrides: dict) -> None:
    assert PipelineSettings(**{"project": "local-project", **overrides}).problems() == []


def test_the_project_message_names_every_place_it_comes_from() -> None:
    (problem,) = PipelineSettings("P", bucket="b-ok").problems()
    assert "GOOGLE_CLOUD_PROJECT" in problem and "connection" in problem


def test_results_and_errors_must_be_two_tables() -> None:
    (problem,) = PipelineSettings("local-project", results_table="out", errors_table="out").problems()
    assert "gemini_batch_results_table" in problem and "gemini_batch_errors_table" in problem


def test_every_problem_is_reported_at_once() -> None:
    settings = PipelineSettings("local-project", bucket="gs://x", model="models/m", location="mars")
    assert [p.split()[1] for p in settings.problems()] == [
        "gemini_batch_bucket",
        "gemini_batch_model",
        "gemini_batch_location",
    ]


def test_variable_name() -> None:
    assert variable_name("model") == "gemini_batch_model"
