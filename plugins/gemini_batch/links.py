"""Operator extra link to a batch job in the Google Cloud console (Vertex AI) or AI Studio.

Invariants: the operator stores the finished URL in XCom (key :data:`XCOM_KEY`) as soon as it
knows the job, so the link works while the task is deferred; the link only reads it back.
A URL never contains a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.definitions.context import Context
    from airflow.sdk.types import TaskInstanceKey

XCOM_KEY = "gemini_batch_job_link"


class GeminiBatchJobLink(BaseOperatorLink):
    """ "Gemini batch job" button: the Vertex AI console page of the job, or AI Studio's batch list."""

    name = "Gemini batch job"

    @property
    def xcom_key(self) -> str:
        return XCOM_KEY

    @staticmethod
    def persist(context: Context, url: str | None) -> None:
        """Store the job's URL for the button (no-op without a URL)."""
        if url:
            context["ti"].xcom_push(key=XCOM_KEY, value=url)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value: Any = XCom.get_value(ti_key=ti_key, key=XCOM_KEY)
        return value if isinstance(value, str) and value.startswith("https://") else ""
