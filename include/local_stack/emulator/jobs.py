"""The job record and its three views: Vertex ``BatchPredictionJob``, Gemini API batch
operation, admin summary.

Invariants: a job changes only through :meth:`Job.move_to` (checked against
:mod:`.states`) and :meth:`Job.touch`; both bump ``version``, which keys the cache of encoded
views, so a poll never re-encodes an unchanged job. The persisted record is
:meth:`Job.to_record`, the inverse :meth:`Job.from_record`.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from . import states
from .faults import JobFaults
from .jsonutil import dumps

Backend = Literal["vertex", "gemini_api"]
#: What a job's rows ask for: content generation or embeddings (each has its own model,
#: input and output shapes; see :mod:`.runner` and :mod:`.embedding`).
Task = Literal["generate", "embed"]

GEMINI_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
GEMINI_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
GEMINI_EMBED_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch"
GEMINI_EMBED_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput"
#: The operation's ``metadata`` and ``response`` ``@type`` of each task.
GEMINI_TYPES: dict[str, tuple[str, str]] = {
    "generate": (GEMINI_BATCH_TYPE, GEMINI_OUTPUT_TYPE),
    "embed": (GEMINI_EMBED_BATCH_TYPE, GEMINI_EMBED_OUTPUT_TYPE),
}


def rfc3339(ts: float | None) -> str | None:
    """``2025-01-31T12:34:56.789012Z`` (UTC, microseconds), as Google APIs write timestamps."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 timestamp (``Z`` or an offset)."""
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


