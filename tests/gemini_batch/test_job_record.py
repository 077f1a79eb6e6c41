"""job_record.py: three answers from a stored value (absent, unreadable with a reason, a record), v1 still read."""

from __future__ import annotations

from typing import Any

import pytest

from gemini_batch.job_record import (
    RECORD_VERSION,
    STATE_KEY,
    Absent,
    JobRecord,
    RecordStore,
    Unreadable,
    read_record,
)
from tests.gemini_batch.fakes import FakeTaskStateStore

NAME = "projects/p/locations/l/batchPredictionJobs/1"

#: A record exactly as the operator wrote it before version 2 (in-flight work after an upgrade).
V1_SUBMITTED = {
    "v": 1,
    "work_id": "9b8e388297317b77",
    "backend": "vertex",
    "fingerprint": "3038505bbd1681dd",
    "updated_at": "2026-01-01T00:00:00+00:00",
    "phase": "submitted",
    "job_name": NAME,
    "submissions": 1,
}
V1_SUBMITTING = {**V1_SUBMITTED, "phase": "submitting", "job_name": None}
V2 = {**V1_SUBMITTED, "v": 2, "previous_jobs": ["batches/old"]}


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def test_version_1_records_are_read():
    record = read_record(V1_SUBMITTED)
    assert record == JobRecord(
        phase="submitted",
        job_name=NAME,
        work_id="9b8e388297317b77",
        backend="vertex",
        fingerprint="3038505bbd1681dd",
        submissions=1,
        updated_at="2026-01-01T00:00:00+00:00",
        previous_jobs=(),
        version=1,
    )
    submitting = read_record(V1_SUBMITTING)
    assert (
        isinstance(submitting, JobRecord) and submitting.phase == "submitting" and submitting.job_name is None
    )


def test_a_record_is_written_in_the_current_version_and_reads_back_equal():
    record = read_record(V2)
    assert isinstance(record, JobRecord) and record.previous_jobs == ("batches/old",)
    stored = record.as_json()
    assert stored["v"] == RECORD_VERSION == 2
    assert read_record(stored) == record
    legacy = read_record(V1_SUBMITTED)
    assert read_record(legacy.as_json()) == JobRecord(**{**vars(legacy), "version": 2})


def test_nothing_stored_is_absent():
    assert read_record(None) == Absent()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (["gemini_batch_job"], "is a list, not a record"),
        ("projects/p/locations/l/batchPredictionJobs/1", "is a str, not a record"),
        (without(V1_SUBMITTED, "v"), "the stored record has no version field 'v'"),
        ({**V1_SUBMITTED, "v": 3}, "unknown record version 3"),
        ({**V1_SUBMITTED, "v": "1"}, "unknown record version '1'"),
        ({**V1_SUBMITTED, "v": True}, "unknown record version True"),
        ({**V1_SUBMITTED, "v": 0}, "unknown record version 0"),
        (without(V1_SUBMITTED, "fingerprint"), "version 1 record lacks fingerprint"),
        (without(V1_SUBMITTED, "job_name"), "lacks job_name"),
        (without(V1_SUBMITTED, "updated_at"), "lacks updated_at"),
        (without(V2, "previous_jobs"), "version 2 record lacks previous_jobs"),
        ({**V1_SUBMITTED, "phase": "done"}, "phase 'done' is not one of"),
        ({**V1_SUBMITTED, "job_name": None}, "phase 'submitted' with job_name None"),
        ({**V1_SUBMITTED, "job_name": ""}, "phase 'submitted' with job_name ''"),
        ({**V1_SUBMITTED, "job_name": 7}, "phase 'submitted' with job_name 7"),
        ({**V1_SUBMITTING, "job_name": NAME}, "phase 'submitting' with job_name"),
        ({**V1_SUBMITTED, "work_id": ""}, "work_id '' is not a non-empty string"),
        ({**V1_SUBMITTED, "fingerprint": None}, "fingerprint None is not"),
        ({**V1_SUBMITTED, "updated_at": 5}, "updated_at 5 is not"),
        ({**V1_SUBMITTED, "backend": "openai"}, "backend 'openai' is not one of"),
        ({**V1_SUBMITTED, "submissions": 0}, "submissions 0 is not a count of at least 1"),
        ({**V1_SUBMITTED, "submissions": "1"}, "submissions '1' is not a count"),
        ({**V1_SUBMITTED, "submissions": True}, "submissions True is not a count"),
        ({**V2, "previous_jobs": "batches/old"}, "previous_jobs 'batches/old' is not a list"),
        ({**V2, "previous_jobs": [None]}, "previous_jobs [None] is not a list"),
        ({**V2, "previous_jobs": [""]}, "previous_jobs [''] is not a list of job names"),
        (
            without(without(V2, "previous_jobs"), "fingerprint"),
            "version 2 record lacks fingerprint, previous_jobs",
        ),
    ],
)
def test_an_unreadable_record_says_why(raw, reason):
    result = read_record(raw)
    assert isinstance(result, Unreadable)
    assert reason in result.reason


def test_now_iso_is_utc():
    from gemini_batch.job_record import now_iso

    assert now_iso().endswith("+00:00")


def test_the_record_store_reads_and_writes_its_key():
    store = FakeTaskStateStore()
    records = RecordStore(store)
    assert records.available and records.read() == Absent()
    record = read_record(V2)
    assert isinstance(record, JobRecord)
    records.write(record)
    assert store.data == {STATE_KEY: record.as_json()}
    assert records.read() == record
    store.data[STATE_KEY] = {"v": 99}
    assert isinstance(records.read(), Unreadable)


def test_without_a_store_nothing_is_read_or_written():
    records = RecordStore(None)
    assert not records.available
    assert records.read() == Absent()
    records.write(JobRecord("submitting", None, "w", "vertex", "f", 1, "t"))


def test_a_record_without_version_says_so_exactly():
    assert read_record(without(V1_SUBMITTED, "v")) == Unreadable("the stored record has no version field 'v'")
