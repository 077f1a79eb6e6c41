"""Vertex AI ``projects.locations.batchPredictionJobs``: create, get, list, cancel, delete.

Paths (``v1`` and ``v1beta1``, any project and location)::

    POST   /{v}/projects/{p}/locations/{l}/batchPredictionJobs
    GET    /{v}/projects/{p}/locations/{l}/batchPredictionJobs?pageSize&pageToken&filter
    GET    /{v}/projects/{p}/locations/{l}/batchPredictionJobs/{id}
    POST   /{v}/projects/{p}/locations/{l}/batchPredictionJobs/{id}:cancel
    DELETE /{v}/projects/{p}/locations/{l}/batchPredictionJobs/{id}

Invariants: a create request is fully validated before a job exists (400 INVALID_ARGUMENT for
a malformed body, 404 NOT_FOUND for an unknown model); a job is visible only under the project
and location it was created in; a deleted job answers 404 to every call.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from aiohttp import web

from . import cloud
from .api_common import endpoint, json_body, json_response, list_body, paginate_jobs, service_of
from .embedding import embedding_model, vertex_parameters
from .errors import failed_precondition, invalid_argument, not_found
from .filters import FilterError, parse_filter
from .jobs import Job, Task
from .model import InvalidRequest, camel_name, is_known_model

MAX_DISPLAY_NAME = 128
MAX_LABELS = 64
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_PUBLISHER_MODEL = re.compile(
    r"^(?:projects/[^/]+/locations/[^/]+/)?publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/@]+)$"
)
LIST_DEFAULT_PAGE = 100
LIST_MAX_PAGE = 1000

#: Top-level fields of a BatchPredictionJob (REST v1/v1beta1). Anything else is rejected, as the
#: real API rejects unknown names ("lables" is a 400, not silently dropped).
JOB_FIELDS = frozenset(
    {
        "name", "displayName", "model", "modelVersionId", "unmanagedContainerModel", "inputConfig",
        "instanceConfig", "modelParameters", "outputConfig", "dedicatedResources", "serviceAccount",
        "manualBatchTuningParameters", "generateExplanation", "explanationSpec", "outputInfo", "state",
        "error", "partialFailures", "resourcesConsumed", "completionStats", "createTime", "startTime",
        "endTime", "updateTime", "labels", "encryptionSpec", "modelMonitoringConfig",
        "modelMonitoringStatsAnomalies", "modelMonitoringStatus", "disableContainerLogging",
        "satisfiesPzs", "satisfiesPzi",
    }
)  # fmt: skip
#: Nested config objects whose field names may also be written in snake_case (proto JSON).
_CONFIG_KEYS = frozenset(
    {"inputConfig", "outputConfig", "gcsSource", "bigquerySource", "gcsDestination", "bigqueryDestination"}
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_case_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Proto JSON accepts ``display_name`` as well as ``displayName``: normalize to camelCase.

    Only field names are touched (never label keys or other user data).
    """
    result: dict[str, Any] = {}
    for key, value in body.items():
        name = _camel(key)
        if name in _CONFIG_KEYS and isinstance(value, dict):
            value = camel_case_fields(value)
        result[name] = value
    return result


def _model_id(model: Any, project: str, location: str) -> tuple[str, Task]:
    """The bare model id of a Vertex ``model`` field and the task it serves (a Gemini model
    generates, a text-embedding model embeds); 404 like the real API when unknown."""
    if not isinstance(model, str) or not model:
        raise invalid_argument("Field: batch_prediction_job.model Error: model is required.")
    match = _PUBLISHER_MODEL.match(model)
    if match and match["publisher"] == "google":
        if is_known_model(match["model"]):
            return match["model"], "generate"
        if embedding_model(match["model"], "vertex") is not None:
            return match["model"], "embed"
    full = model if model.startswith("projects/") else f"projects/{project}/locations/{location}/{model}"
    if match:
        raise not_found(f"Publisher Model `{full}` not found.")
    raise not_found(
        f"Model `{full}` not found. The local emulator serves only Google publisher models "
        "(publishers/google/models/<id>)."
    )


