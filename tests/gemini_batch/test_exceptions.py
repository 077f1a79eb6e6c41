"""exceptions.py: what Airflow retries and what it does not."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchError,
    GeminiBatchInlineResultsTooLarge,
    GeminiBatchJobFailed,
    GeminiBatchJobNotFound,
    GeminiBatchPollingError,
    GeminiBatchTimeout,
    GeminiBatchTooManyFailedRows,
)


@pytest.mark.parametrize(
    ("cls", "retried"),
    [
        (GeminiBatchConfigError, False),
        (GeminiBatchTooManyFailedRows, False),
        (GeminiBatchInlineResultsTooLarge, False),
        (GeminiBatchJobFailed, True),
        (GeminiBatchTimeout, True),
        (GeminiBatchPollingError, True),
    ],
)
def test_only_errors_a_retry_can_fix_are_retried(cls, retried):
    error = cls("x")
    assert isinstance(error, GeminiBatchError)
    assert isinstance(error, AirflowException)
    assert isinstance(error, AirflowFailException) is not retried


def test_job_not_found_names_the_job():
    assert str(GeminiBatchJobNotFound("batches/x", "vertex answered 404")) == (
        "Gemini batch job 'batches/x' was not found: vertex answered 404."
    )


def test_config_errors_are_value_errors():
    assert isinstance(GeminiBatchConfigError("x"), ValueError)
