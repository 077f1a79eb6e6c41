"""N concurrent batch-job waits in one event loop, as the triggerer runs them; prints figures.

For each side -- ``bare`` (the floor: a bare google-genai async ``batches.get`` loop on the same
schedule), ``ours`` (``GeminiBatchJobTrigger``) and ``google`` (the Google provider's
``GenAIGeminiCreateBatchJobTrigger``), side by side at the same N -- it prints:

- event-loop lag p50 / p99 / max (a 50 ms ticker measures how late it wakes up),
- CPU seconds of this process per 1,000 polls while waiting (job creation excluded),
- peak RSS of this process,
- the delay between a job turning terminal (the emulator's ``end_time``) and its event,
- errors (events that are not success).

Both wait on Gemini API batches of one inline request each, held PENDING for ``--hold``
seconds by the emulator (``queue_delay_s``), polled every ``--poll-interval`` seconds. Ours
waits on jobs created beforehand (it never creates); Google's creates its job inside ``run()``
(that is its design), so its CPU is counted only from the moment its last job exists.

The emulator runs in its own process pinned to CPU 0, this process to the other CPUs, so the
figures are the client's. No figure is asserted anywhere.

Run: ``PYTHONPATH=plugins:include .venv/bin/python bench/triggerer.py --n 1000``
(``--n 10000`` for the full size; ``--which bare,ours`` for our CPU per poll against the floor).
``--real`` runs a real ``airflow triggerer`` on Postgres instead (bench/triggerer_real.py), then
the ``bare`` loop at the same N and polls, and prints their CPU per poll side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for sub in ("include", "plugins"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

MODEL = "gemini-2.5-flash"
API_KEY = "local-gemini-api-key"
REQUEST = {"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}]}
#: Event statuses of a succeeded job: ours ("succeeded") and providers-google's trigger ("success").
SUCCESS_STATUSES = frozenset({"succeeded", "success"})


def say(text: str) -> None:
    print(text, flush=True)


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Run:
    """What one side measured."""

    label: str
    n: int
    lags_ms: list[float] = field(default_factory=list)
    polls: int = 0
    polls_at_start: int = 0
    cpu_at_start: float = 0.0
    cpu_at_end: float = 0.0
    wall_at_start: float = 0.0
    wall_at_end: float = 0.0
    cpu_at_begin: float = field(default_factory=time.process_time)
    peak_rss_mb: float = 0.0
    events: dict[str, tuple[float, dict]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)

    def report(self) -> None:
        polls = self.polls - self.polls_at_start
        cpu = self.cpu_at_end - self.cpu_at_start
        per_1000 = 1000 * cpu / polls if polls else float("nan")
        say(f"\n== {self.label}: N={self.n:,}")
        say(
            f"  event-loop lag   p50 {percentile(self.lags_ms, 50):7.1f} ms   p99 {percentile(self.lags_ms, 99):7.1f} ms"
            f"   max {max(self.lags_ms, default=float('nan')):7.1f} ms   ({len(self.lags_ms):,} ticks)"
        )
        say(
            f"  CPU while waiting {cpu:7.2f} s for {polls:,} polls = {per_1000:.3f} CPU s / 1,000 polls"
            f"   ({self.wall_at_end - self.wall_at_start:.1f} s wall)"
        )
        say(
            f"  whole run        {time.process_time() - self.cpu_at_begin:7.2f} CPU s, {self.polls:,} polls"
            " (for Google this includes its N creates, made inside run())"
        )
        say(f"  peak RSS         {self.peak_rss_mb:7.0f} MB")
        if self.delays_s:
            say(
                f"  terminal->event  p50 {percentile(self.delays_s, 50):6.2f} s   p99 {percentile(self.delays_s, 99):6.2f} s"
                f"   max {max(self.delays_s):6.2f} s   ({len(self.delays_s):,} jobs)"
            )
        ok = sum(1 for _, payload in self.events.values() if payload.get("status") in SUCCESS_STATUSES)
        say(f"  events           {len(self.events):,} ({ok:,} success), errors {len(self.errors):,}")
        for text in sorted(set(self.errors))[:5]:
            say(f"    e.g. {text[:200]}")


async def monitor(run: Run, stop: asyncio.Event, tick: float = 0.05) -> None:
    """Sample event-loop lag and RSS until ``stop``."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(tick)
        run.lags_ms.append(max(0.0, (loop.time() - before - tick) * 1000))
        run.peak_rss_mb = max(run.peak_rss_mb, rss_mb())


