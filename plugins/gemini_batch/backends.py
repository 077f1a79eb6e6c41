"""The two backends and what is fixed per backend: names, default connections, the inline ceiling.

Invariants: this module is the one home of the ``Backend`` vocabulary, of the default connection
id of each backend and of the Gemini API's inline-request ceiling together with the one way the
size of inline requests is measured (:func:`inline_request_bytes`); every other module imports
them from here. It imports nothing from the provider or from an SDK, so anything may import it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "BACKENDS",
    "DEFAULT_CONN_IDS",
    "DEFAULT_GCP_CONN_ID",
    "DEFAULT_GEMINI_API_CONN_ID",
    "GEMINI_API_INLINE_MAX_BYTES",
    "Backend",
    "inline_request_bytes",
]

Backend = Literal["vertex", "gemini_api"]
BACKENDS: tuple[Backend, ...] = ("vertex", "gemini_api")

#: Vertex AI jobs run on a Google Cloud connection.
DEFAULT_GCP_CONN_ID = "google_cloud_default"
#: Gemini API jobs run on a Gemini API connection (an API key).
DEFAULT_GEMINI_API_CONN_ID = "gemini_api_default"
#: The default connection id of each backend.
DEFAULT_CONN_IDS: Mapping[Backend, str] = MappingProxyType(
    {"vertex": DEFAULT_GCP_CONN_ID, "gemini_api": DEFAULT_GEMINI_API_CONN_ID}
)

#: The Gemini API accepts at most 20 MB of inline requests in one batch create call.
GEMINI_API_INLINE_MAX_BYTES = 20_000_000


def inline_request_bytes(requests: Iterable[Any]) -> int:
    """The size of inline requests as they travel: bytes of the list as compact JSON.

    ASCII-escaped (``json.dumps``' default, as HTTP clients send JSON), so a non-ASCII prompt
    counts at least as much as on the wire; values JSON cannot encode count as their ``str``.

    :param requests: Required. The inline requests (dicts), or any JSON-able items.
    """
    return len(json.dumps(list(requests), separators=(",", ":"), default=str).encode("ascii"))
