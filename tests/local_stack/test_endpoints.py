"""StackEndpoints.env(): exactly the names of docs/design.md, with working values."""

from __future__ import annotations

import json

from local_stack.endpoints import ENV_NAMES, StackEndpoints

DESIGN_NAMES = {
    "STORAGE_EMULATOR_HOST",
    "BIGQUERY_EMULATOR_HOST",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GEMINI_API_KEY",
    "LOCAL_STACK_ADMIN_URL",
    "NO_GCE_CHECK",
    "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
    "AIRFLOW_CONN_GEMINI_API_DEFAULT",
}

ENDPOINTS = StackEndpoints(storage_port=1001, bigquery_port=1002, bigquery_grpc_port=1003, gemini_port=1004)


def test_env_names_are_exactly_those_of_the_design() -> None:
    assert set(ENDPOINTS.env()) == DESIGN_NAMES
    assert list(ENDPOINTS.env()) == list(ENV_NAMES)


def test_env_values_point_at_the_ports() -> None:
    env = ENDPOINTS.env()

    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:1001"
    assert env["BIGQUERY_EMULATOR_HOST"] == "http://127.0.0.1:1002"
    assert env["GOOGLE_VERTEX_BASE_URL"] == env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:1004"
    assert env["LOCAL_STACK_ADMIN_URL"] == "http://127.0.0.1:1004/admin"
    assert (env["GOOGLE_CLOUD_PROJECT"], env["GOOGLE_CLOUD_LOCATION"]) == ("local-project", "us-central1")
    assert env["GEMINI_API_KEY"] == "local-gemini-api-key"
    assert env["NO_GCE_CHECK"] == "True"


def test_connections_are_the_json_of_the_design() -> None:
    env = ENDPOINTS.env()

    assert json.loads(env["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"]) == {
        "conn_type": "google_cloud_platform",
        "extra": {
            "is_anonymous": True,
            "project": "local-project",
            "location": "us-central1",
            "genai_base_url": "http://127.0.0.1:1004",
        },
    }
    assert json.loads(env["AIRFLOW_CONN_GEMINI_API_DEFAULT"]) == {
        "conn_type": "gemini_api",
        "password": "local-gemini-api-key",
        "extra": {"genai_base_url": "http://127.0.0.1:1004"},
    }


def test_airflow_reads_the_connections_from_the_env(monkeypatch) -> None:
    from airflow.models.connection import Connection

    for name, value in ENDPOINTS.env().items():
        monkeypatch.setenv(name, value)

    gcp = Connection.get_connection_from_secrets("google_cloud_default")
    gemini = Connection.get_connection_from_secrets("gemini_api_default")

    assert gcp.conn_type == "google_cloud_platform"
    assert gcp.extra_dejson["is_anonymous"] is True
    assert gemini.password == "local-gemini-api-key"
    assert gemini.extra_dejson["genai_base_url"] == "http://127.0.0.1:1004"


def test_round_trips_through_the_state_file_form() -> None:
    assert StackEndpoints.from_dict(json.loads(json.dumps(ENDPOINTS.to_dict()))) == ENDPOINTS
