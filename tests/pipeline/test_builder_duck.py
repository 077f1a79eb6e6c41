"""builder.build_bigquery_requests over the in-process DuckBigQuery: the rendered SQL builds the rows.

The integration test runs the same against the BigQuery emulator; this one runs under
``make mutation`` (unit tests only), so a mutant of the build is seen by the fast loop.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline.builder import RequestTemplate, build_bigquery_requests
from gemini_batch.pipeline.refs import TableRef

from .duck_bigquery import DuckBigQuery

TEMPLATE = RequestTemplate.from_dict({"generationConfig": {"temperature": 0.2}})
PROMPTS = TableRef("proj", "ds", "prompts")
REQUESTS = TableRef("proj", "ds", "requests")


def duck_prompts() -> DuckBigQuery:
    bq = DuckBigQuery()
    bq.create_table(
        bigquery.Table(
            PROMPTS.api_repr,
            schema=[bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("prompt", "STRING")],
        )
    )
    bq.insert(PROMPTS.uri, [{"key": "a", "prompt": 'say "hi"'}, {"key": "b", "prompt": "bye"}])
    return bq


@pytest.mark.parametrize(
    ("key_label", "labels"),
    [(None, None), ("row_key", True)],
)
def test_the_requests_table_holds_one_rendered_request_per_prompt(key_label, labels):
    bq = duck_prompts()
    count = build_bigquery_requests(
        bq,
        source_sql=f"SELECT key, prompt FROM {PROMPTS.sql} WHERE key >= @low;\n",
        params={"low": "a"},
        destination=REQUESTS,
        template=TEMPLATE,
        key_label=key_label,
    )
    assert count == 2
    rows = bq.rows(REQUESTS.uri.removeprefix("bq://"))
    assert [row["key"] for row in rows] == ["a", "b"]
    for row, prompt in zip(rows, ['say "hi"', "bye"], strict=True):
        request = row["request"] if isinstance(row["request"], dict) else json.loads(row["request"])
        expected = TEMPLATE.render(prompt, key=row["key"] if labels else None, key_label=key_label or "key")
        assert request == expected
    # a re-run replaces the table: the same rows, not twice as many
    again = build_bigquery_requests(
        bq, source_sql=f"SELECT key, prompt FROM {PROMPTS.sql}", destination=REQUESTS, template=TEMPLATE
    )
    assert again == 2


def test_an_empty_prompts_query_is_refused():
    with pytest.raises(ValueError, match=r"^the prompts query is empty$"):
        build_bigquery_requests(duck_prompts(), source_sql=" ;\n", destination=REQUESTS, template=TEMPLATE)


def test_expiry_is_set_only_when_asked(monkeypatch):
    from gemini_batch.pipeline import builder

    calls: list[tuple[str, dt.timedelta]] = []
    monkeypatch.setattr(builder, "set_expiry", lambda client, table, after: calls.append((table.uri, after)))
    bq = duck_prompts()
    source = f"SELECT key, prompt FROM {PROMPTS.sql}"
    build_bigquery_requests(bq, source_sql=source, destination=REQUESTS, template=TEMPLATE)
    assert calls == []
    build_bigquery_requests(
        bq, source_sql=source, destination=REQUESTS, template=TEMPLATE, expires=dt.timedelta(days=14)
    )
    assert calls == [(REQUESTS.uri, dt.timedelta(days=14))]


def test_an_empty_template_builds_the_bare_request():
    bq, empty = duck_prompts(), RequestTemplate.from_dict({})
    build_bigquery_requests(
        bq, source_sql=f"SELECT key, prompt FROM {PROMPTS.sql}", destination=REQUESTS, template=empty
    )
    assert [row["request"] for row in bq.rows(REQUESTS.uri)] == [
        empty.render('say "hi"'),
        empty.render("bye"),
    ]


def test_a_key_label_is_refused_for_a_template_with_its_own_labels():
    labelled = RequestTemplate.from_dict({"labels": {"team": "search"}})
    with pytest.raises(ValueError) as caught:
        build_bigquery_requests(
            duck_prompts(),
            source_sql="SELECT 1",
            destination=REQUESTS,
            template=labelled,
            key_label="row_key",
        )
    assert (
        str(caught.value)
        == "a template with its own labels cannot carry the key label; drop 'labels' from it"
    )