async def drive(run: Run, triggers: list[Any], started: Callable[[], bool]) -> None:
    """Run every trigger to its first event in this loop, as the triggerer does."""
    stop = asyncio.Event()
    sampler = asyncio.create_task(monitor(run, stop))

    async def one(trigger: Any) -> None:
        try:
            async for event in trigger.run():
                run.events[event.payload.get("job_name") or str(id(trigger))] = (time.time(), event.payload)
                if event.payload.get("status") not in SUCCESS_STATUSES:
                    run.errors.append(str(event.payload.get("message")))
                return
        except Exception as exc:  # noqa: BLE001 - a bench reports, it does not stop
            run.errors.append(f"{type(exc).__name__}: {exc}")

    tasks = [asyncio.create_task(one(t)) for t in triggers]

    async def mark_start() -> None:
        while not started():
            await asyncio.sleep(0.05)
        run.cpu_at_start, run.polls_at_start, run.wall_at_start = time.process_time(), run.polls, time.time()

    marker = asyncio.create_task(mark_start())
    await asyncio.gather(*tasks)
    marker.cancel()
    run.cpu_at_end, run.wall_at_end = time.process_time(), time.time()
    stop.set()
    await sampler


def terminal_delays(run: Run, admin: Any) -> None:
    ends = {job["name"]: parse_time(job.get("end_time")) for job in admin.jobs()}
    for name, (received, _) in run.events.items():
        end = ends.get(name)
        if end is not None:
            run.delays_s.append(max(0.0, received - end))


def counting(owner: Any, method: str, run: Run) -> None:
    """Count calls of an async method (the polls)."""
    original: Callable[..., Awaitable[Any]] = getattr(owner, method)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        run.polls += 1
        return await original(*args, **kwargs)

    setattr(owner, method, wrapper)


async def create_jobs(count: int, concurrency: int = 64) -> list[str]:
    from gemini_batch.hooks import GeminiBatchHook
    from gemini_batch.sources import parse_source

    hook = GeminiBatchHook("gemini_api")
    source = parse_source([REQUEST])
    names: list[str] = []
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            job = await hook.acreate_job(model=MODEL, source=source, display_name=f"bench-{i}")
            names.append(job.name)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return names


def bench_ours(n: int, poll: float, hold: float, admin: Any) -> Run:
    from gemini_batch.hooks import GeminiBatchHook
    from gemini_batch.triggers import GeminiBatchJobTrigger

    run = Run("ours: gemini_batch GeminiBatchJobTrigger", n)
    admin.reset()
    admin.set_faults(queue_delay_s=hold + n / 150)  # held PENDING until every trigger is running
    began = time.time()
    names = asyncio.run(create_jobs(n))
    say(f"  (ours) created {n:,} jobs beforehand in {time.time() - began:.1f} s")
    counting(GeminiBatchHook, "aget_job", run)
    triggers = []
    for name in names:
        _, kwargs = GeminiBatchJobTrigger(job_name=name, backend="gemini_api", poll_interval=poll).serialize()
        triggers.append(GeminiBatchJobTrigger(**kwargs))  # as the triggerer rebuilds them
    asyncio.run(drive(run, triggers, started=lambda: True))
    terminal_delays(run, admin)
    early = sum(1 for job in admin.jobs() if (parse_time(job.get("end_time")) or 0) < run.wall_at_start)
    if early:
        say(f"  (ours) note: {early:,} jobs ended before the triggers started (raise --hold)")
    return run


