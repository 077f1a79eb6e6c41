"""What every API route shares: authentication, injected errors, JSON in and out, paging.

Invariants: an API handler is wrapped by :func:`endpoint`, which authenticates first (Vertex:
any ``Authorization: Bearer`` token, else 401; Gemini API: the configured key in
``x-goog-api-key`` or ``?key=``, a missing key 403 PERMISSION_DENIED and a wrong one 400
INVALID_ARGUMENT with an ErrorInfo ``API_KEY_INVALID``, as the real service answers), then applies ``api_error_ratio``, then runs the handler; every error leaves as the
Google JSON error shape. Page tokens are opaque to clients and stable while jobs are created.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import UNAUTHENTICATED_MESSAGE, ApiError, invalid_api_key, invalid_argument, missing_api_key
from .faults import API_ERRORS
from .jsonutil import dumps, loads

if TYPE_CHECKING:
    from .service import Service

SERVICE_KEY: web.AppKey[Service] = web.AppKey("service", object)  # type: ignore[arg-type]
JSON_TYPE = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def service_of(request: web.Request) -> Service:
    """The app's :class:`~.service.Service`."""
    return request.app[SERVICE_KEY]


def json_response(value: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer (``value`` may already be encoded bytes)."""
    body = value if isinstance(value, bytes) else dumps(value)
    return web.Response(body=body, status=status, content_type=JSON_TYPE, headers=headers)


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    """The Google error shape for ``error``."""
    return json_response(error.body(), status=error.code, headers=headers)


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    """The parsed JSON body; a 400 if it is not JSON (or missing when required)."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise invalid_argument("The request body is empty; a JSON object is required.")
        return {}
    try:
        return loads(raw)
    except ValueError as exc:
        raise invalid_argument(f"Invalid JSON payload received. {exc}") from exc


def _authenticate(request: web.Request, auth: str, api_key: str) -> None:
    if auth == "vertex":
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, UNAUTHENTICATED_MESSAGE, "UNAUTHENTICATED")
    elif auth == "gemini":
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise missing_api_key()
        if key != api_key:
            raise invalid_api_key()


def endpoint(auth: str | None, *, inject: bool = True) -> Callable[[Handler], Handler]:
    """Wrap an API handler with authentication (``vertex``/``gemini``/None) and fault injection."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            service = service_of(request)
            try:
                if auth is not None:
                    _authenticate(request, auth, service.settings.api_key)
                if inject:
                    code = service.api_errors.next_error(service.faults)
                    if code is not None:
                        status, message = API_ERRORS[code]
                        raise ApiError(
                            code, f"{message} (injected by the local emulator: api_error_ratio)", status
                        )
                return await handler(request)
            except ApiError as error:
                return error_response(error)

        return wrapped

    return decorate


# --- paging ----------------------------------------------------------------------------------


def page_size(request: web.Request, default: int, maximum: int) -> int:
    """``pageSize`` from the query (0 or missing -> default, capped at ``maximum``)."""
    raw = request.query.get("pageSize") or request.query.get("page_size")
    if raw in (None, ""):
        return default
    try:
        size = int(raw)
    except ValueError as exc:
        raise invalid_argument(f"Invalid pageSize {raw!r}.") from exc
    if size < 0:
        raise invalid_argument("pageSize must not be negative.")
    return min(size or default, maximum)


def encode_token(position: int) -> str:
    """An opaque page token for 'items after sequence number ``position``'."""
    return base64.urlsafe_b64encode(f"p:{position}".encode()).decode().rstrip("=")


def decode_token(token: str | None) -> int | None:
    """The position in a page token (None for the first page); a 400 for a bad token."""
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "p":
            raise ValueError(text)
        return int(value)
    except ValueError as exc:
        raise invalid_argument(f"Invalid page token {token!r}.") from exc


def base_url(request: web.Request) -> str:
    """``http://host:port`` as the client addressed this server."""
    return f"{request.scheme}://{request.host}"


def paginate_jobs(
    request: web.Request, jobs: list[Any], default: int, maximum: int
) -> tuple[list[Any], str | None]:
    """One page of ``jobs`` (newest first) and the next page's token (None on the last page)."""
    size = page_size(request, default, maximum)
    position = decode_token(request.query.get("pageToken") or request.query.get("page_token"))
    if position is not None:
        jobs = [job for job in jobs if job.seq < position]
    page = jobs[:size]
    token = encode_token(page[-1].seq) if len(jobs) > size else None
    return page, token


def paginate_offset(
    request: web.Request, items: list[Any], default: int, maximum: int
) -> tuple[list[Any], str | None]:
    """One page of ``items`` by offset, and the next page's token."""
    size = page_size(request, default, maximum)
    start = decode_token(request.query.get("pageToken") or request.query.get("page_token")) or 0
    page = items[start : start + size]
    token = encode_token(start + size) if start + size < len(items) else None
    return page, token


def list_body(key: str, encoded_items: list[bytes], token: str | None) -> bytes:
    """``{"<key>": [...], "nextPageToken": ...}`` from already encoded items."""
    body = b'{"' + key.encode() + b'":[' + b",".join(encoded_items) + b"]"
    if token:
        body += b',"nextPageToken":' + dumps(token)
    return body + b"}"
