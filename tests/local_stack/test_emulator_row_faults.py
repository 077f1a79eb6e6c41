"""Row failures as the real services give them: transient 429s that clear, permanent 400s that do not.

The unit tables pin the decision (:meth:`JobFaults.row_error`, :class:`RowFailureLedger`); the
integration test runs jobs through the SDK and reads the rows' canonical status in the output.
"""

from __future__ import annotations

import json

import pytest
from emulator_helpers import user_request, wait_for_job
from google.genai import types

from local_stack.emulator.errors import STATUS_BY_CODE
from local_stack.emulator.faults import (
    ROW_FAILURE_ERROR,
    ROW_REFUSED_ERROR,
    FaultError,
    Faults,
    JobFaults,
    RowFailureLedger,
)
from local_stack.emulator.runner import vertex_status

ROWS = [f'{{"request": "row {i}"}}'.encode() for i in range(2000)]


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [(ROW_FAILURE_ERROR, 429, "RESOURCE_EXHAUSTED"), (ROW_REFUSED_ERROR, 400, "INVALID_ARGUMENT")],
)
def test_injected_row_errors_carry_the_canonical_code_and_status(error, code, status) -> None:
    assert error["code"] == code and STATUS_BY_CODE[code] == status
    assert set(error) == {"code", "message"}  # a google.rpc.Status
    assert f'"status":"{status}"' in vertex_status(error).replace(" ", "")


@pytest.mark.parametrize(
    ("change", "stored"),
    [
        ({"row_failure_tries": 2}, 2),
        ({"row_failure_tries": None}, None),
        ({"row_failure_tries": 1}, 1),
    ],
)
def test_row_failure_tries_is_a_job_level_count_or_null(change, stored) -> None:
    faults = Faults().updated(change)
    assert faults.row_failure_tries == stored
    assert faults.for_job().row_failure_tries == stored
    assert JobFaults.from_dict(faults.for_job().to_dict()).row_failure_tries == stored


@pytest.mark.parametrize(
    "change",
    [
        {"row_failure_tries": 0},
        {"row_failure_tries": -1},
        {"row_failure_tries": 1.5},
        {"row_failure_tries": True},
        {"row_failure_tries": "2"},
        {"row_permanent_failure_ratio": 1.5},
        {"row_permanent_failure_ratio": -0.1},
        {"row_permanent_failure_ratio": True},
    ],
)
def test_bad_row_failure_values_are_refused(change) -> None:
    with pytest.raises(FaultError):
        Faults().updated(change)


def test_permanent_failures_follow_their_ratio_with_their_own_salt() -> None:
    faults = JobFaults(row_permanent_failure_ratio=0.1, row_failure_ratio=0.1)
    refused = [faults.row_refused(row) for row in ROWS]
    assert refused == [faults.row_refused(row) for row in ROWS]
    assert 0.08 < sum(refused) / len(ROWS) < 0.12
    both = sum(1 for row, r in zip(ROWS, refused, strict=True) if r and faults.row_fails(row))
    assert both < 0.03 * len(ROWS)  # independent: about 1%, not 10%
    assert not any(JobFaults().row_refused(row) for row in ROWS)
    assert all(JobFaults(row_permanent_failure_ratio=1.0).row_refused(row) for row in ROWS[:50])


@pytest.mark.parametrize(
    ("tries", "jobs", "fails"),
    [
        (None, ["a", "b", "c", "d"], [True, True, True, True]),
        (1, ["a", "b", "c"], [True, False, False]),
        (2, ["a", "b", "c", "d"], [True, True, False, False]),
        (1, ["a", "a", "b"], [True, True, False]),  # a job counts once (e.g. run again after a restart)
        (2, ["a", "b", "a", "c"], [True, True, True, False]),
    ],
)
def test_a_transient_row_fails_in_at_most_tries_jobs(tries, jobs, fails) -> None:
    ledger = RowFailureLedger()
    assert [ledger.fails_in(b"row", job, tries) for job in jobs] == fails
    assert ledger.fails_in(b"another row", "z", tries) is True  # counted per row content


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (JobFaults(), None),
        (JobFaults(row_failure_ratio=1.0), ROW_FAILURE_ERROR),
        (JobFaults(row_permanent_failure_ratio=1.0), ROW_REFUSED_ERROR),
        (JobFaults(row_failure_ratio=1.0, row_permanent_failure_ratio=1.0), ROW_REFUSED_ERROR),
        (JobFaults(row_failure_ratio=1.0, row_failure_tries=1), ROW_FAILURE_ERROR),
    ],
)
def test_the_error_of_a_row_in_its_first_job(faults, expected) -> None:
    assert faults.row_error(b"row", "job-1", RowFailureLedger()) == expected


def test_transient_rows_are_answered_after_their_tries_and_refused_rows_never() -> None:
    faults = JobFaults(row_failure_ratio=0.1, row_failure_tries=1, row_permanent_failure_ratio=0.02)
    ledger = RowFailureLedger()
    first = [faults.row_error(row, "job-1", ledger) for row in ROWS]
    second = [faults.row_error(row, "job-2", ledger) for row in ROWS]
    transient = [e is ROW_FAILURE_ERROR for e in first]
    assert 0.08 < sum(transient) / len(ROWS) < 0.12
    assert ROW_FAILURE_ERROR not in second
    assert [e is ROW_REFUSED_ERROR for e in second] == [e is ROW_REFUSED_ERROR for e in first]
    assert 0.01 < sum(e is ROW_REFUSED_ERROR for e in second) / len(ROWS) < 0.03


@pytest.mark.integration
def test_a_second_job_answers_the_transient_rows_and_refuses_the_same_rows(
    vertex_client, stack_admin, upload_jsonl, gcs_client
) -> None:
    src = upload_jsonl("rows.jsonl", [{"request": user_request(f"q{i}")} for i in range(300)])
    stack_admin.set_faults(row_failure_ratio=0.2, row_failure_tries=1, row_permanent_failure_ratio=0.05)

    def failed_statuses(job: types.BatchJob) -> dict[str, str]:
        bucket, _, prefix = job.output_info.gcs_output_directory[5:].partition("/")
        text = gcs_client.bucket(bucket).blob(f"{prefix}/predictions.jsonl").download_as_bytes()
        lines = [json.loads(line) for line in text.splitlines()]
        return {
            line["request"]["contents"][0]["parts"][0]["text"]: json.loads(line["status"].split(": ", 1)[1])[
                "error"
            ]["status"]
            for line in lines
            if line["status"]
        }

    first = wait_for_job(vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=src).name)
    second = wait_for_job(vertex_client, vertex_client.batches.create(model="gemini-2.5-flash", src=src).name)

    before, after = failed_statuses(first), failed_statuses(second)
    refused = {prompt for prompt, status in before.items() if status == "INVALID_ARGUMENT"}
    assert set(before.values()) == {"RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"}
    assert 30 <= len(before) - len(refused) <= 90 and 3 <= len(refused) <= 30
    assert after == {prompt: "INVALID_ARGUMENT" for prompt in refused}
    assert second.completion_stats.failed_count == len(refused)
