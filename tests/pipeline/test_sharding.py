"""Sharding: GCS byte ranges planned by the scan, BigQuery tables split by key hash."""

from __future__ import annotations

import io
import json

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.jsonl_scan import scan_gcs_jsonl
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.refs import TableRef
from gemini_batch.pipeline.sharding import Shard, shard_bigquery_table, write_gcs_shards

from .conftest import Answer, jsonl
from .duck_bigquery import DuckBigQuery


def vertex_input(count: int) -> bytes:
    return jsonl([{"request": Answer(f"k{i:04d}").request()} for i in range(count)])


@pytest.mark.integration
def test_gcs_input_over_the_limit_is_copied_into_shards_under_it(gcs_client, gcs_bucket) -> None:
    data = vertex_input(23)
    gcs_bucket.blob("in/requests.jsonl").upload_from_file(io.BytesIO(data))
    limits = JobLimits(max_requests=10, max_bytes=10**9)
    scan = scan_gcs_jsonl(
        f"gs://{gcs_bucket.name}/in/requests.jsonl",
        storage_client=gcs_client,
        limits=limits,
        enforce_limits=False,
        chunk_size=256 * 1024,
    )
    shards = write_gcs_shards(
        gcs_client, scan, f"gs://{gcs_bucket.name}/shards/2026-01-01", chunk_size=256 * 1024
    )
    assert [(s.index, s.count, s.requests) for s in shards] == [(0, 3, 10), (1, 3, 10), (2, 3, 3)]
    assert shards[0].src == f"gs://{gcs_bucket.name}/shards/2026-01-01/shard-00000-of-00003.jsonl"
    copied = [gcs_bucket.blob(s.src.split("/", 3)[3]).download_as_bytes() for s in shards]
    assert b"".join(copied) == data
    for shard, body in zip(shards, copied, strict=False):
        scan_shard = scan_gcs_jsonl(
            shard.src, storage_client=gcs_client, limits=limits
        )  # each shard is valid
        assert (scan_shard.requests, scan_shard.bytes) == (shard.requests, len(body))
    # a re-run writes the same shards
    assert write_gcs_shards(gcs_client, scan, f"gs://{gcs_bucket.name}/shards/2026-01-01") == shards


@pytest.mark.integration
def test_gcs_input_under_the_limit_is_its_own_only_shard(gcs_client, gcs_bucket) -> None:
    gcs_bucket.blob("in/small.jsonl").upload_from_file(io.BytesIO(vertex_input(3)))
    uri = f"gs://{gcs_bucket.name}/in/small.jsonl"
    scan = scan_gcs_jsonl(uri, storage_client=gcs_client, enforce_limits=False)
    assert write_gcs_shards(gcs_client, scan, f"gs://{gcs_bucket.name}/shards") == [
        Shard(0, 1, uri, 3, scan.bytes)
    ]
    assert [b.name for b in gcs_client.list_blobs(gcs_bucket, prefix="shards/")] == []


@pytest.mark.integration
def test_changed_input_after_validation_is_refused(gcs_client, gcs_bucket) -> None:
    blob = gcs_bucket.blob("in/changing.jsonl")
    blob.upload_from_file(io.BytesIO(vertex_input(5)))
    uri = f"gs://{gcs_bucket.name}/in/changing.jsonl"
    scan = scan_gcs_jsonl(uri, storage_client=gcs_client, limits=JobLimits(2, 10**9), enforce_limits=False)
    blob.upload_from_file(io.BytesIO(vertex_input(6)))
    with pytest.raises(ValueError, match="changed after it was validated"):
        write_gcs_shards(gcs_client, scan, f"gs://{gcs_bucket.name}/shards")


@pytest.mark.integration
def test_bigquery_table_is_split_server_side_and_stably(bq_client, layouts) -> None:
    keys = [f"k{i:04d}" for i in range(57)]
    table = TableRef.parse(layouts.requests_table(keys))
    limits = JobLimits(max_requests=20, max_bytes=10**9)
    shards = shard_bigquery_table(bq_client, table, limits=limits)
    assert len(shards) >= 3
    assert sum(s.requests for s in shards) == 57
    assert all(s.requests <= 20 for s in shards)
    members = []
    for shard in shards:
        rows = sql.query_rows(bq_client, f"SELECT key FROM {TableRef.parse(shard.src).sql}")
        assert len(rows) == shard.requests
        members.append(sorted(r["key"] for r in rows))
    assert sorted(k for m in members for k in m) == keys  # each request in exactly one shard
    again = shard_bigquery_table(bq_client, table, limits=limits)
    assert again == shards
    assert [
        sorted(r["key"] for r in sql.query_rows(bq_client, f"SELECT key FROM {TableRef.parse(s.src).sql}"))
        for s in again
    ] == members


