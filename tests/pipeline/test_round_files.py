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