def _model_parameters(model_id: str, task: Task, parameters: Any) -> dict[str, Any] | None:
    """An embedding job's checked ``modelParameters`` (400 when invalid); a Gemini job's are
    kept as sent (the emulator's generation ignores them)."""
    if task != "embed" or parameters is None:
        return parameters
    try:
        vertex_parameters(model_id, parameters)
    except InvalidRequest as exc:
        raise invalid_argument(str(exc)) from exc
    return {camel_name(key): value for key, value in parameters.items()}


def _validate_labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise invalid_argument(
            "Field: batch_prediction_job.labels Error: labels must map strings to strings."
        )
    if len(labels) > MAX_LABELS:
        raise invalid_argument(f"A resource can have at most {MAX_LABELS} labels, got {len(labels)}.")
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            raise invalid_argument(
                f"Label key {key!r} is invalid: it must start with a lowercase letter and hold at "
                "most 63 lowercase letters, digits, underscores or dashes."
            )
        if not LABEL_VALUE.match(value):
            raise invalid_argument(
                f"Label value {value!r} of key {key!r} is invalid: at most 63 lowercase letters, "
                "digits, underscores or dashes."
            )
    return dict(labels)


def _source(input_config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(source, normalized inputConfig)``; 400 for anything the real API rejects."""
    if not isinstance(input_config, dict) or not input_config:
        raise invalid_argument("Field: batch_prediction_job.input_config Error: input_config is required.")
    fmt = input_config.get("instancesFormat")
    gcs = input_config.get("gcsSource")
    bq = input_config.get("bigquerySource")
    if input_config.get("vertexMultimodalDatasetSource") is not None:
        raise invalid_argument("Vertex multimodal dataset sources are not supported by the local emulator.")
    if (gcs is None) == (bq is None):
        raise invalid_argument(
            "Field: batch_prediction_job.input_config Error: exactly one of gcs_source or "
            "bigquery_source must be set."
        )
    if gcs is not None:
        uris = gcs.get("uris") if isinstance(gcs, dict) else None
        if isinstance(uris, str):
            uris = [uris]
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            raise invalid_argument("Field: input_config.gcs_source.uris Error: at least one URI is required.")
        for uri in uris:
            try:
                cloud.parse_gcs_uri(uri)
            except ValueError as exc:
                raise invalid_argument(f"Field: input_config.gcs_source.uris Error: {exc}.") from exc
        if fmt != "jsonl":
            raise invalid_argument(
                f"Unsupported instances format {fmt!r} for a Cloud Storage source: Gemini batch "
                "prediction reads jsonl (instancesFormat: jsonl)."
            )
        return {"kind": "gcs", "uris": uris}, {"instancesFormat": fmt, "gcsSource": {"uris": uris}}
    uri = bq.get("inputUri") if isinstance(bq, dict) else None
    if not isinstance(uri, str):
        raise invalid_argument("Field: input_config.bigquery_source.input_uri Error: input_uri is required.")
    try:
        ref = cloud.parse_bq_uri(uri)
    except ValueError as exc:
        raise invalid_argument(f"Field: input_config.bigquery_source.input_uri Error: {exc}.") from exc
    if ref.table is None:
        raise invalid_argument(f"BigQuery source {uri} must name a table: bq://project.dataset.table.")
    if fmt != "bigquery":
        raise invalid_argument(
            f"Unsupported instances format {fmt!r} for a BigQuery source: use instancesFormat: bigquery."
        )
    return {"kind": "bigquery", "uri": uri}, {"instancesFormat": fmt, "bigquerySource": {"inputUri": uri}}


def default_output_config(source: dict[str, Any]) -> dict[str, Any]:
    """Where outputs go when the create request has no ``outputConfig`` (documented in README).

    A ``.jsonl`` file gets ``<uri without .jsonl>/dest`` and a table gets
    ``<uri>_dest_<YYYYMMDDhhmmss>_<hex5>`` (the SDK's own defaults); a folder or wildcard gets
    ``<folder>/dest`` (folder = the URI up to the last ``/`` before any wildcard).
    """
    if source["kind"] == "bigquery":
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        uri = f"{source['uri']}_dest_{stamp}_{secrets.token_hex(3)[:5]}"
        return {"predictionsFormat": "bigquery", "bigqueryDestination": {"outputUri": uri}}
    first = source["uris"][0]
    if first.endswith(".jsonl") and not re.search(r"[*?\[]", first):
        prefix = first[: -len(".jsonl")] + "/dest"
    else:
        wildcard = re.search(r"[*?\[]", first)
        head = first[: wildcard.start()] if wildcard else first
        prefix = head[: head.rfind("/")] + "/dest"
    return {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": prefix}}


def _destination(output_config: Any, source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(destination, normalized outputConfig)``."""
    if output_config is None or output_config == {}:
        output_config = default_output_config(source)
    if not isinstance(output_config, dict):
        raise invalid_argument("Field: batch_prediction_job.output_config Error: must be an object.")
    fmt = output_config.get("predictionsFormat")
    gcs = output_config.get("gcsDestination")
    bq = output_config.get("bigqueryDestination")
    if (gcs is None) == (bq is None):
        raise invalid_argument(
            "Field: batch_prediction_job.output_config Error: exactly one of gcs_destination or "
            "bigquery_destination must be set."
        )
    if gcs is not None:
        prefix = gcs.get("outputUriPrefix") if isinstance(gcs, dict) else None
        if not isinstance(prefix, str):
            raise invalid_argument("Field: output_config.gcs_destination.output_uri_prefix Error: required.")
        try:
            cloud.parse_gcs_uri(prefix if "/" in prefix[5:] else prefix + "/")
        except ValueError as exc:
            raise invalid_argument(
                f"Field: output_config.gcs_destination.output_uri_prefix Error: {exc}."
            ) from exc
        fmt = fmt or "jsonl"
        if fmt != "jsonl":
            raise invalid_argument(f"Unsupported predictions format {fmt!r} for Cloud Storage: use jsonl.")
        return {"kind": "gcs", "prefix": prefix}, {
            "predictionsFormat": fmt,
            "gcsDestination": {"outputUriPrefix": prefix},
        }
    uri = bq.get("outputUri") if isinstance(bq, dict) else None
    if not isinstance(uri, str):
        raise invalid_argument("Field: output_config.bigquery_destination.output_uri Error: required.")
    try:
        cloud.parse_bq_uri(uri)
    except ValueError as exc:
        raise invalid_argument(f"Field: output_config.bigquery_destination.output_uri Error: {exc}.") from exc
    fmt = fmt or "bigquery"
    if fmt != "bigquery":
        raise invalid_argument(f"Unsupported predictions format {fmt!r} for BigQuery: use bigquery.")
    return {"kind": "bigquery", "uri": uri}, {
        "predictionsFormat": fmt,
        "bigqueryDestination": {"outputUri": uri},
    }


def _job_of(request: web.Request) -> tuple[Job, str]:
    """The job the path names and the verb after ``:`` ('' for none); 404 if not visible."""
    project = request.match_info["project"]
    location = request.match_info["location"]
    job_id, _, verb = request.match_info["job"].partition(":")
    if not job_id.isdigit():
        raise invalid_argument(f"Invalid BatchPredictionJob resource name: {job_id!r} is not a numeric id.")
    job = service_of(request).jobs.get(job_id)
    if (
        job is None
        or job.deleted
        or job.backend != "vertex"
        or (job.project, job.location) != (project, location)
    ):
        raise not_found(
            f"The BatchPredictionJob projects/{project}/locations/{location}/batchPredictionJobs/{job_id} "
            "does not exist."
        )
    return job, verb


@endpoint("vertex")
async def create_job(request: web.Request) -> web.Response:
    """``POST .../batchPredictionJobs``."""
    service = service_of(request)
    project = request.match_info["project"]
    location = request.match_info["location"]
    body = await json_body(request)
    if not isinstance(body, dict):
        raise invalid_argument("The request body must be a BatchPredictionJob object.")
    body = camel_case_fields(body)
    unknown = sorted(set(body) - JOB_FIELDS)
    if unknown:
        raise invalid_argument(
            f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
        )
    model_id, task = _model_id(body.get("model"), project, location)
    model_parameters = _model_parameters(model_id, task, body.get("modelParameters"))
    display_name = body.get("displayName")
    if not isinstance(display_name, str) or not display_name:
        raise invalid_argument("Field: batch_prediction_job.display_name Error: display_name is required.")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise invalid_argument(
            f"Field: batch_prediction_job.display_name Error: at most {MAX_DISPLAY_NAME} characters, "
            f"got {len(display_name)}."
        )
    source, input_config = _source(body.get("inputConfig"))
    destination, output_config = _destination(body.get("outputConfig"), source)
    labels = _validate_labels(body.get("labels"))
    job_id = service.new_vertex_id()
    job = Job(
        id=job_id,
        backend="vertex",
        name=f"projects/{project}/locations/{location}/batchPredictionJobs/{job_id}",
        model=body["model"],
        model_id=model_id,
        display_name=display_name,
        create_time=time.time(),
        faults=service.faults.for_job(),
        source=source,
        destination=destination,
        task=task,
        model_parameters=model_parameters,
        input_config=input_config,
        output_config=output_config,
        labels=labels,
        project=project,
        location=location,
    )
    service.add(job)
    return json_response(job.cached("vertex", job.vertex_view))


@endpoint("vertex")
async def get_job(request: web.Request) -> web.Response:
    """``GET .../batchPredictionJobs/{id}``."""
    job, verb = _job_of(request)
    if verb:
        raise not_found(f"Unknown method {verb!r}.")
    return json_response(job.cached("vertex", job.vertex_view))


@endpoint("vertex")
async def list_jobs(request: web.Request) -> web.Response:
    """``GET .../batchPredictionJobs`` with ``pageSize``, ``pageToken`` and ``filter``."""
    project = request.match_info["project"]
    location = request.match_info["location"]
    try:
        predicate = parse_filter(request.query.get("filter"))
    except FilterError as exc:
        raise invalid_argument(str(exc)) from exc
    jobs = [
        job
        for job in service_of(request).visible("vertex")
        if job.project == project and job.location == location and predicate(job)
    ]
    page, token = paginate_jobs(request, jobs, LIST_DEFAULT_PAGE, LIST_MAX_PAGE)
    encoded = [job.cached("vertex", job.vertex_view) for job in page]
    return json_response(list_body("batchPredictionJobs", encoded, token))


@endpoint("vertex")
async def job_action(request: web.Request) -> web.Response:
    """``POST .../batchPredictionJobs/{id}:cancel``."""
    job, verb = _job_of(request)
    if verb != "cancel":
        raise not_found(f"Unknown method {verb or 'POST'!r} on a BatchPredictionJob.")
    service_of(request).request_cancel(job)
    return json_response(b"{}")


@endpoint("vertex")
async def delete_job(request: web.Request) -> web.Response:
    """``DELETE .../batchPredictionJobs/{id}``: only a finished job; returns the operation."""
    job, verb = _job_of(request)
    if verb:
        raise not_found(f"Unknown method {verb!r}.")
    if not job.terminal:
        raise failed_precondition(
            f"The BatchPredictionJob {job.name} is in state {job.state}; only a finished job can be "
            "deleted (cancel it first)."
        )
    service = service_of(request)
    service.mark_deleted(job)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    operation = {
        "name": f"projects/{job.project}/locations/{job.location}/operations/{service.new_numeric_id()}",
        "metadata": {
            "@type": delete_metadata_type(request.match_info["version"]),
            "genericMetadata": {"createTime": now, "updateTime": now},
        },
        "done": True,
        "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
    }
    return json_response(operation)


def delete_metadata_type(version: str) -> str:
    """The ``@type`` of a delete operation's metadata in API ``version`` (``v1`` or ``v1beta1``)."""
    return f"type.googleapis.com/google.cloud.aiplatform.{version}.DeleteOperationMetadata"


def add_routes(app: web.Application) -> None:
    """Register the Vertex routes."""
    base = r"/{version:v1|v1beta1}/projects/{project}/locations/{location}/batchPredictionJobs"
    app.router.add_post(base, create_job)
    app.router.add_get(base, list_jobs)
    app.router.add_get(base + "/{job}", get_job)
    app.router.add_post(base + "/{job}", job_action)
    app.router.add_delete(base + "/{job}", delete_job)
