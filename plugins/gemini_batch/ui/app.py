"""The FastAPI app of the Gemini batch view, mounted on Airflow's API server by plugin.py.

Invariants: read-only (GET routes only); every route resolves the caller with the API server's own
auth dependency (``get_user``: the UI's session cookie or a bearer token) and reads only the DAGs
the auth manager lets that user read; no route calls the batch service.
"""

from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from gemini_batch.ui import jobs, pages
from gemini_batch.ui.samples import results_sample

PAGE_SIZE = 50


def readable_dag_ids(user: Annotated[BaseUser, Depends(get_user)]) -> list[str]:
    """The DAG ids the caller may read (the same rule as the API server's DAG routes)."""
    from airflow.api_fastapi.app import get_auth_manager

    return sorted(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


ReadableDagIds = Annotated[list[str], Depends(readable_dag_ids)]

app = FastAPI(title="Gemini batch", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/", response_class=HTMLResponse)
def job_list(session: SessionDep, dag_ids: ReadableDagIds, page: Annotated[int, Query(ge=1)] = 1) -> str:
    rows = jobs.recent_jobs(session, dag_ids=dag_ids, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    shown = rows[:PAGE_SIZE]
    return pages.jobs_page(shown, days=jobs.per_day(shown), page=page, has_next=len(rows) > PAGE_SIZE)


@app.get("/job", response_class=HTMLResponse)
def job_detail(
    session: SessionDep,
    dag_ids: ReadableDagIds,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int = -1,
) -> str:
    row = jobs.one_job(
        session, dag_ids=dag_ids, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index
    )
    if row is None:
        raise HTTPException(status_code=404, detail="No such batch job (or not a DAG you may read)")
    sample, note = results_sample(session, row)
    return pages.job_page(row, sample=sample, sample_note=note)