def bench_bare(n: int, poll: float, hold: float, admin: Any) -> Run:
    """The floor: N loops of a bare google-genai async ``batches.get``, on the trigger's schedule.

    One ``genai.Client`` built directly (API key, endpoint), no hook, no polling core, no compat
    read: the least any trigger built on google-genai can spend per poll.
    """
    import random

    from google import genai
    from google.genai import types

    from gemini_batch.states import is_terminal

    run = Run("bare: google-genai client.aio.batches.get in a loop", n)
    admin.reset()
    admin.set_faults(queue_delay_s=hold + n / 150)
    names = asyncio.run(create_jobs(n))
    say(f"  (bare) created {n:,} jobs beforehand")

    async def waits() -> None:
        client = genai.Client(
            vertexai=False,
            api_key=os.environ["GEMINI_API_KEY"],
            http_options=types.HttpOptions(base_url=os.environ["GOOGLE_GEMINI_BASE_URL"], timeout=120_000),
        )

        class Bare:
            def __init__(self, name: str) -> None:
                self.name = name

            async def run(self) -> Any:
                await asyncio.sleep(random.uniform(0, poll))
                while True:
                    run.polls += 1
                    job = await client.aio.batches.get(name=self.name)
                    if is_terminal(job.state):
                        status = "succeeded" if "SUCCEEDED" in str(job.state) else str(job.state)
                        yield type("Event", (), {"payload": {"status": status, "job_name": self.name}})()
                        return
                    await asyncio.sleep(poll * random.uniform(0.9, 1.1))

        await drive(run, [Bare(name) for name in names], started=lambda: True)

    asyncio.run(waits())
    terminal_delays(run, admin)
    return run


def bench_google(n: int, poll: float, hold: float, admin: Any) -> Run:
    from airflow.providers.google.cloud.hooks.gen_ai import GenAIGeminiAPIAsyncHook
    from airflow.providers.google.cloud.triggers.gen_ai import GenAIGeminiCreateBatchJobTrigger

    run = Run("google: providers-google GenAIGeminiCreateBatchJobTrigger", n)
    admin.reset()
    # Its creates run in the loop (a new genai.Client each, built synchronously): hold the jobs
    # long enough that the waits, not the creates, are what gets measured.
    admin.set_faults(queue_delay_s=hold + n / 10)
    counting(GenAIGeminiAPIAsyncHook, "get_batch_job", run)
    created = {"n": 0}
    original_create = GenAIGeminiAPIAsyncHook.create_batch_job

    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original_create(self, *args, **kwargs)
        finally:
            created["n"] += 1

    GenAIGeminiAPIAsyncHook.create_batch_job = create
    triggers = [
        GenAIGeminiCreateBatchJobTrigger(
            project_id="local-project",
            location="us-central1",
            model=MODEL,
            input_source=[REQUEST],
            gemini_api_key=API_KEY,  # its design: the key travels in the trigger kwargs
            polling_interval=int(poll),
        )
        for _ in range(n)
    ]
    asyncio.run(drive(run, triggers, started=lambda: created["n"] >= n))
    terminal_delays(run, admin)
    return run


def figures(run: Run) -> dict[str, float]:
    polls = run.polls - run.polls_at_start
    return {
        "lag_p50_ms": percentile(run.lags_ms, 50),
        "lag_p99_ms": percentile(run.lags_ms, 99),
        "cpu_s_per_1000_polls": 1000 * (run.cpu_at_end - run.cpu_at_start) / polls if polls else float("nan"),
        "peak_rss_mb": run.peak_rss_mb,
        "terminal_to_event_p50_s": percentile(run.delays_s, 50),
        "terminal_to_event_p99_s": percentile(run.delays_s, 99),
        "errors": float(len(run.errors)),
        "polls_total": float(run.polls),
        "cpu_s_whole_run": time.process_time() - run.cpu_at_begin,
    }


def child(which: str, args: argparse.Namespace) -> int:
    """One side, in its own process (so RSS and CPU are its own), against the running stack."""
    from local_stack.admin import AdminClient

    admin = AdminClient(os.environ["LOCAL_STACK_ADMIN_URL"])
    run = {"ours": bench_ours, "bare": bench_bare, "google": bench_google}[which](
        args.n, args.poll_interval, args.hold, admin
    )
    run.report()
    print("FIGURES " + json.dumps(figures(run)), flush=True)
    return 0


#: Issue 13's bound on our CPU per poll against the bare google-genai loop, in one run.
TARGET = "target: within 1.5x"


def sides_of(args: argparse.Namespace) -> list[str]:
    return [w.strip() for w in args.which.split(",") if w.strip()]


