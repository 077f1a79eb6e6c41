"""A pass-through HTTP proxy in front of the Gemini emulator that answers slowly on request.

Invariants: every request is forwarded unchanged (method, path, headers, body; Host stays the
client's, so URLs the emulator builds point back at the proxy) and its answer returned unchanged
but for hop-by-hop headers. A request whose path contains a string given to :meth:`slow` waits
that long before it is forwarded (a slow service, for one job only; the rest of the deployment
runs at full speed). The proxy runs in threads of the test process; :meth:`close` stops it.

Stdlib only (http.server + http.client): a test helper of 80 lines, where a proxy package would
be a new dependency for one delay.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


class DelayProxy:
    """``DelayProxy(target_port)``: listens on 127.0.0.1:``port`` and forwards to 127.0.0.1:target_port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._slow: dict[str, float] = {}
        self.delayed: list[str] = []  # "METHOD path" of every delayed request, for the test's report
        self.abandoned: list[str] = []  # ... of every request whose client had gone when it was answered
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _forward(self) -> None:
                proxy._maybe_wait(self.command, self.path)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    self.send_error(501, "chunked request bodies are not forwarded")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=300)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                try:
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    proxy.abandoned.append(f"{self.command} {self.path}")  # the client gave up waiting
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="delay-proxy", daemon=True)
        self._thread.start()

    def slow(self, match: str, delay_s: float) -> None:
        """Answer every request whose path contains ``match`` ``delay_s`` seconds late."""
        self._slow[match] = delay_s

    def _maybe_wait(self, method: str, path: str) -> None:
        delay = max((d for match, d in list(self._slow.items()) if match in path), default=0.0)
        if delay:
            self.delayed.append(f"{method} {path}")
            time.sleep(delay)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
