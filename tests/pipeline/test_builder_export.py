"""builder.export_requests_jsonl over DuckBigQuery and an in-memory GCS: the lines, files and clean-up.

The integration tests export through the BigQuery and GCS emulators; these run the same rendered
SQL in-process and write to a storage fake that behaves as google-cloud-storage's ``BlobWriter``
(an object exists once its upload is closed; ``terminate()`` cancels it; like any ``io`` object, a
writer that is only dropped is closed, so finished, when it is garbage-collected). They run under
``make mutation``.
"""

from __future__ import annotations

import gc
import io
import json
from typing import Any

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from gemini_batch.pipeline.builder import BuiltFile, RequestTemplate, export_requests_jsonl
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.refs import TableRef

from .duck_bigquery import DuckBigQuery

TEMPLATE = RequestTemplate.from_dict({"generationConfig": {"temperature": 0.2}})
PROMPTS = TableRef("proj", "ds", "prompts")
# Keys out of order on purpose: the export orders by key.
ROWS = [("c", "bye"), ("a", 'say "hi"'), ("b", "naïve 🚀")]
SOURCE = f"SELECT key, prompt FROM {PROMPTS.sql} WHERE key >= @low;"
PARAMS = {"low": "a"}
FEW = JobLimits(max_requests=2, max_bytes=10**6, name="Test")


class Upload(io.BufferedIOBase):
    """A resumable upload, as ``BlobWriter``: ``close()`` finishes the object, ``terminate()`` cancels it."""

    def __init__(self, store: Storage, blob: Blob) -> None:
        self._store, self._blob, self._buffer = store, blob, io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._blob.uri == self._store.failing:
            self._store.on_failure()
            raise OSError(f"upload of {self._blob.uri} failed")
        return self._buffer.write(data)

    def close(self) -> None:
        if not self._buffer.closed:
            self._store.objects[self._blob.uri] = (self._buffer.getvalue(), self._blob.content_type)
        self._buffer.close()

    def terminate(self) -> None:
        self._buffer.close()

    @property
    def closed(self) -> bool:
        return self._buffer.closed


class Blob:
    def __init__(self, store: Storage, bucket: str, name: str) -> None:
        self._store, self.name, self.uri = store, name, f"gs://{bucket}/{name}"
        self.content_type: str | None = None

    def open(self, mode: str, *, chunk_size: int, ignore_flush: bool) -> Upload:
        assert (mode, ignore_flush) == ("wb", True)  # flush() would finish a resumable upload early
        self._store.chunk_sizes.append(chunk_size)
        return Upload(self._store, self)

    def delete(self) -> None:
        if self.uri not in self._store.objects:
            raise NotFound(f"No such object: {self.uri}")
        del self._store.objects[self.uri]


class Storage:
    """GCS in memory: ``objects`` maps a finished object's URI to (bytes, content type).

    :param failing: The URI whose upload fails on its first write (None: none fails).
    :param vanish: URIs that disappear when that failure happens (removed by someone else).
    """

    def __init__(self, failing: str | None = None, vanish: tuple[str, ...] = ()) -> None:
        self.objects: dict[str, tuple[bytes, str | None]] = {}
        self.chunk_sizes: list[int] = []
        self.failing, self.vanish = failing, vanish

    def on_failure(self) -> None:
        for uri in self.vanish:
            self.objects.pop(uri, None)

    def bucket(self, name: str) -> Any:
        store = self

        class Bucket:
            def blob(self, blob: str) -> Blob:
                return Blob(store, name, blob)

        return Bucket()

    def lines(self, uri: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.objects[uri][0].splitlines()]


def duck_prompts(rows: list[tuple[str, str]] = ROWS) -> DuckBigQuery:
    bq = DuckBigQuery()
    bq.create_table(
        bigquery.Table(
            PROMPTS.api_repr,
            schema=[bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("prompt", "STRING")],
        )
    )
    bq.insert(PROMPTS.uri, [{"key": key, "prompt": prompt} for key, prompt in rows])
    return bq


def export(bq: DuckBigQuery, storage: Storage, destination: str, **options: Any) -> list[BuiltFile]:
    return export_requests_jsonl(
        bq, storage, source_sql=SOURCE, params=PARAMS, destination=destination, template=TEMPLATE, **options
    )


def line_sizes() -> list[int]:
    """Each line's size in bytes as the export writes it (BigQuery's JSON text and a newline)."""
    storage = Storage()
    export(duck_prompts(), storage, "gs://bkt/measure.jsonl")
    return [len(line) + 1 for line in storage.objects["gs://bkt/measure.jsonl"][0].splitlines()]


def test_a_vertex_file_holds_one_request_line_per_prompt_in_key_order_with_the_key_label():
    bq, storage = duck_prompts(), Storage()
    uri = "gs://bkt/built/requests.jsonl"
    files = export(bq, storage, uri)
    data, content_type = storage.objects[uri]
    assert files == [BuiltFile(uri, 3, len(data))]
    assert content_type == "application/jsonl"
    assert storage.lines(uri) == [
        {"request": TEMPLATE.render(prompt, key=key, key_label="gemini_batch_key")}
        for key, prompt in sorted(ROWS)
    ]
    # the prompts query's own parameters pass through; the template is a parameter, never SQL text
    assert bq.statements[-1].params == {"low": "a", "template_suffix": TEMPLATE.json_suffix()}


