"""Operator extra link "Gemini batch job": the job's own page, wherever it has one.

Invariants: the operator hands the console URL to :meth:`GeminiBatchJobLink.persist` as soon as it
knows the job; persist stores in XCom (key :data:`XCOM_KEY`) the URL the button must open, so the
link is right while the task is deferred too (the API server reads that XCom as it is; Airflow
overwrites it with :meth:`~GeminiBatchJobLink.get_link`'s answer when the task ends, the same URL).
The choice is :func:`job_link` (one rule, a table of cases in the tests): a Vertex AI job opens its console page;
a Gemini API job opens the Gemini batch view's job page (AI Studio has no page per batch); with an
endpoint override (the local stack: ``GOOGLE_VERTEX_BASE_URL``) or ``[gemini_batch] view_links``
every link opens the view, which works offline. A URL never contains a secret.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.sdk import BaseOperatorLink

from gemini_batch.manifest import AI_STUDIO_BATCHES

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.definitions.context import Context
    from airflow.sdk.types import TaskInstanceKey

XCOM_KEY = "gemini_batch_job_link"
#: Where the Gemini batch view is mounted on the API server (gemini_batch.ui.plugin).
VIEW_PREFIX = "/gemini-batch"


def view_url(base_url: str, *, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The Gemini batch view's page of one job task, under the API server's base URL."""
    query = urlencode({"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index})
    return f"{base_url.rstrip('/')}{VIEW_PREFIX}/job?{query}"


def job_link(console: Any, view: str, *, offline: bool) -> str:
    """The URL the button opens: "" before the job is known, else the console page or the view.

    :param console: the job's console URL from the manifest (None before the job exists).
    :param view: the view's page of this job (:func:`view_url`).
    :param offline: the endpoints are overridden (local stack): only the view can show the job.
    """
    if not (isinstance(console, str) and console.startswith("https://")):
        return ""
    if offline or console == AI_STUDIO_BATCHES:
        return view
    return console


def _stored_link(value: Any) -> str:
    """A stored link read back: only an http(s) URL (never ``javascript:`` or a non-string)."""
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else ""


def _base_url() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="") or ""


def links_offline() -> bool:
    """True when the jobs are not Google's (an endpoint override) or the config asks for the view."""
    from airflow.configuration import conf

    return bool(os.environ.get("GOOGLE_VERTEX_BASE_URL")) or conf.getboolean(
        "gemini_batch", "view_links", fallback=False
    )


class GeminiBatchJobLink(BaseOperatorLink):
    """ "Gemini batch job" button: the job's Vertex AI console page, or its page in the Gemini batch view."""

    name = "Gemini batch job"

    @property
    def xcom_key(self) -> str:
        return XCOM_KEY

    @staticmethod
    def persist(context: Context, url: str | None) -> None:
        """Store the URL the button opens for the job whose console URL is ``url`` (no-op without one)."""
        ti = context["ti"]
        view = view_url(
            _base_url(), dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index
        )
        link = job_link(url, view, offline=links_offline())
        if link:
            ti.xcom_push(key=XCOM_KEY, value=link)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return _stored_link(XCom.get_value(ti_key=ti_key, key=XCOM_KEY))
