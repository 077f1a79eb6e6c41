"""Validation of a BigQuery requests table before a bq:// job: schema, then one server-side query."""

from __future__ import annotations

import io
import json

import pytest

from gemini_batch.pipeline.bigquery_checks import validate_bigquery_requests
from gemini_batch.pipeline.findings import InputScan, InputValidationError
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.refs import TableRef

from .duck_bigquery import DuckBigQuery
from .test_request_shape import ACCEPTED_REQUESTS, SHAPE_CASES

GOOD = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def make_table(
    bq_client, dataset, name: str, schema: list[tuple[str, str, str]], rows: list[dict]
) -> TableRef:
    from google.cloud import bigquery

    ref = TableRef(dataset.project, dataset.dataset_id, name)
    fields = [
        bigquery.SchemaField(
            n, t, mode=m, fields=[bigquery.SchemaField("x", "STRING")] if t == "RECORD" else ()
        )
        for n, t, m in schema
    ]
    bq_client.create_table(bigquery.Table(ref.api_repr, schema=fields))
    if rows:
        body = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
        config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=fields)
        bq_client.load_table_from_file(io.BytesIO(body), ref.api_repr, job_config=config).result()
    return ref


KEY = ("key", "STRING", "NULLABLE")
REQUEST = ("request", "JSON", "NULLABLE")

# (id, schema, rows, expected location suffix, expected message fragment)
BAD_TABLES = [
    (
        "no-request-column",
        [KEY, ("prompt", "STRING", "NULLABLE")],
        [{"key": "a", "prompt": "x"}],
        "",
        "no column `request`",
    ),
    (
        "request-not-json",
        [KEY, ("request", "INT64", "NULLABLE")],
        [{"key": "a", "request": 1}],
        "column `request`",
        "is not accepted; use JSON (or a STRING holding JSON)",
    ),
    ("no-key-column", [REQUEST], [{"request": GOOD}], "", "no key column `key`"),
    (
        "array-column",
        [KEY, REQUEST, ("tags", "STRING", "REPEATED")],
        [{"key": "a", "request": GOOD, "tags": []}],
        "column `tags`",
        "type ARRAY<STRING> is rejected by the batch service",
    ),
    (
        "struct-column",
        [KEY, REQUEST, ("meta", "RECORD", "NULLABLE")],
        [],
        "column `meta`",
        "type RECORD is rejected",
    ),
    (
        "datetime-column",
        [KEY, REQUEST, ("at", "DATETIME", "NULLABLE")],
        [{"key": "a", "request": GOOD}],
        "column `at`",
        "type DATETIME is rejected",
    ),
    (
        "output-column-name",
        [KEY, REQUEST, ("status", "STRING", "NULLABLE")],
        [{"key": "a", "request": GOOD}],
        "column `status`",
        "the name is taken by the output",
    ),
    (
        "null-keys",
        [KEY, REQUEST],
        [{"key": None, "request": GOOD}, {"key": "b", "request": GOOD}],
        "column `key`",
        "1 rows have a NULL key",
    ),
    (
        "duplicate-keys",
        [KEY, REQUEST],
        [{"key": "a", "request": GOOD}, {"key": "a", "request": GOOD}],
        "column `key`",
        "1 keys appear more than once; keys must be unique in a job (sample keys: a)",
    ),
    (
        "invalid-json-string",
        [KEY, ("request", "STRING", "NULLABLE")],
        [{"key": "a", "request": "{not json"}],
        "column `request`",
        "1 rows do not hold valid JSON (sample keys: a)",
    ),
    (
        "no-contents",
        [KEY, REQUEST],
        [{"key": "z", "request": {"generationConfig": {}}}],
        "column `request`",
        "1 requests: the request has no contents",
    ),
    ("empty-table", [KEY, REQUEST], [], "", "the table holds no requests for this run"),
]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("schema", "rows", "where", "fragment"), [c[1:] for c in BAD_TABLES], ids=[c[0] for c in BAD_TABLES]
)
def test_bad_requests_table_is_rejected_naming_the_column(
    bq_client, bq_dataset, schema, rows, where, fragment
) -> None:
    table = make_table(bq_client, bq_dataset, "requests", schema, rows)
    with pytest.raises(InputValidationError) as caught:
        validate_bigquery_requests(table, bigquery_client=bq_client)
    matching = [issue for issue in caught.value.issues if fragment in issue.message]
    assert matching, str(caught.value)
    assert matching[0].location == f"{table.uri} {where}".strip()


