"""resume.py: every decision's ``why`` (the task log's account of a retry) and count, as a table.

The log line is how a user learns why a try re-attached, returned or submitted; each case pins it
whole, with the job names shortened to ``J<n>``.
"""

from __future__ import annotations

import types as pytypes
from typing import Any

import pytest
from google.genai import types

from gemini_batch.create_plan import CreateArguments, plan_create
from gemini_batch.identity import WorkIdentity
from gemini_batch.job_record import Absent, Unreadable
from gemini_batch.resume import NOT_FOUND, NOT_READ, ResumeFacts, decide, made_for
from tests.gemini_batch.test_resume import CHANGED, PLAN, failed, job, record

OTHER = job(2, model="gemini-2.0-flash")
CHANGED_INPUTS = "the inputs (backend, model, source, dest or create_config) changed since"
IGNORED = "(ignored, made for other inputs or before this submission:"
REFUSED = "; a new job would fail the same way, so this retry does not submit one. Fix what the error names, then clear the task."


def without_message(n: int, code: int) -> types.BatchJob:
    ended = job(n, "FAILED")
    ended.error = types.JobError(code=code)
    return ended


CASES = [
    ("absent, not looked up", ResumeFacts(Absent(), PLAN), ("LookUpByIdentity", "no job is recorded", None)),
    (
        "absent, nothing found",
        ResumeFacts(Absent(), PLAN, NOT_READ, ()),
        ("Submit", "no job of this work for these inputs", 1),
    ),
    (
        "absent, found running, another ignored",
        ResumeFacts(Absent(), PLAN, NOT_READ, (OTHER, job(1))),
        ("Reattach", f"batch job J1 (found by identity) is RUNNING: re-attaching {IGNORED} J2)", 2),
    ),
    (
        "absent, found succeeded",
        ResumeFacts(Absent(), PLAN, NOT_READ, (job(1, "SUCCEEDED"),)),
        ("Return", "batch job J1 (found by identity) already ended SUCCEEDED: returning it", 1),
    ),
    (
        "absent, found failed",
        ResumeFacts(Absent(), PLAN, NOT_READ, (job(1, "FAILED"),)),
        ("Submit", "batch job J1 ended FAILED", 2),
    ),
    (
        "absent, only jobs for other inputs",
        ResumeFacts(Absent(), PLAN, NOT_READ, (OTHER, job(3, model="gemini-2.0-flash"))),
        ("Submit", f"no job of this work for these inputs {IGNORED} J2, J3)", 3),
    ),
    (
        "unreadable",
        ResumeFacts(Unreadable("odd"), PLAN),
        ("LookUpByIdentity", "the retry record is unreadable: odd", None),
    ),
    (
        "another work's record, found running",
        ResumeFacts(record(work_id="ffffffffffffffff"), PLAN, NOT_READ, (job(1),)),
        ("Reattach", "batch job J1 (found by identity) is RUNNING: re-attaching", 1),
    ),
    (
        "another work's record, not looked up",
        ResumeFacts(record(work_id="ffffffffffffffff"), PLAN),
        ("LookUpByIdentity", "the retry record belongs to work ffffffffffffffff", None),
    ),
    (
        "inputs changed since a named job",
        ResumeFacts(record(fingerprint=CHANGED), PLAN, NOT_READ, ()),
        ("Submit", f"{CHANGED_INPUTS} J1: new work", 2),
    ),
    (
        "inputs changed while submitting",
        ResumeFacts(record("submitting", fingerprint=CHANGED), PLAN, NOT_READ, ()),
        ("Submit", f"{CHANGED_INPUTS} the last submission: new work", 2),
    ),
    (
        "backend changed",
        ResumeFacts(record(backend="gemini_api"), PLAN, NOT_READ, ()),
        ("Submit", f"{CHANGED_INPUTS} J1: new work", 2),
    ),
    (
        "submitting, not looked up",
        ResumeFacts(record("submitting", submissions=3, previous=(1,)), PLAN),
        ("LookUpByIdentity", "a previous try stopped between submit and record", None),
    ),
    (
        "submitting, found running",
        ResumeFacts(record("submitting", submissions=3, previous=(1,)), PLAN, NOT_READ, (job(4), job(1))),
        ("Reattach", f"batch job J4 (found by identity) is RUNNING: re-attaching {IGNORED} J1)", 3),
    ),
    (
        "submitting, found failed",
        ResumeFacts(
            record("submitting", submissions=3, previous=(1,)), PLAN, NOT_READ, (job(4, "FAILED"), job(1))
        ),
        ("Submit", f"batch job J4 ended FAILED {IGNORED} J1)", 4),
    ),
    ("submitted, not read", ResumeFacts(record(n=2), PLAN), ("ReadRecordedJob", "J2", None)),
    (
        "submitted, deleted",
        ResumeFacts(record(n=2), PLAN, NOT_FOUND, ()),
        ("Submit", "recorded batch job J2 no longer exists", 2),
    ),
    (
        "submitted, deleted, not looked up",
        ResumeFacts(record(n=2), PLAN, NOT_FOUND),
        (
            "LookUpByIdentity",
            "recorded batch job J2 no longer exists; listing this work's jobs before submitting",
            None,
        ),
    ),
    (
        "submitted, running",
        ResumeFacts(record(n=2, submissions=2), PLAN, job(2)),
        ("Reattach", "batch job J2 (recorded) is RUNNING: re-attaching", 2),
    ),
    (
        "submitted, partial",
        ResumeFacts(record(n=2, submissions=2), PLAN, job(2, "PARTIALLY_SUCCEEDED")),
        ("Return", "batch job J2 (recorded) already ended PARTIALLY_SUCCEEDED: returning it", 2),
    ),
    (
        "submitted, failed",
        ResumeFacts(record(n=2, submissions=2), PLAN, job(2, "FAILED"), (job(2, "FAILED"),)),
        ("Submit", "recorded batch job J2 ended FAILED", 3),
    ),
    (
        "retry, refused, with the error's message",
        ResumeFacts(record(n=2), PLAN, failed(2, 3), (), automatic_retry=True),
        ("Refuse", f"recorded batch job J2 ended FAILED with INVALID_ARGUMENT: reason 3{REFUSED}", None),
    ),
    (
        "retry, refused, no message",
        ResumeFacts(record(n=2), PLAN, without_message(2, 9), (), automatic_retry=True),
        ("Refuse", f"recorded batch job J2 ended FAILED with FAILED_PRECONDITION{REFUSED}", None),
    ),
    (
        "retry, refused, error as a dict",
        ResumeFacts(
            record(n=2),
            PLAN,
            pytypes.SimpleNamespace(
                name="projects/p/locations/l/batchPredictionJobs/2",
                state="JOB_STATE_FAILED",
                error={"code": 7},
                completion_stats=None,
                model=None,
                src=None,
            ),
            (),
            automatic_retry=True,
        ),
        ("Refuse", f"recorded batch job J2 ended FAILED with PERMISSION_DENIED{REFUSED}", None),
    ),
]


