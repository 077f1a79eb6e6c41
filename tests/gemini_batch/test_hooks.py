"""hooks.py: client per connection, credentials, error classes, backoff, sync and async methods."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from gemini_batch import compat, hooks
from gemini_batch.api_errors import error_kind, http_status, is_transient_error
from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchJobNotFound
from gemini_batch.hooks import ANONYMOUS_TOKEN, GeminiApiHook, GeminiBatchHook
from gemini_batch.identity import WorkIdentity
from gemini_batch.polling import Backoff
from gemini_batch.sources import parse_source
from tests.gemini_batch.fakes import api_error

SECRET = "sk-unit-test-secret-key-0001"


# ---------------------------------------------------------------------------- errors, backoff


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (api_error(429), "transient"),
        (api_error(503), "transient"),
        (api_error(500), "transient"),
        (api_error(408), "transient"),
        (api_error(401), "auth"),
        (api_error(404), "not_found"),
        (api_error(400), "fatal"),
        (api_error(403), "fatal"),
        (httpx.ConnectTimeout("slow"), "transient"),
        (httpx.ConnectError("refused"), "transient"),
        (httpx.RemoteProtocolError("eof"), "transient"),
        (asyncio.TimeoutError(), "transient"),
        (ConnectionResetError(), "transient"),
        (ValueError("bug"), "fatal"),
    ],
)
def test_error_kind(exc, kind):
    assert error_kind(exc) == kind
    assert is_transient_error(exc) is (kind in ("transient", "auth"))


def test_aiohttp_connection_errors_are_transient():
    aiohttp = pytest.importorskip("aiohttp")
    assert error_kind(aiohttp.ClientConnectionError("reset")) == "transient"
    assert error_kind(aiohttp.ServerDisconnectedError()) == "transient"


def test_http_status_of_an_api_error():
    assert http_status(api_error(429)) == 429
    assert http_status(ValueError()) is None


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    backoff = Backoff(base=2.0, cap=30.0, budget=3)
    for failures, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (9, 30.0)]:
        delays = [backoff.delay(failures) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert not backoff.exhausted(3)
    assert backoff.exhausted(4)


# ---------------------------------------------------------------------------- client building


class RecordingClient:
    """Stands in for genai.Client; records its arguments."""

    made: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any):
        RecordingClient.made.append(kwargs)
        self.kwargs = kwargs


@pytest.fixture
def recording_client(monkeypatch):
    from google import genai

    hooks.clear_client_cache()
    RecordingClient.made = []
    monkeypatch.setattr(genai, "Client", RecordingClient)
    yield RecordingClient
    hooks.clear_client_cache()


@pytest.fixture
def connections(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_GCP_LOCAL",
        json.dumps(
            {
                "conn_type": "google_cloud_platform",
                "extra": {
                    "is_anonymous": True,
                    "project": "local-project",
                    "location": "us-central1",
                    "genai_base_url": "http://127.0.0.1:1",
                },
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_GCP_NO_LOCATION",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": "p"}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_GEMINI_LOCAL",
        json.dumps(
            {"conn_type": "gemini_api", "password": SECRET, "extra": {"genai_base_url": "http://127.0.0.1:1"}}
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_NO_KEY", json.dumps({"conn_type": "gemini_api"}))


def test_vertex_client_gets_a_placeholder_token_for_anonymous_credentials(recording_client, connections):
    from google.oauth2.credentials import Credentials

    hook = GeminiBatchHook("vertex", "gcp_local")
    hook.get_conn()
    (kwargs,) = recording_client.made
    assert kwargs["vertexai"] is True
    assert kwargs["project"] == "local-project"
    assert kwargs["location"] == "us-central1"
    assert isinstance(kwargs["credentials"], Credentials)
    assert kwargs["credentials"].token == ANONYMOUS_TOKEN
    assert kwargs["http_options"].base_url == "http://127.0.0.1:1"
    assert hook.settings == hooks.ClientSettings(
        "vertex", "gcp_local", "local-project", "us-central1", "http://127.0.0.1:1"
    )


def test_operator_arguments_override_the_connection_project_and_location(recording_client, connections):
    GeminiBatchHook("vertex", "gcp_local", project_id="other", location="global").get_conn()
    assert recording_client.made[0]["project"] == "other"
    assert recording_client.made[0]["location"] == "global"


def test_one_client_per_connection(recording_client, connections):
    first = GeminiBatchHook("vertex", "gcp_local").get_conn()
    again = GeminiBatchHook("vertex", "gcp_local").get_conn()
    other = GeminiBatchHook("vertex", "gcp_local", location="europe-west4").get_conn()
    assert first is again
    assert other is not first
    assert len(recording_client.made) == 2


def test_async_side_builds_the_client_off_the_loop_once(recording_client, connections):
    async def main():
        hook = GeminiBatchHook("gemini_api", "gemini_local")
        clients = await asyncio.gather(*(hook.aget_conn() for _ in range(20)))
        return clients

    clients = asyncio.run(main())
    assert len({id(c) for c in clients}) == 1
    assert len(recording_client.made) == 1


def test_gemini_api_client_reads_the_key_from_the_connection(recording_client, connections):
    hook = GeminiBatchHook("gemini_api", "gemini_local")
    hook.get_conn()
    (kwargs,) = recording_client.made
    assert kwargs == {"vertexai": False, "api_key": SECRET, "http_options": kwargs["http_options"]}
    assert kwargs["http_options"].base_url == "http://127.0.0.1:1"
    assert SECRET not in repr(hook.settings)
    assert SECRET not in repr(vars(hook))


@pytest.mark.parametrize(
    ("backend", "conn_id", "message"),
    [
        (
            "gemini_api",
            "missing",
            "Airflow connection 'missing' is not defined. Create a gemini_api connection",
        ),
        ("vertex", "missing", "Create a google_cloud_platform connection named 'missing'"),
        ("gemini_api", "gemini_no_key", "has no API key: put the Gemini API key in its password"),
        ("vertex", "gcp_no_location", "No Vertex AI location: pass location="),
    ],
)
def test_connection_problems_say_what_to_change(recording_client, connections, backend, conn_id, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        GeminiBatchHook(backend, conn_id).get_conn()
    assert message in str(error.value)


def test_default_connection_ids_per_backend():
    assert GeminiBatchHook("vertex").conn_id == "google_cloud_default"
    assert GeminiBatchHook("gemini_api").conn_id == "gemini_api_default"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"backend": "openai"}, "backend must be one of"),
        ({"backend": "gemini_api", "project_id": "p"}, "apply to Vertex AI only"),
    ],
)
def test_bad_hook_arguments(args, message):
    with pytest.raises(GeminiBatchConfigError, match=message):
        GeminiBatchHook(**args)


# ---------------------------------------------------------------------------- create config


def test_labels_go_into_the_vertex_body_next_to_the_users_http_options():
    config = GeminiBatchHook.build_create_config(
        "vertex",
        display_name="d awid-1",
        dest="gs://bkt/out",
        labels={"airflow-work-id": "1"},
        create_config={"http_options": {"timeout": 5, "extra_body": {"labels": {"team": "ml"}, "x": 1}}},
    )
    assert config == {
        "display_name": "d awid-1",
        "dest": "gs://bkt/out",
        "http_options": {
            "timeout": 5,
            "extra_body": {"x": 1, "labels": {"team": "ml", "airflow-work-id": "1"}},
        },
    }
    types.CreateBatchJobConfig.model_validate(config)


def test_the_gemini_api_gets_no_labels():
    config = GeminiBatchHook.build_create_config(
        "gemini_api", display_name="d", labels={"a": "b"}, create_config={"webhook_config": None}
    )
    assert config == {"display_name": "d"}


# ---------------------------------------------------------------------------- sync methods


def test_create_get_cancel_delete(vertex):
    hook = GeminiBatchHook("vertex")
    job = hook.create_job(
        model="gemini-2.5-flash", source=parse_source("bq://p.d.t"), display_name="x awid-1"
    )
    assert vertex.calls[0] == (
        "create",
        {"model": "gemini-2.5-flash", "src": "bq://p.d.t", "config": {"display_name": "x awid-1"}},
    )
    assert hook.get_job(job.name).state == types.JobState.JOB_STATE_RUNNING
    hook.cancel_job(job.name)
    assert hook.get_job(job.name).state == types.JobState.JOB_STATE_CANCELLED
    hook.delete_job(job.name)
    with pytest.raises(GeminiBatchJobNotFound):
        hook.get_job(job.name)
    with pytest.raises(GeminiBatchJobNotFound):
        hook.cancel_job(job.name)
    with pytest.raises(GeminiBatchJobNotFound):
        hook.delete_job(job.name)


def test_list_pages_through_every_page(vertex):
    for i in range(7):
        vertex.add_job(display_name=f"job {i}")
    jobs = GeminiBatchHook("vertex").list_jobs(page_size=3)
    assert len(jobs) == 7
    assert vertex.count("list") == 3
    assert GeminiBatchHook("vertex").list_jobs(page_size=3, limit=4)[3].display_name == "job 3"


def test_list_filter_is_vertex_only(gemini):
    with pytest.raises(GeminiBatchConfigError, match="cannot filter"):
        GeminiBatchHook("gemini_api").list_jobs(filter="labels.a=b")


def test_find_by_identity_uses_the_label_filter_on_vertex_and_returns_newest_first(vertex):
    identity = WorkIdentity("dag", "task", "run")
    hook = GeminiBatchHook("vertex")
    source = parse_source("bq://p.d.t")
    older = hook.create_job(
        model="m", source=source, display_name=identity.display_name(), labels=identity.labels()
    )
    newer = hook.create_job(
        model="m", source=source, display_name=identity.display_name(), labels=identity.labels()
    )
    hook.create_job(model="m", source=source, display_name="someone else's job")
    found = hook.find_jobs_by_identity(identity)
    assert [j.name for j in found] == [newer.name, older.name]
    assert vertex.calls[-1][1]["filter"] == identity.vertex_list_filter()


def test_find_by_identity_scans_every_gemini_batch(gemini):
    identity = WorkIdentity("dag", "task", "run")
    for i in range(5):
        gemini.add_job(display_name=f"other {i}")
    mine = gemini.add_job(display_name=identity.display_name())
    found = GeminiBatchHook("gemini_api").find_jobs_by_identity(identity)
    assert [j.name for j in found] == [mine]


def test_unauthenticated_drops_the_cached_client(vertex):
    hook = GeminiBatchHook("vertex")
    name = vertex.add_job()
    first = hook.get_conn()
    vertex.fail("get", api_error(401))
    with pytest.raises(genai_errors.ClientError, match="401"):
        hook.get_job(name)
    assert hook.get_conn() is not first


# ---------------------------------------------------------------------------- Gemini API row counts


class _RawResponse:
    def __init__(self, body: dict):
        self.body = json.dumps(body)


class _RawApiClient:
    def __init__(self, body: dict):
        self.body = body
        self.requests: list[tuple] = []

    def request(self, method, path, request_dict, http_options):
        self.requests.append((method, path))
        return _RawResponse(self.body)

    async def async_request(self, method, path, request_dict, http_options):
        self.requests.append((method, path))
        return _RawResponse(self.body)


GEMINI_BODY = {
    "name": "batches/abc",
    "metadata": {
        "displayName": "d awid-1",
        "state": "BATCH_STATE_RUNNING",
        "createTime": "2026-01-01T00:00:00Z",
        "model": "models/gemini-2.5-flash",
        "batchStats": {
            "requestCount": "10",
            "successfulRequestCount": "6",
            "failedRequestCount": "1",
            "pendingRequestCount": "3",
        },
    },
}


def test_gemini_api_get_keeps_the_row_counts_the_sdk_drops(gemini):
    hook = GeminiBatchHook("gemini_api")
    client = hook.get_conn()
    client._api_client = _RawApiClient(GEMINI_BODY)
    client.aio._api_client = client._api_client
    for job in (hook.get_job("batches/abc"), asyncio.run(hook.aget_job("batches/abc"))):
        assert job.state == types.JobState.JOB_STATE_RUNNING
        assert job.display_name == "d awid-1"
        assert (job.completion_stats.successful_count, job.completion_stats.failed_count) == (6, 1)
        assert job.completion_stats.incomplete_count == 3
    assert client._api_client.requests == [("get", "batches/abc"), ("get", "batches/abc")]


def test_gemini_api_get_keeps_the_error_of_a_failed_batch(gemini):
    body = {
        "name": "batches/abc",
        "metadata": {"state": "BATCH_STATE_FAILED"},
        "done": True,
        "error": {"code": 3, "message": "input file is not JSONL"},
    }
    job = compat.job_from_body(body)
    assert job.state == types.JobState.JOB_STATE_FAILED
    assert (job.error.code, job.error.message) == (3, "input file is not JSONL")


def test_gemini_api_get_falls_back_to_the_sdk_get(gemini):
    name = gemini.add_job(state="JOB_STATE_PENDING", script=[])
    job = GeminiBatchHook("gemini_api").get_job(name)
    assert job.name == name
    assert job.completion_stats is None


# ---------------------------------------------------------------------------- async methods


def test_async_methods(vertex):
    identity = WorkIdentity("dag", "task", "run")
    hook = GeminiBatchHook("vertex")

    async def main():
        job = await hook.acreate_job(
            model="m",
            source=parse_source("bq://p.d.t"),
            display_name=identity.display_name(),
            labels=identity.labels(),
        )
        got = await hook.aget_job(job.name)
        listed = await hook.alist_jobs(page_size=1)
        found = await hook.afind_jobs_by_identity(identity)
        await hook.acancel_job(job.name)
        await hook.adelete_job(job.name)
        with pytest.raises(GeminiBatchJobNotFound):
            await hook.aget_job(job.name)
        with pytest.raises(GeminiBatchJobNotFound):
            await hook.acancel_job(job.name)
        with pytest.raises(GeminiBatchJobNotFound):
            await hook.adelete_job(job.name)
        return job, got, listed, found

    job, got, listed, found = asyncio.run(main())
    assert got.name == job.name
    assert [j.name for j in listed] == [job.name]
    assert [j.name for j in found] == [job.name]


def test_test_connection(vertex):
    assert GeminiBatchHook("vertex").test_connection() == (True, "Listed vertex batch jobs")
    vertex.fail("list", api_error(403))
    ok, message = GeminiBatchHook("vertex").test_connection()
    assert not ok and "403" in message


def test_gemini_api_hook_is_built_as_airflow_builds_a_connection_types_hook():
    hook = GeminiApiHook(**{GeminiApiHook.conn_name_attr: "gemini_local"})

    assert (hook.backend, hook.conn_id, hook.gemini_api_conn_id) == (
        "gemini_api",
        "gemini_local",
        "gemini_local",
    )
    assert GeminiApiHook().conn_id == GeminiApiHook.default_conn_name == "gemini_api_default"


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (api_error(403, f"API key not valid: {SECRET}"), "the service refused the credentials (HTTP 403)"),
        (api_error(401, f"no key {SECRET}"), "the service refused the credentials (HTTP 401)"),
        (api_error(400, f"API key not valid {SECRET}"), "the service answered HTTP 400"),
        (
            genai_errors.ClientError(
                400,
                {
                    "error": {
                        "code": 400,
                        "message": f"API key not valid {SECRET}",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                        ],
                    }
                },
            ),
            "the service refused the credentials (HTTP 400)",
        ),
        (httpx.ConnectError(f"refused {SECRET}"), "no answer from the endpoint (ConnectError)"),
        (GeminiBatchConfigError(f"bad {SECRET}"), "the connection is incomplete"),
        (ValueError(f"odd {SECRET}"), "ValueError"),
    ],
)
def test_failed_connection_test_names_the_problem_without_the_key(gemini, connections, error, problem):
    gemini.fail("list", error)

    ok, message = GeminiApiHook("gemini_local").test_connection()

    assert not ok
    assert message.startswith(f"Gemini API connection test failed: {problem}: ")
    assert SECRET not in message and "***" in message


def test_connection_test_builds_a_fresh_client_not_the_cached_one(gemini, monkeypatch):
    built = []
    build = GeminiBatchHook._build_entry
    monkeypatch.setattr(GeminiBatchHook, "_build_entry", lambda self: built.append(1) or build(self))
    hook = GeminiApiHook("gemini_local")
    hook.get_conn()

    assert hook.test_connection() == (True, "Listed gemini_api batch jobs")
    assert len(built) == 2


# ---------------------------------------------------------------------------- on the wire


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict, dict]] = []
    replies: list[tuple[int, dict]] = []

    def _reply(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        _Handler.seen.append((self.command, self.path, dict(self.headers), body))
        status, payload = _Handler.replies.pop(0)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _reply

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def wire(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WIRE_GCP",
        json.dumps(
            {
                "conn_type": "google_cloud_platform",
                "extra": {
                    "is_anonymous": True,
                    "project": "p1",
                    "location": "us-central1",
                    "genai_base_url": url,
                },
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_WIRE_GEMINI",
        json.dumps({"conn_type": "gemini_api", "password": SECRET, "extra": {"genai_base_url": url}}),
    )
    _Handler.seen, _Handler.replies = [], []
    hooks.clear_client_cache()
    yield _Handler
    hooks.clear_client_cache()
    server.shutdown()


def test_vertex_create_on_the_wire_carries_labels_display_name_and_a_bearer_token(wire):
    identity = WorkIdentity("dag", "task", "run")
    wire.replies.append(
        (
            200,
            {"name": "projects/p1/locations/us-central1/batchPredictionJobs/7", "state": "JOB_STATE_PENDING"},
        )
    )
    job = GeminiBatchHook("vertex", "wire_gcp").create_job(
        model="gemini-2.5-flash",
        source=parse_source("bq://p1.d.t"),
        display_name=identity.display_name(),
        dest="bq://p1.d.out",
        labels=identity.labels(),
    )
    method, path, headers, body = wire.seen[0]
    assert (method, path) == ("POST", "/v1beta1/projects/p1/locations/us-central1/batchPredictionJobs")
    assert headers["Authorization"] == f"Bearer {ANONYMOUS_TOKEN}"
    assert body["labels"]["airflow-work-id"] == identity.work_id
    assert body["displayName"] == identity.display_name()
    assert body["inputConfig"]["bigquerySource"]["inputUri"] == "bq://p1.d.t"
    assert body["outputConfig"]["bigqueryDestination"]["outputUri"] == "bq://p1.d.out"
    assert job.name.endswith("/7")


def test_gemini_api_get_on_the_wire_reads_batch_stats_and_sends_the_key_only_as_a_header(wire):
    wire.replies.append((200, GEMINI_BODY))
    job = GeminiBatchHook("gemini_api", "wire_gemini").get_job("batches/abc")
    method, path, headers, _ = wire.seen[0]
    assert method == "GET" and path.endswith("/batches/abc") and SECRET not in path
    assert headers["x-goog-api-key"] == SECRET
    assert job.completion_stats.failed_count == 1


def test_async_429_on_the_wire_is_transient(wire):
    wire.replies.append(
        (429, {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
    )
    with pytest.raises(Exception) as error:
        asyncio.run(
            GeminiBatchHook("vertex", "wire_gcp").aget_job(
                "projects/p1/locations/us-central1/batchPredictionJobs/7"
            )
        )
    assert error_kind(error.value) == "transient"


def test_404_on_the_wire_is_job_not_found(wire):
    wire.replies.append((404, {"error": {"code": 404, "message": "no such job", "status": "NOT_FOUND"}}))
    with pytest.raises(GeminiBatchJobNotFound):
        GeminiBatchHook("vertex", "wire_gcp").get_job("7")
