"""Contract of compat.py with one google-genai version: run in-process, or as a script in a subprocess.

``python compat_contract.py`` (with the google-genai under test first on ``sys.path`` and
plugins/ on it) prints one JSON line: the SDK version, whether the probe passed, and what a sync
and an async Gemini API batch read returned through a real ``genai.Client`` against a local HTTP
server that answers like the Gemini API (row counts in ``metadata.batchStats``, the batch error).
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BODY = {
    "name": "batches/contract",
    "metadata": {
        "displayName": "contract awid-1",
        "state": "BATCH_STATE_FAILED",
        "model": "models/gemini-2.5-flash",
        "batchStats": {
            "requestCount": "10",
            "successfulRequestCount": "6",
            "failedRequestCount": "3",
            "pendingRequestCount": "1",
        },
    },
    "done": True,
    "error": {"code": 3, "message": "input file is not JSONL"},
}


class _Handler(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Handler.paths.append(self.path)
        data = json.dumps(BODY).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def summary(job: Any) -> dict[str, Any]:
    stats = job.completion_stats
    return {
        "name": job.name,
        "state": str(getattr(job.state, "value", job.state)),
        "counts": None
        if stats is None
        else [stats.successful_count, stats.failed_count, stats.incomplete_count],
        "error": None if job.error is None else job.error.message,
    }


def check() -> dict[str, Any]:
    """Read one batch through compat.py with the installed google-genai; return what came back."""
    import google.genai
    from google import genai

    from gemini_batch import compat

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = genai.Client(api_key="contract-key", http_options={"base_url": url})
        sync_job = compat.get_gemini_batch(client, "batches/contract")
        async_job = asyncio.run(compat.aget_gemini_batch(client, "batches/contract"))
    finally:
        server.shutdown()
    return {
        "version": google.genai.__version__,
        "module": google.genai.__file__,
        "probe": compat.probe().ok,
        "reason": compat.probe().reason,
        "sync": summary(sync_job),
        "async": summary(async_job),
        "paths": list(_Handler.paths),
    }


if __name__ == "__main__":
    print(json.dumps(check()))
