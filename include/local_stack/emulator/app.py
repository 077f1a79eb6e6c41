"""The aiohttp application: one port for Vertex, the Gemini API, the Files API and admin.

Invariant: any answer that is not a 200 from a handler (unknown path, wrong method, a bug) is
still the Google JSON error shape, so SDK clients always get an ``APIError`` they can read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from . import api_admin, api_gemini, api_models, api_tokens, api_vertex
from .api_common import SERVICE_KEY, error_response
from .errors import ApiError
from .service import Service, Settings

log = logging.getLogger(__name__)

#: Upload chunks are 8 MiB and inline batches up to 20 MB (checked by the handler).
CLIENT_MAX_SIZE = 64 * 1024 * 1024


@web.middleware
async def _errors(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            return error_response(
                ApiError(413, "Request payload size exceeds the limit.", "INVALID_ARGUMENT")
            )
        return error_response(ApiError(exc.status, exc.reason or "Error"))
    except Exception as exc:  # noqa: BLE001 - answer in the API's shape, log the bug
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ApiError(500, f"Internal error encountered: {exc}", "INTERNAL"))


def create_app(settings: Settings) -> web.Application:
    """The application; its :class:`~.service.Service` starts and stops with it."""
    app = web.Application(middlewares=[_errors], client_max_size=CLIENT_MAX_SIZE)
    service = Service(settings)
    app[SERVICE_KEY] = service

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(lifecycle)
    api_admin.add_routes(app)
    api_vertex.add_routes(app)
    api_gemini.add_routes(app)
    api_models.add_routes(app)
    api_tokens.add_routes(app)
    return app
