"""What validating a batch input finds: its figures and shard plan, or its problems.

Invariants: every problem names where it is (``gs://bucket/file.jsonl:LINE``, a BigQuery table
and column, or ``inline[i]``), what is wrong, the limit where one applies, and the remedy. All
problems found (up to a cap) are raised together in one :class:`InputValidationError`; a caller
that gets one submits nothing. Duplicate keys are found in 12 bytes per key (:class:`KeyIndex`).
These types are shared by the request-shape, JSONL-scan and BigQuery checks.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gemini_batch.pipeline.limits import JobLimits

__all__ = ["InputScan", "InputValidationError", "Issues", "KeyIndex", "ShardSpan", "ValidationIssue"]


@dataclass(frozen=True)
class ValidationIssue:
    """One problem with an input.

    :param location: Where: ``gs://b/f.jsonl:12``, ``bq://p.d.t column `request```, ``inline[3]``.
    :param message: What is wrong, the limit if one applies, and the remedy.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InputValidationError(ValueError):
    """An input failed validation; nothing was submitted.

    :param source: The input that was checked.
    :param issues: The problems found (at most ``max_issues`` of them).
    :param more: How many further problems were found but not listed.
    """

    def __init__(self, source: str, issues: Sequence[ValidationIssue], more: int = 0) -> None:
        self.source = source
        self.issues = tuple(issues)
        self.more = more
        total = len(self.issues) + more
        lines = [f"{total} problem(s) in {source}; nothing was submitted:"]
        lines += [f"  - {issue}" for issue in self.issues]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ShardSpan:
    """A contiguous run of lines of a JSONL input that fits one job.

    :param index: The shard number, from 0.
    :param start: Byte offset of the shard's first line.
    :param end: Byte offset just after the shard's last line (exclusive).
    :param requests: Number of requests (lines) in the shard.
    :param first_line: The 1-based line number of the shard's first line.
    """

    index: int
    start: int
    end: int
    requests: int
    first_line: int

    @property
    def bytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class InputScan:
    """What a successful scan of an input found.

    :param source: The input (a URI or a name).
    :param input_format: The input format checked.
    :param requests: Number of requests.
    :param bytes: Number of bytes.
    :param limits: The per-job limits the shard plan respects.
    :param shards: The shard plan: one span when the input fits one job.
    """

    source: str
    input_format: str
    requests: int
    bytes: int
    limits: JobLimits
    shards: tuple[ShardSpan, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for XCom."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputScan:
        """The inverse of :meth:`to_dict`."""
        return cls(
            source=data["source"],
            input_format=data["input_format"],
            requests=data["requests"],
            bytes=data["bytes"],
            limits=JobLimits(**data["limits"]),
            shards=tuple(ShardSpan(**span) for span in data["shards"]),
        )


class Issues:
    """Collects issues up to a cap and counts the rest."""

    def __init__(self, max_issues: int) -> None:
        self.max_issues = max_issues
        self.items: list[ValidationIssue] = []
        self.more = 0

    def add(self, location: str, message: str) -> None:
        if len(self.items) < self.max_issues:
            self.items.append(ValidationIssue(location, message))
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, source: str) -> None:
        if self.items:
            raise InputValidationError(source, self.items, self.more)


class KeyIndex:
    """Detects duplicate keys in 12 bytes per key: a 64-bit digest and a line number.

    The digest is Python's own string hash (SipHash, salted per process; an index lives in one
    process, so that is enough) where it is 64 bits wide, else 8 bytes of BLAKE2b: ``hash`` costs
    a tenth of the BLAKE2b call, and this runs once per line of a 1 GB file. Two different keys
    share a digest with probability about n**2 / 2**65 (3e-8 for a million keys); such a
    collision would be reported as a duplicate, never missed.
    """

    def __init__(self) -> None:
        self._digests = array("q")
        self._lines = array("I")

    def add(self, key: str, line: int) -> None:
        self._digests.append(_digest(key))
        self._lines.append(line)

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """Yield ``(line, first_line)`` for each key seen before on ``first_line``, by line."""
        if len(self._digests) < 2:
            return
        import numpy as np

        digests = np.frombuffer(self._digests, dtype=np.int64)
        lines = np.frombuffer(self._lines, dtype=np.uint32)
        order = np.argsort(digests, kind="stable")  # stable: the first of a run is its first line
        ordered = digests[order]
        repeat = np.empty(len(ordered), dtype=bool)
        repeat[0] = False
        np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
        if not repeat.any():
            return
        run_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(ordered))))
        positions = np.flatnonzero(repeat)
        later = lines[order[positions]]
        first = lines[order[run_start[positions]]]
        for index in np.argsort(later, kind="stable"):
            yield int(later[index]), int(first[index])


def _blake2b_digest(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


_digest: Callable[[str], int] = hash if sys.hash_info.width >= 64 else _blake2b_digest
