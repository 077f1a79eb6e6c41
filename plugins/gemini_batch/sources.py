"""Parse and validate a batch source, a destination and a job name; infer the backend.

Invariants: every check here runs before any network call and raises
:class:`~gemini_batch.exceptions.GeminiBatchConfigError` with a message that names the bad
value and what to write instead. Inline requests are checked by the same request-shape rules as
JSONL lines and BigQuery rows (:func:`gemini_batch.pipeline.request_shape.check_inline_request`).
The backend follows from the source whenever the source
says it (``bq://`` and ``gs://`` are Vertex AI only; inline requests and ``files/...`` are Gemini
API only); an explicit ``backend`` that contradicts the source is an error, never a guess.
No SDK import happens at import time (the request-shape rules, built from the SDK's types, are
imported when an inline source is parsed).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gemini_batch.backends import BACKENDS, GEMINI_API_INLINE_MAX_BYTES, Backend, inline_request_bytes
from gemini_batch.exceptions import GeminiBatchConfigError
from gemini_batch.job_task import JobTask

SourceKind = Literal["bigquery", "gcs", "inline", "file"]

ACCEPTED_FORMS = (
    "'bq://PROJECT.DATASET.TABLE' (Vertex AI), 'gs://BUCKET/path/requests.jsonl' or a "
    "'gs://BUCKET/path/*.jsonl' wildcard (Vertex AI), 'files/NAME' (Gemini API), or a list of "
    "inline request dicts with 'contents' (Gemini API)"
)

_BQ_RE = re.compile(
    r"^bq://(?P<project>[^./\s]+(?:[:.][^./\s]+)*?)\.(?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[^./\s]+)$"
)
# GCS object names are any UTF-8 without CR or LF (spaces included), and Vertex AI reads
# gcsSource URIs as object names: "gs://b/my folder/in.jsonl" is a valid source.
_GCS_RE = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._\-]{1,221}[a-z0-9])/(?P<object>[^\r\n]*[^\s])$")
_FILE_RE = re.compile(r"^files/[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_VERTEX_JOB_RE = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/batchPredictionJobs/(?P<id>\d+)$"
)
_GEMINI_JOB_RE = re.compile(r"^batches/(?P<id>[A-Za-z0-9_\-]+)$")


def is_templated(value: Any) -> bool:
    """True when ``value`` cannot be checked yet: a Jinja string or an XComArg-like object."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, (list, tuple)):
        return any(is_templated(v) for v in value)
    if isinstance(value, dict):
        return any(is_templated(v) for v in value.values())
    return hasattr(value, "resolve") and not isinstance(value, (str, bytes))


