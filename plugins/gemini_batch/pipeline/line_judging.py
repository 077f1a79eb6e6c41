"""Judge the lines of a JSONL stream in order: in this process, or in worker processes.

:func:`~gemini_batch.pipeline.jsonl_scan.scan_jsonl` keeps its bookkeeping (counts, the key
index, the shard plan, the messages) sequential and cheap; judging a line (parsing it and
checking every rule) is the work, one core's worth at about a third of orjson's parsing speed. For
a large input the lines go, in blocks, to worker processes, and the verdicts come back in order,
so a 1 GB file is judged on every core the task has.

Invariants:

* The same verdicts, in the same order, whatever the number of workers: the workers run the same
  judge on the same bytes, and a verdict only ever depends on its own line.
* Bounded memory: at most two blocks per worker are in flight (``concurrent.futures``' ``map``
  would submit the whole input at once, hence the window here).
* Workers are forked where the platform can (they inherit the imported modules, so none imports
  the SDK again) and are gone when the iteration ends, however it ends.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

__all__ = ["Judge", "Verdict", "judge_lines", "needs_judging", "scan_workers"]

#: A line as read: ``(line_number, offset, length, content)``; content None for an over-long line.
Line = tuple[int, int, int, bytes | None]
#: A judged line's problems and key; None for a line that is not judged (over-long or blank).
Verdict = tuple[list[str], str | None] | None
#: Judges one line's bytes; ``first`` says it is line 1 (where a byte order mark is looked for).
#: It must be picklable (a module-level function or a ``functools.partial`` of one).
Judge = Callable[[bytes, bool], tuple[list[str], str | None]]

#: From this input size on, lines are judged by worker processes: below it, starting them costs
#: more than they save (a fork is about 10 ms; 64 MiB is about half a second of judging).
PARALLEL_FROM_BYTES = 64 * 1024 * 1024
#: Lines are sent to a worker in blocks of about this many bytes.
BLOCK_BYTES = 4 * 1024 * 1024


def scan_workers(size_bytes: int | None, cpus: int | None = None) -> int:
    """How many processes should judge an input of ``size_bytes`` (None: unknown): 1 for small or
    unknown inputs, else every CPU this process may run on."""
    if size_bytes is None or size_bytes < PARALLEL_FROM_BYTES:
        return 1
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus)


def needs_judging(content: bytes | None) -> bool:
    """A line is judged unless it is over the length limit (None) or blank."""
    return content is not None and bool(content) and not content.isspace()


def judge_lines(
    lines: Iterable[Line], judge: Judge, *, workers: int = 1, block_bytes: int | None = None
) -> Iterator[tuple[Line, Verdict]]:
    """Each line with its verdict, in the order of ``lines``.

    :param lines: The lines as read, in order.
    :param judge: What judges one line (picklable when ``workers`` > 1).
    :param workers: 1 judges here; more judges in that many worker processes.
    :param block_bytes: About how many bytes of lines go to a worker at once (default
        :data:`BLOCK_BYTES`).
    """
    if workers <= 1:
        for line in lines:
            content = line[3]
            yield line, judge(content, line[0] == 1) if needs_judging(content) else None  # type: ignore[arg-type]
        return
    yield from _judge_in_workers(lines, judge, workers, block_bytes or BLOCK_BYTES)


def _judge_in_workers(
    lines: Iterable[Line], judge: Judge, workers: int, block_bytes: int
) -> Iterator[tuple[Line, Verdict]]:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pending: deque[tuple[list[Line], Future[list[Verdict]]]] = deque()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        block: list[Line] = []
        size = 0
        for line in lines:
            block.append(line)
            size += len(line[3] or b"")
            if size >= block_bytes:
                pending.append((block, pool.submit(_judge_block, judge, block[0][0], [b[3] for b in block])))
                block, size = [], 0
                while len(pending) > 2 * workers:
                    yield from _in_order(*pending.popleft())
        if block:
            pending.append((block, pool.submit(_judge_block, judge, block[0][0], [b[3] for b in block])))
        while pending:
            yield from _in_order(*pending.popleft())


def _in_order(block: list[Line], verdicts: Future[list[Verdict]]) -> Iterator[tuple[Line, Verdict]]:
    yield from zip(block, verdicts.result(), strict=True)


def _judge_block(judge: Judge, first_line_number: int, contents: list[bytes | None]) -> list[Verdict]:
    """In a worker: the verdicts of consecutive lines, the first being line ``first_line_number``."""
    return [
        judge(content, first_line_number + index == 1) if needs_judging(content) else None  # type: ignore[arg-type]
        for index, content in enumerate(contents)
    ]
