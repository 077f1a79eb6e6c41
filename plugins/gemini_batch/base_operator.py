"""GeminiBatchBaseOperator: the connection arguments and hook construction every operator here shares.

Invariants: an operator names connections, never credentials (the hook reads them from the
connection); the backend of a job decides which connection is used (Vertex AI: the Google Cloud
connection, Gemini API: the ``gemini_api`` connection); reads go through the one polling core's
``retry_read`` (transient errors back off within a budget).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from airflow.sdk import BaseOperator

from gemini_batch.backends import DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID, Backend
from gemini_batch.create_plan import check_backend
from gemini_batch.hooks import GeminiBatchHook
from gemini_batch.links import GeminiBatchJobLink
from gemini_batch.polling import retry_read
from gemini_batch.sources import JobRef

T = TypeVar("T")


class GeminiBatchBaseOperator(BaseOperator):
    """Connection arguments and hook construction shared by every operator here."""

    operator_extra_links = (GeminiBatchJobLink(),)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        gcp_conn_id: str = DEFAULT_GCP_CONN_ID,
        gemini_api_conn_id: str = DEFAULT_GEMINI_API_CONN_ID,
        project_id: str | None = None,
        location: str | None = None,
        impersonation_chain: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gcp_conn_id = gcp_conn_id
        self.gemini_api_conn_id = gemini_api_conn_id
        self.project_id = project_id
        self.location = location
        self.impersonation_chain = impersonation_chain

    def _conn_id(self, backend: Backend) -> str:
        return self.gcp_conn_id if backend == "vertex" else self.gemini_api_conn_id

    def _make_hook(
        self, backend: Backend, *, project: str | None = None, location: str | None = None
    ) -> GeminiBatchHook:
        if backend == "vertex":
            return GeminiBatchHook(
                "vertex",
                self.gcp_conn_id,
                project_id=project or self.project_id,
                location=location or self.location,
                impersonation_chain=self.impersonation_chain,
            )
        return GeminiBatchHook("gemini_api", self.gemini_api_conn_id)

    def _hook_for_job(self, job_name: str, backend: str | None) -> tuple[JobRef, GeminiBatchHook]:
        ref = JobRef.parse(job_name, backend=backend)
        hook = self._make_hook(ref.backend, project=ref.project, location=ref.location)
        hook.settings  # noqa: B018 - builds the client now: a missing connection fails here, clearly
        return ref, hook

    def _retry_read(
        self, what: str, call: Callable[[], T], budget: int = 8, *, rebuild: Callable[[], None] | None = None
    ) -> T:
        return retry_read(self.log, what, call, budget, rebuild=rebuild)

    _check_backend = staticmethod(check_backend)
