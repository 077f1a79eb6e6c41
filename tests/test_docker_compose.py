"""docker-compose.yaml: the official Airflow 3 layout plus the local stack, wired by env.

Parses the YAML (merge keys resolved) and checks what the stack needs; runs
``docker-compose config`` when the binary is installed (Debian: ``apt-get install docker-compose``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from local_stack.endpoints import ENV_NAMES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yaml"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
    "flower": "celery flower",
}
EMULATORS = {"gcs-emulator": 9023, "bigquery-emulator": 9050, "gemini-emulator": 8090}
LONG_RUNNING = ["postgres", "redis", *AIRFLOW_SERVICES, *EMULATORS]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _health_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_has_the_services_of_the_official_file_and_the_emulators(services: dict[str, Any]) -> None:
    expected = {"postgres", "redis", "airflow-init", "airflow-cli", *AIRFLOW_SERVICES, *EMULATORS}
    assert expected <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
    assert services["airflow-cli"]["profiles"] == ["debug"]
    assert services["flower"]["profiles"] == ["flower"]


def test_airflow_runs_celery_on_postgres_and_redis(services: dict[str, Any]) -> None:
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any], name: str) -> None:
    assert _health_test(services[name])


@pytest.mark.parametrize(
    ("name", "probe"),
    [
        ("airflow-apiserver", "http://localhost:8080/api/v2/version"),
        ("airflow-scheduler", "http://localhost:8974/health"),
        ("airflow-dag-processor", "--job-type DagProcessorJob"),
        ("airflow-triggerer", "--job-type TriggererJob"),
        ("airflow-worker", "inspect ping"),
        ("postgres", "pg_isready"),
        ("redis", "redis-cli ping"),
        ("gcs-emulator", "http://localhost:9023/storage/v1/b"),
        ("bigquery-emulator", "http://localhost:9050/readyz"),
        ("gemini-emulator", "http://localhost:8090/admin/health"),
    ],
)
def test_healthchecks_probe_the_right_endpoint(services: dict[str, Any], name: str, probe: str) -> None:
    assert probe in _health_test(services[name])


def test_airflow_services_wait_for_databases_and_emulators(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        for dependency in ("postgres", "redis", *EMULATORS):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name


def test_airflow_image_is_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    for name in [*AIRFLOW_SERVICES, "airflow-init", "airflow-cli"]:
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.txt /tmp/dist/*.whl' in dockerfile
    assert "--constraint" in dockerfile
    assert "requirements-local" not in dockerfile


def test_airflow_image_installs_the_package_as_a_wheel_not_from_plugins() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The wheel stage builds from what the wheel needs, and the image copies only the wheel across.
    assert "FROM apache/airflow:3.3.2 AS wheel" in dockerfile
    assert "COPY --chown=airflow:0 pyproject.toml README.md /tmp/src/" in dockerfile
    assert "COPY --chown=airflow:0 plugins/gemini_batch/ /tmp/src/plugins/gemini_batch/" in dockerfile
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist /tmp/src" in dockerfile
    assert "COPY --from=wheel --chown=airflow:0 /tmp/dist/ /tmp/dist/" in dockerfile
    assert "/opt/airflow/plugins" not in dockerfile
    assert "GEMINI_BATCH_INCLUDE_DIR=/opt/airflow/include" in dockerfile


def test_emulators_are_built_from_the_local_stack_dockerfile(services: dict[str, Any]) -> None:
    for name in EMULATORS:
        assert services[name]["build"]["dockerfile"] == "Dockerfile.local-stack", name
    assert "-r /tmp/requirements-local.txt" in (ROOT / "Dockerfile.local-stack").read_text()


def test_local_stack_image_has_what_the_emulators_import() -> None:
    lines = (ROOT / "requirements-local.txt").read_text().splitlines()
    names = {re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower() for line in lines}
    # numpy: bqemulator needs it at start without declaring it; the clients: the Gemini emulator.
    needed = {
        "gcp-storage-emulator",
        "bqemulator",
        "numpy",
        "aiohttp",
        "google-cloud-storage",
        "google-cloud-bigquery",
    }
    assert needed <= names


def test_volumes_hold_postgres_and_emulator_data(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert {"postgres-db-volume", "local-stack-gcs", "local-stack-bq", "local-stack-gemini"} <= set(
        compose["volumes"]
    )
    mounts = {name: services[name].get("volumes", []) for name in services}
    assert "${AIRFLOW_PROJ_DIR:-.}/dags:/opt/airflow/dags" in mounts["airflow-scheduler"]
    # gemini_batch comes from the image (its wheel), not through plugins/ on sys.path.
    assert not [m for name in services for m in mounts[name] if m.endswith(":/opt/airflow/plugins")]
    assert "local-stack-gcs:/data/gcs" in mounts["gcs-emulator"]


def test_bigquery_reads_the_gcs_emulator_objects(services: dict[str, Any]) -> None:
    bigquery = services["bigquery-emulator"]
    gcs_command = services["gcs-emulator"]["command"]
    gcs_dir = gcs_command[gcs_command.index("-d") + 1]

    assert f"local-stack-gcs:{gcs_dir}:ro" in bigquery["volumes"]
    assert bigquery["environment"]["BQEMU_GCS_LOCAL_ROOT"] == f"{gcs_dir}/.cloudstorage"
    assert "--persistent" in bigquery["command"]


def test_bigquery_emulator_runs_through_the_patched_launcher(services: dict[str, Any]) -> None:
    """bqemulator as released mixes up concurrent readers' rows; the stack's launcher patches it."""
    from local_stack.stack import BIGQUERY_MODULE

    command = services["bigquery-emulator"]["command"]
    assert command[command.index("-m") + 1] == BIGQUERY_MODULE


def test_gemini_emulator_reaches_gcs_and_bigquery(services: dict[str, Any]) -> None:
    gemini = services["gemini-emulator"]
    assert gemini["command"][:3] == ["python", "-m", "local_stack.emulator"]
    assert "--port=8090" in gemini["command"] and "--host=0.0.0.0" in gemini["command"]
    assert gemini["environment"]["STORAGE_EMULATOR_HOST"] == "http://gcs-emulator:9023"
    assert gemini["environment"]["BIGQUERY_EMULATOR_HOST"] == "http://bigquery-emulator:9050"


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "airflow-init", "airflow-cli"])
def test_airflow_env_names_every_stack_variable_at_the_services(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]

    assert set(ENV_NAMES) <= set(env)
    for variable in ("STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "GOOGLE_VERTEX_BASE_URL"):
        url = urlsplit(env[variable])
        assert EMULATORS[url.hostname] == url.port, variable
    gcp = json.loads(env["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"])
    gemini = json.loads(env["AIRFLOW_CONN_GEMINI_API_DEFAULT"])
    assert gcp["conn_type"] == "google_cloud_platform" and gcp["extra"]["is_anonymous"] is True
    assert (
        gcp["extra"]["genai_base_url"] == gemini["extra"]["genai_base_url"] == "http://gemini-emulator:8090"
    )
    assert gemini["password"] == env["GEMINI_API_KEY"]


def test_airflow_services_wait_for_the_seed_to_have_completed(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        condition = services[name]["depends_on"]["local-stack-seed"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_seed_is_a_one_shot_after_the_emulators_and_the_config(services: dict[str, Any]) -> None:
    seed = services["local-stack-seed"]
    assert seed["restart"] == "no"
    assert "healthcheck" not in seed
    depends = seed["depends_on"]
    assert {name: dep["condition"] for name, dep in depends.items()} == {
        "gcs-emulator": "service_healthy",
        "bigquery-emulator": "service_healthy",
        "airflow-init": "service_completed_successfully",
    }
    assert seed["build"]["dockerfile"] == "Dockerfile"  # the image that has the package installed
    assert seed["environment"]["PYTHONPATH"] == "/opt/airflow/include"  # local_stack importable


def _seed_argv(services: dict[str, Any], *extra: str) -> list[str]:
    """The seed's command line as its container runs it (compose's ``$$`` is a literal ``$``)."""
    entrypoint = [part.replace("$$", "$") for part in services["local-stack-seed"]["entrypoint"]]
    assert entrypoint[:2] == ["bash", "-c"]
    prefix = "exec python -m local_stack.seed "
    assert entrypoint[2].startswith(prefix), entrypoint[2]
    script = "printf '%s\\n' " + entrypoint[2][len(prefix) :]
    out = subprocess.run(
        ["bash", "-c", script, *entrypoint[3:], *services["local-stack-seed"]["command"], *extra],
        capture_output=True, check=True, text=True, env={"PATH": "/usr/bin:/bin", "TZ": "Pacific/Kiritimati"},
    )  # fmt: skip
    return out.stdout.splitlines()


def _seed_args(argv: list[str]) -> Any:
    """What seed.main would seed: the prompts' arguments, and the documents' under ``documents``."""
    from local_stack import seed

    parsed: dict[str, Any] = {}

    def capture(**kwargs: Any) -> list[Any]:
        parsed.update(kwargs)
        return []

    def capture_documents(**kwargs: Any) -> list[Any]:
        parsed["documents"] = kwargs
        return []

    originals = seed.seed, seed.seed_documents
    seed.seed, seed.seed_documents = capture, capture_documents  # type: ignore[assignment]
    try:
        seed.main(argv)
    finally:
        seed.seed, seed.seed_documents = originals  # type: ignore[assignment]
    return parsed


def test_the_seed_covers_the_day_an_unpaused_daily_dag_runs_first(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:1")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    today = dt.datetime.now(dt.timezone.utc).date()
    parsed = _seed_args(_seed_argv(services))
    # catchup off: the first run is yesterday's interval (UTC), whatever the container's TZ
    assert parsed["dates"] == [today - dt.timedelta(days=1), today]
    assert parsed["rows"] == 200
    # gemini_batch_embeddings' input: documents for the same days
    assert (parsed["documents"]["dates"], parsed["documents"]["rows"]) == (parsed["dates"], 50)


def test_arguments_after_the_seed_service_name_win(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:1")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    parsed = _seed_args(_seed_argv(services, "--date", "2026-01-01", "--days", "3", "--documents", "7"))
    assert parsed["dates"] == [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(3)]
    assert (parsed["documents"]["dates"], parsed["documents"]["rows"]) == (parsed["dates"], 7)


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor `docker compose` is installed")

    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        check=False,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "AIRFLOW_UID": "50000"},
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
