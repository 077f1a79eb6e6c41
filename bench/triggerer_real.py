"""``bench/triggerer.py --real``: a real ``airflow triggerer`` holding N deferred tasks of ours.

What runs, all on 127.0.0.1, in a temp folder, stopped at the end whatever happens:

- the Gemini batch emulator alone (``python -m local_stack.emulator --access-log``), pinned to
  CPU 0; its access log counts the polls;
- PostgreSQL (started as the deployment test starts it: ``tests/deployment/processes.py``) as
  the metadata DB, ``airflow db migrate``;
- one DAG with one task mapped over an upstream output, serialized by ``airflow dags
  reserialize``; one run of it, the mapped task expanded to N instances as the scheduler would
  once its upstream pushed N values, and those put in the state a deferral leaves them in, as the
  execution API does on a worker's defer (a ``Trigger`` row of our classpath and serialized
  kwargs, the task instance ``deferred`` with ``trigger_id`` and ``next_method``);
- ``airflow triggerer`` with ``[triggerer] capacity`` N and a blocked-main-thread warning
  threshold of 0, so it reports every tick of its 100 ms watchdog: the loop lag is what it
  reports minus 100 ms.

It prints the loop lag p50/p99/max (from the triggerer's own warnings, while the triggers
wait), CPU per poll (the triggerer's process tree, over the polls the emulator served in the
same window), peak RSS of the tree, and the terminal-to-event delay (the emulator's job
``end_time`` to the moment the task instance leaves ``deferred`` in the DB, sampled every
0.5 s). The jobs are created first, held PENDING by the emulator (``queue_delay_s``) until
every trigger has been running for a while, then end on their own. No figure is asserted.

It also prints the start-up (from the insert of the N deferred tasks to every trigger having
polled once) and how often the triggerer's supervisor found its trigger runner silent for
``[triggerer] runner_health_check_threshold`` (30 s) and skipped its heartbeat: at N=10,000 the
supervisor's one thread spends seconds in the metadata DB (assigning 50 triggers per loop,
building their workloads, then writing one event per transaction) without reading the runner's
log socket, and the runner's event loop blocks in a trigger's log write until it does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "bench_real_triggerer"
WAIT_TASK_ID = "wait"
RUN_ID = "bench_real_run"
DB_USER = DB_PASSWORD = DB_NAME = "airflow"
#: The watchdog's sleep: a reported "blocked for X seconds" is X - this of lag.
WATCHDOG_TICK_S = 0.1
BLOCKED_LINE = re.compile(r"async thread was blocked for ([0-9.]+) seconds")
POLL_LINE = re.compile(r'"GET /v1beta/(batches/[^ "?]+)')
#: The supervisor's report of a silent trigger runner (it skips its heartbeat then).
RUNNER_SILENT_LINE = re.compile(r"TriggerRunner subprocess event loop appears deadlocked")
HEARTBEAT_GAP_LINE = re.compile(r"Heartbeat recovered after ([0-9.]+) seconds")
#: Triggers per second the start-up budget assumes: 10,000 started at 57/s on this 2-core machine
#: at load 3-5 (2026-12-06), and under 20/s once when it was loaded harder (with a DAG holding its
#: 10,000 map values); the jobs are held PENDING for the budget, so a budget too short ends the
#: run with no figure.
STARTUP_TRIGGERS_PER_S = 15

DAG_FILE = textwrap.dedent(
    '''
    """One mapped task whose N instances the bench defers by hand (never run by a worker).

    It maps over an upstream task's output, as the pipelines' shards do, not over a literal list:
    the triggerer reads and deserializes the whole DAG once per trigger it starts, and a list of
    10,000 map values in it costs 1.9 ms a time (0.1 ms without).
    """
    from __future__ import annotations

    import datetime as dt

    from airflow.sdk import DAG, BaseOperator, task


    class BenchWait(BaseOperator):
        def __init__(self, *, n: int, **kwargs):
            super().__init__(**kwargs)
            self.n = n

        def execute(self, context):
            raise RuntimeError("never executed: the bench defers its instances directly")


    with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):

        @task
        def shards() -> list[int]:
            raise RuntimeError("never executed: the bench expands the mapped task itself")

        BenchWait.partial(task_id="{wait_task_id}").expand(n=shards())
    '''
)


def say(text: str) -> None:
    print(text, flush=True)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Figures:
    """What one real run measured."""

    n: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    ticks: int
    cpu_s: float
    runner_cpu_s: float
    polls: int
    peak_rss_mb: float
    delay_p50_s: float
    delay_p99_s: float
    delay_max_s: float
    events: int
    not_deferred_ok: int
    #: CPU seconds the same tree spends idle (no trigger) over a window as long as the measured one.
    idle_cpu_s: float
    #: Seconds from the insert of the deferred tasks to every trigger having polled once.
    startup_s: float
    #: Times the supervisor found the runner silent for 30 s (and skipped its heartbeat), whole run.
    runner_silences: int
    #: The longest gap between two heartbeats of the triggerer job (s), whole run; 0 if none logged.
    longest_heartbeat_gap_s: float

    def per_1000_polls(self, cpu_s: float) -> float:
        """CPU seconds per 1,000 polls of the waiting window, for ``cpu_s`` spent in it."""
        return 1000 * cpu_s / self.polls if self.polls else float("nan")

    def report(self) -> None:
        per, runner_per = self.per_1000_polls(self.cpu_s), self.per_1000_polls(self.runner_cpu_s)
        say(f"\n== real airflow triggerer (Postgres metadata DB): N={self.n:,}")
        say(
            f"  start-up           every trigger polled once {self.startup_s:6.0f} s after the insert"
            f" ({self.n / self.startup_s:.0f} triggers/s)"
        )
        say(
            f"  runner silent 30 s {self.runner_silences:,} times (supervisor skipped its heartbeat);"
            f" longest heartbeat gap {self.longest_heartbeat_gap_s:.1f} s"
        )
        say(
            f"  loop lag (triggerer's blocked-thread reports)  p50 {self.lag_p50_ms:7.1f} ms"
            f"   p99 {self.lag_p99_ms:7.1f} ms   max {self.lag_max_ms:7.1f} ms   ({self.ticks:,} ticks)"
        )
        say(
            f"  CPU while waiting  {self.cpu_s:7.2f} s (process tree), {self.runner_cpu_s:7.2f} s (trigger runner)"
            f" for {self.polls:,} polls = {per:.3f} / {runner_per:.3f} CPU s per 1,000 polls"
        )
        above = self.per_1000_polls(self.cpu_s - self.idle_cpu_s)
        say(
            f"  above the idle triggerer's {self.idle_cpu_s:.2f} s: {above:.3f} CPU s per 1,000 polls"
            " (the watchdog logging every tick is part of idle)"
        )
        say(f"  peak RSS (tree)    {self.peak_rss_mb:7.0f} MB")
        say(
            f"  terminal->event    p50 {self.delay_p50_s:6.2f} s   p99 {self.delay_p99_s:6.2f} s"
            f"   max {self.delay_max_s:6.2f} s   ({self.events:,} task instances left deferred)"
        )
        say(f"  task instances scheduled with a success event: {self.not_deferred_ok:,} of {self.n:,}")


def airflow_env(home: Path, db_port: int, emulator_url: str, n: int) -> dict[str, str]:
    """The environment of every Airflow command of the run (no secret on a command line)."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"postgresql+psycopg2://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{db_port}/{DB_NAME}"
            ),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__TRIGGERER__CAPACITY": str(max(n, 1000)),
            "AIRFLOW__TRIGGERER__BLOCKED_MAIN_THREAD_WARNING_THRESHOLD": "0",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_CONN_GEMINI_API_DEFAULT": json.dumps(
                {
                    "conn_type": "gemini_api",
                    "password": "local-gemini-api-key",
                    "extra": {"genai_base_url": emulator_url},
                }
            ),
            "NO_GCE_CHECK": "True",
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO / "include")]),
        }
    )
    return env


