"""Fakes at the client boundary: a google-genai ``Client`` look-alike and Airflow context bits.

``FakeService`` holds jobs as real ``google.genai.types.BatchJob`` objects; each job walks a
scripted list of states, one step per ``get``. Faults are queued per method
(``service.fail("get", error, times=2)``). Every call is recorded in ``service.calls``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from google.genai import errors, pagers, types

SUCCEEDED = "JOB_STATE_SUCCEEDED"
RUNNING = "JOB_STATE_RUNNING"
PENDING = "JOB_STATE_PENDING"


def api_error(code: int, message: str = "boom") -> errors.APIError:
    """A google-genai API error as the SDK raises it."""
    status = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 404: "NOT_FOUND", 400: "INVALID_ARGUMENT"}
    cls = errors.ClientError if code < 500 else errors.ServerError
    return cls(code, {"error": {"code": code, "message": message, "status": status.get(code, "UNKNOWN")}})


@dataclass
class FakeJob:
    job: types.BatchJob
    script: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] | None = None


class FakeService:
    """In-memory jobs of one backend; ``client()`` returns a google-genai Client look-alike."""

    def __init__(
        self, backend: str = "vertex", project: str = "local-project", location: str = "us-central1"
    ):
        self.backend = backend
        self.project = project
        self.location = location
        self.jobs: dict[str, FakeJob] = {}
        self.calls: list[tuple[str, Any]] = []
        self.faults: dict[str, list[BaseException]] = defaultdict(list)
        self.default_script: list[dict[str, Any]] = [{"state": RUNNING}, {"state": SUCCEEDED}]
        self.page_size_seen: list[int | None] = []
        self._ids = itertools.count(1000)
        self._clock = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        self.create_lands_then_fails: int = 0

    # --------------------------------------------------------------- scripting

    def fail(self, method: str, error: BaseException, times: int = 1) -> None:
        self.faults[method].extend([error] * times)

    def _maybe_fail(self, method: str) -> None:
        if self.faults[method]:
            raise self.faults[method].pop(0)

    def _new_name(self) -> str:
        number = next(self._ids)
        if self.backend == "vertex":
            return f"projects/{self.project}/locations/{self.location}/batchPredictionJobs/{number}"
        return f"batches/b{number}"

    def add_job(
        self,
        *,
        display_name: str = "x",
        state: str = PENDING,
        script: list[dict] | None = None,
        labels: dict[str, str] | None = None,
        **fields: Any,
    ) -> str:
        """Put a job into the service directly (a job created 'elsewhere')."""
        self._clock += dt.timedelta(minutes=1)
        name = self._new_name()
        job = types.BatchJob(
            name=name, display_name=display_name, state=state, create_time=self._clock, **fields
        )
        self.jobs[name] = FakeJob(job, list(script if script is not None else self.default_script))
        self.jobs[name].labels = labels
        return name

    def _advance(self, fake: FakeJob) -> None:
        if fake.script:
            step = fake.script.pop(0)
            data = fake.job.model_dump()
            data.update(step)
            fake.job = types.BatchJob.model_validate(data)

    def _lookup(self, name: str) -> FakeJob:
        for key, fake in self.jobs.items():
            if key == name or key.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]:
                return fake
        raise api_error(404, f"job {name} not found")

    # --------------------------------------------------------------- operations

    def create(self, *, model: str, src: Any, config: dict[str, Any] | None = None) -> types.BatchJob:
        self.calls.append(("create", {"model": model, "src": src, "config": config}))
        self._maybe_fail("create")
        config = dict(config or {})
        name = self.add_job(display_name=config.get("display_name") or "genai_batch_job", state=PENDING)
        fake = self.jobs[name]
        fake.job = fake.job.model_copy(update={"model": model})
        fake.labels = ((config.get("http_options") or {}).get("extra_body") or {}).get("labels")
        if self.create_lands_then_fails:
            self.create_lands_then_fails -= 1
            raise api_error(503, "response lost after the job was created")
        return fake.job

    def create_embeddings(
        self, *, model: str, src: Any, config: dict[str, Any] | None = None
    ) -> types.BatchJob:
        """As :meth:`create`, recorded as ``create_embeddings`` (the Gemini API's embeddings create)."""
        job = self.create(model=model, src=src, config=config)
        self.calls[-1] = ("create_embeddings", self.calls[-1][1])
        return job

    def get(self, *, name: str) -> types.BatchJob:
        self.calls.append(("get", name))
        self._maybe_fail("get")
        fake = self._lookup(name)
        self._advance(fake)
        return fake.job

    def list_page(self, *, config: dict[str, Any] | None = None) -> SimpleNamespace:
        """One page of a list call, as the SDK's ``_list`` returns it (``batch_jobs``, ``next_page_token``)."""
        config = dict(config or {})
        self.calls.append(("list", config))
        self._maybe_fail("list")
        self.page_size_seen.append(config.get("page_size"))
        jobs = [f.job for f in self.jobs.values()]
        if config.get("filter"):
            jobs = [f.job for f in self.jobs.values() if _matches(config["filter"], f)]
        size = int(config.get("page_size") or 50)
        start = int(config.get("page_token") or 0)
        end = start + size
        token = str(end) if end < len(jobs) else None
        return SimpleNamespace(batch_jobs=jobs[start:end], next_page_token=token, sdk_http_response=None)

    def list(self, *, config: dict[str, Any] | None = None) -> pagers.Pager:
        return pagers.Pager(
            "batch_jobs", lambda config: self.list_page(config=config), self.list_page(config=config), config
        )

    async def alist(self, *, config: dict[str, Any] | None = None) -> pagers.AsyncPager:
        async def request(config: dict[str, Any]) -> SimpleNamespace:
            return self.list_page(config=config)

        return pagers.AsyncPager("batch_jobs", request, self.list_page(config=config), config)

    def cancel(self, *, name: str) -> None:
        self.calls.append(("cancel", name))
        self._maybe_fail("cancel")
        fake = self._lookup(name)
        fake.script = [{"state": "JOB_STATE_CANCELLED"}]
        fake.job = fake.job.model_copy(update={"state": types.JobState.JOB_STATE_CANCELLING})

    def delete(self, *, name: str) -> None:
        self.calls.append(("delete", name))
        self._maybe_fail("delete")
        fake = self._lookup(name)
        del self.jobs[fake.job.name]

    def client(self) -> FakeClient:
        return FakeClient(self)

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)


