"""identity.py: the work identity never includes the try number; jobs carry it."""

from __future__ import annotations

import re
import types as pytypes

import pytest
from google.genai import types

from gemini_batch.exceptions import GeminiBatchConfigError
from gemini_batch.identity import (
    WORK_ID_LABEL,
    WorkIdentity,
    label_key_problem,
    label_value,
    label_value_problem,
    validate_labels,
)
from tests.gemini_batch.fakes import FakeTI


def test_work_id_is_the_same_on_every_try():
    first = WorkIdentity.from_context({"ti": FakeTI(try_number=1)})
    retry = WorkIdentity.from_context({"ti": FakeTI(try_number=4)})
    assert first == retry
    assert first.work_id == retry.work_id
    assert re.fullmatch(r"[0-9a-f]{16}", first.work_id)


@pytest.mark.parametrize(
    "other",
    [
        WorkIdentity("dag", "task", "manual__2026-01-02", -1),
        WorkIdentity("dag", "task", "manual__2026-01-01", 0),
        WorkIdentity("dag", "other", "manual__2026-01-01", -1),
        WorkIdentity("other", "task", "manual__2026-01-01", -1),
    ],
)
def test_work_id_differs_per_run_task_dag_and_map_index(other):
    assert WorkIdentity("dag", "task", "manual__2026-01-01", -1).work_id != other.work_id


SCOPED = WorkIdentity("dag", "task", "scheduled__2026-01-02", 1, scope="2026-01-01/abc")


@pytest.mark.parametrize(
    ("other", "same"),
    [
        (WorkIdentity("dag", "task", "manual__2026-01-02", 1, scope="2026-01-01/abc"), True),
        (WorkIdentity("dag", "task", "backfill__2026-01-01", 1, scope="2026-01-01/abc"), True),
        (WorkIdentity("dag", "task", "scheduled__2026-01-02", 1, scope="2026-01-01/abd"), False),
        (WorkIdentity("dag", "task", "scheduled__2026-01-02", 2, scope="2026-01-01/abc"), False),
        (WorkIdentity("dag", "other", "scheduled__2026-01-02", 1, scope="2026-01-01/abc"), False),
        (WorkIdentity("other", "task", "scheduled__2026-01-02", 1, scope="2026-01-01/abc"), False),
        (WorkIdentity("dag", "task", "scheduled__2026-01-02", 1), False),
        # a run id spelled like the scope does not name the scope's work
        (WorkIdentity("dag", "task", "2026-01-01/abc", 1), False),
    ],
)
def test_a_scope_replaces_the_run_in_the_work_id(other, same):
    assert (other.work_id == SCOPED.work_id) is same
    assert other.owns(types.BatchJob(display_name=SCOPED.display_name())) is same


def test_from_context_takes_the_scope_and_keeps_the_run():
    ti = FakeTI()
    scoped = WorkIdentity.from_context({"ti": ti}, scope="2026-01-01/abc")
    assert (scoped.run_id, scoped.scope) == (ti.run_id, "2026-01-01/abc")
    assert "scope=2026-01-01/abc" in scoped.describe()
    assert WorkIdentity.from_context({"ti": ti}, scope="") == WorkIdentity.from_context({"ti": ti})


def test_map_index_none_means_unmapped():
    assert WorkIdentity.from_context({"ti": FakeTI(map_index=None)}).map_index == -1


def test_display_name_carries_the_tag_and_fits_vertex_limits():
    identity = WorkIdentity("dag", "task", "run", 3)
    assert identity.display_name() == f"dag.task[3] awid-{identity.work_id}"
    assert identity.display_name("nightly scoring") == f"nightly scoring awid-{identity.work_id}"
    long = identity.display_name("x" * 500)
    assert len(long) == 128
    assert long.endswith(identity.tag)


def test_owns_only_jobs_with_its_tag():
    identity = WorkIdentity("dag", "task", "run")
    other = WorkIdentity("dag", "task", "run2")
    assert identity.owns(types.BatchJob(display_name=identity.display_name("anything")))
    assert not identity.owns(types.BatchJob(display_name=other.display_name()))
    assert not identity.owns(types.BatchJob(display_name=None))


def test_labels_add_the_work_id_and_are_valid_vertex_labels():
    identity = WorkIdentity("My DAG!", "Task.With.Dots", "run")
    labels = identity.labels({"team": "ml"})
    assert labels[WORK_ID_LABEL] == identity.work_id
    assert labels["team"] == "ml"
    assert validate_labels({k: v for k, v in labels.items() if k != WORK_ID_LABEL})
    assert identity.vertex_list_filter() == f'labels.airflow-work-id="{identity.work_id}"'


