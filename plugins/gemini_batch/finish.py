"""Turning a terminal batch job into a task's result: the manifest, or an exception that names the counts.

Invariants: the create operator and the sensor end a job through :func:`finish_job` only, so a
job ends both the same way, in both modes (waiting in the worker or resumed after the trigger):
``failed`` raises :class:`GeminiBatchJobFailed` (a retry submits anew), or
:class:`GeminiBatchJobFailedPermanently` (no retry) for a FAILED job whose error code a new job
would meet again (api_errors.job_failure_kind), ``partial`` is checked
against ``max_failed_ratio`` (:class:`GeminiBatchTooManyFailedRows` above it, or when there are
no counts and the ratio is below 1), ``succeeded`` returns the manifest. A task that fails on a
finished job pushes the manifest to XCom under :data:`FAILED_MANIFEST_XCOM_KEY` first. A job
that is not terminal is never finished (:func:`require_terminal`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gemini_batch.api_errors import job_failure_kind
from gemini_batch.exceptions import (
    GeminiBatchConfigError,
    GeminiBatchJobFailed,
    GeminiBatchJobFailedPermanently,
    GeminiBatchPollingError,
    GeminiBatchTooManyFailedRows,
)
from gemini_batch.links import GeminiBatchJobLink
from gemini_batch.manifest import build_manifest
from gemini_batch.states import is_terminal, normalize_state, outcome_of, progress_line, short_state

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.definitions.context import Context
    from google.genai import types

    from gemini_batch.backends import Backend
    from gemini_batch.costs import PriceTable
    from gemini_batch.job_task import JobTask

#: XCom key of the manifest of a job that made the task fail (the return value is lost then).
FAILED_MANIFEST_XCOM_KEY = "gemini_batch_manifest"


def check_ratio(value: Any) -> float:
    """``max_failed_ratio`` as a float in [0, 1].

    :raises GeminiBatchConfigError: not a number, or outside [0, 1].
    """
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise GeminiBatchConfigError(f"max_failed_ratio must be a number in [0, 1], got {value!r}.") from None
    if not 0.0 <= ratio <= 1.0:
        raise GeminiBatchConfigError(
            f"max_failed_ratio must be in [0, 1] (0: no failed row allowed, 1: any), got {ratio}."
        )
    return ratio


def require_terminal(job: types.BatchJob, reported: str) -> types.BatchJob:
    """The job, re-read after the trigger reported it ``reported``; it must be terminal by now.

    :raises GeminiBatchPollingError: the job reads as not terminal (the event and the service
        disagree: never finish a job that is still running).
    """
    if not is_terminal(job.state):
        raise GeminiBatchPollingError(
            f"The trigger reported batch job {job.name} as {reported}, but it reads "
            f"{normalize_state(job.state)}. A retry of the task re-attaches to it."
        )
    return job


def finish_job(
    operator: BaseOperator,
    context: Context,
    job: types.BatchJob,
    *,
    backend: Backend,
    source: str | None,
    work_id: str | None,
    model: str | None,
    project: str | None,
    location: str | None,
    max_failed_ratio: float,
    max_inline_results_bytes: int,
    prices: PriceTable | None = None,
    task: JobTask | None = None,
) -> dict[str, Any]:
    """Turn a terminal job into the task's result (see the module docstring).

    :param operator: the task (for its log).
    :param context: the task's context (XCom, extra link).
    :param job: Required. A terminal job.
    :param max_failed_ratio: largest accepted share of failed rows of a partial job.
    :param max_inline_results_bytes: cap on inline results carried in the manifest.
    :param prices: the price table of the manifest's estimated cost (default: the shipped one).
    :param task: ``generate`` or ``embed`` (None: what the model says; manifest.build_manifest).
    :raises GeminiBatchPollingError: the job is not terminal.
    """
    manifest = build_manifest(
        job,
        backend=backend,
        source=source,
        work_id=work_id,
        model=model,
        project=project,
        location=location,
        max_inline_bytes=max_inline_results_bytes,
        prices=prices,
        task=task,
    )
    if manifest.tokens is not None:
        operator.log.info(
            "Batch job %s used %s tokens; estimated cost %s USD at batch prices (prices of %s)",
            manifest.job_name,
            manifest.tokens,
            "unknown (no price for the model)"
            if manifest.estimated_cost_usd is None
            else f"{manifest.estimated_cost_usd:.6f}",
            manifest.prices_retrieved or "-",
        )
    GeminiBatchJobLink.persist(context, manifest.console_url)
    counts = manifest.counts_obj
    outcome = outcome_of(manifest.state, counts)
    data = manifest.as_dict()
    if outcome is None:
        raise GeminiBatchPollingError(
            f"Batch job {manifest.job_name} is {short_state(manifest.state)}, not finished; "
            "nothing to return yet."
        )

    def push_failed() -> None:
        context["ti"].xcom_push(key=FAILED_MANIFEST_XCOM_KEY, value=data)

    if outcome == "failed":
        push_failed()
        reason = f": {manifest.error}" if manifest.error else ""
        if short_state(manifest.state) == "FAILED" and job_failure_kind(job) == "permanent":
            raise GeminiBatchJobFailedPermanently(
                f"Batch job {manifest.job_name} ended FAILED{reason}. A new job would fail the same way, "
                "so the task is not retried: fix the input or argument the error names, then clear the task.",
                manifest=data,
            )
        raise GeminiBatchJobFailed(
            f"Batch job {manifest.job_name} ended {short_state(manifest.state)}{reason}. A retry (or a "
            "clear) of this task submits a new job.",
            manifest=data,
        )
    if outcome == "partial":
        where = (
            manifest.gcs_output_directory
            or manifest.bigquery_output_table
            or manifest.file_name
            or ("inline responses" if manifest.inline_responses is not None else "the job's output")
        )
        if counts is None or counts.total == 0:
            if max_failed_ratio < 1.0:
                push_failed()
                raise GeminiBatchTooManyFailedRows(
                    f"Batch job {manifest.job_name} ended {short_state(manifest.state)} and the service "
                    f"reports no row counts, so the failed ratio cannot be checked against "
                    f"max_failed_ratio={max_failed_ratio}. Results of the rows that succeeded are in {where}. "
                    "Set max_failed_ratio=1.0 to accept partial results.",
                    manifest=data,
                )
        elif counts.failed_ratio > max_failed_ratio:
            push_failed()
            raise GeminiBatchTooManyFailedRows(
                f"Batch job {manifest.job_name} ended {short_state(manifest.state)} with {counts.failed:,} of "
                f"{counts.total:,} rows failed ({counts.failed_ratio:.1%}), above max_failed_ratio="
                f"{max_failed_ratio} ({counts.succeeded:,} succeeded, {counts.incomplete:,} incomplete). "
                f"Results of the rows that succeeded are in {where}. The finished job is kept, so a retry "
                "finds the same counts: raise max_failed_ratio, or re-run the failed rows.",
                manifest=data,
            )
        operator.log.warning(
            "Batch job %s ended %s; accepted partial result (failed ratio within max_failed_ratio=%s)",
            manifest.job_name,
            progress_line(manifest.state, counts),
            max_failed_ratio,
        )
    else:
        operator.log.info("Batch job %s ended %s", manifest.job_name, progress_line(manifest.state, counts))
    return data