class _SyncBatches:
    def __init__(self, service: FakeService):
        self._s = service

    def create(self, **kw: Any) -> types.BatchJob:
        return self._s.create(**kw)

    def create_embeddings(self, **kw: Any) -> types.BatchJob:
        return self._s.create_embeddings(**kw)

    def get(self, **kw: Any) -> types.BatchJob:
        return self._s.get(**kw)

    def list(self, **kw: Any) -> pagers.Pager:
        return self._s.list(**kw)

    def cancel(self, **kw: Any) -> None:
        return self._s.cancel(**kw)

    def delete(self, **kw: Any) -> None:
        return self._s.delete(**kw)


class _AsyncBatches:
    def __init__(self, service: FakeService):
        self._s = service

    async def create(self, **kw: Any) -> types.BatchJob:
        return self._s.create(**kw)

    async def create_embeddings(self, **kw: Any) -> types.BatchJob:
        return self._s.create_embeddings(**kw)

    async def get(self, **kw: Any) -> types.BatchJob:
        return self._s.get(**kw)

    async def list(self, **kw: Any) -> pagers.AsyncPager:
        return await self._s.alist(**kw)

    async def cancel(self, **kw: Any) -> None:
        return self._s.cancel(**kw)

    async def delete(self, **kw: Any) -> None:
        return self._s.delete(**kw)


