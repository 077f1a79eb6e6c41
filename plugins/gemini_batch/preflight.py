"""Pre-flight: what must hold before a batch job is created, so that a typo never costs a job.

Invariants:
- Runs before every new submission and only then (never before a re-attach or a return: a job
  of this work may have written the dest table already). Nothing here creates or changes anything.
- The decisions are pure (:func:`cross_project_problems`, :func:`bigquery_table_of`,
  :func:`model_verdict`, :func:`problems`) over the answers of a :class:`Reads` object; the only
  module that talks to BigQuery, GCS and the genai client for the checks is :class:`CloudReads`.
- Every problem is reported at once, each naming what to change, as one
  :class:`~gemini_batch.exceptions.GeminiBatchPreflightError` (an ``AirflowFailException``: no retry).
- The source exists (a BigQuery table, every gs:// object, at least one object per wildcard, an
  ACTIVE Gemini API file); a ``bq://PROJECT.DATASET.TABLE`` dest does not exist (Vertex AI
  requires a new table; ``bq://PROJECT`` and ``bq://PROJECT.DATASET`` let it name one); the model
  exists (one lookup per model per process); BigQuery sources and dests in another project than
  the job's are refused unless ``allow_cross_project``.
- An unknown model fails only when the models endpoint knows a well-known model: an endpoint that
  answers 404 for every model (an endpoint or proxy without a models API) is skipped with a log
  line. The local stack serves ``models.get`` on both backends, as the real services do.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gemini_batch.api_errors import error_kind, http_status
from gemini_batch.exceptions import GeminiBatchPreflightError

if TYPE_CHECKING:
    from gemini_batch.create_plan import CreatePlan

#: The answer of a models lookup: the model exists, it is not found, or the lookup says nothing.
ModelAnswer = Literal["found", "not_found", "unknown"]
ModelVerdict = Literal["ok", "missing", "skip"]
#: Models every models endpoint of the real services serves; probed when the user's model is not
#: found, to tell an unknown model from an endpoint without a models API.
WELL_KNOWN_MODELS = ("gemini-2.5-flash", "gemini-2.0-flash-001")


@dataclass(frozen=True)
class TableId:
    """A BigQuery table ``project.dataset.table``."""

    project: str
    dataset: str
    table: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


def bigquery_table_of(uri: str | None) -> TableId | None:
    """The table a ``bq://PROJECT.DATASET.TABLE`` URI names; None for any other URI (or fewer parts)."""
    if not uri or not uri.startswith("bq://"):
        return None
    parts = uri[len("bq://") :].split(".")
    if len(parts) != 3 or not all(parts):
        return None
    return TableId(*parts)


def bigquery_project_of(uri: str | None) -> str | None:
    """The project of a ``bq://PROJECT[.DATASET[.TABLE]]`` URI, else None."""
    if not uri or not uri.startswith("bq://"):
        return None
    return uri[len("bq://") :].split(".", 1)[0] or None


def cross_project_problems(
    source_uris: Sequence[str], dest: str | None, project: str | None, *, allow_cross_project: bool
) -> list[str]:
    """BigQuery sources and dests outside the job's project, unless the user opted in."""
    if allow_cross_project or not project:
        return []
    found = []
    for what, uri in [*(("source", u) for u in source_uris), ("dest", dest)]:
        other = bigquery_project_of(uri)
        if other and other != project:
            found.append(
                f"The {what} {uri} is in project {other!r}, not in the job's project {project!r}. Use a table "
                f"of {project!r}, run the job in {other!r} (project_id=), or pass allow_cross_project=True "
                "if the job's service account may read and write there."
            )
    return found


def model_verdict(answer: ModelAnswer, well_known: Sequence[ModelAnswer]) -> ModelVerdict:
    """Whether an unknown model fails the task: only when the endpoint knows a well-known model."""
    if answer != "not_found":
        return "ok" if answer == "found" else "skip"
    return "missing" if "found" in well_known else "skip"


class Reads(Protocol):
    """What the checks read; :class:`CloudReads` in production, small fakes in tests."""

    def table_exists(self, table: TableId) -> bool: ...

    def gcs_matches(self, uri: str) -> bool: ...

    def file_problem(self, name: str) -> str | None: ...

    def model(self, model: str) -> ModelAnswer: ...