def test_a_vertex_file_carries_the_key_under_the_label_asked_for():
    bq, storage = duck_prompts(), Storage()
    export(bq, storage, "gs://bkt/requests.jsonl", input_format="vertex_jsonl", key_label="row_key")
    assert [line["request"]["labels"] for line in storage.lines("gs://bkt/requests.jsonl")] == [
        {"row_key": "a"},
        {"row_key": "b"},
        {"row_key": "c"},
    ]


def test_a_gemini_file_holds_key_and_request_without_labels():
    bq, storage = duck_prompts(), Storage()
    export(bq, storage, "gs://bkt/requests.jsonl", input_format="gemini_jsonl")
    assert storage.lines("gs://bkt/requests.jsonl") == [
        {"key": key, "request": TEMPLATE.render(prompt)} for key, prompt in sorted(ROWS)
    ]


def test_an_unknown_format_is_refused_before_any_query():
    bq = duck_prompts()
    with pytest.raises(ValueError) as caught:
        export(bq, Storage(), "gs://bkt/requests.jsonl", input_format="csv")
    assert str(caught.value) == "unknown JSONL format 'csv'"
    assert bq.statements == []


def test_an_empty_query_writes_one_empty_file():
    storage = Storage()
    assert export(duck_prompts([]), storage, "gs://bkt/built") == [
        BuiltFile("gs://bkt/built/requests-00000.jsonl", 0, 0)
    ]
    assert storage.objects == {"gs://bkt/built/requests-00000.jsonl": (b"", "application/jsonl")}


@pytest.mark.parametrize("page_size", [1, 2, 5_000])
def test_a_prefix_gets_numbered_files_that_roll_over_at_the_request_limit(page_size):
    bq, storage = duck_prompts(), Storage()
    files = export(bq, storage, "gs://bkt/built/", limits=FEW, page_size=page_size)
    names = ["gs://bkt/built/requests-00000.jsonl", "gs://bkt/built/requests-00001.jsonl"]
    sizes = [len(storage.objects[name][0]) for name in names]
    assert files == [BuiltFile(names[0], 2, sizes[0]), BuiltFile(names[1], 1, sizes[1])]
    assert [line["request"]["labels"]["gemini_batch_key"] for line in storage.lines(names[0])] == ["a", "b"]
    assert [line["request"]["labels"]["gemini_batch_key"] for line in storage.lines(names[1])] == ["c"]
    assert bq.page_sizes == [page_size]  # memory holds one page of lines


def test_a_file_is_filled_to_exactly_the_byte_limit_and_not_one_byte_over():
    first, second, third = line_sizes()
    storage = Storage()
    limits = JobLimits(max_requests=100, max_bytes=first + second)
    files = export(duck_prompts(), storage, "gs://bkt/built", limits=limits)
    assert [(f.requests, f.bytes) for f in files] == [(2, first + second), (1, third)]


def test_a_line_over_the_byte_limit_gets_a_file_of_its_own_and_no_file_is_empty():
    storage = Storage()
    files = export(
        duck_prompts(), storage, "gs://bkt/built", limits=JobLimits(max_requests=100, max_bytes=10)
    )
    assert [f.requests for f in files] == [1, 1, 1]
    assert all(f.bytes > 10 for f in files)


def test_uploads_use_the_chunk_size_given_and_by_default_whole_256_kib_chunks():
    storage = Storage()
    export(duck_prompts(), storage, "gs://bkt/built", limits=FEW, chunk_size=256 * 1024)
    assert storage.chunk_sizes == [256 * 1024, 256 * 1024]
    export(duck_prompts(), storage, "gs://bkt/one.jsonl")
    assert storage.chunk_sizes[-1] % (256 * 1024) == 0  # GCS refuses any other resumable chunk


def test_one_named_file_over_the_limits_is_refused_and_leaves_no_object():
    storage = Storage()
    with pytest.raises(ValueError) as caught:
        export(duck_prompts(), storage, "gs://bkt/built/one.jsonl", limits=FEW)
    assert str(caught.value) == (
        "gs://bkt/built/one.jsonl: the requests exceed the Test limits (2 requests, 1,000,000 bytes) "
        "for one file; give a prefix to shard"
    )
    del caught
    gc.collect()  # a dropped BlobWriter closes (so finishes its upload) when collected
    assert storage.objects == {}


@pytest.mark.parametrize("vanished", [(), ("gs://bkt/built/requests-00000.jsonl",)])
def test_a_failed_export_removes_the_files_it_finished_and_raises_the_failure(vanished):
    failing = "gs://bkt/built/requests-00002.jsonl"
    storage = Storage(failing=failing, vanish=vanished)
    with pytest.raises(OSError) as caught:
        export(duck_prompts(), storage, "gs://bkt/built", limits=JobLimits(max_requests=1, max_bytes=10**6))
    assert str(caught.value) == f"upload of {failing} failed"
    del caught
    gc.collect()
    assert storage.objects == {}