@pytest.mark.integration
def test_bigquery_table_under_the_limit_is_not_copied(bq_client, layouts) -> None:
    uri = layouts.requests_table(["a", "b"])
    shards = shard_bigquery_table(bq_client, TableRef.parse(uri))
    assert [(s.src, s.requests, s.count) for s in shards] == [(uri, 2, 1)]
    assert shards[0].bytes == sum(
        len(json.dumps(Answer(k).request(), separators=(",", ":"))) + 1 for k in "ab"
    )


def test_shard_round_trips_through_xcom_form() -> None:
    shard = Shard(1, 3, "gs://b/x.jsonl", 10, 2000)
    assert Shard.from_dict(json.loads(json.dumps(shard.to_dict()))) == shard


# --- the same SQL, executed on DuckDB (unit speed) --------------------------------------------


def duck_requests(count: int, request_type: str = "JSON") -> tuple[DuckBigQuery, TableRef]:
    bq = DuckBigQuery()
    table = TableRef("proj", "ds", "requests")
    bq.create_table(
        bigquery.Table(
            table.api_repr,
            schema=[bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", request_type)],
        )
    )
    bq.insert(table.uri, [{"key": f"k{i:04d}", "request": request(i, request_type)} for i in range(count)])
    return bq, table


def request(index: int, request_type: str) -> object:
    """Request ``index`` as a JSON column holds it, or as JSON text in a STRING column."""
    value = Answer(f"k{index:04d}").request()
    return value if request_type == "JSON" else json.dumps(value, separators=(",", ":"))


def shard_keys(bq: DuckBigQuery, shards: list[Shard]) -> list[list[str]]:
    return [[row["key"] for row in bq.rows(shard.src.removeprefix("bq://"))] for shard in shards]


@pytest.mark.parametrize(("rows", "expected_shards"), [(12, 1), (13, 2)])
def test_table_of_exactly_the_request_limit_is_one_shard_and_one_more_is_split(
    rows: int, expected_shards: int
) -> None:
    bq, table = duck_requests(rows)
    shards = shard_bigquery_table(bq, table, limits=JobLimits(max_requests=12, max_bytes=10**9))
    assert len(shards) == expected_shards
    if expected_shards == 1:
        assert shards == [Shard(0, 1, table.uri, 12, shards[0].bytes)]  # the table itself, not a copy
        assert bq.table_names("proj.ds") == {"requests"}
        return
    members = shard_keys(bq, shards)
    assert sorted(key for keys in members for key in keys) == [f"k{i:04d}" for i in range(rows)]  # each once
    assert [s.requests for s in shards] == [len(keys) for keys in members]
    assert all(0 < s.requests <= 12 for s in shards)
    assert [(s.index, s.count) for s in shards] == [(i, len(shards)) for i in range(len(shards))]


def test_table_of_exactly_the_byte_limit_is_one_shard_and_one_byte_less_splits_it() -> None:
    bq, table = duck_requests(10)
    size = shard_bigquery_table(bq, table)[0].bytes  # the whole table: one request line is its JSON + 1
    assert size > 10 * len(json.dumps(Answer("k0000").request(), separators=(",", ":")))
    exact = shard_bigquery_table(bq, table, limits=JobLimits(max_requests=100, max_bytes=size))
    assert exact == [Shard(0, 1, table.uri, 10, size)]  # the table itself, not a copy
    assert bq.table_names("proj.ds") == {"requests"}
    shards = shard_bigquery_table(bq, table, limits=JobLimits(max_requests=100, max_bytes=size - 1))
    assert len(shards) >= 2
    assert all(s.bytes <= size - 1 for s in shards) and sum(s.bytes for s in shards) == size


def test_a_shard_of_exactly_the_byte_limit_is_kept_and_not_split_further() -> None:
    bq, table = duck_requests(13)
    by_count = shard_bigquery_table(bq, table, limits=JobLimits(max_requests=12, max_bytes=10**9))
    largest = max(shard.bytes for shard in by_count)
    limits = JobLimits(max_requests=12, max_bytes=largest)
    assert shard_bigquery_table(bq, table, limits=limits) == by_count


def test_an_empty_table_is_its_own_only_shard() -> None:
    bq, table = duck_requests(0)
    assert shard_bigquery_table(bq, table) == [Shard(0, 1, table.uri, 0, 0)]


def test_a_string_request_column_is_measured_by_its_text() -> None:
    """JSON text in a STRING column is sent as is: its bytes, not those of a quoted JSON string."""
    bq, table = duck_requests(3, request_type="STRING")
    text_bytes = sum(len(str(request(i, "STRING")).encode()) + 1 for i in range(3))  # + 1: the newline
    assert shard_bigquery_table(bq, table) == [Shard(0, 1, table.uri, 3, text_bytes)]


def test_bigquery_shards_are_stable_across_reruns() -> None:
    bq, table = duck_requests(40)
    limits = JobLimits(max_requests=15, max_bytes=10**9)
    first = shard_bigquery_table(bq, table, limits=limits)
    members = shard_keys(bq, first)
    assert shard_bigquery_table(bq, table, limits=limits) == first
    assert shard_keys(bq, first) == members
