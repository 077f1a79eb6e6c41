"""pipeline/sql: rendering, identifiers, literals and typed query parameters, without a server."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline import sql


@pytest.mark.parametrize(
    ("text", "identifiers", "rendered"),
    [
        ("SELECT 1", {}, "SELECT 1\n"),
        ("-- {{doc}} only\nSELECT {{col}} FROM {{t}}\n  -- indented comment\n", {"col": "`a`", "t": "p.d.t"}, "SELECT `a` FROM p.d.t\n"),
        ("SELECT 1 -- trailing {{x}} stays\n", {"x": "X"}, "SELECT 1 -- trailing X stays\n"),
        ("SELECT {{a}}, {{a}}", {"a": "1", "unused": "2"}, "SELECT 1, 1\n"),
    ],
)  # fmt: skip
def test_render_text(text, identifiers, rendered):
    assert sql.render_text(text, **identifiers) == rendered


def test_a_placeholder_without_value_is_named():
    with pytest.raises(KeyError) as caught:
        sql.render_text("SELECT {{col}}")
    assert caught.value.args[0] == "no value for the SQL placeholder {{col}}; pass col=..."


def test_render_file_reads_a_project_file(tmp_path):
    path = tmp_path / "q.sql"
    path.write_text("-- doc\nSELECT * FROM {{t}}\n", encoding="utf-8")
    assert sql.render_file(path, t="p.d.t") == "SELECT * FROM p.d.t\n"
    assert sql.render_file(str(path), t="x") == "SELECT * FROM x\n"


@pytest.mark.parametrize(
    ("name", "quoted"),
    [("request", "`request`"), ("_k9", "`_k9`"), ("A" * 300, f"`{'A' * 300}`"), ("a", "`a`")],
)
def test_ident_quotes_valid_names(name, quoted):
    assert sql.ident(name) == quoted


@pytest.mark.parametrize("name", ["", "9a", "a-b", "a b", "a`", "A" * 301, "a\n"])
def test_ident_refuses_anything_else(name):
    with pytest.raises(ValueError) as caught:
        sql.ident(name)
    assert str(caught.value) == f"invalid column name {name!r}: use letters, digits and underscores"


def test_date_literal():
    assert sql.date_literal(dt.date(2026, 1, 2)) == "DATE '2026-01-02'"
    for bad, kind in ((dt.datetime(2026, 1, 2), "datetime"), ("2026-01-02", "str")):
        with pytest.raises(TypeError) as caught:
            sql.date_literal(bad)
        assert str(caught.value) == f"date_literal takes a datetime.date, got {kind}"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (True, "BOOL", True),
        (3, "INT64", 3),
        (1.5, "FLOAT64", 1.5),
        (
            dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
            "TIMESTAMP",
            dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
        ),
        (dt.date(2026, 1, 2), "DATE", dt.date(2026, 1, 2)),
        ("x", "STRING", "x"),
    ],
)
def test_scalar_parameters_are_typed(value, kind, expected):
    (parameter,) = sql.job_config({"p": value}).query_parameters
    assert parameter == bigquery.ScalarQueryParameter("p", kind, expected)


@pytest.mark.parametrize(
    ("value", "kind"),
    [([1, 2], "INT64"), ((1, 2), "INT64"), (["a"], "STRING"), ([1, "a"], "STRING"), ([], "STRING")],
)
def test_array_parameters_are_typed(value, kind):
    (parameter,) = sql.job_config({"keys": value}).query_parameters
    assert parameter == bigquery.ArrayQueryParameter("keys", kind, list(value))


@pytest.mark.parametrize(
    ("value", "wire_type"),
    [
        (True, {"type": "BOOL"}),
        (3, {"type": "INT64"}),
        (1.5, {"type": "FLOAT64"}),
        (dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc), {"type": "TIMESTAMP"}),
        (dt.date(2026, 1, 2), {"type": "DATE"}),
        ("x", {"type": "STRING"}),
        ([1, 2], {"type": "ARRAY", "arrayType": {"type": "INT64"}}),
        (["a"], {"type": "ARRAY", "arrayType": {"type": "STRING"}}),
    ],
)
def test_parameters_reach_bigquery_with_the_documented_type_names(value, wire_type):
    """The request carries the type names of the BigQuery REST reference (upper case): the client
    library compares parameters case-blind but sends the name as given."""
    (parameter,) = sql.job_config({"p": value}).query_parameters
    assert parameter.to_api_repr()["parameterType"] == wire_type


def test_an_unsupported_parameter_is_named():
    with pytest.raises(TypeError) as caught:
        sql.job_config({"blob": b"x"})
    assert str(caught.value) == "query parameter @blob has unsupported type bytes"


class Row(dict):
    def items(self) -> Any:
        return super().items()


class Client:
    """Answers every query with ``rows``; records the text and parameters."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.queries: list[tuple[str, list[Any]]] = []
        self.results = 0

    def query(self, text: str, job_config: Any) -> Any:
        self.queries.append((text, job_config.query_parameters))
        client = self

        class Job:
            def result(self) -> list[Row]:
                client.results += 1
                return [Row(r) for r in client.rows]

        return Job()


def test_run_waits_for_the_statement_and_passes_parameters():
    client = Client([])
    sql.run(client, "DELETE FROM t WHERE k = @k", k=4)
    assert client.results == 1
    assert client.queries == [
        ("DELETE FROM t WHERE k = @k", [bigquery.ScalarQueryParameter("k", "INT64", 4)])
    ]


def test_query_rows_and_query_one():
    assert sql.query_rows(Client([{"n": 1}, {"n": 2}]), "SELECT n") == [{"n": 1}, {"n": 2}]
    assert sql.query_one(Client([{"n": 1}]), "SELECT n") == {"n": 1}
    for rows in ([], [{"n": 1}, {"n": 2}]):
        with pytest.raises(RuntimeError) as caught:
            sql.query_one(Client(rows), "SELECT n")
        assert str(caught.value) == f"expected one row, got {len(rows)} from:\nSELECT n"
