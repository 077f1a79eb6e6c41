"""Gemini API batches and Files API.

Paths (``v1``, ``v1beta`` and ``v1alpha``)::

    POST   /{v}/models/{model}:batchGenerateContent     inline requests or a files/... input
    POST   /{v}/models/{model}:asyncBatchEmbedContent   the same, of EmbedContentRequests
    GET    /{v}/batches?pageSize&pageToken
    GET    /{v}/batches/{id}
    POST   /{v}/batches/{id}:cancel
    DELETE /{v}/batches/{id}
    POST   /upload/{v}/files                            resumable upload: start, then chunks
    GET    /{v}/files?pageSize&pageToken
    GET    /{v}/files/{id}
    GET    /{v}/files/{id}:download?alt=media
    DELETE /{v}/files/{id}

Invariants: every call needs the API key except upload chunks (addressed by the session id
in the upload URL, as with the real service); a create is validated before a batch exists;
an input file must exist at create (the real service answers 403 for an unknown file).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .api_common import (
    base_url,
    endpoint,
    error_response,
    json_body,
    json_response,
    list_body,
    paginate_jobs,
    paginate_offset,
    service_of,
)
from .api_tokens import count_gemini_tokens
from .embedding import embedding_model
from .errors import ApiError, invalid_argument, not_found
from .files import file_view
from .jobs import Job
from .jsonutil import dumps
from .model import is_known_model

#: The Gemini API's limit on an inline batch request.
MAX_INLINE_BYTES = 20 * 1024 * 1024
BATCH_DEFAULT_PAGE = 50
BATCH_MAX_PAGE = 1000
FILES_DEFAULT_PAGE = 10
FILES_MAX_PAGE = 100
CHUNK_GRANULARITY = 8 * 1024 * 1024


#: The batch-creating methods, the task each runs and the names its errors use.
BATCH_METHODS: dict[str, tuple[str, str]] = {
    "batchGenerateContent": ("generate", "GenerateContentBatch"),
    "asyncBatchEmbedContent": ("embed", "EmbedContentBatch"),
}


def _unknown_model(model: str, version: str, method: str) -> ApiError:
    return not_found(
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their "
        "supported methods."
    )


def _serves(model: str, task: str) -> bool:
    """True when ``model`` exists on the Gemini API for ``task`` (a generative model does not
    embed, an embedding model does not generate: the real API answers 404 for both)."""
    if task == "embed":
        return embedding_model(model, "gemini_api") is not None
    return is_known_model(model)


def _batch_of(request: web.Request) -> tuple[Job, str]:
    batch_id, _, verb = request.match_info["batch"].partition(":")
    job = service_of(request).jobs.get(batch_id)
    if job is None or job.deleted or job.backend != "gemini_api":
        raise not_found("Requested entity was not found.")
    return job, verb


def _batch_body(request: web.Request, job: Job) -> bytes:
    service = service_of(request)
    if job.has_inline_output:
        return job.cached("gemini", lambda: job.gemini_view(service.inline_responses(job)))
    return job.cached("gemini", job.gemini_view)


@endpoint("gemini")
async def create_batch(request: web.Request) -> web.Response:
    """``POST /{v}/models/{model}:batchGenerateContent`` and ``...:asyncBatchEmbedContent``."""
    service = service_of(request)
    version = request.match_info["version"]
    model, _, method = request.match_info["model"].rpartition(":")
    if method not in BATCH_METHODS:
        raise not_found(f"Method {method!r} is not found for models/{model}.")
    task, resource = BATCH_METHODS[method]
    if not _serves(model, task):
        raise _unknown_model(model, version, method)
    raw = await request.read()
    if len(raw) > MAX_INLINE_BYTES:
        raise invalid_argument(
            f"Request payload size exceeds the limit: {MAX_INLINE_BYTES} bytes. Upload the requests "
            "as a file with the Files API and pass files/... instead."
        )
    body = await json_body(request)
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, dict):
        raise invalid_argument(f"* {method[0].upper()}{method[1:]}Request.batch: batch is required.")
    input_config = batch.get("inputConfig", batch.get("input_config"))
    if not isinstance(input_config, dict):
        raise invalid_argument(f"* {resource}.input_config: input_config is required.")
    file_name = input_config.get("fileName", input_config.get("file_name"))
    requests_holder = input_config.get("requests")
    inline: list[Any] | None = None
    if (file_name is None) == (requests_holder is None):
        raise invalid_argument(
            f"* {resource}.input_config: exactly one of file_name or requests must be set."
        )
    if file_name is not None:
        if not isinstance(file_name, str) or not file_name.startswith("files/"):
            raise invalid_argument(f"Invalid file name {file_name!r}: expected files/<id>.")
        service.files.get(file_name)  # 403 like the real service when it does not exist
        source = {"kind": "file", "name": file_name}
        destination = {"kind": "file"}
    else:
        inline = requests_holder.get("requests") if isinstance(requests_holder, dict) else None
        if not isinstance(inline, list) or not inline:
            raise invalid_argument(f"* {resource}.input_config.requests: at least one request is required.")
        source = {"kind": "inline", "count": len(inline)}
        destination = {"kind": "inline"}
    display_name = batch.get("displayName", batch.get("display_name")) or ""
    if not isinstance(display_name, str):
        raise invalid_argument(f"* {resource}.display_name must be a string.")
    job_id = service.new_gemini_id()
    job = Job(
        id=job_id,
        backend="gemini_api",
        name=f"batches/{job_id}",
        model=f"models/{model}",
        model_id=model,
        display_name=display_name,
        create_time=time.time(),
        faults=service.faults.for_job(),
        source=source,
        destination=destination,
        task=task,
    )
    service.add(job, inline_requests=inline)
    return json_response(_batch_body(request, job))


@endpoint("gemini")
async def get_batch(request: web.Request) -> web.Response:
    """``GET /{v}/batches/{id}``."""
    job, verb = _batch_of(request)
    if verb:
        raise not_found(f"Unknown method {verb!r}.")
    return json_response(_batch_body(request, job))


@endpoint("gemini")
async def list_batches(request: web.Request) -> web.Response:
    """``GET /{v}/batches``."""
    if request.query.get("filter"):
        raise invalid_argument("The Gemini API does not support filter when listing batches.")
    jobs = service_of(request).visible("gemini_api")
    page, token = paginate_jobs(request, jobs, BATCH_DEFAULT_PAGE, BATCH_MAX_PAGE)
    return json_response(list_body("operations", [_batch_body(request, job) for job in page], token))


@endpoint("gemini")
async def batch_action(request: web.Request) -> web.Response:
    """``POST /{v}/batches/{id}:cancel``."""
    job, verb = _batch_of(request)
    if verb != "cancel":
        raise not_found(f"Unknown method {verb or 'POST'!r} on a batch.")
    service_of(request).request_cancel(job)
    return json_response(b"{}")


@endpoint("gemini")
async def delete_batch(request: web.Request) -> web.Response:
    """``DELETE /{v}/batches/{id}``: the batch disappears; a running one is stopped."""
    job, verb = _batch_of(request)
    if verb:
        raise not_found(f"Unknown method {verb!r}.")
    service = service_of(request)
    if not job.terminal:
        service.request_cancel(job)
    service.mark_deleted(job)
    return json_response(b"{}")


# --- Files API -------------------------------------------------------------------------------


@endpoint("gemini")
async def start_upload(request: web.Request) -> web.Response:
    """``POST /upload/{v}/files`` (``X-Goog-Upload-Command: start``)."""
    protocol = request.headers.get("X-Goog-Upload-Protocol", "").lower()
    command = request.headers.get("X-Goog-Upload-Command", "").lower()
    if protocol != "resumable" or command != "start":
        raise invalid_argument(
            "The local emulator supports only resumable uploads (X-Goog-Upload-Protocol: resumable, "
            "X-Goog-Upload-Command: start), as the google-genai SDK sends them."
        )
    body = await json_body(request, required=False)
    files = service_of(request).files
    session_id = files.start_upload(
        body,
        request.headers.get("X-Goog-Upload-Header-Content-Length"),
        request.headers.get("X-Goog-Upload-Header-Content-Type"),
    )
    version = request.match_info["version"]
    upload_url = (
        f"{base_url(request)}/upload/{version}/files?upload_id={session_id}&upload_protocol=resumable"
    )
    return web.Response(
        body=b"",
        headers={
            "x-goog-upload-url": upload_url,
            "x-goog-upload-status": "active",
            "x-goog-upload-chunk-granularity": str(CHUNK_GRANULARITY),
            "x-goog-upload-control-url": upload_url,
        },
    )


async def upload_chunk(request: web.Request) -> web.StreamResponse:
    """``POST <upload url>``: ``upload``, ``upload, finalize``, ``finalize``, ``query``, ``cancel``."""
    files = service_of(request).files
    session_id = request.query["upload_id"]
    commands = {c.strip().lower() for c in request.headers.get("X-Goog-Upload-Command", "").split(",")}
    try:
        if "cancel" in commands:
            files.cancel(session_id)
            return web.Response(headers={"x-goog-upload-status": "cancelled"})
        if "query" in commands:
            session = files.session(session_id)
            return web.Response(
                headers={
                    "x-goog-upload-status": "active",
                    "x-goog-upload-size-received": str(session.received),
                }
            )
        if "upload" in commands:
            data = await request.read()
            offset_header = request.headers.get("X-Goog-Upload-Offset")
            try:
                offset = (
                    int(offset_header) if offset_header is not None else files.session(session_id).received
                )
            except ValueError as exc:
                raise invalid_argument(f"Invalid X-Goog-Upload-Offset {offset_header!r}.") from exc
            files.append(session_id, offset, data)
        elif "finalize" not in commands:
            raise invalid_argument(
                f"Unknown X-Goog-Upload-Command {request.headers.get('X-Goog-Upload-Command')!r}."
            )
        if "finalize" in commands:
            meta = files.finalize(session_id)
            view = file_view(meta, base_url(request), "v1beta")
            return json_response({"file": view}, headers={"x-goog-upload-status": "final"})
        session = files.session(session_id)
        return web.Response(
            headers={"x-goog-upload-status": "active", "x-goog-upload-size-received": str(session.received)}
        )
    except ApiError as error:
        # A status header stops the SDK's chunk retry loop; "final" makes it raise the error.
        return error_response(error, headers={"x-goog-upload-status": "final"})


async def upload(request: web.Request) -> web.StreamResponse:
    """``POST /upload/{v}/files``: a chunk when ``upload_id`` is present, else a start."""
    if "upload_id" in request.query:
        return await upload_chunk(request)
    return await start_upload(request)


@endpoint("gemini")
async def list_files(request: web.Request) -> web.Response:
    """``GET /{v}/files``."""
    service = service_of(request)
    page, token = paginate_offset(request, service.files.newest_first(), FILES_DEFAULT_PAGE, FILES_MAX_PAGE)
    version = request.match_info["version"]
    encoded = [dumps(file_view(meta, base_url(request), version)) for meta in page]
    return json_response(list_body("files", encoded, token))


@endpoint("gemini")
async def get_file(request: web.Request) -> web.StreamResponse:
    """``GET /{v}/files/{id}`` and ``GET /{v}/files/{id}:download?alt=media``."""
    service = service_of(request)
    file_id, _, verb = request.match_info["file"].partition(":")
    if verb == "download":
        if request.query.get("alt") != "media":
            raise invalid_argument("Downloads need ?alt=media.")
        meta = service.files.get(file_id)
        path = service.files.data_path(file_id)
        return web.FileResponse(
            path, headers={"Content-Type": meta.get("mimeType", "application/octet-stream")}
        )
    if verb:
        raise not_found(f"Unknown method {verb!r} on a file.")
    meta = service.files.get(file_id)
    return json_response(file_view(meta, base_url(request), request.match_info["version"]))


@endpoint("gemini")
async def delete_file(request: web.Request) -> web.Response:
    """``DELETE /{v}/files/{id}``."""
    service_of(request).files.delete(request.match_info["file"])
    return json_response(b"{}")


async def model_method(request: web.Request) -> web.StreamResponse:
    """``POST /{v}/models/{model}:{method}``: countTokens, else a batch create."""
    if request.match_info["model"].endswith(":countTokens"):
        return await count_gemini_tokens(request)
    return await create_batch(request)


def add_routes(app: web.Application) -> None:
    """Register the Gemini API and Files API routes."""
    version = r"{version:v1|v1beta|v1alpha}"
    app.router.add_post(f"/{version}/models/{{model}}", model_method)
    app.router.add_get(f"/{version}/batches", list_batches)
    app.router.add_get(f"/{version}/batches/{{batch}}", get_batch)
    app.router.add_post(f"/{version}/batches/{{batch}}", batch_action)
    app.router.add_delete(f"/{version}/batches/{{batch}}", delete_batch)
    app.router.add_post(f"/upload/{version}/files", upload)
    app.router.add_get(f"/{version}/files", list_files)
    app.router.add_get(f"/{version}/files/{{file}}", get_file)
    app.router.add_delete(f"/{version}/files/{{file}}", delete_file)
