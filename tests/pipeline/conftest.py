"""Fixtures for the pipeline tests: batch outputs written in the documented layouts.

The stack, clients, buckets and datasets come from tests/conftest.py (``local_stack``,
``gcs_client``, ``bq_client``, ``gcs_bucket``, ``bq_dataset``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from google.cloud import bigquery, storage


@dataclass(frozen=True)
class Answer:
    """One row of a job's output, before it is written in a service's layout.

    :param key: The request key.
    :param text: The answer text (a success), or None.
    :param error: The row's error message (a failure), or None.
    :param blocked: True: a response without candidates (prompt blocked).
    """

    key: str
    text: str | None = None
    error: str | None = None
    blocked: bool = False

    def request(self) -> dict[str, Any]:
        return {
            "contents": [{"role": "user", "parts": [{"text": f"prompt {self.key}"}]}],
            "labels": {"gemini_batch_key": self.key},
        }

    def response(self) -> dict[str, Any] | None:
        if self.error is not None:
            return None
        usage = {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}
        if self.blocked:
            return {
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": usage,
                "modelVersion": "gemini-2.5-flash",
            }
        text = self.text or ""
        half = len(text) // 2
        return {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "thinking...", "thought": True},
                            {"text": text[:half]},
                            {"text": text[half:]},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": usage,
            "modelVersion": "gemini-2.5-flash-001",
        }

    def vertex_line(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "status": self.error or "",
            "processed_time": "2026-01-01T10:00:00.123+00:00",
            "request": self.request(),
        }
        if self.error is None:
            line["response"] = self.response()
        return line

    def gemini_line(self) -> dict[str, Any]:
        if self.error is not None:
            return {
                "key": self.key,
                "error": {"code": 400, "message": self.error, "status": "INVALID_ARGUMENT"},
            }
        return {"key": self.key, "response": self.response()}


def answers(count: int, *, failed: Sequence[int] = (), blocked: Sequence[int] = ()) -> list[Answer]:
    """``count`` answers keyed ``k0000``...; the given indexes fail or are blocked."""
    return [
        Answer(
            f"k{i:04d}",
            text=None if i in failed else f"answer {i}",
            error=f"Bad request {i}" if i in failed else None,
            blocked=i in blocked,
        )
        for i in range(count)
    ]


def jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


class Layouts:
    """Writes job outputs in the services' documented layouts (see the wire reference)."""

    def __init__(self, bucket: storage.Bucket, bq: bigquery.Client, dataset: bigquery.Dataset) -> None:
        self.bucket = bucket
        self.bq = bq
        self.dataset = dataset

    def table(self, name: str) -> str:
        return f"bq://{self.dataset.project}.{self.dataset.dataset_id}.{name}"

    def write(self, name: str, data: bytes) -> str:
        self.bucket.blob(name).upload_from_file(io.BytesIO(data))  # a resumable upload (no multipart)
        return f"gs://{self.bucket.name}/{name}"

    def vertex_gcs(self, rows: Sequence[Answer], *, files: int = 2, prefix: str = "out") -> str:
        """``<prefix>/prediction-model-<ts>/predictions*.jsonl``, rows spread over ``files``, shuffled."""
        folder = f"{prefix}/prediction-model-2026-01-01T10:00:00.000000Z"
        ordered = list(reversed(rows))  # output order is not input order
        for index in range(files):
            name = "predictions.jsonl" if index == 0 else f"predictions_{index:05d}.jsonl"
            self.write(f"{folder}/{name}", jsonl([row.vertex_line() for row in ordered[index::files]]))
        return f"gs://{self.bucket.name}/{folder}"

    def vertex_bigquery(self, rows: Sequence[Answer], *, name: str = "predictions", key: bool = True) -> str:
        """An output table: the input columns (``key``, ``request``) plus response, status, processed_time."""
        from google.cloud import bigquery

        schema = [
            bigquery.SchemaField("request", "JSON"),
            bigquery.SchemaField("response", "JSON"),
            bigquery.SchemaField("status", "STRING"),
            bigquery.SchemaField("processed_time", "TIMESTAMP"),
        ]
        if key:
            schema.insert(0, bigquery.SchemaField("key", "STRING"))
        ref = f"{self.dataset.project}.{self.dataset.dataset_id}.{name}"
        self.bq.create_table(bigquery.Table(ref, schema=schema))
        body = []
        for row in rows:
            line = row.vertex_line()
            if key:
                line["key"] = row.key
            line["processed_time"] = "2026-01-01T10:00:00.123Z"
            body.append(line)
        config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
        self.bq.load_table_from_file(io.BytesIO(jsonl(body)), ref, job_config=config).result()
        return f"bq://{ref}"

    def requests_table(self, keys: Sequence[str], *, name: str = "requests") -> str:
        """A requests table (``key``, ``request`` JSON) with the given keys."""
        from google.cloud import bigquery

        schema = [bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON")]
        ref = f"{self.dataset.project}.{self.dataset.dataset_id}.{name}"
        self.bq.create_table(bigquery.Table(ref, schema=schema))
        rows = [{"key": key, "request": Answer(key).request()} for key in keys]
        config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
        self.bq.load_table_from_file(io.BytesIO(jsonl(rows)), ref, job_config=config).result()
        return f"bq://{ref}"

    def rows(self, table: str, date: str = "2026-01-01") -> dict[str, dict[str, Any]]:
        """The rows of a results or errors table for one date, by key."""
        name = table.removeprefix("bq://")
        query = f"SELECT * FROM `{name}` WHERE logical_date = DATE '{date}' ORDER BY key"
        result: dict[str, dict[str, Any]] = {}
        for row in self.bq.query(query).result():
            assert row["key"] not in result, f"key {row['key']} twice in {table} for {date}"
            result[row["key"]] = dict(row.items())
        return result


@pytest.fixture
def layouts(gcs_bucket: storage.Bucket, bq_client: bigquery.Client, bq_dataset: bigquery.Dataset) -> Layouts:
    return Layouts(gcs_bucket, bq_client, bq_dataset)


class FakeFiles:
    """The Files API part of a genai client: ``download(file=..., destination=...)`` in chunks."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.calls: list[str] = []

    def download(self, *, file: str, destination: Any = None, config: Any = None) -> bytes | None:
        self.calls.append(file)
        data = self.files[file]
        if destination is None:
            return data
        for start in range(0, len(data), 1000):  # the SDK writes chunks (1 MiB there)
            destination.write(data[start : start + 1000])
        return None


class FakeBatches:
    def __init__(self, jobs: dict[str, Any]) -> None:
        self.jobs = jobs

    def get(self, *, name: str, config: Any = None) -> Any:
        return self.jobs[name]


class FakeGenai:
    """A genai client stand-in at the SDK boundary (files + batches)."""

    def __init__(self, files: dict[str, bytes] | None = None, jobs: dict[str, Any] | None = None) -> None:
        self.files = FakeFiles(files or {})
        self.batches = FakeBatches(jobs or {})
