"""sharding.write_gcs_shards against a small in-memory storage fake: byte ranges copied chunk by chunk.

The integration tests copy real objects through the GCS emulator; these pin each check and each
name without a server (and run under ``make mutation``, which runs unit tests only).
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from gemini_batch.pipeline.findings import InputScan, ShardSpan
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.sharding import Shard, write_gcs_shards

LINES = [b'{"a":1}\n', b'{"b":22}\n', b'{"c":333}\n']
DATA = b"".join(LINES)


class Written(io.BytesIO):
    """A writer that keeps its bytes after close."""

    def close(self) -> None:
        self.kept = self.getvalue()
        super().close()


class Blob:
    def __init__(self, store: Storage, bucket: str, name: str) -> None:
        self.store, self.bucket, self.name = store, bucket, name
        self.content_type: str | None = None

    @property
    def size(self) -> int:
        return len(self.store.objects[(self.bucket, self.name)])

    def open(self, mode: str, chunk_size: int, ignore_flush: bool = False) -> Any:
        self.store.opened.append((mode, self.bucket, self.name, chunk_size, ignore_flush))
        if mode == "rb":
            return io.BytesIO(self.store.objects[(self.bucket, self.name)][: self.store.readable])
        writer = Written()
        self.store.writers[(self.bucket, self.name)] = (writer, self)
        return writer


class Storage:
    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects
        self.readable = None  # a slice end: None reads everything
        self.opened: list[tuple[Any, ...]] = []
        self.writers: dict[tuple[str, str], tuple[Written, Blob]] = {}

    def bucket(self, name: str) -> Any:
        store = self

        class Bucket:
            def get_blob(self, blob: str) -> Blob | None:
                return Blob(store, name, blob) if (name, blob) in store.objects else None

            def blob(self, blob: str) -> Blob:
                return Blob(store, name, blob)

        return Bucket()

    def written(self) -> dict[str, tuple[bytes, str | None]]:
        return {f"gs://{b}/{n}": (w.kept, blob.content_type) for (b, n), (w, blob) in self.writers.items()}


def scan(spans: tuple[ShardSpan, ...], size: int = len(DATA)) -> InputScan:
    limits = JobLimits(max_requests=1, max_bytes=100)
    return InputScan("gs://src-bkt/req.jsonl", "jsonl", len(LINES), size, limits, spans)


THREE = (
    ShardSpan(0, 0, 8, 1, 1),
    ShardSpan(1, 8, 17, 1, 2),
    ShardSpan(2, 17, 27, 1, 3),
)


@pytest.mark.parametrize("chunk_size", [1, 4, 1024])
def test_each_span_is_copied_to_its_numbered_file(chunk_size):
    storage = Storage({("src-bkt", "req.jsonl"): DATA})
    shards = write_gcs_shards(storage, scan(THREE), "gs://dst-bkt/run/", chunk_size=chunk_size)
    names = [f"gs://dst-bkt/run/shard-0000{i}-of-00003.jsonl" for i in range(3)]
    assert shards == [Shard(i, 3, names[i], 1, len(LINES[i])) for i in range(3)]
    assert storage.written() == {names[i]: (LINES[i], "application/jsonl") for i in range(3)}
    assert storage.opened[0] == ("rb", "src-bkt", "req.jsonl", chunk_size, False)
    assert storage.opened[1] == ("wb", "dst-bkt", "run/shard-00000-of-00003.jsonl", chunk_size, True)


def test_an_input_that_fits_one_job_is_its_own_shard_and_nothing_is_read():
    storage = Storage({})
    only = (ShardSpan(0, 0, len(DATA), 3, 1),)
    assert write_gcs_shards(storage, scan(only), "gs://dst-bkt/run") == [
        Shard(0, 1, "gs://src-bkt/req.jsonl", 3, len(DATA))
    ]
    assert storage.opened == []


@pytest.mark.parametrize(
    ("objects", "size", "readable", "error", "message"),
    [
        ({}, len(DATA), None, FileNotFoundError, "gs://src-bkt/req.jsonl disappeared after it was validated"),
        (
            {("src-bkt", "req.jsonl"): DATA + b"{}\n"},
            len(DATA),
            None,
            ValueError,
            "gs://src-bkt/req.jsonl changed after it was validated (30 bytes now, 27 then); re-run the validation",
        ),
        (
            {("src-bkt", "req.jsonl"): DATA},
            len(DATA),
            12,
            ValueError,
            "gs://src-bkt/req.jsonl ended early at byte 12",
        ),
    ],
)
def test_a_source_that_changed_since_the_scan_is_refused(objects, size, readable, error, message):
    storage = Storage(objects)
    storage.readable = readable
    with pytest.raises(error) as caught:
        write_gcs_shards(storage, scan(THREE, size), "gs://dst-bkt/run", chunk_size=4)
    assert str(caught.value) == message


def test_a_scan_without_shards_is_refused():
    with pytest.raises(
        ValueError, match=r"^the scan of gs://src-bkt/req.jsonl planned no shards \(an empty input\)$"
    ):
        write_gcs_shards(Storage({}), scan(()), "gs://dst-bkt/run")
