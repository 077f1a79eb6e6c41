"""create_plan.py: the plan of a create, and a fingerprint that stays stable across releases."""

from __future__ import annotations

from typing import Any

import pytest

from gemini_batch.create_plan import CreateArguments, plan_create
from gemini_batch.identity import WorkIdentity

IDENTITY = WorkIdentity("dag", "task", "manual__2026-01-01")
INLINE = [{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}]


def plan(**kwargs: Any):
    kwargs.setdefault("src", "bq://p.d.t")
    kwargs.setdefault("model", "gemini-2.5-flash")
    identity = kwargs.pop("identity", IDENTITY)
    return plan_create(CreateArguments(**kwargs), identity)


@pytest.mark.parametrize(
    ("kwargs", "fingerprint"),
    [
        ({"model": " gemini-2.5-flash "}, "3038505bbd1681dd"),
        (
            {
                "src": "gs://bkt/a.jsonl",
                "dest": "gs://out-bkt/x",
                "create_config": {"http_options": {"timeout": 5}, "display_name": "n"},
            },
            "8e20bec74c70bb65",
        ),
        ({"src": INLINE, "model": "m"}, "ec5389a033459b08"),
        ({"model": "gemini-embedding-001"}, "41bbc28e5e8240fe"),
    ],
)
def test_the_fingerprint_is_the_one_earlier_releases_recorded(kwargs, fingerprint):
    """Values computed by the operator before create_plan.py existed: a change would orphan in-flight jobs."""
    assert plan(**kwargs).fingerprint == fingerprint


@pytest.mark.parametrize(
    "changed",
    [
        {"model": "gemini-2.0-flash"},
        {"src": "bq://p.d.u"},
        {"dest": "bq://p.out"},
        {"create_config": {"http_options": {"timeout": 5}}},
        {"create_config": {"dest": "bq://p.out"}},
    ],
)
def test_what_makes_the_results_changes_the_fingerprint(changed):
    assert plan(**changed).fingerprint != plan().fingerprint


@pytest.mark.parametrize(
    "same",
    [
        {"display_name": "nightly"},
        {"create_config": {"display_name": "nightly"}},
        {"labels": {"team": "ml"}},
        {"identity": WorkIdentity("dag", "task", "other_run")},
        {"model": "gemini-2.5-flash  "},
    ],
)
def test_names_labels_and_the_identity_leave_the_fingerprint_alone(same):
    assert plan(**same).fingerprint == plan().fingerprint


def test_the_plan_carries_names_labels_and_a_config_without_dest_or_display_name():
    planned = plan(
        create_config={"dest": "bq://p.out", "display_name": "cfg", "http_options": {"timeout": 5}},
        labels={"team": "ml"},
    )
    assert planned.backend == "vertex"
    assert planned.model == "gemini-2.5-flash"
    assert planned.dest == "bq://p.out"
    assert planned.display_name == f"cfg {IDENTITY.tag}"
    assert planned.create_config == {"http_options": {"timeout": 5}}
    assert planned.labels["team"] == "ml" and planned.labels["airflow-work-id"] == IDENTITY.work_id


@pytest.mark.parametrize(
    ("kwargs", "submission", "expected"),
    [
        ({}, 1, f"bq://p.d.t_predictions_{IDENTITY.work_id}"),
        ({}, 2, f"bq://p.d.t_predictions_{IDENTITY.work_id}_2"),
        ({"dest": "bq://p.out"}, 3, "bq://p.out"),
        ({"src": INLINE}, 2, None),
    ],
)
def test_each_submission_writes_to_a_fresh_default_dest(kwargs, submission, expected):
    assert plan(**kwargs).destination(submission) == expected