def test_label_value_sanitises():
    assert label_value("My DAG!") == "my-dag"
    assert len(label_value("a" * 100)) == 63


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"Team": "ml"}, "Label key 'Team' is invalid"),
        ({"team": "ML"}, "Try 'ml'"),
        ({"team": "x" * 64}, "at most 63"),
        ({WORK_ID_LABEL: "x"}, "set by the operator"),
        ({f"k{i}": "v" for i in range(64)}, "allows 64 per job"),
        (["team"], "must be a dict"),
    ],
)
def test_bad_labels_name_the_rule(labels, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        validate_labels(labels)
    assert message in str(error.value)


def test_no_labels():
    assert validate_labels(None) == {}


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("team", "ml-ops_2", None),
        ("a", "", None),
        ("k" * 63, "v" * 63, None),
        ("k" * 64, "v", "label key 'kkk"),
        ("team", "v" * 64, "is 64 characters long; at most 63 are allowed"),
        ("Team", "ml", "label keys start with a lowercase letter"),
        ("1team", "ml", "label keys start with a lowercase letter"),
        ("_team", "ml", "label keys start with a lowercase letter"),
        ("team", "ML", "Try 'ml'"),
        ("team", "a.b", "label values hold at most 63 lowercase letters"),
        ("team", "é", "label values hold"),  # ASCII only, as the service and the local stack check
        ("téam", "x", "label key 'téam' is invalid"),
        ("team", 5, "it must be a string, got int"),
        ("team", "ml\n", "label values hold"),  # a trailing newline is no end of the value
        ("team\n", "ml", "label key 'team\\n' is invalid"),
        (5, "x", "label key 5 is invalid: it must be a string, got int"),
    ],
)
def test_one_label_rule_for_keys_and_values(key, value, problem):
    found = label_key_problem(key) or label_value_problem(str(key), value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_request_labels_follow_the_same_rule_as_job_labels():
    from gemini_batch.pipeline.request_shape import check_request

    for labels in ({"Team": "ml"}, {"team": "ML"}, {"team": "x" * 64}, {"team": "é"}):
        request = {"contents": [{"parts": [{"text": "hi"}]}], "labels": labels}
        with pytest.raises(GeminiBatchConfigError) as error:
            validate_labels(labels)
        assert [f"request.labels: {str(error.value)[0].lower()}{str(error.value)[1:-1]}"] == check_request(
            request
        )


# --- Edges that pin each comparison and message (mutation testing) ---


def test_a_ti_without_map_index_is_unmapped():
    ti = pytypes.SimpleNamespace(dag_id="dag", task_id="task", run_id="run")
    assert WorkIdentity.from_context({"ti": ti}) == WorkIdentity("dag", "task", "run", -1)


def test_owns_a_job_without_display_name_attribute_is_false():
    assert not WorkIdentity("dag", "task", "run").owns(object())


@pytest.mark.parametrize(
    ("map_index", "display", "described"),
    [
        (-1, "dag.task awid-", "dag_id=dag, task_id=task, run_id=run"),
        (0, "dag.task[0] awid-", "dag_id=dag, task_id=task, run_id=run, map_index=0"),
        (1, "dag.task[1] awid-", "dag_id=dag, task_id=task, run_id=run, map_index=1"),
    ],
)
def test_map_index_zero_is_a_mapped_task(map_index, display, described):
    identity = WorkIdentity("dag", "task", "run", map_index)
    assert identity.display_name() == display + identity.work_id
    assert identity.describe() == described


def test_labels_name_dag_and_task_readably_unless_the_user_did():
    identity = WorkIdentity("My DAG!", "Task.With.Dots", "run")
    assert identity.labels() == {
        "airflow-dag": "my-dag",
        "airflow-task": "task-with-dots",
        WORK_ID_LABEL: identity.work_id,
    }
    mine = identity.labels({"airflow-dag": "mine", "airflow-task": "t", WORK_ID_LABEL: "forged"})
    assert mine == {"airflow-dag": "mine", "airflow-task": "t", WORK_ID_LABEL: identity.work_id}


def test_a_none_label_value_is_the_empty_value():
    assert validate_labels({"team": None, "n": 5}) == {"team": "", "n": "5"}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["team"], "labels must be a dict of str to str, got list."),
        (
            {f"k{i}": "v" for i in range(64)},
            "64 labels given; Vertex AI allows 64 per job and the operator adds "
            "airflow-dag, airflow-task, airflow-work-id: keep at most 61 of yours.",
        ),
        (
            {**{f"k{i}": "v" for i in range(62)}, "airflow-dag": "d", "airflow-task": "t"},
            "64 labels given; Vertex AI allows 64 per job and the operator adds "
            "airflow-dag, airflow-task, airflow-work-id: keep at most 63 of yours.",
        ),
    ],
)
def test_bad_label_sets_get_the_whole_message(labels, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        validate_labels(labels)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        # 63 characters: not too long, so the rule is named and a fix suggested.
        (
            "A" * 63,
            "label k='"
            + "A" * 63
            + "' is invalid: Vertex AI label values hold at most 63 lowercase letters, "
            "digits, '_' or '-'. Try '" + "a" * 63 + "'",
        ),
        (
            "a" * 64,
            "label k='" + "a" * 64 + "' is invalid: it is 64 characters long; at most 63 are allowed",
        ),
        (
            "-A b-",
            "label k='-A b-' is invalid: Vertex AI label values hold at most 63 lowercase letters, "
            "digits, '_' or '-'. Try 'a-b'",
        ),
    ],
)
def test_value_problems_are_whole_sentences(value, problem):
    assert label_value_problem("k", value) == problem