def explain(decision: Any) -> tuple[str, str, int | None]:
    """(kind, why, count) with job names shortened; ``why`` is the job name for a read."""
    count = getattr(decision, "submissions", getattr(decision, "submission", None))
    why = getattr(decision, "why", getattr(decision, "job_name", None))
    return type(decision).__name__, why.replace("projects/p/locations/l/batchPredictionJobs/", "J"), count


@pytest.mark.parametrize(("facts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_decision_says_why(facts, expected):
    assert explain(decide(facts)) == expected


def _file_plan():
    return plan_create(
        CreateArguments(src="files/abc", model="gemini-2.5-flash", backend="gemini_api"),
        WorkIdentity("dag", "task", "run"),
    )


def _inline_plan():
    return plan_create(
        CreateArguments(
            src=[{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}], model="gemini-2.5-flash"
        ),
        WorkIdentity("dag", "task", "run"),
    )


@pytest.mark.parametrize("plan", [_file_plan, _inline_plan])
def test_inline_and_file_sources_match_whatever_the_service_reports(plan):
    listed = types.BatchJob(
        name="x", model=None, src=types.BatchJobSource(gcs_uri=["gs://elsewhere/x.jsonl"])
    )
    assert made_for(listed, plan())


def test_a_job_without_src_attribute_is_judged_by_model_only():
    assert made_for(pytypes.SimpleNamespace(name="x", model=None), PLAN)
