"""links.py: the link reads back the URL the operator stored."""

from __future__ import annotations

import pytest

from gemini_batch.links import XCOM_KEY, GeminiBatchJobLink
from tests.gemini_batch.fakes import make_context


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("https://console.cloud.google.com/vertex-ai/x", "https://console.cloud.google.com/vertex-ai/x"),
        (None, ""),
        ("javascript:alert(1)", ""),
        ({"not": "a url"}, ""),
    ],
)
def test_get_link_returns_the_stored_https_url_only(monkeypatch, stored, expected):
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


def test_persist_stores_the_url_and_skips_none():
    context = make_context()
    GeminiBatchJobLink.persist(context, None)
    assert XCOM_KEY not in context["ti"].xcom
    GeminiBatchJobLink.persist(context, "https://x")
    assert context["ti"].xcom[XCOM_KEY] == "https://x"
