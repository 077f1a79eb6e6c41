"""The admin API (docs/design.md): health, every job, fault switches, reset.

Paths::

    GET    /admin/health   {"service": "gemini-batch-emulator", "pid": N}
    GET    /admin/jobs     {"jobs": [...]}: every job ever created, deleted ones flagged
    GET    /admin/faults   the switches
    PUT    /admin/faults   partial update (PATCH too); 400 on an unknown field or a bad value
    DELETE /admin/faults   back to defaults
    POST   /admin/reset    forget every job, file and fault

Invariant: admin calls need no credentials and are never subject to injected API errors.
"""

from __future__ import annotations

import os

from aiohttp import web

from .api_common import error_response, json_body, json_response, list_body, service_of
from .errors import ApiError, invalid_argument
from .faults import FaultError

SERVICE_NAME = "gemini-batch-emulator"


async def health(request: web.Request) -> web.Response:
    """Who answers, for health checks that must be sure it is this process."""
    service = service_of(request)
    return json_response(
        {
            "service": SERVICE_NAME,
            "pid": os.getpid(),
            "project": service.settings.project,
            "location": service.settings.location,
            "jobs": len(service.jobs),
        }
    )


async def jobs(request: web.Request) -> web.Response:
    """Every job ever created, oldest first."""
    encoded = [job.cached("admin", job.admin_view) for job in service_of(request).jobs.values()]
    return json_response(list_body("jobs", encoded, None))


async def get_faults(request: web.Request) -> web.Response:
    """The current switches."""
    return json_response(service_of(request).faults.to_dict())


async def put_faults(request: web.Request) -> web.Response:
    """Partial update of the switches."""
    try:
        changes = await json_body(request)
        faults = service_of(request).set_faults(changes)
    except FaultError as exc:
        return error_response(invalid_argument(str(exc)))
    except ApiError as error:
        return error_response(error)
    return json_response(faults.to_dict())


async def delete_faults(request: web.Request) -> web.Response:
    """Back to defaults."""
    return json_response(service_of(request).reset_faults().to_dict())


async def reset(request: web.Request) -> web.Response:
    """Forget everything."""
    await service_of(request).reset()
    return json_response({"reset": True})


def add_routes(app: web.Application) -> None:
    """Register the admin routes."""
    app.router.add_get("/admin/health", health)
    app.router.add_get("/admin/jobs", jobs)
    app.router.add_get("/admin/faults", get_faults)
    app.router.add_put("/admin/faults", put_faults)
    app.router.add_patch("/admin/faults", put_faults)
    app.router.add_delete("/admin/faults", delete_faults)
    app.router.add_post("/admin/reset", reset)
