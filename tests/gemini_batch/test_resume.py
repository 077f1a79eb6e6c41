"""resume.py: the retry decision, case by case; the landed-create decision; the metric of each outcome."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.genai import types

from gemini_batch.create_plan import CreateArguments, plan_create
from gemini_batch.identity import WorkIdentity
from gemini_batch.job_record import Absent, JobRecord, Unreadable
from gemini_batch.resume import (
    NOT_FOUND,
    NOT_READ,
    LookUpByIdentity,
    ReadRecordedJob,
    Reattach,
    Refuse,
    ResumeFacts,
    Return,
    Submit,
    decide,
    is_automatic_retry,
    landed_job,
    made_for,
    metric_of,
)

MODEL = "gemini-2.5-flash"
PLAN = plan_create(CreateArguments(src="bq://p.d.t", model=MODEL), WorkIdentity("dag", "task", "run"))
GCS_PLAN = plan_create(
    CreateArguments(src=["gs://bkt/a.jsonl", "gs://bkt/b.jsonl"], model=MODEL),
    WorkIdentity("dag", "task", "run"),
)
INLINE_PLAN = plan_create(
    CreateArguments(src=[{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}], model=MODEL),
    WorkIdentity("dag", "task", "run"),
)


def job(
    n: int, state: str = "RUNNING", *, model: str = MODEL, bq: str | None = "bq://p.d.t", failed: int = 0
) -> types.BatchJob:
    """Job ``J<n>``; a higher ``n`` is newer (lists come newest first)."""
    return types.BatchJob(
        name=f"projects/p/locations/l/batchPredictionJobs/{n}",
        state=f"JOB_STATE_{state}",
        model=f"publishers/google/models/{model}",
        src=types.BatchJobSource(format="bigquery", bigquery_uri=bq) if bq else None,
        create_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n),
        completion_stats=types.CompletionStats(successful_count=10 - failed, failed_count=failed)
        if failed
        else None,
    )


def name(n: int) -> str:
    return f"projects/p/locations/l/batchPredictionJobs/{n}"


def record(
    phase: str = "submitted",
    n: int | None = 1,
    *,
    submissions: int = 1,
    fingerprint: str = PLAN.fingerprint,
    backend: str = "vertex",
    work_id: str = PLAN.identity.work_id,
    previous: tuple[int, ...] = (),
    version: int = 2,
) -> JobRecord:
    return JobRecord(
        phase=phase,  # type: ignore[arg-type]
        job_name=name(n) if n is not None and phase == "submitted" else None,
        work_id=work_id,
        backend=backend,  # type: ignore[arg-type]
        fingerprint=fingerprint,
        submissions=submissions,
        updated_at="2026-01-01T00:00:00+00:00",
        previous_jobs=tuple(name(p) for p in previous),
        version=version,
    )


def summary(decision: Any) -> tuple:
    """A decision as a comparable tuple, job names shortened to their numbers."""

    def short(full: str) -> int:
        return int(full.rsplit("/", 1)[-1])

    if isinstance(decision, ReadRecordedJob):
        return ("read", short(decision.job_name))
    if isinstance(decision, LookUpByIdentity):
        return ("lookup", "warning" if decision.warning else "info")
    if isinstance(decision, Reattach):
        return ("reattach", short(decision.job.name), decision.submissions)
    if isinstance(decision, Return):
        return ("return", short(decision.job.name), decision.submissions)
    assert isinstance(decision, Submit)
    return ("submit", decision.submission, decision.cause, sorted(short(k) for k in decision.known))


CHANGED = "0123456789abcdef"
UNREADABLE = Unreadable("unknown record version 9")

CASES = [
    # ------------------------------------------------------------------ nothing recorded
    ("absent: look up first", Absent(), NOT_READ, None, ("lookup", "info")),
    ("absent, nothing found: first job", Absent(), NOT_READ, [], ("submit", 1, "first", [])),
    ("absent, found running: re-attach", Absent(), NOT_READ, [job(1)], ("reattach", 1, 1)),
    ("absent, found paused: re-attach", Absent(), NOT_READ, [job(1, "PAUSED")], ("reattach", 1, 1)),
    ("absent, found succeeded: return", Absent(), NOT_READ, [job(1, "SUCCEEDED")], ("return", 1, 1)),
    ("absent, found partial: return", Absent(), NOT_READ, [job(1, "PARTIALLY_SUCCEEDED")], ("return", 1, 1)),
    (
        "absent, found succeeded with failed rows",
        Absent(),
        NOT_READ,
        [job(1, "SUCCEEDED", failed=2)],
        ("return", 1, 1),
    ),
    (
        "absent, found failed: replace",
        Absent(),
        NOT_READ,
        [job(1, "FAILED")],
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "absent, found cancelled",
        Absent(),
        NOT_READ,
        [job(1, "CANCELLED")],
        ("submit", 2, "replaces_failed", [1]),
    ),
    ("absent, found expired", Absent(), NOT_READ, [job(1, "EXPIRED")], ("submit", 2, "replaces_failed", [1])),
    (
        "absent, found for another model",
        Absent(),
        NOT_READ,
        [job(1, model="gemini-2.0-flash")],
        ("submit", 2, "first", [1]),
    ),
    (
        "absent, found for another source",
        Absent(),
        NOT_READ,
        [job(1, bq="bq://p.d.other")],
        ("submit", 2, "first", [1]),
    ),
    (
        "absent, newest decides",
        Absent(),
        NOT_READ,
        [job(2, "FAILED"), job(1)],
        ("submit", 3, "replaces_failed", [1, 2]),
    ),
    (
        "absent, other inputs skipped",
        Absent(),
        NOT_READ,
        [job(2, model="x"), job(1, "SUCCEEDED")],
        ("return", 1, 2),
    ),
    # ------------------------------------------------------------------ unreadable or foreign record
    ("unreadable: look up, warning", UNREADABLE, NOT_READ, None, ("lookup", "warning")),
    ("unreadable, found running", UNREADABLE, NOT_READ, [job(1)], ("reattach", 1, 1)),
    ("unreadable, nothing found", UNREADABLE, NOT_READ, [], ("submit", 1, "first", [])),
    ("record of another work", record(work_id="ffffffffffffffff"), NOT_READ, None, ("lookup", "warning")),
    (
        "record of another work, found",
        record(work_id="ffffffffffffffff", submissions=5),
        NOT_READ,
        [],
        ("submit", 1, "first", []),
    ),
    # ------------------------------------------------------------------ submitted, same inputs
    ("submitted: read the recorded job", record(), NOT_READ, None, ("read", 1)),
    ("submitted, running", record(submissions=2), job(1), None, ("reattach", 1, 2)),
    ("submitted, queued", record(), job(1, "QUEUED"), None, ("reattach", 1, 1)),
    ("submitted, pending", record(), job(1, "PENDING"), None, ("reattach", 1, 1)),
    ("submitted, cancelling", record(), job(1, "CANCELLING"), None, ("reattach", 1, 1)),
    ("submitted, succeeded", record(), job(1, "SUCCEEDED"), None, ("return", 1, 1)),
    ("submitted, partial", record(), job(1, "PARTIALLY_SUCCEEDED"), None, ("return", 1, 1)),
    ("submitted, failed: look up first", record(), job(1, "FAILED"), None, ("lookup", "info")),
    (
        "submitted, failed",
        record(),
        job(1, "FAILED"),
        [job(1, "FAILED")],
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "submitted, cancelled",
        record(),
        job(1, "CANCELLED"),
        [job(1, "CANCELLED")],
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "submitted, expired",
        record(),
        job(1, "EXPIRED"),
        [job(1, "EXPIRED")],
        ("submit", 2, "replaces_failed", [1]),
    ),
    ("submitted, deleted: look up first", record(), NOT_FOUND, None, ("lookup", "info")),
    ("submitted, deleted", record(submissions=3), NOT_FOUND, [], ("submit", 4, "replaces_deleted", [1])),
    (
        "submitted, failed; an older finished job is not adopted",
        record(n=2, submissions=1),
        job(2, "FAILED"),
        [job(2, "FAILED"), job(1, "SUCCEEDED")],
        ("submit", 3, "replaces_failed", [1, 2]),
    ),
    (
        "submitted, failed; the jobs from before it stay known",
        record(n=2, submissions=2, previous=(1,)),
        job(2, "FAILED"),
        [job(2, "FAILED")],
        ("submit", 3, "replaces_failed", [1, 2]),
    ),
    # ------------------------------------------------------------------ submitted, inputs changed
    (
        "fingerprint changed: look up, no read",
        record(fingerprint=CHANGED),
        NOT_READ,
        None,
        ("lookup", "info"),
    ),
    (
        "fingerprint changed, old job running",
        record(fingerprint=CHANGED),
        NOT_READ,
        [job(1)],
        ("submit", 2, "inputs_changed", [1]),
    ),
    (
        "fingerprint changed, old job succeeded",
        record(fingerprint=CHANGED),
        NOT_READ,
        [job(1, "SUCCEEDED")],
        ("submit", 2, "inputs_changed", [1]),
    ),
    (
        "fingerprint changed, old job gone",
        record(fingerprint=CHANGED),
        NOT_READ,
        [],
        ("submit", 2, "inputs_changed", [1]),
    ),
    (
        "backend changed",
        record(backend="gemini_api"),
        NOT_READ,
        [job(1)],
        ("submit", 2, "inputs_changed", [1]),
    ),
    # ------------------------------------------------------------------ submitting (stopped between submit and record)
    ("submitting: look up first", record("submitting"), NOT_READ, None, ("lookup", "info")),
    ("submitting, landed and running", record("submitting"), NOT_READ, [job(1)], ("reattach", 1, 1)),
    (
        "submitting, landed and succeeded",
        record("submitting"),
        NOT_READ,
        [job(1, "SUCCEEDED")],
        ("return", 1, 1),
    ),
    ("submitting, did not land", record("submitting"), NOT_READ, [], ("submit", 2, "first", [])),
    (
        "submitting, a job from before the submission is not adopted",
        record("submitting", submissions=2, previous=(1,)),
        NOT_READ,
        [job(1, "SUCCEEDED")],
        ("submit", 3, "first", [1]),
    ),
    (
        "submitting, landed next to an older job",
        record("submitting", submissions=2, previous=(1,)),
        NOT_READ,
        [job(2), job(1, "FAILED")],
        ("reattach", 2, 2),
    ),
    (
        "submitting, landed and failed",
        record("submitting", submissions=2, previous=(1,)),
        NOT_READ,
        [job(2, "FAILED"), job(1, "FAILED")],
        ("submit", 3, "replaces_failed", [1, 2]),
    ),
    (
        "submitting (version 1, no previous jobs), found succeeded",
        record("submitting", version=1),
        NOT_READ,
        [job(1, "SUCCEEDED")],
        ("return", 1, 1),
    ),
    (
        "submitting, fingerprint changed",
        record("submitting", fingerprint=CHANGED),
        NOT_READ,
        [job(1, "SUCCEEDED")],
        ("submit", 2, "inputs_changed", [1]),
    ),
]


@pytest.mark.parametrize(
    ("record_read", "recorded", "found", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(record_read, recorded, found, expected):
    facts = ResumeFacts(record_read, PLAN, recorded, None if found is None else tuple(found))
    assert summary(decide(facts)) == expected


def test_every_decision_says_why_and_names_ignored_jobs():
    facts = ResumeFacts(Absent(), PLAN, NOT_READ, (job(2, model="gemini-2.0-flash"), job(1, "FAILED")))
    decision = decide(facts)
    assert isinstance(decision, Submit)
    assert "ended FAILED" in decision.why and name(2) in decision.why
    unreadable = decide(ResumeFacts(Unreadable("version 'x' is odd"), PLAN))
    assert isinstance(unreadable, LookUpByIdentity) and "version 'x' is odd" in unreadable.why


LANDED_CASES = [
    ("nothing listed", [], set(), None),
    ("only the old job of the old inputs", [job(1, "SUCCEEDED")], {1}, None),
    ("only the old running job", [job(1)], {1}, None),
    ("a new pending job", [job(2, "PENDING"), job(1, "SUCCEEDED")], {1}, 2),
    ("a new job that failed at once", [job(2, "FAILED")], set(), None),
    ("a new job for another model", [job(2, model="gemini-2.0-flash")], set(), None),
    ("the newest new job", [job(3), job(2)], set(), 3),
]


@pytest.mark.parametrize(
    ("found", "known", "expected"), [c[1:] for c in LANDED_CASES], ids=[c[0] for c in LANDED_CASES]
)
def test_landed_job(found, known, expected):
    landed = landed_job(found, frozenset(name(k) for k in known), PLAN)
    assert (None if landed is None else int(landed.name.rsplit("/", 1)[-1])) == expected


@pytest.mark.parametrize(
    ("plan", "src", "model", "expected"),
    [
        (
            PLAN,
            types.BatchJobSource(format="bigquery", bigquery_uri="bq://p.d.t"),
            "models/gemini-2.5-flash",
            True,
        ),
        (PLAN, types.BatchJobSource(format="bigquery", bigquery_uri="bq://p.d.t"), "gemini-2.0-flash", False),
        (PLAN, types.BatchJobSource(format="bigquery", bigquery_uri="bq://p.d.u"), MODEL, False),
        (PLAN, None, None, True),
        (PLAN, types.BatchJobSource(format="bigquery"), MODEL, True),
        (
            GCS_PLAN,
            types.BatchJobSource(format="jsonl", gcs_uri=["gs://bkt/b.jsonl", "gs://bkt/a.jsonl"]),
            MODEL,
            True,
        ),
        (GCS_PLAN, types.BatchJobSource(format="jsonl", gcs_uri=["gs://bkt/a.jsonl"]), MODEL, False),
        (INLINE_PLAN, types.BatchJobSource(file_name="files/other"), MODEL, True),
        (INLINE_PLAN, None, "gemini-2.0-flash", False),
    ],
)
def test_made_for(plan, src, model, expected):
    assert made_for(types.BatchJob(name="x", model=model, src=src), plan) is expected


@pytest.mark.parametrize(
    ("decision", "metric"),
    [
        (Reattach(job(1), 1, ""), "resumable_job.reconnect_success"),
        (Return(job(1), 1, ""), "resumable_job.already_succeeded"),
        (Submit(2, "replaces_failed", "", frozenset()), "resumable_job.terminal_resubmit"),
        (Submit(2, "replaces_deleted", "", frozenset()), "resumable_job.terminal_resubmit"),
        (Submit(1, "first", "", frozenset()), "resumable_job.fresh_submit"),
        (Submit(2, "inputs_changed", "", frozenset()), "resumable_job.fresh_submit"),
    ],
)
def test_metric_of_each_outcome(decision, metric):
    assert metric_of(decision) == metric


# ------------------------------------------------------------------ permanent failures and retries


def failed(n: int, code: int | None, state: str = "FAILED") -> types.BatchJob:
    """Job ``J<n>`` ended ``state`` with a job error of canonical ``code`` (None: no error)."""
    ended = job(n, state)
    if code is not None:
        ended.error = types.JobError(code=code, message=f"reason {code}")
    return ended


PERMANENT_CASES = [
    # (name, record, recorded job, found, automatic retry, expected)
    ("retry, recorded FAILED INVALID_ARGUMENT: refuse", record(), failed(1, 3), [], True, ("refuse", 1)),
    ("retry, recorded FAILED NOT_FOUND: refuse", record(), failed(1, 5), [], True, ("refuse", 1)),
    ("retry, recorded FAILED PERMISSION_DENIED: refuse", record(), failed(1, 7), [], True, ("refuse", 1)),
    ("retry, recorded FAILED FAILED_PRECONDITION: refuse", record(), failed(1, 9), [], True, ("refuse", 1)),
    (
        "retry, recorded FAILED RESOURCE_EXHAUSTED: replace",
        record(),
        failed(1, 8),
        [],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "retry, recorded FAILED INTERNAL: replace",
        record(),
        failed(1, 13),
        [],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "retry, recorded FAILED UNAVAILABLE: replace",
        record(),
        failed(1, 14),
        [],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "retry, recorded FAILED DEADLINE_EXCEEDED: replace",
        record(),
        failed(1, 4),
        [],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "retry, recorded FAILED without error: replace",
        record(),
        failed(1, None),
        [],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "retry, recorded CANCELLED with a permanent code: replace",
        record(),
        failed(1, 3, "CANCELLED"),
        [],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "retry, recorded EXPIRED with a permanent code: replace",
        record(),
        failed(1, 3, "EXPIRED"),
        [],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
    (
        "first try of a clear, recorded FAILED INVALID_ARGUMENT: replace",
        record(),
        failed(1, 3),
        [],
        False,
        ("submit", 2, "replaces_failed", [1]),
    ),
    ("retry, found FAILED INVALID_ARGUMENT: refuse", Absent(), NOT_READ, [failed(1, 3)], True, ("refuse", 1)),
    (
        "retry, found FAILED INTERNAL: replace",
        Absent(),
        NOT_READ,
        [failed(1, 13)],
        True,
        ("submit", 2, "replaces_failed", [1]),
    ),
]


def permanent_summary(decision: Any) -> tuple:
    if isinstance(decision, Refuse):
        return ("refuse", int(decision.job.name.rsplit("/", 1)[-1]))
    return summary(decision)


@pytest.mark.parametrize(
    ("record_read", "recorded", "found", "automatic_retry", "expected"),
    [c[1:] for c in PERMANENT_CASES],
    ids=[c[0] for c in PERMANENT_CASES],
)
def test_a_retry_never_replaces_a_permanently_failed_job(
    record_read, recorded, found, automatic_retry, expected
):
    facts = ResumeFacts(record_read, PLAN, recorded, tuple(found), automatic_retry=automatic_retry)
    assert permanent_summary(decide(facts)) == expected


def test_a_refusal_names_the_code_the_message_and_what_to_do():
    decision = decide(ResumeFacts(record(), PLAN, failed(1, 7), (), automatic_retry=True))
    assert isinstance(decision, Refuse)
    assert "PERMISSION_DENIED: reason 7" in decision.why and "clear the task" in decision.why


@pytest.mark.parametrize(
    ("try_number", "max_tries", "retries", "expected"),
    [
        (1, 3, 3, False),  # the first try of a run
        (2, 3, 3, True),  # its first retry
        (4, 3, 3, True),  # its last retry
        (5, 7, 3, False),  # the first try after a clear (max_tries = 4 + 3)
        (6, 7, 3, True),  # a retry after that clear
        (1, 0, 0, False),  # no retries configured
        (2, 1, 0, False),  # a clear of a task without retries
    ],
)
def test_is_automatic_retry(try_number, max_tries, retries, expected):
    assert is_automatic_retry(try_number, max_tries, retries) is expected
