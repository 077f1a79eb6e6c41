"""The installed distribution, as Airflow sees it: the providers list, the connection form, the Test button.

``airflow providers list`` runs as a subprocess of the venv's Airflow in an empty AIRFLOW_HOME,
without the project's PYTHONPATH: the package is found through its installed entry point only.
The API server is Airflow's own FastAPI app, in this process (``create_app`` + TestClient),
on the session's metadata DB; its connection test calls the local stack's Gemini emulator through
the real google-genai client.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gemini_batch import __version__
from gemini_batch.get_provider_info import PACKAGE_NAME

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from local_stack.endpoints import StackEndpoints

pytestmark = pytest.mark.integration


def test_airflow_providers_list_shows_the_installed_package(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    airflow = Path(sys.executable).with_name("airflow")

    out = subprocess.run(
        [str(airflow), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
        check=True,
    )

    providers = {row["package_name"]: row for row in json.loads(out.stdout)}
    assert providers[PACKAGE_NAME]["version"] == __version__


@pytest.fixture(scope="module")
def api(airflow_db: Path) -> Iterator[TestClient]:
    """Airflow's API server app, every caller an admin, connection tests enabled."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        patch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
        # The app's lifespan starts the execution API, which wants a signing key.
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(32))
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        with TestClient(create_app()) as client:
            yield client


def _hook_meta(api: TestClient) -> dict[str, Any]:
    response = api.get("/ui/connections/hook_meta")
    response.raise_for_status()
    (meta,) = [m for m in response.json() if m["connection_type"] == "gemini_api"]
    return meta


def test_connection_form_offers_gemini_api_with_an_api_key_and_an_endpoint(api: TestClient) -> None:
    meta = _hook_meta(api)
    fields = meta["standard_fields"]

    assert (meta["hook_name"], meta["hook_class_name"]) == ("Gemini API", "gemini_batch.hooks.GeminiApiHook")
    assert fields["password"]["hidden"] is False and fields["password"]["title"] == "API key"
    assert all(fields[name]["hidden"] for name in ("host", "port", "login", "url_schema"))
    assert meta["extra_fields"]["genai_base_url"]["schema"]["title"] == "Endpoint override"


def _test_connection(api: TestClient, endpoints: StackEndpoints, key: str) -> dict[str, Any]:
    body = {
        "connection_id": "gemini_api_form",
        "conn_type": "gemini_api",
        "password": key,
        "extra": json.dumps({"genai_base_url": endpoints.gemini_url}),
    }
    response = api.post("/api/v2/connections/test", json=body)
    response.raise_for_status()
    return response.json()


def test_connection_test_succeeds_with_the_emulators_key(
    api: TestClient, local_stack: StackEndpoints
) -> None:
    assert _test_connection(api, local_stack, local_stack.api_key) == {
        "status": True,
        "message": "Listed gemini_api batch jobs",
    }


def test_connection_test_fails_clearly_on_a_wrong_key(api: TestClient, local_stack: StackEndpoints) -> None:
    wrong = "wrong-gemini-api-key-12345"

    result = _test_connection(api, local_stack, wrong)

    assert result["status"] is False
    assert result["message"].startswith(
        "Gemini API connection test failed: the service refused the credentials (HTTP 400): "
    )
    assert "API key not valid" in result["message"]
    assert wrong not in result["message"]
