"""Fixtures of the unit tests: fake services installed at the client boundary, no sleeping."""

from __future__ import annotations

import time
import types as pytypes
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.gemini_batch.fakes import FakeReads, FakeService


@pytest.fixture
def preflight_reads(monkeypatch: pytest.MonkeyPatch) -> FakeReads:
    """The create operator's pre-flight reads, answered by a :class:`FakeReads` (all fine by default)."""
    from gemini_batch import operators, preflight

    reads = FakeReads()
    monkeypatch.setattr(operators, "CloudReads", lambda **_: reads)

    def check(*args: Any, allow_cross_project: bool, **kwargs: Any) -> None:
        allow = allow_cross_project or reads.allow_cross_project
        preflight.check(*args, allow_cross_project=allow, **kwargs)

    monkeypatch.setattr(operators, "preflight_check", check)
    return reads


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, preflight_reads: FakeReads) -> Iterator[Callable[..., None]]:
    """``install(vertex=FakeService(), gemini_api=FakeService("gemini_api"))``: hooks get fake clients."""
    from gemini_batch import hooks

    hooks.clear_client_cache()
    services: dict[str, FakeService] = {}

    def build(self: hooks.GeminiBatchHook) -> hooks._ClientEntry:
        service = services.get(self.backend)
        if service is None:
            raise AssertionError(f"no fake service installed for {self.backend}")
        vertex = self.backend == "vertex"
        settings = hooks.ClientSettings(
            self.backend,
            self.conn_id,
            (self.project_id or service.project) if vertex else None,
            (self.location or service.location) if vertex else None,
            None,
        )
        return hooks._ClientEntry(service.client(), settings)

    monkeypatch.setattr(hooks.GeminiBatchHook, "_build_entry", build)

    def _install(**by_backend: FakeService) -> None:
        services.update(by_backend)

    yield _install
    hooks.clear_client_cache()


@pytest.fixture
def vertex(install: Callable[..., None]) -> FakeService:
    service = FakeService("vertex")
    install(vertex=service)
    return service


@pytest.fixture
def gemini(install: Callable[..., None]) -> FakeService:
    service = FakeService("gemini_api")
    install(gemini_api=service)
    return service


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No real sleeping in the polling core, operators or the trigger; the requested sleeps are recorded."""
    from gemini_batch import operators, polling

    recorded: list[float] = []
    monkeypatch.setattr(operators, "time", pytypes.SimpleNamespace(time=time.time, sleep=recorded.append))
    monkeypatch.setattr(polling, "sleep", recorded.append)

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(polling, "asleep", fake_sleep)
    return recorded


def run_trigger(trigger: Any) -> list[Any]:
    """Run a trigger to its end in a fresh event loop; return its events."""
    import asyncio

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


class UpperRng:
    """A ``random.Random`` stand-in whose ``uniform(a, b)`` is ``b``: every jittered delay is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def exact_jitter(monkeypatch: pytest.MonkeyPatch) -> UpperRng:
    """Every new Poller draws its jitter from :class:`UpperRng`, so the delays of every loop are exact."""
    from gemini_batch import polling

    rng = UpperRng()
    monkeypatch.setattr(polling, "make_rng", lambda: rng)
    return rng
