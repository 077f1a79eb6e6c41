"""Judging lines in worker processes gives what judging them here gives, in order, and cleans up."""

from __future__ import annotations

import functools
import io
import json

import psutil
import pytest

from gemini_batch.pipeline import jsonl_scan, line_judging
from gemini_batch.pipeline.findings import InputValidationError
from gemini_batch.pipeline.line_judging import PARALLEL_FROM_BYTES, judge_lines, needs_judging, scan_workers
from gemini_batch.pipeline.request_shape import KEY_LABEL

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "cpus", "workers"),
    [
        (None, 8, 1),  # unknown size: one process
        (0, 8, 1),
        (PARALLEL_FROM_BYTES - 1, 8, 1),
        (PARALLEL_FROM_BYTES, 8, 8),
        (10 * 1024 * MB, 2, 2),
        (10 * 1024 * MB, 1, 1),
    ],
)
def test_scan_workers_by_size(size: int | None, cpus: int, workers: int) -> None:
    assert scan_workers(size, cpus) == workers


def test_scan_workers_uses_the_cpus_this_process_may_run_on() -> None:
    assert scan_workers(PARALLEL_FROM_BYTES) == len(psutil.Process().cpu_affinity())


@pytest.mark.parametrize(
    ("content", "judged"), [(None, False), (b"", False), (b" \t\r", False), (b"{}", True)]
)
def test_over_long_and_blank_lines_are_not_judged(content: bytes | None, judged: bool) -> None:
    assert needs_judging(content) is judged


def _request_line(index: int) -> bytes:
    parts = [{"text": f"prompt {index}"}] if index % 9 else []  # every ninth has no parts
    key = f"k{index % 97}" if index % 50 else "k1"  # a few duplicate keys, far apart
    return json.dumps({"request": {"contents": [{"parts": parts}], "labels": {KEY_LABEL: key}}}).encode()


def _lines(count: int) -> list[line_judging.Line]:
    lines, offset = [], 0
    for number in range(1, count + 1):
        content: bytes | None = _request_line(number)
        if number % 13 == 0:
            content = b"  "  # blank
        elif number % 31 == 0:
            content = None  # over the length limit
        length = len(content or b"x" * 100) + 1
        lines.append((number, offset, length, content))
        offset += length
    return lines


def test_workers_give_the_same_verdicts_in_the_same_order() -> None:
    judge = functools.partial(jsonl_scan._judge, "vertex_jsonl", KEY_LABEL)
    lines = _lines(700)
    here = list(judge_lines(iter(lines), judge, workers=1))
    there = list(judge_lines(iter(lines), judge, workers=2, block_bytes=2_000))  # about 25 blocks
    assert there == here
    assert [line for line, _ in there] == lines
    assert sum(verdict is None for _, verdict in here) > 50  # blank and over-long lines
    assert sum(bool(verdict and verdict[0]) for _, verdict in here) > 50  # lines with problems


def test_line_one_is_judged_as_the_first_in_a_worker_too() -> None:
    judge = functools.partial(jsonl_scan._judge, "vertex_jsonl", KEY_LABEL)
    bom = b"\xef\xbb\xbf" + _request_line(1)
    lines = [(1, 0, len(bom) + 1, bom), (2, len(bom) + 1, len(bom) + 1, bom)]
    (_, first), (_, second) = judge_lines(iter(lines), judge, workers=2, block_bytes=1)
    assert first is not None and "byte order mark" in first[0][0]
    assert second is not None and "byte order mark" not in " ".join(second[0])


def _file(count: int, *, broken: bool) -> bytes:
    lines = [json.loads(_request_line(index)) for index in range(1, count + 1)]
    for index, line in enumerate(lines):
        line["request"]["labels"][KEY_LABEL] = f"k{index}"
        line["request"]["contents"][0]["parts"] = [{"text": f"prompt {index}"}]
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    if broken:
        text = text.replace('"k7"', '"k3"').replace('"prompt 20"', '" "').replace("\n", "\n\n", 1)
    return text.encode()


def _scan(data: bytes, workers: int) -> object:
    try:
        return jsonl_scan.scan_jsonl(
            io.BytesIO(data), source="in.jsonl", enforce_limits=False, workers=workers
        )
    except InputValidationError as error:
        return str(error)


@pytest.mark.parametrize("broken", [False, True])
def test_scan_jsonl_is_the_same_with_workers(monkeypatch: pytest.MonkeyPatch, broken: bool) -> None:
    monkeypatch.setattr(line_judging, "BLOCK_BYTES", 1_500)
    data = _file(400, broken=broken)
    alone = _scan(data, workers=1)
    assert _scan(data, workers=2) == alone
    if broken:
        assert (
            "in.jsonl:9: duplicate key: the same key is on line 5" in alone
            and "in.jsonl:22: request.contents[0].parts[0].text" in alone
            and "in.jsonl:2: blank" in alone
        )
    else:
        assert alone.requests == 400


def _boom(content: bytes, first: bool) -> tuple[list[str], str | None]:
    if b"prompt 300" in content:
        raise RuntimeError("judge failed on line 300")
    return [], None


def test_a_failing_judge_fails_the_scan_and_leaves_no_process() -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    with pytest.raises(RuntimeError, match="line 300"):
        list(judge_lines(iter(_lines(700)), _boom, workers=2, block_bytes=2_000))
    assert {child.pid for child in psutil.Process().children(recursive=True)} <= before


def test_stopping_early_leaves_no_process() -> None:
    judge = functools.partial(jsonl_scan._judge, "vertex_jsonl", KEY_LABEL)
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    judged = judge_lines(iter(_lines(700)), judge, workers=2, block_bytes=2_000)
    next(judged)
    judged.close()
    assert {child.pid for child in psutil.Process().children(recursive=True)} <= before
