"""A JSONL round's lines: the key read as the loader reads it, the lines copied byte for byte."""

from __future__ import annotations

import io
import json

import pytest

from gemini_batch.pipeline import jsonl_scan
from gemini_batch.pipeline.round_files import line_key, round_lines


@pytest.mark.parametrize(
    ("line", "key"),
    [
        (b'{"request": {"labels": {"gemini_batch_key": "k1"}}}', "k1"),
        (b'{"key": "k2", "request": {}}', "k2"),
        (b'{"key": "k3", "request": {"labels": {"gemini_batch_key": "other"}}}', "k3"),  # key first
        (b'{"request": {"labels": {"my_key": "k4"}}}', None),
        (b'{"request": {"labels": {"gemini_batch_key": ""}}}', None),
        (b'{"request": {"labels": {"gemini_batch_key": 7}}}', None),
        (b'{"key": null, "request": {"labels": {"gemini_batch_key": "k5"}}}', "k5"),
        (b'{"request": "text"}', None),
        (b"[1, 2]", None),
        (b"not json", None),
    ],
)
def test_a_lines_key(line: bytes, key: str | None) -> None:
    assert line_key(line) == key


def test_another_key_label() -> None:
    assert line_key(b'{"request": {"labels": {"my_key": "k4"}}}', key_label="my_key") == "k4"


def lines(count: int) -> list[bytes]:
    return [
        json.dumps({"request": {"contents": [{"parts": [{"text": f"é {i}"}]}], "labels": {"gemini_batch_key": f"k{i}"}}},
                   ensure_ascii=False).encode()
        for i in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("final_newline", [True, False])
def test_round_lines_are_the_keys_lines_as_they_are(final_newline: bool, monkeypatch) -> None:
    monkeypatch.setattr(jsonl_scan, "_CHUNK_BYTES", 64)  # lines cut across chunks
    data = lines(50)
    text = b"\n".join(data) + (b"\n" if final_newline else b"")
    picked = list(round_lines(io.BytesIO(text + b"\n\n"), frozenset({"k0", "k17", "k49", "absent"})))
    assert picked == [data[0] + b"\n", data[17] + b"\n", data[49] + b"\n"]
    assert list(round_lines(io.BytesIO(text), frozenset())) == []


# --- select_round_file: the errors table on DuckDB, GCS as a dict --------------------------------


class MemoryBlob:
    """The few ``storage.Blob`` calls round_files makes, over a dict of objects."""

    def __init__(self, objects: dict[str, bytes], name: str) -> None:
        self.objects, self.name, self.content_type = objects, name, None

    def exists(self) -> bool:
        return self.name in self.objects

    def delete(self) -> None:
        del self.objects[self.name]

    def open(self, mode: str, **_: object) -> io.BytesIO:
        if mode == "rb":
            return io.BytesIO(self.objects[self.name])
        objects, name = self.objects, self.name

        class Writer(io.BytesIO):
            def close(self) -> None:
                objects[name] = self.getvalue()
                super().close()

        return Writer()


class MemoryStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def bucket(self, bucket: str) -> MemoryStorage:
        self._bucket = bucket
        return self

    def blob(self, name: str) -> MemoryBlob:
        return MemoryBlob(self.objects, f"{self._bucket}/{name}")

    def get_blob(self, name: str) -> MemoryBlob | None:
        blob = self.blob(name)
        return blob if blob.exists() else None


def failed_day(bq, failed: dict[str, str]) -> None:  # noqa: ANN001 - DuckBigQuery
    from gemini_batch.pipeline.refs import TableRef
    from gemini_batch.pipeline.results import ensure_results_tables

    ensure_results_tables(bq, TableRef("proj", "ds", "results"), TableRef("proj", "ds", "errors"))
    for key, status in failed.items():
        bq.query(
            "INSERT INTO `proj.ds.errors` (key, logical_date, status, job_name, round, loaded_at) "
            f"VALUES ('{key}', DATE '2026-01-01', '{status}', 'batches/0', 0, CURRENT_TIMESTAMP())"
        ).result()


def select(bq, storage: MemoryStorage, round_number: int = 1):  # noqa: ANN001, ANN201
    import datetime as dt

    from gemini_batch.pipeline.refs import TableRef
    from gemini_batch.pipeline.round_files import select_round_file

    return select_round_file(
        bq, storage, day_input="gs://bkt/in/requests.jsonl", day_fingerprint="f" * 16, destination_prefix="gs://bkt/runs",
        errors=TableRef("proj", "ds", "errors"), logical_date=dt.date(2026, 1, 1), round_number=round_number,
        max_row_retries=2,
    )  # fmt: skip


def test_a_round_file_holds_exactly_the_retryable_lines_and_is_written_once() -> None:
    from .duck_bigquery import DuckBigQuery

    bq, storage = DuckBigQuery(), MemoryStorage()
    data = lines(20)
    storage.objects["bkt/in/requests.jsonl"] = b"\n".join(data) + b"\n"
    failed_day(bq, {"k3": "RESOURCE_EXHAUSTED", "k11": "code 503", "k12": "INVALID_ARGUMENT"})

    selection = select(bq, storage)

    assert (selection.action, selection.retryable, selection.candidates) == ("run", 2, 3)
    assert selection.table == f"gs://bkt/runs/r1/{selection.fingerprint}/requests.jsonl"
    assert storage.objects[selection.table[5:]] == data[3] + b"\n" + data[11] + b"\n"
    storage.objects[selection.table[5:]] = b"kept"
    assert select(bq, storage) == selection  # same keys: same name, and the file is not rewritten
    assert storage.objects[selection.table[5:]] == b"kept"
    assert select(bq, storage, round_number=2).action == "nothing_to_retry"


def test_keys_absent_from_the_input_fail_the_round_and_leave_no_file() -> None:
    from .duck_bigquery import DuckBigQuery

    bq, storage = DuckBigQuery(), MemoryStorage()
    storage.objects["bkt/in/requests.jsonl"] = b"\n".join(lines(5)) + b"\n"
    failed_day(bq, {"k3": "RESOURCE_EXHAUSTED", "k99": "RESOURCE_EXHAUSTED"})

    with pytest.raises(ValueError, match="1 of 2 keys to retry are not in gs://bkt/in/requests.jsonl"):
        select(bq, storage)
    assert list(storage.objects) == ["bkt/in/requests.jsonl"]
