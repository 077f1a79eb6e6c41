"""sharding.shard_bigquery_table: the refusal after its rounds (with the count it reached), and shard expiry."""

from __future__ import annotations

import datetime as dt

import pytest

from gemini_batch.pipeline import sharding
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.sharding import shard_bigquery_table

from .test_sharding import duck_requests


def test_no_split_fits_a_request_over_the_byte_limit_and_the_message_names_the_count():
    bq, table = duck_requests(3)
    limits = JobLimits(max_requests=100, max_bytes=10, name="tiny")
    with pytest.raises(ValueError) as caught:
        shard_bigquery_table(bq, table, limits=limits)
    # counts tried: ceil(bytes / 10), then ceil(count * 1.25) + 1, five rounds
    assert str(caught.value) == (
        f"{table.uri}: no split into up to {EXPECTED_COUNT} shards keeps every shard under the tiny limits "
        "(100 requests, 10 bytes); check for oversized requests"
    )


def _final_count(first: int, rounds: int = 5) -> int:
    import math

    count = first
    for _ in range(rounds):
        count = math.ceil(count * 1.25) + 1
    return count


def _first_count() -> int:
    bq, table = duck_requests(3)
    size = shard_bigquery_table(bq, table)[0].bytes
    return -(-size // 10)


EXPECTED_COUNT = _final_count(_first_count())


def test_each_shard_table_gets_the_expiry(monkeypatch):
    calls = []
    monkeypatch.setattr(
        sharding, "set_expiry", lambda client, target, after: calls.append((client, target.uri, after))
    )
    bq, table = duck_requests(13)
    shards = shard_bigquery_table(
        bq, table, limits=JobLimits(max_requests=12, max_bytes=10**9), expires=dt.timedelta(hours=96)
    )
    assert len(shards) >= 2
    assert calls == [(bq, shard.src, dt.timedelta(hours=96)) for shard in shards]
    calls.clear()
    shard_bigquery_table(bq, table, limits=JobLimits(max_requests=12, max_bytes=10**9))
    assert calls == []
