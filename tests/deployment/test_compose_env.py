"""The deployment test's configuration is docker-compose.yaml's, with only the listed keys rewritten."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local_stack.endpoints import ENV_NAMES, StackEndpoints

from . import compose as cfg

HOME = Path("/tmp/deployment-home")
STACK = StackEndpoints(storage_port=1001, bigquery_port=1002, bigquery_grpc_port=1003, gemini_port=1004)
LAYOUT = cfg.HostLayout(
    addresses={
        "postgres": "127.0.0.1:2001",
        "redis": "127.0.0.1:2002",
        "airflow-apiserver": "127.0.0.1:2003",
        "gcs-emulator": f"127.0.0.1:{STACK.storage_port}",
        "bigquery-emulator": f"127.0.0.1:{STACK.bigquery_port}",
        "gemini-emulator": f"127.0.0.1:{STACK.gemini_port}",
    },
    home=HOME,
)
SERVICES = [*cfg.AIRFLOW_SERVICES, "airflow-init"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return cfg.load()


@pytest.mark.parametrize(
    ("value", "variables", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A-x}", {}, "x"),
        ("${A:-x}", {"A": "y"}, "y"),
        ("${A}/dags:/opt", {}, "/dags:/opt"),
        ("${AIRFLOW_PROJ_DIR:-.}/dags:/opt/airflow/dags", {}, "./dags:/opt/airflow/dags"),
        ("no variables", {}, "no variables"),
    ],
)
def test_interpolate_follows_compose(value: str, variables: dict[str, str], expected: str) -> None:
    assert cfg.interpolate(value, variables) == expected


ADDRESSES = {"postgres": "127.0.0.1:7", "redis": "127.0.0.1:8", "gemini-emulator": "127.0.0.1:9"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("postgresql+psycopg2://airflow:airflow@postgres/airflow", "postgresql+psycopg2://airflow:airflow@127.0.0.1:7/airflow"),
        ("db+postgresql://airflow:airflow@postgres/airflow", "db+postgresql://airflow:airflow@127.0.0.1:7/airflow"),
        ("redis://:@redis:6379/0", "redis://:@127.0.0.1:8/0"),
        ('{"extra": {"genai_base_url": "http://gemini-emulator:8090"}}', '{"extra": {"genai_base_url": "http://127.0.0.1:9"}}'),
        ("http://gemini-emulator:8090/admin", "http://127.0.0.1:9/admin"),
        ("http://postgres-like:1/x", "http://postgres-like:1/x"),  # another host, even with a known prefix
        ("http://localhost:8080/api", "http://localhost:8080/api"),
        ("postgres is a word here", "postgres is a word here"),  # not a URL
    ],
)  # fmt: skip
def test_rewrite_addresses_replaces_host_and_port_of_known_hosts_only(value: str, expected: str) -> None:
    assert cfg.rewrite_addresses(value, ADDRESSES) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/opt/airflow/include", "/repo/include"),
        ("/opt/airflow/config/airflow.cfg", "/state/config/airflow.cfg"),
        ("/opt/airflow/include:/opt/airflow/config", "/repo/include:/state/config"),
        ("/opt/airflow/includes", "/opt/airflow/includes"),  # a prefix of a name is not a folder
        ("/opt/airflow", "/opt/airflow"),
    ],
)
def test_rewrite_paths_maps_mounted_folders(value: str, expected: str) -> None:
    mounts = {"/opt/airflow/include": Path("/repo/include"), "/opt/airflow/config": Path("/state/config")}
    assert cfg.rewrite_paths(value, mounts) == expected


def test_mounts_use_the_repository_for_code_and_private_folders_for_state(compose: dict[str, Any]) -> None:
    # No plugins/ mount: the package is installed in the image (Dockerfile), not put on sys.path.
    mounts = cfg.mounts(compose["services"]["airflow-scheduler"], HOME)
    assert mounts == {
        "/opt/airflow/dags": cfg.ROOT / "dags",
        "/opt/airflow/include": cfg.ROOT / "include",
        "/opt/airflow/config": HOME / "config",
        "/opt/airflow/logs": HOME / "logs",
    }


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_overridden_keys_change_and_the_rest_is_the_compose_file(
    compose: dict[str, Any], service: str
) -> None:
    raw = {k: cfg.interpolate(str(v)) for k, v in compose["services"][service]["environment"].items()}

    env, changed = cfg.service_environment(compose, service, LAYOUT)

    assert set(env) == set(raw)
    assert changed == set(cfg.OVERRIDDEN_KEYS), "every overridden key is in every Airflow service"
    assert {k: v for k, v in env.items() if k not in changed} == {
        k: v for k, v in raw.items() if k not in changed
    }
    for key in changed:
        assert "/opt/airflow" not in env[key]
        for host in cfg.SERVICE_HOSTS:
            assert f"//{host}" not in env[key] and f"@{host}" not in env[key], (key, env[key])


@pytest.mark.parametrize("service", SERVICES)
def test_added_keys_are_none_of_the_compose_files(compose: dict[str, Any], service: str) -> None:
    assert not set(cfg.ADDED_KEYS) & set(compose["services"][service]["environment"])


def test_rewritten_stack_variables_are_the_local_stacks_own(compose: dict[str, Any]) -> None:
    env, _ = cfg.service_environment(compose, "airflow-worker", LAYOUT)
    ours = STACK.env()

    for name in ENV_NAMES:
        if name.startswith("AIRFLOW_CONN_"):
            assert json.loads(env[name]) == json.loads(ours[name]), name
        else:
            assert env[name] == ours[name], name


def test_database_and_broker_point_at_the_host_services(compose: dict[str, Any]) -> None:
    env, _ = cfg.service_environment(compose, "airflow-scheduler", LAYOUT)

    for key, port in [
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", 2001),
        ("AIRFLOW__CELERY__RESULT_BACKEND", 2001),
        ("AIRFLOW__CELERY__BROKER_URL", 2002),
        ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", 2003),
    ]:
        url = urlsplit(env[key])
        assert (url.hostname, url.port) == ("127.0.0.1", port), key
    assert env["AIRFLOW_CONFIG"] == str(HOME / "config" / "airflow.cfg")
    assert env["PYTHONPATH"] == str(cfg.ROOT / "include")


def test_a_new_container_address_in_the_compose_file_fails_loudly(compose: dict[str, Any]) -> None:
    changed = copy.deepcopy(compose)
    changed["services"]["airflow-scheduler"]["environment"]["AIRFLOW__METRICS__STATSD_HOST_URL"] = (
        "http://redis:9125"
    )

    with pytest.raises(ValueError, match="AIRFLOW__METRICS__STATSD_HOST_URL"):
        cfg.service_environment(changed, "airflow-scheduler", LAYOUT)


def test_an_overridden_key_the_rewrite_no_longer_changes_fails_loudly(compose: dict[str, Any]) -> None:
    changed = copy.deepcopy(compose)
    changed["services"]["airflow-scheduler"]["environment"]["AIRFLOW__CELERY__BROKER_URL"] = (
        "redis://127.0.0.1:6379/0"
    )

    with pytest.raises(ValueError, match="OVERRIDDEN_KEYS"):
        cfg.service_environment(changed, "airflow-scheduler", LAYOUT)


def test_a_container_path_left_over_fails_loudly(compose: dict[str, Any]) -> None:
    changed = copy.deepcopy(compose)
    changed["services"]["airflow-scheduler"]["environment"]["AIRFLOW__CORE__DAGS_FOLDER"] = (
        "/opt/airflow/elsewhere"
    )

    with pytest.raises(ValueError, match="container paths"):
        cfg.service_environment(changed, "airflow-scheduler", LAYOUT)


@pytest.mark.parametrize(
    ("service", "port", "expected"),
    [
        ("airflow-apiserver", 5001, ["curl", "--fail", "http://127.0.0.1:5001/api/v2/version"]),
        ("airflow-scheduler", 5002, ["curl", "--fail", "http://127.0.0.1:5002/health"]),
        (
            "airflow-triggerer",
            None,
            ["/bin/sh", "-c", 'airflow jobs check --job-type TriggererJob --hostname "${HOSTNAME}"'],
        ),
    ],
)
def test_healthchecks_are_the_compose_files_on_the_host_ports(
    compose: dict[str, Any], service: str, port: int | None, expected: list[str]
) -> None:
    assert cfg.healthcheck(compose, service, port) == expected


@pytest.mark.parametrize(
    ("service", "argv"),
    [
        ("airflow-apiserver", ["airflow", "api-server"]),
        ("airflow-worker", ["airflow", "celery", "worker"]),
        ("airflow-triggerer", ["airflow", "triggerer"]),
    ],
)
def test_commands_are_the_compose_files(compose: dict[str, Any], service: str, argv: list[str]) -> None:
    assert cfg.command(compose, service) == argv


def test_init_migrates_and_creates_the_compose_admin(compose: dict[str, Any]) -> None:
    steps, admin = cfg.init_steps(compose)

    assert admin == ("airflow", "airflow")
    assert steps[:2] == [["airflow", "config", "list"], ["airflow", "db", "migrate"]]
    assert steps[2][:6] == ["airflow", "users", "create", "--username", "airflow", "--password"]
