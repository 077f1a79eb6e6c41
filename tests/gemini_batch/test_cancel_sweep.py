"""cancel_sweep.py: cancel running jobs whose task instance a user ended; never a cleared or running one."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from gemini_batch import cancel_sweep
from gemini_batch.cancel_sweep import Owner, candidates, decide, find_owner, sweep, sweep_jobs, work_id_of
from gemini_batch.identity import WorkIdentity

WORK = WorkIdentity("daily", "batch", "scheduled__2026-01-02", -1)
MAPPED = WorkIdentity("daily", "batch", "scheduled__2026-01-02", 3)


def job(
    identity: WorkIdentity | None = WORK, base: str | None = None, state: str = "JOB_STATE_RUNNING", **kw: Any
):
    display_name = identity.display_name(base) if identity else (base or "somebody else's job")
    return SimpleNamespace(name=kw.pop("name", "jobs/1"), display_name=display_name, state=state, **kw)


class FakeTaskInstances:
    """``{(dag_id, task_id or None): {run_id: {key: state}}}`` and the manifests tries returned."""

    def __init__(
        self, states: Mapping[tuple[str, str | None], Any], returned: Mapping[Any, str] | None = None
    ):
        self._states = states
        self._returned = dict(returned or {})
        self.asked: list[tuple[str, str | None]] = []

    def states(self, dag_id: str, task_id: str | None) -> Mapping[str, Mapping[str, Any]]:
        self.asked.append((dag_id, task_id))
        return self._states.get((dag_id, task_id), {})

    def returned_job(self, identity: WorkIdentity) -> str | None:
        return self._returned.get(identity)


# ---------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("owner", "cancel_orphans", "action"),
    [
        (Owner("found", "failed", identity=WORK), False, "cancel"),
        (Owner("found", "success", identity=WORK), False, "cancel"),
        (Owner("found", "skipped", identity=WORK), False, "cancel"),
        (Owner("found", "upstream_failed", identity=WORK), False, "cancel"),
        (Owner("found", "removed", identity=WORK), False, "cancel"),
        (Owner("found", "success", handed_off=True, identity=WORK), False, "keep"),
        (Owner("found", "failed", handed_off=True, identity=WORK), False, "cancel"),
        (Owner("found", None, identity=WORK), True, "keep"),
        (Owner("found", "running"), True, "keep"),
        (Owner("found", "deferred"), True, "keep"),
        (Owner("found", "queued"), True, "keep"),
        (Owner("found", "scheduled"), True, "keep"),
        (Owner("found", "up_for_retry"), True, "keep"),
        (Owner("found", "up_for_reschedule"), True, "keep"),
        (Owner("found", "restarting"), True, "keep"),
        (Owner("found", "some_future_state"), True, "keep"),
        (Owner("absent"), False, "keep"),
        (Owner("absent"), True, "cancel"),
        (Owner("unknown"), True, "keep"),
    ],
)
def test_decide(owner, cancel_orphans, action):
    assert decide(owner, cancel_orphans=cancel_orphans).action == action


def test_the_reason_names_the_task_instance_and_its_state():
    reason = decide(Owner("found", "failed", identity=WORK)).reason
    assert WORK.describe() in reason and "failed" in reason
    assert "cleared" in decide(Owner("found", None, identity=WORK)).reason
    assert "deleted" in decide(Owner("absent"), cancel_orphans=True).reason


# ---------------------------------------------------------------------------- finding the owner


@pytest.mark.parametrize(
    ("the_job", "expected"),
    [
        (job(WORK), [("daily.batch", None), ("daily", "batch")]),
        (job(MAPPED), [("daily.batch", None), ("daily", "batch")]),
        (
            job(WorkIdentity("a.b", "g.t", "r")),
            [("a.b.g.t", None), ("a", "b.g.t"), ("a.b", "g.t"), ("a.b.g", "t")],
        ),
        (job(WORK, base="gemini_batch_bigquery"), [("gemini_batch_bigquery", None)]),
        (job(WORK, base="Nightly run"), []),
        (job(None), []),
        (
            job(WORK, base="custom", labels={"airflow-dag": "daily", "airflow-task": "batch"}),
            [("daily", "batch"), ("custom", None)],
        ),
    ],
)
def test_candidates(the_job, expected):
    assert candidates(the_job) == expected


def test_work_id_of_reads_the_tag_only_at_the_end():
    assert work_id_of(job(WORK)) == WORK.work_id
    assert work_id_of(job(None)) is None
    assert work_id_of(SimpleNamespace(display_name=f"{WORK.tag} copy")) is None
    assert work_id_of(SimpleNamespace(display_name=None)) is None


@pytest.mark.parametrize(
    ("the_job", "states", "expected"),
    [
        # the default display name: dag and task known
        (
            job(WORK),
            {("daily", "batch"): {WORK.run_id: {"batch": "failed"}}},
            Owner("found", "failed", identity=WORK),
        ),
        (
            job(MAPPED),
            {("daily", "batch"): {MAPPED.run_id: {"batch_2": "failed", "batch_3": "running"}}},
            Owner("found", "running", identity=MAPPED),
        ),
        (
            job(WORK),
            {("daily", "batch"): {WORK.run_id: {"batch": SimpleNamespace(value="success")}}},
            Owner("found", "success", identity=WORK),
        ),
        (
            job(WORK),
            {("daily", "batch"): {WORK.run_id: {"batch": None}}},
            Owner("found", None, identity=WORK),
        ),
        # another run of the same task: the run was deleted (or another deployment's)
        (job(WORK), {("daily", "batch"): {"other_run": {"batch": "failed"}}}, Owner("absent")),
        # a key of another task is not this task's
        (
            job(WORK),
            {("daily", "batch"): {WORK.run_id: {"batch_x": "failed", "batchy": "failed"}}},
            Owner("unknown"),
        ),
        (job(WORK), {}, Owner("unknown")),
        (job(None), {("daily", "batch"): {WORK.run_id: {"batch": "failed"}}}, Owner("unknown")),
        # the DAG id as the display name (the project's DAGs): every task of the DAG is looked at
        (
            job(WORK, base="daily"),
            {("daily", None): {WORK.run_id: {"prepare": "success", "batch": "failed"}}},
            Owner("found", "failed", identity=WORK),
        ),
        (
            job(MAPPED, base="daily"),
            {("daily", None): {MAPPED.run_id: {"batch_3": "upstream_failed"}}},
            Owner("found", "upstream_failed", identity=MAPPED),
        ),
        (
            job(WorkIdentity("daily", "batch_3", WORK.run_id), base="daily"),
            {("daily", None): {WORK.run_id: {"batch_3": "skipped"}}},
            Owner("found", "skipped", identity=WorkIdentity("daily", "batch_3", WORK.run_id)),
        ),
    ],
)
def test_find_owner(the_job, states, expected):
    assert find_owner(the_job, FakeTaskInstances(states)) == expected


def test_a_success_that_returned_this_job_handed_it_on():
    states = {("daily", "batch"): {WORK.run_id: {"batch": "success"}}}
    handed = FakeTaskInstances(states, returned={WORK: "jobs/1"})
    other = FakeTaskInstances(states, returned={WORK: "jobs/2"})
    assert find_owner(job(WORK, name="jobs/1"), handed) == Owner("found", "success", True, WORK)
    assert find_owner(job(WORK, name="jobs/1"), other) == Owner("found", "success", False, WORK)


# ---------------------------------------------------------------------------- the sweep


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    warning = info


def test_sweep_cancels_only_running_jobs_of_ended_task_instances():
    ended = WorkIdentity("daily", "batch", "run_ended")
    cleared = WorkIdentity("daily", "batch", "run_cleared")
    running = WorkIdentity("daily", "batch", "run_running")
    jobs = [
        job(ended, name="jobs/ended"),
        job(ended, name="jobs/ended-done", state="JOB_STATE_SUCCEEDED"),
        job(cleared, name="jobs/cleared"),
        job(running, name="jobs/running", state="JOB_STATE_PENDING"),
        job(None, name="jobs/not-ours"),
    ]
    states = {
        ("daily", "batch"): {
            "run_ended": {"batch": "failed"},
            "run_cleared": {"batch": None},
            "run_running": {"batch": "deferred"},
        }
    }
    cancelled: list[str] = []
    log = Log()

    results = sweep_jobs(jobs, FakeTaskInstances(states), cancelled.append, log)

    assert cancelled == ["jobs/ended"]
    assert [(r.job_name, r.action, r.cancelled) for r in results] == [
        ("jobs/ended", "cancel", True),
        ("jobs/cleared", "keep", False),
        ("jobs/running", "keep", False),
    ]
    assert any("Cancelling batch job jobs/ended because" in line and "failed" in line for line in log.lines)


def test_a_failed_cancel_is_reported_and_the_sweep_goes_on():
    first, second = WorkIdentity("d", "t", "r1"), WorkIdentity("d", "t", "r2")
    states = {("d", "t"): {"r1": {"t": "failed"}, "r2": {"t": "failed"}}}
    calls: list[str] = []

    def cancel(name: str) -> None:
        calls.append(name)
        if name == "jobs/1":
            raise RuntimeError("503")

    log = Log()
    results = sweep_jobs(
        [job(first, name="jobs/1"), job(second, name="jobs/2")], FakeTaskInstances(states), cancel, log
    )

    assert calls == ["jobs/1", "jobs/2"]
    assert [r.cancelled for r in results] == [False, True]
    assert any("Could not cancel batch job jobs/1" in line for line in log.lines)
    assert results[0].as_dict() == {
        "job_name": "jobs/1",
        "action": "cancel",
        "reason": results[0].reason,
        "cancelled": False,
    }


def test_orphans_are_cancelled_only_when_asked():
    states = {("daily", "batch"): {"another_run": {"batch": "success"}}}
    cancelled: list[str] = []
    sweep_jobs([job(WORK)], FakeTaskInstances(states), cancelled.append, Log())
    assert cancelled == []
    sweep_jobs([job(WORK)], FakeTaskInstances(states), cancelled.append, Log(), cancel_orphans=True)
    assert cancelled == ["jobs/1"]


def test_sweep_of_a_backend_through_the_hook(vertex, monkeypatch):
    ended = vertex.add_job(
        display_name=WORK.display_name(), state="JOB_STATE_RUNNING", script=[], labels=WORK.labels()
    )
    kept = vertex.add_job(
        display_name=MAPPED.display_name(), state="JOB_STATE_RUNNING", script=[], labels=MAPPED.labels()
    )
    vertex.add_job(  # finished: not even listed
        display_name=WORK.display_name(), state="JOB_STATE_SUCCEEDED", script=[], labels=WORK.labels()
    )
    vertex.add_job(display_name=WORK.display_name(), state="JOB_STATE_RUNNING", script=[])  # unlabelled
    states = {("daily", "batch"): {WORK.run_id: {"batch": "failed", "batch_3": "deferred"}}}
    monkeypatch.setattr(cancel_sweep, "SdkTaskInstances", lambda: FakeTaskInstances(states))

    results = sweep("vertex", "google_cloud_default", Log())

    assert [(r["job_name"], r["cancelled"]) for r in results] == [(ended, True), (kept, False)]
    assert vertex.count("cancel") == 1


def test_a_backend_without_a_connection_is_skipped_and_said_so(monkeypatch):
    from gemini_batch.exceptions import GeminiBatchConfigError
    from gemini_batch.hooks import GeminiBatchHook

    def missing(self):
        raise GeminiBatchConfigError("Airflow connection 'gemini_api_default' is not defined.")

    monkeypatch.setattr(GeminiBatchHook, "settings", property(missing))
    log = Log()
    assert sweep("gemini_api", "gemini_api_default", log) == []
    assert any("Not sweeping gemini_api jobs" in line for line in log.lines)


def test_sdk_task_instances_ask_for_one_task_or_all(monkeypatch):
    from airflow.sdk.execution_time import task_runner, xcom

    asked: list[dict] = []
    monkeypatch.setattr(
        task_runner.RuntimeTaskInstance,
        "get_task_states",
        staticmethod(lambda **kw: asked.append(kw) or None),
    )
    pulled: list[dict] = []

    def get_one(**kw):
        pulled.append(kw)
        return {"job_name": "jobs/1"} if kw["run_id"] == "r" else "not a manifest"

    monkeypatch.setattr(xcom.XCom, "get_one", staticmethod(get_one))
    lookup = cancel_sweep.SdkTaskInstances()

    assert lookup.states("d", "t") == {} and lookup.states("d", None) == {}
    assert asked == [{"dag_id": "d", "task_ids": ["t"]}, {"dag_id": "d", "task_ids": None}]
    assert lookup.returned_job(WorkIdentity("d", "t", "r", 2)) == "jobs/1"
    assert lookup.returned_job(WorkIdentity("d", "t", "other")) is None
    assert pulled[0] == {"key": "return_value", "dag_id": "d", "task_id": "t", "run_id": "r", "map_index": 2}


def test_the_vertex_sweep_lists_only_unfinished_jobs_with_the_work_id_label() -> None:
    from gemini_batch.cancel_sweep import sweep_filter
    from gemini_batch.states import TERMINAL_STATES

    vertex = sweep_filter("vertex")
    assert vertex is not None
    clauses = vertex.split(" AND ")
    assert clauses[0] == "labels.airflow-work-id:*"
    assert sorted(clauses[1:]) == sorted(f"state!={state}" for state in TERMINAL_STATES)
    assert sweep_filter("gemini_api") is None  # the Gemini API cannot filter a list