@dataclass
class Job:
    """One batch job of either backend.

    :param id: Required. Numeric for Vertex (the SDK requires it), base-36 for the Gemini API.
    :param backend: Required. ``vertex`` or ``gemini_api``.
    :param name: Required. Full resource name (``projects/.../batchPredictionJobs/<id>`` or
        ``batches/<id>``).
    :param model: Required. The model resource as sent (``publishers/google/models/<id>`` or
        ``models/<id>``).
    :param model_id: Required. The bare model id.
    :param display_name: Required. The display name ("" when the Gemini API got none).
    :param create_time: Required. Seconds since the epoch.
    :param faults: Required. The job-level fault snapshot.
    :param source: Required. ``{"kind": "gcs", "uris"}``, ``{"kind": "bigquery", "uri"}``,
        ``{"kind": "file", "name"}`` or ``{"kind": "inline", "count"}``.
    :param destination: Required. ``{"kind": "gcs", "prefix"}``, ``{"kind": "bigquery",
        "uri"}``, ``{"kind": "file"}`` or ``{"kind": "inline"}``.
    """

    id: str
    backend: Backend
    name: str
    model: str
    model_id: str
    display_name: str
    create_time: float
    faults: JobFaults
    source: dict[str, Any]
    destination: dict[str, Any]
    task: Task = "generate"
    model_parameters: dict[str, Any] | None = None
    input_config: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    project: str | None = None
    location: str | None = None
    state: str = states.PENDING
    error: dict[str, Any] | None = None
    start_time: float | None = None
    end_time: float | None = None
    update_time: float | None = None
    succeeded: int = 0
    failed: int = 0
    total: int | None = None
    output_info: dict[str, Any] | None = None
    responses_file: str | None = None
    has_inline_output: bool = False
    deleted: bool = False
    history: list[list[Any]] = field(default_factory=list)
    version: int = 0
    _cache: dict[str, tuple[int, bytes]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.update_time is None:
            self.update_time = self.create_time
        if not self.history:
            self.history = [[self.state, self.create_time]]

    # --- changes ------------------------------------------------------------------------

    def touch(self, now: float | None = None) -> None:
        """Record a change (counts, outputs): bump the version and the update time."""
        self.version += 1
        self.update_time = now if now is not None else time.time()

    def move_to(self, new_state: str, now: float | None = None) -> None:
        """Change state (checked), stamping start/end/update times and the history."""
        states.check_transition(self.state, new_state)
        now = now if now is not None else time.time()
        self.state = new_state
        if new_state == states.RUNNING and self.start_time is None:
            self.start_time = now
        if states.is_terminal(new_state):
            self.end_time = now
        self.history.append([new_state, now])
        self.touch(now)

    @property
    def seq(self) -> int:
        """A number that orders jobs by creation (ids come from one increasing counter)."""
        return int(self.id) if self.id.isdigit() else int(self.id[1:], 36)

    @property
    def terminal(self) -> bool:
        """True once the job is in a terminal state."""
        return states.is_terminal(self.state)

    @property
    def incomplete(self) -> int:
        """Rows not (yet) processed."""
        return max(0, (self.total or 0) - self.succeeded - self.failed)

    def counts(self) -> dict[str, int]:
        """The admin counts; they always add up to ``total`` (0 before the input is read)."""
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "incomplete": self.incomplete,
            "total": self.total or 0,
        }

    # --- views --------------------------------------------------------------------------

    def cached(self, view: str, build: Any) -> bytes:
        """The encoded ``view`` of this version, built once by ``build()``."""
        hit = self._cache.get(view)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        data = dumps(build())
        self._cache[view] = (self.version, data)
        return data

    def vertex_view(self) -> dict[str, Any]:
        """The Vertex AI ``BatchPredictionJob`` resource (camelCase, int64 as strings)."""
        view: dict[str, Any] = {
            "name": self.name,
            "displayName": self.display_name,
            "model": self.model,
            "inputConfig": self.input_config,
        }
        if self.model_parameters is not None:
            view["modelParameters"] = self.model_parameters
        if self.output_config is not None:
            view["outputConfig"] = self.output_config
        view["state"] = self.state
        if self.error is not None:
            view["error"] = self.error
        view["createTime"] = rfc3339(self.create_time)
        if self.start_time is not None:
            view["startTime"] = rfc3339(self.start_time)
        if self.end_time is not None:
            view["endTime"] = rfc3339(self.end_time)
        view["updateTime"] = rfc3339(self.update_time)
        if self.labels:
            view["labels"] = self.labels
        if self.total is not None:
            view["completionStats"] = {
                "successfulCount": str(self.succeeded),
                "failedCount": str(self.failed),
                "incompleteCount": str(self.incomplete),
            }
        if self.output_info is not None:
            view["outputInfo"] = self.output_info
        return view

    def batch_stats(self) -> dict[str, str]:
        """The Gemini API ``batchStats`` (int64 as strings), present from creation: before the
        input is read, inline requests are all pending and a file's count is not known yet."""
        if self.total is None:
            count = self.source.get("count")
            return {"requestCount": str(count), "pendingRequestCount": str(count)} if count else {}
        return {
            "requestCount": str(self.total),
            "successfulRequestCount": str(self.succeeded),
            "failedRequestCount": str(self.failed),
            "pendingRequestCount": str(self.incomplete),
        }

    def gemini_view(self, inlined_responses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The Gemini API batch as a long-running operation (``metadata`` holds the batch)."""
        batch_type, output_type = GEMINI_TYPES[self.task]
        batch: dict[str, Any] = {"@type": batch_type, "model": self.model}
        if self.display_name:
            batch["displayName"] = self.display_name
        if self.source.get("kind") == "file":
            batch["inputConfig"] = {"fileName": self.source["name"]}
        output: dict[str, Any] | None = None
        if self.responses_file is not None:
            output = {"responsesFile": self.responses_file}
        elif inlined_responses is not None:
            output = {"inlinedResponses": {"inlinedResponses": inlined_responses}}
        if output is not None:
            batch["output"] = output
        batch["createTime"] = rfc3339(self.create_time)
        if self.end_time is not None:
            batch["endTime"] = rfc3339(self.end_time)
        batch["updateTime"] = rfc3339(self.update_time)
        batch["batchStats"] = self.batch_stats()
        batch["state"] = states.gemini_state(self.state)
        batch["name"] = self.name
        operation: dict[str, Any] = {"name": self.name, "metadata": batch}
        if self.terminal:
            operation["done"] = True
            if self.error is not None:
                operation["error"] = self.error
            else:
                response: dict[str, Any] = {"@type": output_type}
                if output is not None:
                    response.update(output)
                operation["response"] = response
        return operation

    def admin_view(self) -> dict[str, Any]:
        """The admin API's summary (docs/design.md) plus model, error, times and history."""
        return {
            "name": self.name,
            "backend": self.backend,
            "display_name": self.display_name,
            "labels": self.labels,
            "state": self.state,
            "counts": self.counts(),
            "create_time": rfc3339(self.create_time),
            "deleted": self.deleted,
            "model": self.model,
            "task": self.task,
            "error": self.error,
            "start_time": rfc3339(self.start_time),
            "end_time": rfc3339(self.end_time),
            "update_time": rfc3339(self.update_time),
            "source": self.source,
            "destination": self.destination,
            "output_info": self.output_info,
            "responses_file": self.responses_file,
            "history": [{"state": s, "time": rfc3339(t)} for s, t in self.history],
        }

    # --- persistence --------------------------------------------------------------------

    _RECORD_FIELDS = (
        "id", "backend", "name", "model", "model_id", "display_name", "create_time", "source",
        "destination", "task", "model_parameters", "input_config", "output_config", "labels", "project",
        "location", "state",
        "error", "start_time", "end_time", "update_time", "succeeded", "failed", "total",
        "output_info", "responses_file", "has_inline_output", "deleted", "history",
    )  # fmt: skip

    def to_record(self) -> dict[str, Any]:
        """The JSON record kept on disk."""
        record = {name: getattr(self, name) for name in self._RECORD_FIELDS}
        record["faults"] = self.faults.to_dict()
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        """The inverse of :meth:`to_record`."""
        values = {name: record[name] for name in cls._RECORD_FIELDS if name in record}
        return cls(faults=JobFaults.from_dict(record.get("faults") or {}), **values)
