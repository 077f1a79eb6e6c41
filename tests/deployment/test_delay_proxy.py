"""delay_proxy.py: forwards every request unchanged; delays only the paths it was told to."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .delay_proxy import DelayProxy


@pytest.fixture
def echo() -> Iterator[int]:
    """An upstream that answers every request with what it received, as JSON."""

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.dumps({
                "method": self.command, "path": self.path, "body": body.decode(),
                "host": self.headers["Host"], "x": self.headers.get("X-Goog-Test"),
            }).encode()  # fmt: skip
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Upstream", "yes")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_proxy_forwards_unchanged_and_delays_only_matching_paths(echo: int) -> None:
    proxy = DelayProxy(echo)
    try:
        proxy.slow("batches/slow", 0.01)
        request = urllib.request.Request(
            f"http://127.0.0.1:{proxy.port}/v1beta/batches/slow:cancel",
            data=b'{"a": 1}',
            headers={"X-Goog-Test": "kept", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as answer:
            seen = json.loads(answer.read())
            assert answer.status == 201 and answer.headers["X-Upstream"] == "yes"
        assert seen == {
            "method": "POST", "path": "/v1beta/batches/slow:cancel", "body": '{"a": 1}',
            "host": f"127.0.0.1:{proxy.port}", "x": "kept",
        }  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{proxy.port}/v1beta/batches/fast") as answer:
            assert json.loads(answer.read())["method"] == "GET"
        assert proxy.delayed == ["POST /v1beta/batches/slow:cancel"]
    finally:
        proxy.close()
