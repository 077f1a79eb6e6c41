"""API errors in the shape Google APIs use: ``{"error": {"code", "message", "status"}}``.

Invariant: every non-200 answer of the API routes is built here, so clients (the SDK's
``APIError.raise_for_response``, google-api-core) parse all of them the same way.
"""

from __future__ import annotations

from typing import Any

STATUS_BY_CODE: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: gRPC status names -> their numeric codes (job ``error.code`` uses these).
GRPC_CODES: dict[str, int] = {
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}

UNAUTHENTICATED_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_API_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INVALID_API_KEY_MESSAGE = "API key not valid. Please pass a valid API key."


class ApiError(Exception):
    """An API call that ends in an error answer.

    :param code: Required. The HTTP status.
    :param message: Required. The developer-facing message.
    :param status: Optional. The gRPC status name; derived from ``code`` when omitted.
    """

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_BY_CODE.get(code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def invalid_argument(message: str) -> ApiError:
    """A 400 INVALID_ARGUMENT."""
    return ApiError(400, message, "INVALID_ARGUMENT")


def failed_precondition(message: str) -> ApiError:
    """A 400 FAILED_PRECONDITION (e.g. cancelling a finished job)."""
    return ApiError(400, message, "FAILED_PRECONDITION")


def not_found(message: str = "Requested entity was not found.") -> ApiError:
    """A 404 NOT_FOUND."""
    return ApiError(404, message, "NOT_FOUND")


def job_error(status: str, message: str) -> dict[str, Any]:
    """A job's ``error`` field (a google.rpc.Status): numeric gRPC code and message."""
    return {"code": GRPC_CODES.get(status, 2), "message": message}