@pytest.mark.integration
def test_missing_table_is_rejected(bq_client, bq_dataset) -> None:
    table = TableRef(bq_dataset.project, bq_dataset.dataset_id, "nope")
    with pytest.raises(InputValidationError, match="the table does not exist"):
        validate_bigquery_requests(table, bigquery_client=bq_client)


@pytest.mark.integration
def test_good_table_passes_and_the_limit_is_enforced_unless_sharding(bq_client, bq_dataset) -> None:
    rows = [{"key": f"k{i}", "request": GOOD} for i in range(5)]
    table = make_table(bq_client, bq_dataset, "requests", [KEY, REQUEST], rows)
    scan = validate_bigquery_requests(table, bigquery_client=bq_client)
    assert (scan.requests, scan.bytes) == (5, 5 * len(json.dumps(GOOD, separators=(",", ":"))))
    small = JobLimits(max_requests=3, max_bytes=10**9)
    with pytest.raises(
        InputValidationError, match="5 requests exceed the Vertex AI batch limit of 3 requests"
    ):
        validate_bigquery_requests(table, bigquery_client=bq_client, limits=small)
    assert (
        validate_bigquery_requests(
            table, bigquery_client=bq_client, limits=small, enforce_limits=False
        ).requests
        == 5
    )


@pytest.mark.parametrize(("rows", "accepted"), [(4, True), (5, False)], ids=["at-the-limit", "one-over"])
def test_table_of_exactly_the_limit_is_accepted_and_one_more_row_rejected(rows: int, accepted: bool) -> None:
    bq = DuckBigQuery()  # the same query, executed on DuckDB: unit speed
    bq.create_dataset("proj.ds")
    table = make_table(
        bq,
        _Dataset("proj", "ds"),
        "requests",
        [KEY, REQUEST],
        [{"key": f"k{i}", "request": GOOD} for i in range(rows)],
    )
    limits = JobLimits(max_requests=4, max_bytes=10**9)
    if accepted:
        assert validate_bigquery_requests(table, bigquery_client=bq, limits=limits).requests == 4
        return
    with pytest.raises(InputValidationError) as caught:
        validate_bigquery_requests(table, bigquery_client=bq, limits=limits)
    assert [(issue.location, issue.message) for issue in caught.value.issues] == [
        (
            table.uri,
            "5 requests exceed the Vertex AI batch limit of 4 requests per job; shard the table "
            "(enforce_limits=False and plan_bigquery_shards)",
        )
    ]
    assert (
        validate_bigquery_requests(table, bigquery_client=bq, limits=limits, enforce_limits=False).requests
        == 5
    )


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        (
            [{"key": "a", "request": GOOD}, {"key": "a", "request": GOOD}, {"key": "b", "request": GOOD}],
            "1 keys appear more than once; keys must be unique in a job (sample keys: a)",
        ),
        ([{"key": None, "request": GOOD}, {"key": "b", "request": GOOD}], "1 rows have a NULL key"),
        (
            [{"key": "z", "request": {"generationConfig": {}}}],
            "1 requests: the request has no contents: every request needs a non-empty list of contents "
            "with parts (sample keys: z)",
        ),
        (
            [{"key": "y", "request": {"contents": [{"parts": []}]}}],
            "1 requests: contents[].parts must be a non-empty list of parts",
        ),
    ],
    ids=["duplicate-key", "null-key", "no-contents", "empty-parts"],
)
def test_row_checks_run_in_the_query(rows: list[dict], fragment: str) -> None:
    bq = DuckBigQuery()
    bq.create_dataset("proj.ds")
    table = make_table(bq, _Dataset("proj", "ds"), "requests", [KEY, REQUEST], rows)
    with pytest.raises(InputValidationError) as caught:
        validate_bigquery_requests(table, bigquery_client=bq)
    assert [issue.message for issue in caught.value.issues if fragment in issue.message], str(caught.value)


