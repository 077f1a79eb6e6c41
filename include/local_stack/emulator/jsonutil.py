"""Fast JSON for the hot paths (polling, row output): orjson when installed, else the stdlib.

Invariant: :func:`dumps` returns compact UTF-8 bytes and :func:`loads` accepts bytes or str,
whichever library is underneath, so callers never care which one it is.
"""

from __future__ import annotations

import json
from typing import Any

try:  # orjson comes with Airflow; the emulator alone does not need it.
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only in a bare emulator environment
    _orjson = None


def _default(value: Any) -> Any:
    """Encode what a BigQuery row may hold (dates, decimals, bytes) as BigQuery's JSON does."""
    import base64
    import datetime as dt
    import decimal

    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


if _orjson is not None:
    _OPTIONS = _orjson.OPT_NON_STR_KEYS

    def dumps(value: Any) -> bytes:
        """Compact JSON bytes."""
        return _orjson.dumps(value, default=_default, option=_OPTIONS)

    def loads(data: bytes | str) -> Any:
        """Parse JSON from bytes or str."""
        return _orjson.loads(data)

else:  # pragma: no cover

    def dumps(value: Any) -> bytes:
        """Compact JSON bytes."""
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default).encode()

    def loads(data: bytes | str) -> Any:
        """Parse JSON from bytes or str."""
        return json.loads(data)


JSONDecodeError = ValueError  # both libraries raise subclasses of ValueError
