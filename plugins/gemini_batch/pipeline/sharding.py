"""Split an input over a per-job limit into shards under it: one batch job per shard.

Invariants:

* An input under every limit is one shard: the input itself, nothing is copied.
* Shards are stable: a re-run over the same input gives the same shards in the same order, so
  the job task mapped over them (``.expand``) re-attaches each map index to the job of the same
  shard.
* Every shard is checked under both limits before it is created; the union of the shards is the
  input, each request in exactly one shard.

BigQuery tables are split server-side: ``MOD(FARM_FINGERPRINT(key), n)`` picks a row's shard
and a ``CREATE TABLE ... AS SELECT`` per shard writes it; nothing passes through the worker.
JSONL files in GCS have no server-side split (GCS can compose objects, not cut them), so the
byte ranges that :func:`~gemini_batch.pipeline.jsonl_scan.scan_jsonl` planned on its single
pass are copied range by range through the worker, in chunks: memory stays at one chunk.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.builder import set_expiry
from gemini_batch.pipeline.findings import InputScan
from gemini_batch.pipeline.limits import VERTEX_LIMITS, JobLimits
from gemini_batch.pipeline.refs import GcsUri, TableRef

if TYPE_CHECKING:
    from google.cloud import bigquery, storage

__all__ = ["Shard", "shard_bigquery_table", "write_gcs_shards"]


@dataclass(frozen=True)
class Shard:
    """One job's share of an input.

    :param index: The shard number, from 0.
    :param count: How many shards the input has.
    :param src: The shard's ``gs://`` or ``bq://`` URI: what the job reads.
    :param requests: Requests in the shard.
    :param bytes: Bytes of requests in the shard.
    """

    index: int
    count: int
    src: str
    requests: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Shard:
        return cls(**data)


def write_gcs_shards(
    storage_client: storage.Client,
    scan: InputScan,
    destination_prefix: str,
    *,
    chunk_size: int = 8 * 1024 * 1024,
) -> list[Shard]:
    """Copy the shards a JSONL scan planned into ``<prefix>/shard-00000-of-00003.jsonl``...

    :param storage_client: Required. A ``google.cloud.storage.Client``.
    :param scan: Required. The scan of the source (``scan.source`` is its gs:// URI), made with
        ``enforce_limits=False`` so that it planned the shards.
    :param destination_prefix: Required. ``gs://bucket/prefix`` for the shard files; a re-run
        overwrites them.
    :return: The shards; the source itself when it fits one job.
    """
    spans = scan.shards
    if not spans:
        raise ValueError(f"the scan of {scan.source} planned no shards (an empty input)")
    if len(spans) == 1:
        return [Shard(0, 1, scan.source, spans[0].requests, spans[0].bytes)]
    source = GcsUri.parse(scan.source)
    prefix = GcsUri.parse(destination_prefix)
    blob = storage_client.bucket(source.bucket).get_blob(source.name)
    if blob is None:
        raise FileNotFoundError(f"{scan.source} disappeared after it was validated")
    if blob.size != scan.bytes:
        raise ValueError(
            f"{scan.source} changed after it was validated ({blob.size:,} bytes now, {scan.bytes:,} then); "
            f"re-run the validation"
        )
    shards = []
    with blob.open("rb", chunk_size=chunk_size) as reader:
        for span in spans:
            target = prefix.child(f"shard-{span.index:05d}-of-{len(spans):05d}.jsonl")
            out = storage_client.bucket(target.bucket).blob(target.name)
            out.content_type = "application/jsonl"
            reader.seek(span.start)
            remaining = span.bytes
            with out.open("wb", chunk_size=chunk_size, ignore_flush=True) as writer:
                while remaining:
                    data = reader.read(min(chunk_size, remaining))
                    if not data:
                        raise ValueError(f"{scan.source} ended early at byte {span.end - remaining:,}")
                    writer.write(data)
                    remaining -= len(data)
            shards.append(Shard(span.index, len(spans), str(target), span.requests, span.bytes))
    return shards


def shard_bigquery_table(
    client: bigquery.Client,
    table: TableRef,
    *,
    key_column: str = "key",
    request_column: str = "request",
    limits: JobLimits = VERTEX_LIMITS,
    max_rounds: int = 5,
    expires: dt.timedelta | None = None,
) -> list[Shard]:
    """Split a requests table into ``<table>_shard_00000_of_00003``... tables under ``limits``.

    The shard count starts at what the totals need and grows while a hash-picked shard would
    still be over a limit (skewed sizes); empty shards are skipped.

    :param client: Required. A ``google.cloud.bigquery.Client``.
    :param table: Required. The requests table.
    :param expires: Optional. Let BigQuery drop each shard table this long after it is made.
    :return: The shards; the table itself when it fits one job.
    :raises ValueError: No shard count up to ``max_rounds`` tries fits (one request over the
        byte limit, for example).
    """
    schema = {field.name: field.field_type for field in client.get_table(table.api_repr).schema}
    request = sql.ident(request_column)
    identifiers = {
        "table": table.sql,
        "key": sql.ident(key_column),
        "request_bytes": f"BYTE_LENGTH(TO_JSON_STRING({request}))"
        if schema.get(request_column) == "JSON"
        else f"BYTE_LENGTH({request})",
    }
    plan_text = sql.render("shard_plan.sql", **identifiers)
    totals = sql.query_rows(client, plan_text, shards=1)  # one shard: the whole table
    requests = int(totals[0]["requests"]) if totals else 0
    size = int(totals[0]["bytes"]) if totals else 0
    if requests <= limits.max_requests and size <= limits.max_bytes:
        return [Shard(0, 1, table.uri, requests, size)]
    count = max(math.ceil(requests / limits.max_requests), math.ceil(size / limits.max_bytes))
    for _ in range(max_rounds):
        plan = sql.query_rows(client, plan_text, shards=count)
        if all(row["requests"] <= limits.max_requests and row["bytes"] <= limits.max_bytes for row in plan):
            break
        count = math.ceil(count * 1.25) + 1
    else:
        raise ValueError(
            f"{table.uri}: no split into up to {count} shards keeps every shard under the {limits.name} "
            f"limits ({limits.max_requests:,} requests, {limits.max_bytes:,} bytes); check for oversized requests"
        )
    shards = []
    for position, row in enumerate(sorted(plan, key=lambda r: r["shard"])):
        target = table.sibling(f"{table.table}_shard_{position:05d}_of_{len(plan):05d}")
        text = sql.render("shard_create.sql", destination=target.sql, **identifiers)
        sql.run(client, text, shards=count, shard=int(row["shard"]))
        if expires is not None:
            set_expiry(client, target, expires)
        shards.append(Shard(position, len(plan), target.uri, int(row["requests"]), int(row["bytes"])))
    return shards
