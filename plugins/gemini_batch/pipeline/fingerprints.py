"""Content fingerprints of the pipelines' inputs: what tells a day's unchanged inputs from changed ones.

Invariants:

* A fingerprint depends on the content only: never on the run, the time it is read or the row
  order. Equal inputs give equal fingerprints; a changed key or request changes it.
* Nothing of the input passes through the worker: a BigQuery table is hashed by BigQuery
  (``fingerprint_table.sql``: row count, distinct keys, XOR of a 64-bit hash per row); a GCS
  object by the checksums GCS keeps (md5, crc32c) and its size; a Files API file by its SHA-256.
* A fingerprint is 16 lowercase hex characters: safe in table names, object names and labels.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from gemini_batch.pipeline import sql

if TYPE_CHECKING:
    from google.cloud import bigquery

    from gemini_batch.pipeline.refs import TableRef

__all__ = ["digest", "file_fingerprint", "gcs_object_fingerprint", "table_fingerprint"]


def digest(kind: str, facts: Any) -> str:
    """16 hex characters of SHA-256 over ``kind`` and JSON-able ``facts``."""
    payload = json.dumps([kind, facts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def table_fingerprint(
    client: bigquery.Client, table: TableRef, *, key_column: str = "key", request_column: str = "request"
) -> str:
    """The content fingerprint of a requests table ``(key, request)``, computed server-side."""
    text = sql.render(
        "fingerprint_table.sql", table=table.sql, key=sql.ident(key_column), request=sql.ident(request_column)
    )
    row = sql.query_one(client, text)
    return digest("bigquery", [int(row["row_count"]), int(row["key_count"]), int(row["row_hash"])])


def gcs_object_fingerprint(blob: Any) -> str:
    """The content fingerprint of a GCS object from its metadata (``storage.Blob`` after a reload).

    :raises ValueError: GCS reported neither checksum (it always reports crc32c).
    """
    md5, crc32c = getattr(blob, "md5_hash", None), getattr(blob, "crc32c", None)
    if not md5 and not crc32c:
        raise ValueError(f"gs://{blob.bucket.name}/{blob.name} has no md5 or crc32c checksum to fingerprint")
    return digest("gcs", [md5, crc32c, blob.size])


def file_fingerprint(file: Any) -> str:
    """The content fingerprint of a Files API file (``types.File``) from its SHA-256 and size.

    :raises ValueError: The service reported no ``sha256_hash``.
    """
    sha256 = getattr(file, "sha256_hash", None)
    if not sha256:
        raise ValueError(f"{getattr(file, 'name', 'the file')} has no sha256_hash to fingerprint")
    return digest("file", [sha256, getattr(file, "size_bytes", None)])