class _Dataset:
    """The two attributes of a ``bigquery.Dataset`` that ``make_table`` reads."""

    def __init__(self, project: str, dataset_id: str) -> None:
        self.project, self.dataset_id = project, dataset_id


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [(case[1], case[3]) for case in SHAPE_CASES],
    ids=[case[0] for case in SHAPE_CASES],
)
def test_the_same_shape_rules_run_over_the_table_in_sql(request_body: object, fragment: str) -> None:
    """Each case of the JSONL rules' table is rejected by the SQL too, naming the field path."""
    bq = DuckBigQuery()
    bq.create_dataset("proj.ds")
    rows = [{"key": "good", "request": GOOD}, {"key": "bad", "request": request_body}]
    table = make_table(bq, _Dataset("proj", "ds"), "requests", [KEY, REQUEST], rows)
    with pytest.raises(InputValidationError) as caught:
        validate_bigquery_requests(table, bigquery_client=bq)
    matching = [issue for issue in caught.value.issues if fragment in issue.message]
    assert matching, str(caught.value)
    assert matching[0].location == f"{table.uri} column `request`"
    assert matching[0].message.startswith("1 requests: ") and matching[0].message.endswith(
        "(sample keys: bad)"
    )


def test_every_row_content_and_part_is_checked_not_only_the_first() -> None:
    bq = DuckBigQuery()
    bq.create_dataset("proj.ds")
    late = {
        "contents": [
            {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
            {"role": "model", "parts": [{"text": "c"}]},
            {"role": "assistant", "parts": [{"text": "d"}, {}]},
        ]
    }
    rows = [{"key": f"k{i}", "request": GOOD} for i in range(3)] + [{"key": "late", "request": late}]
    table = make_table(bq, _Dataset("proj", "ds"), "requests", [KEY, REQUEST], rows)
    with pytest.raises(InputValidationError) as caught:
        validate_bigquery_requests(table, bigquery_client=bq)
    assert sorted(issue.message for issue in caught.value.issues) == [
        '1 requests: contents[].parts[] has no data: give one of text, inlineData, fileData (e.g. {"text": '
        '"..."}) (sample keys: late)',
        "1 requests: contents[].role is \"assistant\": role must be 'user' or 'model' (not 'assistant' or "
        "'system'); use systemInstruction for instructions (sample keys: late)",
    ]


@pytest.mark.parametrize("request_body", ACCEPTED_REQUESTS)
def test_requests_the_service_accepts_pass_the_sql_checks(request_body: dict) -> None:
    bq = DuckBigQuery()
    bq.create_dataset("proj.ds")
    table = make_table(
        bq, _Dataset("proj", "ds"), "requests", [KEY, REQUEST], [{"key": "a", "request": request_body}]
    )
    assert validate_bigquery_requests(table, bigquery_client=bq).requests == 1


# --- the schema stage (metadata only), and the exact messages of each stage -----------------------

TABLE = TableRef("proj", "ds", "requests")
T = TABLE.uri


class QueriesReached(Exception):
    """The schema passed: validation went on to its queries."""


class Metadata:
    """A BigQuery client with one table's metadata and no query engine: the schema stage only."""

    def __init__(self, schema: list[tuple[str, str, str]] | None) -> None:
        from google.cloud import bigquery

        self.schema = None if schema is None else [
            bigquery.SchemaField(n, t, mode=m, fields=[bigquery.SchemaField("x", "STRING")] if t == "RECORD" else ())
            for n, t, m in schema
        ]  # fmt: skip

    def get_table(self, ref: str) -> object:
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        if self.schema is None:
            raise NotFound(f"Not found: Table {ref}")
        return bigquery.Table(ref, schema=self.schema)

    def query(self, *args: object, **kwargs: object) -> object:
        raise QueriesReached


def issues_of(client: object, **options: object) -> list[tuple[str, str]]:
    """The (location, message) of every issue validation raises; the error names the table."""
    with pytest.raises(InputValidationError) as caught:
        validate_bigquery_requests(TABLE, bigquery_client=client, **options)
    assert caught.value.source == T
    return [(issue.location, issue.message) for issue in caught.value.issues]


REJECTED = (
    "is rejected by the batch service (no ARRAY, STRUCT, RANGE, DATETIME, GEOGRAPHY); drop or cast the column"
)
SCHEMA_CASES = [
    ("no-request-column", [KEY, ("prompt", "STRING", "NULLABLE")],
     [(T, "no column `request`; the service reads the request from it")]),
    ("request-int", [KEY, ("request", "INT64", "NULLABLE")],
     [(f"{T} column `request`", "type INT64 is not accepted; use JSON (or a STRING holding JSON)")]),
    ("request-array", [KEY, ("request", "STRING", "REPEATED")],
     [(f"{T} column `request`", "type ARRAY<STRING> is not accepted; use JSON (or a STRING holding JSON)"),
      (f"{T} column `request`", f"type ARRAY<STRING> {REJECTED}")]),
    ("no-key-column", [REQUEST],
     [(T, "no key column `key`; keys pass through to the output to match answers")]),
    ("key-float", [("key", "FLOAT64", "NULLABLE"), REQUEST],
     [(f"{T} column `key`", "key type FLOAT64 is not a scalar key type; use STRING or INT64")]),
    ("key-array", [("key", "INT64", "REPEATED"), REQUEST],
     [(f"{T} column `key`", "key type ARRAY<INT64> is not a scalar key type; use STRING or INT64"),
      (f"{T} column `key`", f"type ARRAY<INT64> {REJECTED}")]),
    ("rejected-types", [KEY, REQUEST, ("m", "RECORD", "NULLABLE"), ("r", "RANGE", "NULLABLE"),
                        ("d", "DATETIME", "NULLABLE"), ("g", "GEOGRAPHY", "NULLABLE"), ("s", "STRUCT", "NULLABLE")],
     [(f"{T} column `{n}`", f"type {t} {REJECTED}")
      for n, t in [("m", "RECORD"), ("r", "RANGE"), ("d", "DATETIME"), ("g", "GEOGRAPHY"), ("s", "STRUCT")]]),
    ("output-names", [KEY, REQUEST, ("Status", "STRING", "NULLABLE"), ("response", "STRING", "NULLABLE"),
                      ("processed_time", "TIMESTAMP", "NULLABLE")],
     [(f"{T} column `{n}`", "the name is taken by the output (response, status, processed_time); rename the column")
      for n in ("Status", "response", "processed_time")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "expected"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_a_bad_schema_is_refused_from_metadata_naming_each_column(schema, expected) -> None:
    assert issues_of(Metadata(schema)) == expected  # and no query ran (Metadata has none)


def test_fifty_issues_are_listed_and_the_rest_counted() -> None:
    schema = [KEY, REQUEST] + [(f"c{i:02d}", "DATETIME", "NULLABLE") for i in range(53)]
    with pytest.raises(InputValidationError) as caught:
        validate_bigquery_requests(TABLE, bigquery_client=Metadata(schema))
    assert (len(caught.value.issues), caught.value.more) == (50, 3)
    assert caught.value.issues[-1].location == f"{T} column `c49`"


@pytest.mark.parametrize(
    "key_type", ["STRING", "INTEGER", "INT64", "NUMERIC", "BIGNUMERIC", "DATE", "TIMESTAMP", "BYTES"]
)
@pytest.mark.parametrize("request_type", ["JSON", "STRING"])
def test_scalar_keys_and_json_or_string_requests_pass_the_schema(key_type: str, request_type: str) -> None:
    client = Metadata([("key", key_type, "NULLABLE"), ("request", request_type, "NULLABLE")])
    with pytest.raises(QueriesReached):
        validate_bigquery_requests(TABLE, bigquery_client=client)


def test_a_missing_table_is_refused_with_the_remedy() -> None:
    assert issues_of(Metadata(None)) == [(T, "the table does not exist; build the requests first")]


def duck_table(rows: list[dict], request_type: str = "JSON") -> DuckBigQuery:
    bq = DuckBigQuery()
    bq.create_dataset("proj.ds")
    make_table(bq, _Dataset("proj", "ds"), "requests", [KEY, ("request", request_type, "NULLABLE")], rows)
    return bq


def test_a_good_json_table_yields_its_scan() -> None:
    bq = duck_table([{"key": "a", "request": GOOD}, {"key": "b", "request": GOOD}])
    limits = JobLimits(max_requests=2, max_bytes=10**6)
    compact = len(json.dumps(GOOD, separators=(",", ":")))
    assert validate_bigquery_requests(TABLE, bigquery_client=bq, limits=limits) == InputScan(
        T, "bigquery", 2, 2 * compact, limits, ()
    )


def test_a_string_table_is_parsed_and_measured_by_its_own_bytes() -> None:
    text = json.dumps({"contents": [{"role": "user", "parts": [{"text": "naïve 🚀"}]}]}, ensure_ascii=False)
    bq = duck_table([{"key": "a", "request": text}], request_type="STRING")
    scan = validate_bigquery_requests(TABLE, bigquery_client=bq)
    assert (scan.requests, scan.bytes) == (1, len(text.encode()))


def test_key_and_json_problems_name_the_column_count_and_sample_keys() -> None:
    rows = [{"key": k, "request": GOOD} for k in ("a", "a", "b", "b", "c")] + [{"key": None, "request": GOOD}]
    assert [issue for issue in issues_of(duck_table(rows)) if "`key`" in issue[0]] == [
        (f"{T} column `key`", "1 rows have a NULL key; every request needs a key"),
        (
            f"{T} column `key`",
            "2 keys appear more than once; keys must be unique in a job (sample keys: a, b)",
        ),
    ]
    bad = [
        {"key": "x", "request": "{not json"},
        {"key": "y", "request": "nope"},
        {"key": "z", "request": json.dumps(GOOD)},
    ]
    assert issues_of(duck_table(bad, request_type="STRING"), sample_size=1) == [
        (f"{T} column `request`", "2 rows do not hold valid JSON (sample keys: x)")
    ]


def test_shape_problems_name_the_field_path_the_rule_and_sample_keys() -> None:
    typo = {"contents": [{"role": "user", "parts": [{"text": "hi", "txt": "hi"}]}]}
    piped = {**GOOD, "a|b": 1}
    role = {"contents": [{"role": "user=admin", "parts": [{"text": "hi"}]}]}
    rows = [{"key": "t1", "request": typo}, {"key": "t2", "request": typo}, {"key": "p", "request": piped},
            {"key": "r", "request": role}]  # fmt: skip
    where = f"{T} column `request`"
    assert issues_of(duck_table(rows)) == [
        (where, "1 requests: contents[].role is \"user=admin\": role must be 'user' or 'model' (not 'assistant' "
                "or 'system'); use systemInstruction for instructions (sample keys: r)"),
        (where, "1 requests: a|b is not a field of GenerateContentRequest; fix the spelling or remove it (sample keys: p)"),
        (where, "2 requests: contents[].parts[].txt is not a field of Part (did you mean 'text'?); fix the spelling "
                "or remove it (sample keys: t1, t2)"),
    ]  # fmt: skip
    # sample_size=0: counts only, no key leaves BigQuery
    assert issues_of(duck_table(rows[:1]), sample_size=0) == [
        (where, "1 requests: contents[].parts[].txt is not a field of Part (did you mean 'text'?); fix the "
                "spelling or remove it"),
    ]  # fmt: skip


def test_an_empty_table_is_refused_naming_the_data_interval() -> None:
    assert issues_of(duck_table([])) == [
        (T, "the table holds no requests for this run; check the data interval")
    ]


@pytest.mark.parametrize(
    "request_body",
    [
        {"contents": [{"role": "user", "parts": [{"text": "yes"}]}, {"role": "model", "parts": [{"text": "ok"}]},
                      {"role": "user", "parts": [{"text": "yes"}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "same"}, {"text": "same"}]}]},
    ],
    ids=["repeated-turn", "repeated-part"],
)  # fmt: skip
def test_a_part_repeated_in_a_request_is_not_several_data_fields(request_body: dict) -> None:
    bq = duck_table([{"key": "a", "request": request_body}])
    assert validate_bigquery_requests(TABLE, bigquery_client=bq).requests == 1


def test_a_null_key_row_is_reported_once_and_its_request_checked_as_any_other() -> None:
    empty_part = {"contents": [{"role": "user", "parts": [{}]}]}
    rows = [{"key": None, "request": GOOD}, {"key": "b", "request": GOOD}]
    assert issues_of(duck_table(rows)) == [
        (f"{T} column `key`", "1 rows have a NULL key; every request needs a key")
    ]
    assert issues_of(duck_table([{"key": None, "request": empty_part}]))[1] == (
        f"{T} column `request`",
        '1 requests: contents[].parts[] has no data: give one of text, inlineData, fileData (e.g. {"text": '
        '"..."}) (sample keys: NULL)',
    )