def problems(
    plan: CreatePlan,
    dest: str | None,
    reads: Reads,
    *,
    project: str | None,
    allow_cross_project: bool,
    log: Any = None,
) -> list[str]:
    """Every pre-flight problem of a new submission of ``plan`` writing to ``dest``, in order."""
    source = plan.source
    found = cross_project_problems(source.uris, dest, project, allow_cross_project=allow_cross_project)
    if source.kind == "bigquery":
        table = bigquery_table_of(source.uris[0])
        if table is not None and not reads.table_exists(table):
            found.append(
                f"The source table {source.uris[0]} does not exist. Create it, or fix the project, dataset "
                "or table name in src."
            )
    elif source.kind == "gcs":
        for uri in source.uris:
            if not reads.gcs_matches(uri):
                what = "matches no object" if "*" in uri else "does not exist"
                found.append(
                    f"The source {uri} {what}. Upload the JSONL requests there, or fix the path in src."
                )
    elif source.kind == "file":
        problem = reads.file_problem(source.uris[0])
        if problem:
            found.append(problem)
    dest_table = bigquery_table_of(dest)
    if dest_table is not None and reads.table_exists(dest_table):
        found.append(
            f"The dest table {dest} already exists; Vertex AI writes only to a new table. Name a table "
            f"that does not exist, drop it, or pass dest='bq://{dest_table.project}.{dest_table.dataset}' "
            "and let Vertex AI name one."
        )
    answer = reads.model(plan.model)
    probes = [m for m in WELL_KNOWN_MODELS if m != plan.model] if answer == "not_found" else []
    verdict = model_verdict(answer, [reads.model(m) for m in probes])
    if verdict == "missing":
        found.append(
            f"The model {plan.model!r} does not exist on {plan.backend}. Fix the model name (e.g. "
            "'gemini-2.5-flash'); the models list of the service shows which exist."
        )
    elif verdict == "skip" and log is not None:
        log.info("Model %r not checked: the models endpoint gave no usable answer", plan.model)
    return found


def check(
    plan: CreatePlan,
    dest: str | None,
    reads: Reads,
    *,
    project: str | None,
    allow_cross_project: bool,
    log: Any = None,
) -> None:
    """Raise one :class:`GeminiBatchPreflightError` naming every problem, if there is any."""
    found = problems(plan, dest, reads, project=project, allow_cross_project=allow_cross_project, log=log)
    if found:
        listed = "\n".join(f"- {problem}" for problem in found)
        raise GeminiBatchPreflightError(
            f"Not submitting the batch job: {len(found)} problem(s) found before creating it (no job "
            f"exists, and a retry would find the same):\n{listed}"
        )


# --- reads -----------------------------------------------------------------------------------------

_MODEL_ANSWERS: dict[tuple[Any, ...], ModelAnswer] = {}
_MODEL_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget every cached models lookup (tests)."""
    with _MODEL_LOCK:
        _MODEL_ANSWERS.clear()


def _model_answer(exc: BaseException | None) -> ModelAnswer:
    if exc is None:
        return "found"
    return "not_found" if error_kind(exc) == "not_found" else "unknown"


@dataclass
class CloudReads:
    """The reads of the checks, through the clients the operator already uses.

    :param genai_client: returns the job's google-genai client (models, files).
    :param cache_key: what makes a models answer reusable (backend, endpoint, project, location).
    :param bigquery_client: returns a ``google.cloud.bigquery.Client`` (Vertex AI sources only).
    :param storage_client: returns a ``google.cloud.storage.Client`` (gs:// sources only).
    :param log: the operator's logger.
    """

    genai_client: Callable[[], Any]
    cache_key: tuple[Any, ...]
    bigquery_client: Callable[[], Any] | None = None
    storage_client: Callable[[], Any] | None = None
    log: Any = None

    def table_exists(self, table: TableId) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self.bigquery_client().get_table(str(table))  # type: ignore[misc]
        except NotFound:
            return False
        return True

    def gcs_matches(self, uri: str) -> bool:
        bucket_name, _, name = uri[len("gs://") :].partition("/")
        client = self.storage_client()  # type: ignore[misc]
        if "*" not in name:
            return bool(client.bucket(bucket_name).blob(name).exists())
        # Listed by the literal prefix and matched here: the gs:// emulator has no matchGlob.
        prefix = name.split("*", 1)[0]
        return any(
            fnmatch.fnmatchcase(blob.name, name) for blob in client.list_blobs(bucket_name, prefix=prefix)
        )

    def file_problem(self, name: str) -> str | None:
        try:
            uploaded = self.genai_client().files.get(name=name)
        except Exception as exc:
            # The Gemini API answers 403 PERMISSION_DENIED for a file that does not exist (or is another key's).
            if http_status(exc) not in (403, 404):
                raise
            return (
                f"The Gemini API file {name} does not exist or belongs to another API key (files expire 48 "
                "hours after upload). Upload the JSONL again with client.files.upload(...) with this "
                "connection's key and pass its new name as src."
            )
        state = str(getattr(uploaded, "state", "") or "")
        if state.endswith("FAILED"):
            return f"The Gemini API file {name} is {state}: upload it again and pass its new name as src."
        return None

    def model(self, model: str) -> ModelAnswer:
        key = (*self.cache_key, model)
        with _MODEL_LOCK:
            if key in _MODEL_ANSWERS:
                return _MODEL_ANSWERS[key]
        error: BaseException | None = None
        try:
            self.genai_client().models.get(model=model)
        except Exception as exc:  # noqa: BLE001 - classified below; the create call has the last word
            error = exc
            if self.log is not None and error_kind(exc) != "not_found":
                self.log.warning(
                    "Could not look model %r up (%s): not checked", model, http_status(exc) or exc
                )
        answer = _model_answer(error)
        if answer != "unknown":
            with _MODEL_LOCK:
                _MODEL_ANSWERS[key] = answer
        return answer


__all__ = [
    "WELL_KNOWN_MODELS",
    "CloudReads",
    "ModelAnswer",
    "Reads",
    "TableId",
    "bigquery_project_of",
    "bigquery_table_of",
    "check",
    "clear_model_cache",
    "cross_project_problems",
    "model_verdict",
    "problems",
]