class _Aio:
    def __init__(self, service: FakeService):
        self.batches = _AsyncBatches(service)


class FakeClient:
    """Stands in for ``google.genai.Client``: ``.batches`` and ``.aio.batches``."""

    def __init__(self, service: FakeService):
        self.batches = _SyncBatches(service)
        self.aio = _Aio(service)


class FakeTaskStateStore:
    """``context['task_state_store']``: a dict that survives tries, like Airflow 3.3's store."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.fail_on_set: int = 0
        self.sets: list[tuple[str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        if self.fail_on_set:
            self.fail_on_set -= 1
            raise RuntimeError("worker died between submit and record")
        self.sets.append((key, value))
        self.data[key] = value


class FakeTI:
    def __init__(
        self,
        dag_id="dag",
        task_id="task",
        run_id="manual__2026-01-01",
        map_index=-1,
        try_number=1,
        max_tries=None,
    ):
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.map_index = map_index
        self.try_number = try_number
        self.max_tries = max_tries  # None: unknown (the operator then treats the try as a first try)
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def make_context(ti: FakeTI | None = None, store: FakeTaskStateStore | None = None) -> dict[str, Any]:
    return {"ti": ti or FakeTI(), "task_state_store": store if store is not None else FakeTaskStateStore()}


def script_gets(service: FakeService, steps: list[Any]) -> None:
    """Each following ``get`` takes the next step: an exception is raised, a state is the job's next state."""
    original = service.get
    queue = list(steps)

    def get(*, name: str) -> types.BatchJob:
        step = queue.pop(0)
        if isinstance(step, BaseException):
            service.calls.append(("get", name))
            raise step
        service._lookup(name).script = [step if isinstance(step, dict) else {"state": step}]
        return original(name=name)

    service.get = get  # type: ignore[method-assign]


@dataclass
class FakeReads:
    """The pre-flight reads (preflight.Reads), answered from sets; every read is recorded.

    By default every table exists but those in ``missing_tables`` and the operator's default dest
    tables (``*_predictions_*``), every object and file exists and every model is found; the unit
    tests' ``bq://p...`` sources are in another project than the fake service's, so cross-project
    URIs pass unless ``allow_cross_project`` is False (then the operator's argument decides).
    """

    allow_cross_project: bool = True
    missing_tables: set[str] = field(default_factory=set)
    existing_tables: set[str] = field(default_factory=set)
    missing_objects: set[str] = field(default_factory=set)
    file_problems: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    reads: list[tuple[str, str]] = field(default_factory=list)

    def table_exists(self, table: Any) -> bool:
        self.reads.append(("table", str(table)))
        if str(table) in self.existing_tables:
            return True
        return str(table) not in self.missing_tables and not str(table).split(".")[-1].count("_predictions_")

    def gcs_matches(self, uri: str) -> bool:
        self.reads.append(("gcs", uri))
        return uri not in self.missing_objects

    def file_problem(self, name: str) -> str | None:
        self.reads.append(("file", name))
        return self.file_problems.get(name)

    def model(self, model: str) -> str:
        self.reads.append(("model", model))
        return self.models.get(model, "found")


def _matches(text: str, fake: Any) -> bool:
    """The few list-filter clauses the product sends, ANDed (the local stack's emulator implements
    the whole AIP-160 subset; this fake only needs ``labels.K="V"``, ``labels.K:*``, ``state!=S``)."""
    labels = fake.labels or {}
    for clause in text.split(" AND "):
        if clause.startswith("labels.") and clause.endswith(":*"):
            ok = clause[len("labels.") : -2] in labels
        elif clause.startswith("labels."):
            key, value = clause[len("labels.") :].split("=", 1)
            ok = labels.get(key) == value.strip('"')
        elif clause.startswith("state!="):
            ok = str(fake.job.state.value if fake.job.state else None) != clause[len("state!=") :]
        else:
            raise AssertionError(f"the fake cannot read the filter clause {clause!r}")
        if not ok:
            return False
    return True