@dataclass(frozen=True)
class BatchSource:
    """A validated source of batch requests.

    :param kind: ``bigquery``, ``gcs``, ``file`` or ``inline``.
    :param backend: the backend that serves this kind of source.
    :param uris: the source URIs (one for bq:// and files/, one or more for gs://); empty for inline.
    :param requests: the inline requests (Gemini API only), as given.
    """

    kind: SourceKind
    backend: Backend
    uris: tuple[str, ...] = ()
    requests: tuple[dict[str, Any], ...] = ()

    #: The Gemini API's ceiling on inline requests per batch (a class attribute so tests can lower it).
    MAX_INLINE_BYTES = GEMINI_API_INLINE_MAX_BYTES

    @property
    def uri(self) -> str | None:
        return self.uris[0] if self.uris else None

    def describe(self) -> str:
        """A short, secret-free description for the manifest and logs."""
        if self.kind == "inline":
            return f"inline:{len(self.requests)} requests"
        return self.uris[0] if len(self.uris) == 1 else ",".join(self.uris)

    def fingerprint(self) -> str:
        """A stable hash of the source (inline requests included), to tell changed inputs apart."""
        payload = json.dumps(
            {"kind": self.kind, "uris": list(self.uris), "requests": list(self.requests)},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def sdk_src(self) -> Any:
        """The ``src`` argument of ``client.batches.create``."""
        if self.kind == "inline":
            return [dict(r) for r in self.requests]
        if self.kind == "gcs" and len(self.uris) > 1:
            return {"format": "jsonl", "gcs_uri": list(self.uris)}
        return self.uris[0]

    def sdk_embeddings_src(self) -> Any:
        """The ``src`` argument of ``client.batches.create_embeddings`` (Gemini API: file or inline).

        The SDK's inline form takes the contents and ONE config, no per-request key: the answers
        come back in input order, so a request's position is its key (the manifest keeps the order).
        """
        if self.kind == "file":
            return {"file_name": self.uris[0]}
        if self.kind != "inline":
            raise GeminiBatchConfigError(
                f"A {self.kind} source embeds on Vertex AI through client.batches.create, not create_embeddings."
            )
        source: dict[str, Any] = {"contents": [request["contents"][0] for request in self.requests]}
        config = self.requests[0].get("config")
        if config:
            source["config"] = dict(config)
        return {"inlined_requests": source}


def _check_backend(kind: SourceKind, natural: Backend, backend: str | None, value: str) -> Backend:
    if backend is None:
        return natural
    if backend not in BACKENDS:
        raise GeminiBatchConfigError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == natural:
        return natural
    if kind == "bigquery":
        raise GeminiBatchConfigError(
            f"The Gemini API has no BigQuery source ({value!r}). Use backend='vertex' with a Google "
            "Cloud connection (gcp_conn_id), or export the table to JSONL and upload it with the Files API."
        )
    if kind == "gcs":
        raise GeminiBatchConfigError(
            f"The Gemini API cannot read gs:// sources ({value!r}). Use backend='vertex' with a Google "
            "Cloud connection (gcp_conn_id), or upload the file with the Files API and pass 'files/NAME'."
        )
    if kind == "file":
        raise GeminiBatchConfigError(
            f"Vertex AI cannot read Gemini API files ({value!r}). Use backend='gemini_api' "
            "(gemini_api_conn_id), or put the JSONL in gs:// for Vertex AI."
        )
    raise GeminiBatchConfigError(
        "Vertex AI batch prediction takes no inline requests. Write them to a gs:// JSONL file "
        "(one {'request': {...}} per line) for backend='vertex', or use backend='gemini_api'."
    )


def _parse_bq(src: str, backend: str | None) -> BatchSource:
    match = _BQ_RE.match(src)
    if not match:
        raise GeminiBatchConfigError(
            f"BigQuery source {src!r} is not 'bq://PROJECT.DATASET.TABLE' (all three parts, "
            "separated by dots): add the missing project or dataset."
        )
    return BatchSource(
        kind="bigquery", backend=_check_backend("bigquery", "vertex", backend, src), uris=(src,)
    )


def _check_gcs_uri(src: str) -> None:
    match = _GCS_RE.match(src)
    if not match:
        raise GeminiBatchConfigError(
            f"gs:// source {src!r} is not 'gs://BUCKET/OBJECT': give the bucket and the path of the "
            "JSONL file, e.g. 'gs://my-bucket/batch/requests.jsonl'."
        )
    obj = match.group("object")
    last = obj.rsplit("/", 1)[-1]
    if obj.endswith("/") or not last:
        raise GeminiBatchConfigError(
            f"gs:// source {src!r} is a folder. Vertex AI reads files, not folders: name the file "
            f"('{src.rstrip('/')}/requests.jsonl') or every JSONL file in it ('{src.rstrip('/')}/*.jsonl')."
        )
    if "*" in last:
        if not (last.endswith(".jsonl") or last == "*"):
            raise GeminiBatchConfigError(
                f"gs:// wildcard {src!r} would match non-JSONL files; end it with '*.jsonl'."
            )
        return
    if not last.endswith(".jsonl"):
        raise GeminiBatchConfigError(
            f"gs:// source {src!r} is not a .jsonl file. Vertex AI batch prediction for Gemini reads "
            "JSONL (one {'request': {...}} per line): convert it and name it '*.jsonl', or use a "
            "'bq://PROJECT.DATASET.TABLE' source."
        )


def _parse_gcs(uris: Sequence[str], backend: str | None) -> BatchSource:
    for uri in uris:
        _check_gcs_uri(uri)
    return BatchSource(
        kind="gcs", backend=_check_backend("gcs", "vertex", backend, uris[0]), uris=tuple(uris)
    )


def _parse_file(src: str, backend: str | None) -> BatchSource:
    if not _FILE_RE.match(src):
        raise GeminiBatchConfigError(
            f"Gemini API file name {src!r} is not 'files/NAME' (NAME: letters, digits, dashes, as "
            "returned by client.files.upload(...).name)."
        )
    return BatchSource(kind="file", backend=_check_backend("file", "gemini_api", backend, src), uris=(src,))


def _parse_inline(
    requests: Sequence[Any], backend: str | None, task: JobTask | None = "generate"
) -> BatchSource:
    if not requests:
        raise GeminiBatchConfigError("The list of inline requests is empty: give at least one request.")
    strings = [r for r in requests if isinstance(r, str)]
    if strings:
        if any(s.startswith("files/") for s in strings):
            raise GeminiBatchConfigError(
                "The source mixes inline requests with a 'files/...' name. Pass either a list of "
                "inline request dicts or one 'files/NAME' string, not both."
            )
        if all(s.startswith("gs://") for s in strings) and len(strings) == len(requests):
            return _parse_gcs(strings, backend)
        raise GeminiBatchConfigError(
            f"A list source must hold inline request dicts (or only gs:// URIs); found strings "
            f"{strings[:3]!r}. Accepted sources: {ACCEPTED_FORMS}."
        )
    natural = _check_backend("inline", "gemini_api", backend, "inline requests")
    for index, request in enumerate(requests):
        if not isinstance(request, dict):
            raise GeminiBatchConfigError(
                f"Inline request #{index} is a {type(request).__name__}, not a dict like "
                "{'contents': [{'role': 'user', 'parts': [{'text': '...'}]}]}."
            )
        if "contents" not in request:
            hint = ""
            if "request" in request:
                hint = (
                    " It looks like a JSONL line ({'key', 'request'}): pass request['contents'] "
                    "(and request['generation_config'] as 'config', the key in 'metadata') instead."
                )
            raise GeminiBatchConfigError(f"Inline request #{index} has no 'contents'.{hint}")
    if task == "embed":
        _check_inline_embeddings(requests)
    elif task == "generate":
        _check_inline_shapes(requests)  # None: the task is not known yet (a templated model)
    size = inline_request_bytes(requests)
    if size > BatchSource.MAX_INLINE_BYTES:
        raise GeminiBatchConfigError(
            f"Inline requests are {size:,} bytes, above the Gemini API limit of "
            f"{BatchSource.MAX_INLINE_BYTES:,} bytes for inline batches. Write them to a JSONL file, "
            "upload it with the Files API and pass 'files/NAME', or split the input with .expand()."
        )
    return BatchSource(kind="inline", backend=natural, requests=tuple(requests))


_MAX_LISTED_PROBLEMS = 10


def _check_inline_shapes(requests: Sequence[dict[str, Any]]) -> None:
    """The request-shape rules of the JSONL and BigQuery paths, applied to each inline request.

    Imported here, not at module level: the rules are built from the google-genai SDK's types,
    and only inline sources need them.
    """
    from gemini_batch.pipeline.request_shape import check_inline_request

    problems = [
        problem
        for index, request in enumerate(requests)
        for problem in check_inline_request(request, path=f"src[{index}]")
    ]
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems[:_MAX_LISTED_PROBLEMS])
        more = len(problems) - _MAX_LISTED_PROBLEMS
        raise GeminiBatchConfigError(
            f"{len(problems)} problem(s) in the inline requests (src); nothing was submitted:\n{listed}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )


def _check_inline_embeddings(requests: Sequence[dict[str, Any]]) -> None:
    """Inline embedding requests: one content each and one shared config (the SDK's inline form).

    ``client.batches.create_embeddings`` sends a list of contents with a single
    ``EmbedContentConfig``; requests with different configs cannot travel in one inline batch.
    """
    for index, request in enumerate(requests):
        contents = request.get("contents")
        if not isinstance(contents, list) or len(contents) != 1:
            raise GeminiBatchConfigError(
                f"Inline embedding request #{index} must have 'contents' with exactly one Content "
                "(one vector per request), e.g. {'contents': [{'parts': [{'text': '...'}]}]}."
            )
    configs = {json.dumps(request.get("config") or {}, sort_keys=True, default=str) for request in requests}
    if len(configs) > 1:
        raise GeminiBatchConfigError(
            "Inline embedding requests carry different 'config's, but an inline embeddings batch takes one "
            "config for all. Give every request the same config, or write them to a JSONL file (one "
            "{'key', 'request'} per line) and pass 'files/NAME'."
        )


def parse_source(src: Any, *, backend: str | None = None, task: JobTask | None = "generate") -> BatchSource:
    """Validate a source and infer its backend.

    :param src: Required. ``bq://PROJECT.DATASET.TABLE``, ``gs://BUCKET/....jsonl`` (or a
        ``*.jsonl`` wildcard, or a list of such URIs), ``files/NAME``, or a list of inline
        request dicts.
    :param backend: Optional. ``vertex`` or ``gemini_api``; must agree with the source.
    :param task: Optional. ``generate`` (default) or ``embed``: which rules inline requests follow;
        None (the model is still a template): their shape is checked once the task is known.
    :raises GeminiBatchConfigError: with what to change.
    """
    if isinstance(src, str):
        value = src.strip()
        if value.startswith("bq://"):
            return _parse_bq(value, backend)
        if value.startswith("gs://"):
            return _parse_gcs([value], backend)
        if value.startswith("files/"):
            return _parse_file(value, backend)
        scheme = value.split("://", 1)[0] + "://" if "://" in value else None
        what = f"unknown scheme {scheme!r}" if scheme else "no recognised prefix"
        raise GeminiBatchConfigError(f"Source {value!r} has {what}. Accepted sources: {ACCEPTED_FORMS}.")
    if isinstance(src, (list, tuple)):
        return _parse_inline(list(src), backend, task)
    if src is None:
        raise GeminiBatchConfigError(f"src is required. Accepted sources: {ACCEPTED_FORMS}.")
    raise GeminiBatchConfigError(f"src has type {type(src).__name__}; accepted sources: {ACCEPTED_FORMS}.")


def parse_destination(dest: Any, source: BatchSource) -> str | None:
    """Validate an explicit destination for ``source``; None stays None (a default is derived later).

    :param dest: Optional. ``gs://BUCKET/prefix`` or ``bq://PROJECT.DATASET[.TABLE]`` (Vertex AI only).
    :param source: the parsed source.
    """
    if dest is None or dest == "":
        return None
    if source.backend == "gemini_api":
        raise GeminiBatchConfigError(
            f"dest={dest!r} applies to Vertex AI only: the Gemini API writes results to a file it "
            "names (manifest 'file_name') or returns them inline. Remove dest."
        )
    if not isinstance(dest, str):
        raise GeminiBatchConfigError(f"dest must be a gs:// or bq:// URI string, got {type(dest).__name__}.")
    if dest.startswith("gs://"):
        if not re.match(r"^gs://[a-z0-9][a-z0-9._\-]{1,221}[a-z0-9](/\S*)?$", dest):
            raise GeminiBatchConfigError(f"dest {dest!r} is not 'gs://BUCKET/prefix'.")
        return dest.rstrip("/")
    if dest.startswith("bq://"):
        parts = dest[len("bq://") :].split(".")
        if len(parts) not in (1, 2, 3) or not all(parts):
            raise GeminiBatchConfigError(
                f"dest {dest!r} is not 'bq://PROJECT', 'bq://PROJECT.DATASET' or 'bq://PROJECT.DATASET.TABLE'."
            )
        return dest
    raise GeminiBatchConfigError(
        f"dest {dest!r} has an unknown scheme: use 'gs://BUCKET/prefix' or 'bq://PROJECT.DATASET[.TABLE]'."
    )


def _safe_path_part(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", value).strip("._") or "x"


def default_destination(
    source: BatchSource, *, work_id: str, dag_id: str, task_id: str, submission: int = 1
) -> str | None:
    """A run-scoped destination, so backfills and reruns of other runs never collide.

    The work id (a hash of dag_id, task_id, run_id, map_index) makes the path unique per run and
    map index; ``submission`` > 1 (a resubmission after a failed job) adds a suffix so a new job
    never writes into a failed job's output. The Gemini API takes no destination (None).

    :param source: the parsed source.
    :param work_id: :attr:`gemini_batch.identity.WorkIdentity.work_id`.
    :param dag_id: for a readable GCS path.
    :param task_id: for a readable GCS path.
    :param submission: 1 for the first job of this work, 2 for the next after a failure, ...
    """
    suffix = "" if submission <= 1 else f"_{submission}"
    if source.kind == "bigquery":
        return f"{source.uris[0]}_predictions_{work_id}{suffix}"
    if source.kind == "gcs":
        bucket = _GCS_RE.match(source.uris[0]).group("bucket")  # type: ignore[union-attr]
        return (
            f"gs://{bucket}/gemini-batch-output/{_safe_path_part(dag_id)}/"
            f"{_safe_path_part(task_id)}/{work_id}{suffix}"
        )
    return None


@dataclass(frozen=True)
class JobRef:
    """A parsed job name.

    :param name: the name as the service gives it (``projects/P/locations/L/batchPredictionJobs/N``,
        a bare numeric Vertex id, or ``batches/ID``).
    :param backend: the backend the name belongs to.
    :param job_id: the last segment.
    :param project: the project in a full Vertex name, else None.
    :param location: the location in a full Vertex name, else None.
    """

    name: str
    backend: Backend
    job_id: str
    project: str | None = None
    location: str | None = None

    @classmethod
    def parse(cls, name: Any, backend: str | None = None) -> JobRef:
        """Parse a job name; the backend follows from its form.

        :raises GeminiBatchConfigError: for a name of neither form, or one contradicting ``backend``.
        """
        if not isinstance(name, str) or not name.strip():
            raise GeminiBatchConfigError(f"job_name must be a non-empty string, got {name!r}.")
        name = name.strip()
        ref: JobRef | None = None
        if match := _VERTEX_JOB_RE.match(name):
            ref = cls(name, "vertex", match.group("id"), match.group("project"), match.group("location"))
        elif name.isdigit():
            ref = cls(name, "vertex", name)
        elif match := _GEMINI_JOB_RE.match(name):
            ref = cls(name, "gemini_api", match.group("id"))
        if ref is None:
            raise GeminiBatchConfigError(
                f"job_name {name!r} is neither a Vertex AI batch prediction job "
                "('projects/P/locations/L/batchPredictionJobs/123' or '123') nor a Gemini API batch "
                "('batches/ID')."
            )
        if backend is not None and backend != ref.backend:
            raise GeminiBatchConfigError(
                f"job_name {name!r} is a {ref.backend} job name, but backend={backend!r}. Remove backend "
                "(it follows from the name) or pass the matching name."
            )
        return ref