def run_sides(args: argparse.Namespace, sides: list[str]) -> dict[str, dict[str, float]]:
    """Run each side in its own process, one after another, against one fresh local stack.

    :return: Each side's :func:`figures`.
    """
    from local_stack.admin import AdminClient
    from local_stack.stack import start

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-triggerer-") as state:
        stack = start(Path(state), ephemeral=True)
        try:
            env = {**os.environ, **stack.endpoints.env(), "NO_GCE_CHECK": "True"}
            env["PYTHONPATH"] = os.pathsep.join(
                [str(REPO / "plugins"), str(REPO / "include"), env.get("PYTHONPATH", "")]
            )
            admin = AdminClient(stack.endpoints.admin_url)
            cpus = sorted(os.sched_getaffinity(0))
            emulator_pid = admin.health()["pid"]
            child_cpus = set(cpus[1:]) if len(cpus) >= 2 else set(cpus)
            if len(cpus) >= 2:
                os.sched_setaffinity(emulator_pid, {cpus[0]})
                say(f"emulator pid {emulator_pid} on CPU {cpus[0]}; each side on CPUs {sorted(child_cpus)}")
            say(
                f"open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,}; python {sys.version.split()[0]}"
            )
            for which in sides:
                command = [
                    sys.executable, __file__, "--child", which, "--n", str(args.n),
                    "--poll-interval", str(args.poll_interval), "--hold", str(args.hold),
                ]  # fmt: skip
                proc = subprocess.Popen(
                    command, env=env, stdout=subprocess.PIPE, text=True,
                    preexec_fn=lambda: os.sched_setaffinity(0, child_cpus),
                )  # fmt: skip
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.startswith("FIGURES "):
                        results[which] = json.loads(line[len("FIGURES ") :])
                    elif not line.lstrip().startswith("20") or "[error" in line:
                        print(line, end="", flush=True)  # the report, not the per-poll log lines
                proc.wait()
        finally:
            stack.stop()
    return results


def real_with_baseline(args: argparse.Namespace) -> None:
    """The real triggerer, then the bare google-genai loop at the same N and polls: one run, side by side.

    The baseline runs after the triggerer has stopped (two cores: run together, each would slow
    the other), on the same machine within minutes, with ``--which bare`` (``--which ""`` skips it).
    """
    from triggerer_real import run_real

    say(
        f"bench/triggerer.py --real: N={args.n:,}, poll every {args.poll_interval:g} s, jobs end {args.hold:g} s after setup"
    )
    real = run_real(args.n, args.poll_interval, args.hold)
    real.report()
    if "bare" not in sides_of(args):
        return
    say(f"\n== baseline: a bare google-genai async batches.get loop, N={args.n:,}, same polls")
    bare = run_sides(args, ["bare"]).get("bare")
    if bare is None:
        say("  the baseline did not report")
        return
    floor = bare["cpu_s_per_1000_polls"]
    runner, tree = real.per_1000_polls(real.runner_cpu_s), real.per_1000_polls(real.cpu_s)
    say(f"\n== side by side at N={args.n:,}: CPU s per 1,000 polls")
    say(f"  bare google-genai loop      {floor:7.3f}")
    say(f"  real triggerer: runner      {runner:7.3f}  ({runner / floor:.2f}x the bare loop; {TARGET})")
    say(
        f"  real triggerer: whole tree  {tree:7.3f}  ({tree / floor:.2f}x; the supervisor and its DB work included)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="concurrent waits (up to 10,000)")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="seconds between polls")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds each job stays PENDING")
    parser.add_argument("--which", default="bare,ours,google", help="bare, ours, google (comma-separated)")
    parser.add_argument(
        "--real",
        action="store_true",
        help="a real airflow triggerer on a Postgres metadata DB (bench/triggerer_real.py)",
    )
    parser.add_argument("--child", choices=["ours", "bare", "google"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args)
    if args.real:
        real_with_baseline(args)
        return 0

    say(f"bench/triggerer.py: N={args.n:,}, poll every {args.poll_interval:g} s, jobs held {args.hold:g} s")
    results = run_sides(args, sides_of(args))
    sides = [side for side in ("bare", "ours", "google") if side in results]
    if len(sides) >= 2:
        say(f"\n== side by side at N={args.n:,}: {' | '.join(sides)}")
        for key in results[sides[0]]:
            say(f"  {key:26s} " + " | ".join(f"{results[side][key]:12.3f}" for side in sides))
    if "bare" in results and "ours" in results:
        ratio = results["ours"]["cpu_s_per_1000_polls"] / results["bare"]["cpu_s_per_1000_polls"]
        say(f"  ours / bare CPU per poll: {ratio:.2f}x ({TARGET})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