def free_port() -> int:
    from tests.deployment.processes import free_port as pick

    return pick()


def airflow(procs: Any, name: str, env: dict[str, str], *args: str, timeout: float = 900) -> None:
    procs.run(name, [str(Path(sys.executable).parent / "airflow"), *args], env, timeout=timeout)


def start_emulator(procs: Any, state: Path) -> tuple[str, Path]:
    """The Gemini emulator on a free port, every request logged (the poll count); (url, log)."""
    from tests.deployment.processes import wait_for

    port = free_port()
    env = {
        **os.environ,
        "GEMINI_EMULATOR_API_KEY": "local-gemini-api-key",
        "PYTHONPATH": str(REPO / "include"),
    }
    started = procs.start(
        "gemini-emulator",
        [sys.executable, "-m", "local_stack.emulator", "--host", "127.0.0.1", "--port", str(port),
         "--state-dir", str(state / "gemini"), "--access-log", "--log-level", "INFO"],
        env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    from local_stack.admin import AdminClient

    admin = AdminClient(f"{url}/admin")

    def healthy() -> bool:
        try:
            return bool(admin.health())
        except Exception:
            if not started.alive():
                raise RuntimeError("emulator exited:\n" + started.tail()) from None
            return False

    wait_for(healthy, timeout=60, what="the Gemini emulator", interval=0.3)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        os.sched_setaffinity(started.popen.pid, {cpus[0]})
    return url, started.log


async def create_jobs(emulator_url: str, count: int, concurrency: int = 64) -> list[str]:
    from google import genai
    from google.genai import types

    client = genai.Client(
        vertexai=False, api_key="local-gemini-api-key", http_options=types.HttpOptions(base_url=emulator_url)
    )
    request = {"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}]}
    names: list[str] = []
    indexes = iter(range(count))

    async def worker() -> None:
        for i in indexes:
            job = await client.aio.batches.create(
                model="gemini-2.5-flash", src=[request], config={"display_name": f"bench-real-{i}"}
            )
            names.append(job.name)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return names


def defer_task_instances(env: dict[str, str], names: list[str], poll: float) -> None:
    """In a child process (Airflow configured from ``env``): the run and its N deferred instances."""
    script = textwrap.dedent(
        """
        import json, sys
        from airflow.models.dagrun import DagRun
        from airflow.models.serialized_dag import SerializedDagModel
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import Trigger
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState, TaskInstanceState
        from airflow.utils.types import DagRunTriggeredByType, DagRunType
        from airflow._shared.timezones import timezone
        from sqlalchemy import select, update

        names = json.loads(sys.stdin.read())
        dag_id, run_id, wait_task_id, poll = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
        with create_session() as session:
            dag = SerializedDagModel.get_dag(dag_id, session=session)
            now = timezone.utcnow()
            dag.create_dagrun(run_id=run_id, logical_date=now, data_interval=(now, now), run_after=now,
                              run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST,
                              state=DagRunState.RUNNING, session=session)
            session.flush()
            # The mapped task's one unexpanded instance becomes N, as the scheduler expands it
            # once its upstream has pushed N values.
            unexpanded = session.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id,
                TaskInstance.task_id == wait_task_id)).one()
            wait, version = dag.get_task(wait_task_id), unexpanded.dag_version_id
            session.delete(unexpanded)
            session.flush()
            tis = [TaskInstance(task=wait, dag_version_id=version, run_id=run_id, map_index=i)
                   for i in range(len(names))]
            session.add_all(tis)
            session.flush()
            from gemini_batch.triggers import GeminiBatchJobTrigger
            triggers = []
            for name in names:
                classpath, kwargs = GeminiBatchJobTrigger(job_name=name, backend="gemini_api",
                                                          poll_interval=poll).serialize()
                triggers.append(Trigger(classpath=classpath, kwargs=kwargs))
            session.add_all(triggers)
            session.flush()
            # One bulk UPDATE by primary key (executemany), as many rows as a scheduler's deferrals.
            session.execute(update(TaskInstance), [
                {"id": ti.id, "state": TaskInstanceState.DEFERRED, "trigger_id": trigger.id,
                 "next_method": "execute_complete", "try_number": 1}
                for ti, trigger in zip(tis, triggers)
            ])
        print(f"deferred {len(names)} task instances", flush=True)
        """
    )
    subprocess.run(
        [sys.executable, "-c", script, DAG_ID, RUN_ID, WAIT_TASK_ID, str(poll)],
        input=json.dumps(names), text=True, env=env, check=True, timeout=1800,
    )  # fmt: skip


def idle_cpu(triggerer: Any, warmup_s: float = 15.0, window_s: float = 20.0) -> float:
    """CPU seconds per second of the triggerer's tree with no trigger (heartbeats, watchdog, logging)."""
    time.sleep(warmup_s)
    if not triggerer.alive():
        raise RuntimeError("triggerer exited:\n" + triggerer.tail())
    before, began = cpu_of(tree(triggerer.popen.pid)), time.time()
    time.sleep(window_s)
    spent, _ = cpu_spent(before, cpu_of(tree(triggerer.popen.pid)))
    return spent / (time.time() - began)


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_of(procs: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user + system) of each live process, by pid."""
    seconds: dict[int, float] = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[proc.pid] = times.user + times.system
    return seconds


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, float]:
    """(CPU seconds the tree spent between two samples, those of its busiest process: the trigger runner)."""
    spent = {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}
    return sum(spent.values()), max(spent.values(), default=0.0)


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


class AccessLog:
    """The emulator's access log, read on from where the last read stopped: polls and jobs polled.

    Re-reading the whole log every few seconds would cost the shared CPUs more as it grows
    (10,000 triggers at 30 s polls write 330 lines a second).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.polls = 0
        self.jobs_polled: set[str] = set()

    def read(self) -> AccessLog:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
        self.offset += len(complete)
        for found in POLL_LINE.finditer(complete.decode(errors="replace")):
            self.polls += 1
            self.jobs_polled.add(found.group(1))
        return self


def runner_silences(log: Path) -> tuple[int, float]:
    """(times the supervisor reported its runner silent, longest heartbeat gap in s) in the triggerer log."""
    text = log.read_text(errors="replace")
    gaps = [float(m.group(1)) for m in HEARTBEAT_GAP_LINE.finditer(text)]
    return len(RUNNER_SILENT_LINE.findall(text)), max(gaps, default=0.0)


def lags_ms(log: Path, start_offset: int, end_offset: int) -> list[float]:
    with log.open("rb") as handle:
        handle.seek(start_offset)
        text = handle.read(max(0, end_offset - start_offset)).decode(errors="replace")
    return [max(0.0, (float(m.group(1)) - WATCHDOG_TICK_S) * 1000) for m in BLOCKED_LINE.finditer(text)]


def deferred_states(db_port: int) -> dict[int, tuple[str, Any]]:
    """map_index -> (state, next_kwargs) of the run's deferred task's instances (not its upstream)."""
    import psycopg2

    with psycopg2.connect(
        host="127.0.0.1", port=db_port, user=DB_USER, password=DB_PASSWORD, dbname=DB_NAME
    ) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT map_index, state, next_kwargs::text FROM task_instance"
                " WHERE dag_id = %s AND run_id = %s AND task_id = %s",
                (DAG_ID, RUN_ID, WAIT_TASK_ID),
            )
            return {row[0]: (row[1], row[2]) for row in cur.fetchall()}


def run_real(n: int, poll: float, hold: float) -> Figures:
    """Set up, run and measure one real triggerer holding ``n`` of our deferred tasks."""
    sys.path.insert(0, str(REPO))
    from local_stack.admin import AdminClient
    from tests.deployment.processes import Processes, start_postgres, wait_for

    root = Path(tempfile.mkdtemp(prefix="bench-real-triggerer-"))
    procs = Processes(log_dir=root)
    procs.folders.append(root)
    try:
        emulator_url, emulator_log = start_emulator(procs, root)
        admin = AdminClient(f"{emulator_url}/admin")
        db = start_postgres(
            procs, user=DB_USER, password=DB_PASSWORD, database=DB_NAME, base_env=dict(os.environ)
        )
        say(f"  postgres on 127.0.0.1:{db.port}, emulator at {emulator_url}, state in {root}")
        home = root / "airflow"
        (home / "dags").mkdir(parents=True)
        (home / "dags" / f"{DAG_ID}.py").write_text(DAG_FILE.format(dag_id=DAG_ID, wait_task_id=WAIT_TASK_ID))
        env = airflow_env(home, db.port, emulator_url, n)
        began = time.time()
        airflow(procs, "db-migrate", env, "db", "migrate")
        airflow(procs, "reserialize", env, "dags", "reserialize")
        say(f"  airflow db migrate + dags reserialize: {time.time() - began:.0f} s")
        triggerer = procs.start("triggerer", [str(Path(sys.executable).parent / "airflow"), "triggerer"], env)
        idle_cpu_per_s = idle_cpu(triggerer)
        say(f"  idle triggerer (no trigger): {idle_cpu_per_s:.3f} CPU s per second")
        # Held until every trigger has started and polled a few times, then each ends on its own.
        setup_s = 60 + n / STARTUP_TRIGGERS_PER_S
        admin.set_faults(queue_delay_s=setup_s + hold)
        began = time.time()
        names = asyncio.run(create_jobs(emulator_url, n))
        say(f"  created {n:,} jobs in {time.time() - began:.0f} s (held PENDING {setup_s + hold:.0f} s)")
        began = time.time()
        defer_task_instances(env, names, poll)
        inserted = time.time()
        say(f"  inserted {n:,} triggers and deferred task instances in {inserted - began:.0f} s")
        log = triggerer.log
        index_of = {name: i for i, name in enumerate(names)}
        access = AccessLog(emulator_log)

        def all_polled() -> bool:
            if not triggerer.alive():
                raise RuntimeError("triggerer exited:\n" + triggerer.tail())
            polled = len(access.read().jobs_polled)
            say(f"    triggers polling: {polled:,} of {n:,} after {time.time() - inserted:.0f} s")
            return polled >= n

        wait_for(all_polled, timeout=setup_s + hold / 2, what="every trigger to poll once", interval=5)
        startup_s = time.time() - inserted
        # The window: every trigger running, no job terminal yet.
        start_cpu, window_start = cpu_of(tree(triggerer.popen.pid)), time.time()
        start_polls, start_log = access.read().polls, log.stat().st_size
        peak = rss_mb(tree(triggerer.popen.pid))
        first_end = min(parse_time(job.get("create_time")) or 0 for job in admin.jobs()) + setup_s + hold
        while time.time() < first_end - 1:
            time.sleep(1)
            peak = max(peak, rss_mb(tree(triggerer.popen.pid)))
        cpu_s, runner_cpu_s = cpu_spent(start_cpu, cpu_of(tree(triggerer.popen.pid)))
        window_s = time.time() - window_start
        end_polls, end_log = access.read().polls, log.stat().st_size
        say(f"  waiting window: {end_polls - start_polls:,} polls; now the jobs end")
        # Terminal -> event: when each task instance leaves deferred.
        left: dict[int, float] = {}
        deadline = time.time() + hold + 120 + n / 20
        while len(left) < n and time.time() < deadline:
            now = time.time()
            for index, (state, _) in deferred_states(db.port).items():
                if state != "deferred" and index not in left:
                    left[index] = now
            peak = max(peak, rss_mb(tree(triggerer.popen.pid)))
            time.sleep(0.5)
        ends = {
            index_of[job["name"]]: parse_time(job.get("end_time"))
            for job in admin.jobs()
            if job["name"] in index_of
        }
        delays = [max(0.0, at - ends[i]) for i, at in left.items() if ends.get(i)]
        states = deferred_states(db.port)
        ok = sum(
            1
            for state, kwargs in states.values()
            if state == "scheduled" and kwargs and "succeeded" in kwargs
        )
        lags = lags_ms(log, start_log, end_log)
        silences, longest_gap = runner_silences(log)
        return Figures(
            n=n,
            lag_p50_ms=percentile(lags, 50),
            lag_p99_ms=percentile(lags, 99),
            lag_max_ms=max(lags, default=float("nan")),
            ticks=len(lags),
            cpu_s=cpu_s,
            runner_cpu_s=runner_cpu_s,
            polls=end_polls - start_polls,
            peak_rss_mb=peak,
            delay_p50_s=percentile(delays, 50),
            delay_p99_s=percentile(delays, 99),
            delay_max_s=max(delays, default=float("nan")),
            events=len(left),
            not_deferred_ok=ok,
            idle_cpu_s=idle_cpu_per_s * window_s,
            startup_s=startup_s,
            runner_silences=silences,
            longest_heartbeat_gap_s=longest_gap,
        )
    except Exception:
        for name in ("triggerer", "gemini-emulator"):
            if name in procs.started:
                say(f"--- {name} log tail:\n{procs.started[name].tail(30)}")
        raise
    finally:
        procs.stop_all()
