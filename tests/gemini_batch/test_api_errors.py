"""The one classification of failed calls and failed jobs: transient, permanent."""

from __future__ import annotations

import types as pytypes

import pytest
from google.genai import types

from gemini_batch.api_errors import (
    exception_names,
    http_status,
    is_permanent_error,
    job_error_code,
    job_failure_kind,
)
from tests.gemini_batch.fakes import api_error


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        (400, True),  # bad request: too many labels, a bad URI
        (403, True),  # permission
        (404, True),  # unknown model, missing source
        (409, True),
        (422, True),
        (401, False),  # credentials may rotate
        (408, False),
        (429, False),
        (500, False),
        (503, False),
    ],
)
def test_permanent_http_errors(code, permanent):
    assert is_permanent_error(api_error(code)) is permanent


@pytest.mark.parametrize(
    "exc", [TimeoutError("slow"), ConnectionError("reset"), RuntimeError("bug"), ValueError("json")]
)
def test_errors_without_a_status_are_not_permanent(exc):
    assert is_permanent_error(exc) is False


def test_the_sdks_own_refusal_of_the_arguments_is_permanent():
    with pytest.raises(Exception) as caught:
        types.CreateBatchJobConfig(display_name=["not", "a", "string"])
    assert is_permanent_error(caught.value) is True


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (types.JobError(code=3, message="bad"), "permanent"),  # INVALID_ARGUMENT
        (types.JobError(code=5), "permanent"),  # NOT_FOUND
        (types.JobError(code=6), "permanent"),  # ALREADY_EXISTS
        (types.JobError(code=7), "permanent"),  # PERMISSION_DENIED
        (types.JobError(code=9), "permanent"),  # FAILED_PRECONDITION
        (types.JobError(code=11), "permanent"),  # OUT_OF_RANGE
        (types.JobError(code=12), "permanent"),  # UNIMPLEMENTED
        (types.JobError(code=1), "transient"),  # CANCELLED
        (types.JobError(code=2), "transient"),  # UNKNOWN
        (types.JobError(code=4), "transient"),  # DEADLINE_EXCEEDED
        (types.JobError(code=8), "transient"),  # RESOURCE_EXHAUSTED
        (types.JobError(code=10), "transient"),  # ABORTED
        (types.JobError(code=13), "transient"),  # INTERNAL
        (types.JobError(code=14), "transient"),  # UNAVAILABLE
        (types.JobError(message="no code"), "transient"),
        (None, "transient"),
    ],
)
def test_job_failure_kind_by_canonical_code(error, kind):
    assert job_failure_kind(types.BatchJob(name="batches/1", error=error)) == kind


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"code": 3, "message": "x"}, 3),
        ({"code": "3"}, None),
        ({"code": True}, None),
        ({}, None),
        (None, None),
    ],
)
def test_job_error_code_of_a_raw_error(error, code):
    class Job:
        pass

    raw = Job()
    raw.error = error  # type: ignore[attr-defined]
    assert job_error_code(raw) == code


class _Failure(Exception):
    """An exception carrying whatever ``code`` / ``response`` a client library put on it."""

    def __init__(self, code=None, response=None):
        super().__init__("failure")
        self.code = code
        self.response = response


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (_Failure(code=100), 100),
        (_Failure(code=599), 599),
        (_Failure(code=600), None),
        (_Failure(code=99), None),
        (_Failure(code="503"), None),
        (_Failure(response=pytypes.SimpleNamespace(status_code=503)), 503),  # httpx / requests
        (_Failure(response=pytypes.SimpleNamespace(status=502)), 502),  # aiohttp
        (_Failure(response=pytypes.SimpleNamespace(status_code="x")), None),
        (_Failure(code=600, response=pytypes.SimpleNamespace(status_code=404)), 404),
        (ValueError("no status"), None),
    ],
)
def test_http_status_reads_code_then_the_response(exc, status):
    assert http_status(exc) == status


def test_exception_names_give_top_and_full_module_names():
    boom = type("Boom", (Exception,), {"__module__": "pkg.sub.mod"})
    names = exception_names(boom())
    assert {"pkg.Boom", "pkg.sub.mod.Boom", "builtins.Exception"} <= names
    assert None not in names


def test_a_job_without_error_attribute_has_no_code():
    assert job_error_code(object()) is None
