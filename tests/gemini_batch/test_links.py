"""links.py: the button opens the Vertex console page, or the Gemini batch view's job page."""

from __future__ import annotations

import pytest

from gemini_batch.links import XCOM_KEY, GeminiBatchJobLink, job_link, links_offline, view_url
from gemini_batch.manifest import AI_STUDIO_BATCHES
from tests.gemini_batch.fakes import FakeTI, make_context

CONSOLE = "https://console.cloud.google.com/vertex-ai/locations/us-central1/batch-predictions/1?project=p"
VIEW = "http://localhost:8080/gemini-batch/job?dag_id=d"


@pytest.mark.parametrize(
    ("stored", "offline", "expected"),
    [
        (CONSOLE, False, CONSOLE),  # Vertex AI: its console page
        (AI_STUDIO_BATCHES, False, VIEW),  # Gemini API: AI Studio has no page per batch
        (CONSOLE, True, VIEW),  # local stack: the console does not know the emulator's jobs
        (AI_STUDIO_BATCHES, True, VIEW),
        (None, False, ""),  # no job yet: no button
        (None, True, ""),
        ("javascript:alert(1)", False, ""),
        ("javascript:alert(1)", True, ""),
        ({"not": "a url"}, False, ""),
    ],
)
def test_job_link(stored, offline, expected):
    assert job_link(stored, VIEW, offline=offline) == expected


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://localhost:8080", "http://localhost:8080/gemini-batch/job?"),
        ("http://h/airflow/", "http://h/airflow/gemini-batch/job?"),
        ("", "/gemini-batch/job?"),
    ],
)
def test_view_url_is_under_the_base_url_and_names_the_task(base, expected):
    url = view_url(base, dag_id="d a", run_id="manual__2026-01-01T00:00:00+00:00", task_id="t", map_index=3)
    assert (
        url == expected + "dag_id=d+a&run_id=manual__2026-01-01T00%3A00%3A00%2B00%3A00&task_id=t&map_index=3"
    )


@pytest.mark.parametrize(
    ("vertex_base_url", "view_links", "expected"),
    [(None, None, False), ("http://127.0.0.1:1", None, True), (None, "True", True), (None, "False", False)],
)
def test_links_are_offline_with_an_endpoint_override_or_the_option(
    monkeypatch, vertex_base_url, view_links, expected
):
    for name, value in (
        ("GOOGLE_VERTEX_BASE_URL", vertex_base_url),
        ("AIRFLOW__GEMINI_BATCH__VIEW_LINKS", view_links),
    ):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert links_offline() is expected


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(CONSOLE, CONSOLE), (VIEW, VIEW), (None, ""), ("javascript:alert(1)", ""), ({"a": 1}, "")],
)
def test_get_link_reads_back_the_stored_url(monkeypatch, stored, expected):
    from airflow.sdk.execution_time.xcom import XCom

    asked = {}

    def get_value(*, ti_key, key):
        asked.update(ti_key=ti_key, key=key)
        return stored

    monkeypatch.setattr(XCom, "get_value", staticmethod(get_value))
    link = GeminiBatchJobLink()
    assert link.get_link(operator=None, ti_key="key") == expected
    assert asked == {"ti_key": "key", "key": XCOM_KEY}
    assert link.xcom_key == XCOM_KEY
    assert link.name == "Gemini batch job"


@pytest.mark.parametrize(
    ("console", "offline", "expected"),
    [
        (CONSOLE, False, CONSOLE),
        (AI_STUDIO_BATCHES, False, "http://a:1/gemini-batch/job?dag_id=dag&run_id=r&task_id=t&map_index=2"),
        (CONSOLE, True, "http://a:1/gemini-batch/job?dag_id=dag&run_id=r&task_id=t&map_index=2"),
    ],
)
def test_persist_stores_the_url_the_button_opens(monkeypatch, console, offline, expected):
    monkeypatch.setattr("gemini_batch.links.links_offline", lambda: offline)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://a:1")
    context = make_context(FakeTI(dag_id="dag", task_id="t", run_id="r", map_index=2))
    GeminiBatchJobLink.persist(context, console)
    assert context["ti"].xcom[XCOM_KEY] == expected


def test_persist_stores_nothing_without_a_url():
    context = make_context()
    GeminiBatchJobLink.persist(context, None)
    assert XCOM_KEY not in context["ti"].xcom
