"""Benchmark JSONL validation against bare orjson parsing of the same bytes, in one run.

For each size (default 100 MB and 1 GB) a Vertex JSONL requests file is generated once (or
reused) in ``--dir``: realistic requests of several shapes (a plain prompt; a system instruction
with generation config and safety settings; a multi-turn chat; a prompt with an image by URI; a
JSON-schema answer), half written with ``ensure_ascii`` (``\\uXXXX`` escapes), half as raw UTF-8.
Then two fresh worker processes read it, each measuring itself:

* ``parse``: the floor of any validator: the file read in 4 MiB chunks, cut into lines,
  ``orjson.loads`` on each line, nothing else.
* ``validate``: ``gemini_batch.pipeline.jsonl_scan.scan_jsonl`` (every rule, the key index and the
  shard plan, ``enforce_limits=False``).

Each mode runs ``--repeat`` times (default 3), parse and validate taking turns, and the best run
of each is printed: a shared virtual machine slows a run by 10-40% at random, and the best run is
the one it disturbed least (as ``timeit`` reports). Prints MB/s for both (CPU time of the worker,
which a busy machine disturbs less, and wall time), the ratio validate/parse, and each worker's
peak RSS (VmHWM) minus its RSS before the work. No asserts: figures only.

Run: ``PYTHONPATH=plugins .venv/bin/python bench/validation.py [--sizes 100,1000] [--dir DIR] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "plugins"))

CHUNK = 4 * 1024 * 1024
WORDS = (
    "the a model batch request prompt summarize translate explain write code answer question data "
    "table row key value customer order invoice: review, report. résumé naïve 東京 데이터 ключ"
).split()


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def request_line(rnd: random.Random, index: int) -> str:
    """One Vertex JSONL line; the shape cycles through five kinds of request."""

    def text(low: int, high: int) -> str:
        return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(low, high)))

    kind = index % 5
    request: dict = {
        "contents": [{"role": "user", "parts": [{"text": text(40, 400)}]}],
        "labels": {"gemini_batch_key": f"row-{index:010d}"},
    }
    if kind == 1:
        request["systemInstruction"] = {"parts": [{"text": text(20, 60)}]}
        request["generationConfig"] = {"temperature": 0.2, "maxOutputTokens": 1024, "topP": 0.95}
        request["safetySettings"] = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    elif kind == 2:
        request["contents"] = [
            {"role": "user", "parts": [{"text": text(20, 120)}]},
            {"role": "model", "parts": [{"text": text(40, 200)}]},
            {"role": "user", "parts": [{"text": text(5, 40)}]},
        ]
    elif kind == 3:
        image = {"fileData": {"mimeType": "image/png", "fileUri": f"gs://bucket/images/{index}.png"}}
        request["contents"][0]["parts"].append(image)
    elif kind == 4:
        request["generationConfig"] = {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {"answer": {"type": "STRING"}, "score": {"type": "NUMBER"}},
                "required": ["answer"],
            },
        }
    return json.dumps({"request": request}, ensure_ascii=index % 2 == 0)


def ensure_input(directory: Path, megabytes: int) -> Path:
    path = directory / f"requests-{megabytes}mb.jsonl"
    if path.exists() and path.stat().st_size >= megabytes * 10**6:
        return path
    rnd = random.Random(megabytes)
    target = megabytes * 10**6
    written = index = 0
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        while written < target:
            lines = [request_line(rnd, index + i) for i in range(1000)]
            block = "\n".join(lines) + "\n"
            out.write(block)
            written += len(block.encode("utf-8"))
            index += 1000
    partial.rename(path)
    return path


def work_parse(path: Path) -> int:
    import orjson

    lines = 0
    carried = b""
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            pieces = (carried + chunk).split(b"\n")
            carried = pieces.pop()
            for piece in pieces:
                if piece:
                    orjson.loads(piece)
                    lines += 1
    if carried:
        orjson.loads(carried)
        lines += 1
    return lines


def work_validate(path: Path) -> int:
    from gemini_batch.pipeline.jsonl_scan import scan_jsonl

    with path.open("rb") as stream:
        return scan_jsonl(stream, source=str(path), enforce_limits=False).requests


def worker(mode: str, path: Path) -> None:
    if mode == "validate":
        import gemini_batch.pipeline.jsonl_scan  # noqa: F401  (imports are not the work)
    else:
        import orjson  # noqa: F401
    before = rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    lines = work_parse(path) if mode == "parse" else work_validate(path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"lines": lines, "cpu": cpu, "wall": wall, "rss_before": before, "peak": peak_rss_mb()}))


def measure(mode: str, path: Path) -> dict:
    command = [sys.executable, __file__, "--worker", mode, str(path)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="input sizes in MB, comma-separated")
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "gemini-batch-bench-validation"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode; the best is printed")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
        return
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    header = (
        f"{'input':>8} {'lines':>10} {'avg line':>9} {'mode':>9} {'MB/s cpu':>9} {'MB/s wall':>10} "
        f"{'peak RSS':>9} {'work RSS':>9}"
    )
    print(header)
    for megabytes in (int(size) for size in args.sizes.split(",")):
        path = ensure_input(directory, megabytes)
        size_mb = path.stat().st_size / 10**6
        runs: dict[str, list[dict]] = {"parse": [], "validate": []}
        for _ in range(args.repeat):
            for mode, measured in runs.items():
                measured.append(measure(mode, path))
        results = {
            mode: {
                **measured[0],
                "cpu": min(r["cpu"] for r in measured),
                "wall": min(r["wall"] for r in measured),
            }
            for mode, measured in runs.items()
        }
        for mode, result in results.items():
            print(
                f"{size_mb:>6.0f}MB {result['lines']:>10,} {size_mb * 10**6 / result['lines']:>8.0f}B "
                f"{mode:>9} {size_mb / result['cpu']:>9.0f} {size_mb / result['wall']:>10.0f} "
                f"{result['peak']:>7.0f}MB {result['peak'] - result['rss_before']:>7.0f}MB",
                flush=True,
            )
        ratio_cpu = results["parse"]["cpu"] / results["validate"]["cpu"]
        ratio_wall = results["parse"]["wall"] / results["validate"]["wall"]
        print(f"{'':>8} validate/parse speed: {ratio_cpu:.2f} (cpu), {ratio_wall:.2f} (wall)", flush=True)


if __name__ == "__main__":
    main()
