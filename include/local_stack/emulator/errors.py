"""API errors in the shape Google APIs use: ``{"error": {"code", "message", "status"[, "details"]}}``.

Invariants: every non-200 answer of the API routes is built here, so clients (the SDK's
``APIError.raise_for_response``, google-api-core) parse all of them the same way; an error
built from an HTTP code alone gets that code's canonical status name (:data:`STATUS_BY_CODE`,
one table, also used by injected faults); a row error (:func:`row_error`) is a
``google.rpc.Status``: only ``code``, ``message`` and (when non-empty) ``details``.
"""

from __future__ import annotations

from typing import Any

#: HTTP status -> the canonical gRPC status name. For the codes ``google/rpc/code.proto``
#: maps (its "HTTP Mapping" lines) this is that name; where two names share a code (409:
#: ALREADY_EXISTS and ABORTED; 400: INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE; 500:
#: INTERNAL, UNKNOWN, DATA_LOSS) the generic one is used and a handler that means the specific
#: one says so explicitly. 408, 413 and 502 have no code.proto mapping: the names are what
#: Google front ends answer for a timeout, a too large body and a bad gateway.
STATUS_BY_CODE: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
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
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
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
GEMINI_SERVICE = "generativelanguage.googleapis.com"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
LOCALIZED_MESSAGE_TYPE = "type.googleapis.com/google.rpc.LocalizedMessage"


class ApiError(Exception):
    """An API call that ends in an error answer.

    :param code: Required. The HTTP status.
    :param message: Required. The developer-facing message.
    :param status: Optional. The gRPC status name; derived from ``code`` when omitted.
    :param details: Optional. ``google.protobuf.Any`` objects (each with ``@type``).
    """

    def __init__(
        self, code: int, message: str, status: str | None = None, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_BY_CODE.get(code, "UNKNOWN")
        self.details = list(details or [])

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def missing_api_key() -> ApiError:
    """No API key at all: the Gemini API answers 403 PERMISSION_DENIED (not 401)."""
    return ApiError(403, MISSING_API_KEY_MESSAGE, "PERMISSION_DENIED")


def invalid_api_key() -> ApiError:
    """A key that is not valid: 400 INVALID_ARGUMENT with an ErrorInfo ``API_KEY_INVALID``."""
    return ApiError(
        400,
        INVALID_API_KEY_MESSAGE,
        "INVALID_ARGUMENT",
        details=[
            {
                "@type": ERROR_INFO_TYPE,
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": GEMINI_SERVICE},
            },
            {"@type": LOCALIZED_MESSAGE_TYPE, "locale": "en-US", "message": INVALID_API_KEY_MESSAGE},
        ],
    )


def row_error(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One failed row's error, a ``google.rpc.Status``: ``code``, ``message`` and ``details`` only."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return error


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
