"""AdminClient: a stdlib-only client of the Gemini batch emulator's admin API.

Usable from any test suite (the project's and its users'): it imports nothing beyond the
standard library. Invariants: every call is bounded by ``timeout``; every wait polls a
condition with a bound and raises :class:`TimeoutError` naming what it waited for; a non-2xx
answer raises :class:`AdminError` with the server's message.

Typical use::

    admin = AdminClient()                       # $LOCAL_STACK_ADMIN_URL
    admin.reset()                               # no jobs, no files, no faults
    with admin.faults_set(row_failure_ratio=0.5, partial_success_state=True):
        ...                                     # jobs created here snapshot these faults
    job = admin.wait_for_job(name, states={"JOB_STATE_SUCCEEDED"})
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Generator
from typing import Any

#: States a job never leaves.
TERMINAL_STATES = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
    }
)


class AdminError(RuntimeError):
    """The admin API answered with an error.

    :param status: Required. The HTTP status.
    :param message: Required. The server's message (or body).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class AdminClient:
    """Client of ``/admin`` on the Gemini batch emulator.

    :param admin_url: Optional. The admin base URL (``http://127.0.0.1:P/admin``); defaults to
        ``$LOCAL_STACK_ADMIN_URL``.
    :param timeout: Optional. Seconds for each HTTP call.
    """

    def __init__(self, admin_url: str | None = None, *, timeout: float = 30.0) -> None:
        url = admin_url or os.environ.get("LOCAL_STACK_ADMIN_URL")
        if not url:
            raise ValueError(
                "no admin URL: pass admin_url or set LOCAL_STACK_ADMIN_URL (make stack-up writes it)"
            )
        self.admin_url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.admin_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                text = json.loads(text)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                pass
            raise AdminError(exc.code, text) from None
        return json.loads(payload) if payload else None

    # --- service ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"service": "gemini-batch-emulator", "pid": N, ...}``."""
        return self._call("GET", "/health")

    def reset(self) -> None:
        """Forget every job, file and fault."""
        self._call("POST", "/reset")

    # --- jobs ---------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """Every job ever created, oldest first, deleted ones flagged ``deleted: true``.

        Each: ``name, backend, display_name, labels, state, counts {succeeded, failed,
        incomplete, total}, create_time, deleted`` plus ``model, error, start_time, end_time,
        update_time, source, destination, output_info, responses_file, history``.
        """
        return self._call("GET", "/jobs")["jobs"]

    def job(self, name: str) -> dict[str, Any]:
        """One job by full name (or Vertex numeric id); KeyError if none."""
        for job in self.jobs():
            if job["name"] == name or job["name"].rsplit("/", 1)[-1] == name:
                return job
        raise KeyError(f"no job named {name!r}")

    def wait_for_job(
        self,
        name: str,
        *,
        states: Collection[str] = TERMINAL_STATES,
        timeout: float = 60.0,
        interval: float = 0.05,
    ) -> dict[str, Any]:
        """Poll until the job is in one of ``states``; returns it. TimeoutError otherwise."""
        return self.wait_until(
            lambda: (lambda job: job if job["state"] in states else None)(self.job(name)),
            timeout=timeout,
            interval=interval,
            what=f"job {name} to reach one of {sorted(states)}",
        )

    def wait_until(
        self,
        condition: Callable[[], Any],
        *,
        timeout: float = 60.0,
        interval: float = 0.05,
        what: str = "a condition",
    ) -> Any:
        """Call ``condition`` until it returns something truthy (returned); bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
            time.sleep(interval)

    # --- faults -------------------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        """The current fault switches."""
        return self._call("GET", "/faults")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change some switches (a partial update); returns all of them. AdminError on a bad value.

        Fields: ``job_failure`` (str|None), ``row_failure_ratio`` (0..1), ``row_failure_tries``
        (int >= 1 | None), ``row_permanent_failure_ratio`` (0..1), ``api_error_ratio``
        (0..1), ``api_error_codes`` (list of HTTP codes), ``row_latency_ms``,
        ``queue_delay_s``, ``pause_s``, ``expire_after_s`` (float|None),
        ``partial_success_state`` (bool).
        """
        return self._call("PUT", "/faults", changes)

    def reset_faults(self) -> dict[str, Any]:
        """All switches back to defaults (no faults)."""
        return self._call("DELETE", "/faults")

    @contextlib.contextmanager
    def faults_set(self, **changes: Any) -> Generator[dict[str, Any], None, None]:
        """Set switches for the ``with`` block, then restore the previous values."""
        before = self.faults()
        applied = self.set_faults(**changes)
        try:
            yield applied
        finally:
            self.set_faults(**{name: before[name] for name in changes})
