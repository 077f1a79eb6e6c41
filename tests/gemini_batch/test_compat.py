"""compat.py: the private Gemini API batch read keeps row counts and errors, and any SDK change falls back."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.genai import types

from gemini_batch import compat
from tests.gemini_batch import compat_contract
from tests.gemini_batch.fakes import api_error

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "name": "batches/contract",
    "state": "JOB_STATE_FAILED",
    "counts": [6, 3, 1],
    "error": "input file is not JSONL",
}
PUBLIC_JOB = types.BatchJob(name="batches/contract", state="JOB_STATE_RUNNING")


def assert_contract(result: dict) -> None:
    assert result["probe"] is True, result["reason"]
    assert result["sync"] == EXPECTED
    assert result["async"] == EXPECTED
    assert all(path.endswith("/batches/contract") for path in result["paths"]) and len(result["paths"]) == 2


def test_contract_with_the_installed_google_genai():
    assert_contract(compat_contract.check())


@pytest.mark.integration
def test_contract_with_the_oldest_supported_google_genai(tmp_path):
    """requirements.txt says google-genai>=2.30,<3: the oldest 2.30.x must pass the same contract."""
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    if not os.path.exists(uv):
        pytest.skip("uv is not installed")
    target = tmp_path / "genai"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-deps", "--target", str(target), "google-genai==2.30.*"],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT / "plugins"), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, str(Path(compat_contract.__file__))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["version"].startswith("2.30."), result
    assert result["module"].startswith(str(target)), result
    assert_contract(result)


def test_the_probe_passes_on_the_installed_sdk_and_runs_once(monkeypatch):
    assert compat.probe() == compat.Probe(True)
    assert compat.probe.cache_info().currsize == 1


@pytest.mark.parametrize(
    ("module", "name", "replacement"),
    [
        ("google.genai.batches", "_BatchJob_from_mldev", lambda from_object, *, root: {}),
        ("google.genai._api_client.BaseApiClient", "request", lambda self, method, path: None),
        ("google.genai._api_client.BaseApiClient", "async_request", lambda self, request: None),
        (
            "google.genai.batches",
            "_BatchJob_from_mldev",
            lambda from_object, parent_object=None: {},
        ),  # drops the state
    ],
)
def test_the_probe_fails_on_a_changed_sdk(monkeypatch, module, name, replacement):
    monkeypatch.setattr(f"{module}.{name}", replacement)
    result = compat.probe.__wrapped__()
    assert result.ok is False and result.reason


def test_the_probe_fails_when_a_private_name_is_gone(monkeypatch):
    monkeypatch.delattr("google.genai.batches._BatchJob_from_mldev")
    assert compat.probe.__wrapped__().reason.startswith("AttributeError")


class RawApi:
    """``client._api_client`` look-alike: ``request`` / ``async_request`` do what ``behave`` says."""

    def __init__(self, behave):
        self.behave = behave
        self.calls = 0

    def request(self, method, path, request_dict, http_options):
        self.calls += 1
        return self.behave()

    async def async_request(self, method, path, request_dict, http_options):
        self.calls += 1
        return self.behave()


class PublicBatches:
    def __init__(self):
        self.calls = 0

    def get(self, *, name):
        self.calls += 1
        return PUBLIC_JOB


class AsyncPublicBatches(PublicBatches):
    async def get(self, *, name):  # type: ignore[override]
        self.calls += 1
        return PUBLIC_JOB


def client_with(behave):
    raw = RawApi(behave)
    return SimpleNamespace(
        _api_client=raw,
        batches=PublicBatches(),
        aio=SimpleNamespace(_api_client=raw, batches=AsyncPublicBatches()),
    )


def body(payload) -> SimpleNamespace:
    return SimpleNamespace(body=json.dumps(payload))


def read_both(client):
    return compat.get_gemini_batch(client, "batches/contract"), asyncio.run(
        compat.aget_gemini_batch(client, "batches/contract")
    )


def changed_signature():
    raise TypeError("request() takes 3 positional arguments but 5 were given")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(compat, "_warned", set())


@pytest.mark.parametrize(
    "behave",
    [
        changed_signature,
        lambda: SimpleNamespace(body="<html>not json</html>"),
        lambda: body(["not", "a", "batch"]),
    ],
)
def test_any_failure_of_the_private_call_falls_back_to_the_public_get(behave, caplog):
    client = client_with(behave)
    with caplog.at_level("WARNING", logger="gemini_batch.compat"):
        sync_job, async_job = read_both(client)
        read_both(client)
    assert sync_job is PUBLIC_JOB and async_job is PUBLIC_JOB
    assert client.batches.calls == 2 and client.aio.batches.calls == 2
    assert client._api_client.calls == 4
    assert len([r for r in caplog.records if "private batch read is not usable" in r.getMessage()]) == 1


def test_a_client_without_the_private_transport_uses_the_public_get():
    client = SimpleNamespace(batches=PublicBatches(), aio=SimpleNamespace(batches=AsyncPublicBatches()))
    assert read_both(client) == (PUBLIC_JOB, PUBLIC_JOB)


def test_a_failed_probe_never_calls_the_private_transport(monkeypatch):
    monkeypatch.setattr(compat, "probe", lambda: compat.Probe(False, "ImportError: no _api_client"))
    client = client_with(lambda: body(compat_contract.BODY))
    assert read_both(client) == (PUBLIC_JOB, PUBLIC_JOB)
    assert client._api_client.calls == 0


def test_errors_of_the_service_are_not_swallowed():
    def unavailable():
        raise api_error(503)

    client = client_with(unavailable)
    with pytest.raises(Exception) as sync_error:
        compat.get_gemini_batch(client, "batches/contract")
    with pytest.raises(Exception) as async_error:
        asyncio.run(compat.aget_gemini_batch(client, "batches/contract"))
    assert sync_error.value.code == 503 and async_error.value.code == 503
    assert client.batches.calls == 0 and client.aio.batches.calls == 0


def test_the_private_read_keeps_counts_and_error():
    job, ajob = read_both(client_with(lambda: body(compat_contract.BODY)))
    assert compat_contract.summary(job) == EXPECTED == compat_contract.summary(ajob)


@pytest.mark.parametrize(("name", "path"), [("batches/abc", "batches/abc"), ("abc", "batches/abc")])
def test_the_private_read_asks_for_the_batch_by_id(name, path):
    seen = []

    class Api(RawApi):
        def request(self, method, p, request_dict, http_options):
            seen.append((method, p))
            return body(compat_contract.BODY)

    client = SimpleNamespace(_api_client=Api(None))
    compat.get_gemini_batch(client, name)
    assert seen == [("get", path)]
