"""Failed-row retry rounds of a JSONL input in GCS (rounds.py has the rounds themselves).

A round of a JSONL day is a JSONL file of exactly the day's lines whose key the previous round
left in the errors table with a retryable status, copied byte for byte (the same requests).

Invariants:

* Bounded memory: the round's keys come from BigQuery page by page (round_keys.sql) into a set
  (as large as the round, never the day), and the day's input is streamed line by line from GCS
  into a resumable upload: nothing else of the input is held.
* Named by content: ``<prefix>/r<N>/<fingerprint>/requests.jsonl``, the fingerprint of the day's
  input and the round's keys. An existing file of that name holds those lines and a job may be
  reading it: it is never rewritten.
* The key of a line is read as the loader reads it (a ``key`` member, else the request's
  ``labels.<key_label>``), so a round holds exactly the keys the errors table names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.refs import GcsUri, TableRef
from gemini_batch.pipeline.request_shape import KEY_LABEL
from gemini_batch.pipeline.rounds import RoundSelection, pick_round
from gemini_batch.pipeline.row_retry import RowRetryPolicy

if TYPE_CHECKING:
    from google.cloud import bigquery, storage

__all__ = ["line_key", "round_lines", "select_round_file"]

_CHUNK_BYTES = 8 * 1024 * 1024


def line_key(line: bytes, key_label: str = KEY_LABEL) -> str | None:
    """The key of a JSONL line (``key``, else ``request.labels.<key_label>``), or None."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    key = record.get("key")
    if key is None:
        request = record.get("request")
        labels = request.get("labels") if isinstance(request, dict) else None
        key = labels.get(key_label) if isinstance(labels, dict) else None
    return key if isinstance(key, str) and key else None


def round_lines(stream: BinaryIO, keys: frozenset[str], key_label: str = KEY_LABEL) -> Iterator[bytes]:
    """The lines of ``stream`` whose key is in ``keys``, as they are, each with its newline.

    Lines are cut by the validator's reader (jsonl_scan._iter_lines: chunked reads, C-speed
    splits), with no line limit: the input was validated before its first job.
    """
    from gemini_batch.pipeline.jsonl_scan import _iter_lines

    for lines in _iter_lines(stream, max_line_bytes=2**62):
        for _, _, _, line in lines:
            if line and line.strip() and line_key(line, key_label) in keys:
                yield line + b"\n"


def select_round_file(
    client: bigquery.Client,
    storage_client: storage.Client,
    *,
    day_input: str,
    day_fingerprint: str,
    destination_prefix: str,
    errors: TableRef,
    logical_date: dt.date,
    round_number: int,
    max_row_retries: int,
    policy: RowRetryPolicy | None = None,
    key_label: str = KEY_LABEL,
    page_size: int = 10_000,
    chunk_size: int = _CHUNK_BYTES,
) -> RoundSelection:
    """Pick round ``round_number``'s keys and write its JSONL file (when it runs).

    :param day_input: Required. ``gs://`` of the day's JSONL input.
    :param day_fingerprint: Required. Its content fingerprint (fingerprints.py).
    :param destination_prefix: Required. ``gs://bucket/prefix`` of the day's run files.
    :return: The selection; ``table`` is the round file's ``gs://`` URI when it runs.
    :raises ValueError: A key the errors table names is not in the day's input.
    """
    from gemini_batch.pipeline.fingerprints import digest

    selection = pick_round(
        client, errors=errors, logical_date=logical_date, round_number=round_number,
        max_row_retries=max_row_retries, policy=policy,
    )  # fmt: skip
    if selection.action != "run":
        return selection
    rows = client.query(
        sql.render("round_keys.sql", errors=errors.sql),
        job_config=sql.job_config(
            {
                "logical_date": logical_date,
                "previous_round": round_number - 1,
                "statuses": list(selection.statuses),
            }
        ),
    ).result(page_size=page_size)
    keys = frozenset(row["key"] for row in rows)
    fingerprint = digest("gcs_round", [day_fingerprint, round_number, sorted(keys)])
    target = GcsUri.parse(destination_prefix).child(f"r{round_number}/{fingerprint}/requests.jsonl")
    blob = storage_client.bucket(target.bucket).blob(target.name)
    if not blob.exists():
        written = _write(storage_client, day_input, blob, keys, key_label, chunk_size)
        if written != len(keys):
            blob.delete()
            raise ValueError(
                f"round {round_number}: {len(keys) - written} of {len(keys)} keys to retry are not in "
                f"{day_input}; the day's input changed since it was loaded: re-run the day"
            )
    return replace(selection, table=str(target), fingerprint=fingerprint)


def _write(
    storage_client: storage.Client,
    source: str,
    blob: Any,
    keys: frozenset[str],
    key_label: str,
    chunk_size: int,
) -> int:
    """Stream the lines of ``keys`` from ``source`` into ``blob``; how many were written."""
    ref = GcsUri.parse(source)
    reader_blob = storage_client.bucket(ref.bucket).get_blob(ref.name)
    if reader_blob is None:
        raise FileNotFoundError(f"{source} does not exist any more: the round cannot read its requests")
    blob.content_type = "application/jsonl"
    written = 0
    with (
        reader_blob.open("rb", chunk_size=chunk_size) as reader,
        blob.open("wb", chunk_size=chunk_size, ignore_flush=True) as writer,
    ):
        for line in round_lines(reader, keys, key_label):
            writer.write(line)
            written += 1
    return written
