"""docker-compose.yaml as host processes: the one source of the deployment test's configuration.

The deployment test runs the Airflow services the compose file declares as processes on
127.0.0.1. Their environment is the compose file's, read at run time, with only what must differ
outside containers rewritten:

- container addresses (``postgres``, ``redis``, ``airflow-apiserver``, the emulators, and
  ``localhost:<port>`` in a service's own healthcheck) become ``127.0.0.1:<free port>``;
- container paths under ``/opt/airflow`` become the folders the compose file mounts there (the
  repository's ``dags``, ``plugins``, ``include``), or private folders for what Airflow writes
  (``config``, ``logs``).

Invariants:

- the keys whose value the rewrite changes are exactly :data:`OVERRIDDEN_KEYS` (checked on every
  build, so a new container address in the compose file fails loudly instead of leaking into a
  process that cannot resolve it);
- every other key of a service's compose environment reaches its process unchanged;
- the keys the processes get on top (:data:`ADDED_KEYS`) are none of the compose file's, so an
  added key never silently replaces a compose setting.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"

#: Where the official image puts Airflow (its ``AIRFLOW_HOME``).
CONTAINER_HOME = "/opt/airflow"

AirflowService = Literal[
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer"
]
AIRFLOW_SERVICES: tuple[AirflowService, ...] = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
)

#: Container hostnames an Airflow environment may name; each becomes 127.0.0.1 and a port.
SERVICE_HOSTS: tuple[str, ...] = (
    "postgres",
    "redis",
    "airflow-apiserver",
    "gcs-emulator",
    "bigquery-emulator",
    "gemini-emulator",
)

#: Mounted folders Airflow writes to: private per run, never the repository's.
STATE_MOUNTS: frozenset[str] = frozenset({"config", "logs"})

#: Compose environment keys whose value differs outside containers, and why.
OVERRIDDEN_KEYS: Mapping[str, str] = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgres address",
    "AIRFLOW__CELERY__RESULT_BACKEND": "postgres address",
    "AIRFLOW__CELERY__BROKER_URL": "redis address",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "api-server address",
    "STORAGE_EMULATOR_HOST": "GCS emulator address",
    "BIGQUERY_EMULATOR_HOST": "BigQuery emulator address",
    "GOOGLE_VERTEX_BASE_URL": "Gemini emulator address",
    "GOOGLE_GEMINI_BASE_URL": "Gemini emulator address",
    "LOCAL_STACK_ADMIN_URL": "Gemini emulator address",
    "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": "Gemini emulator address (genai_base_url)",
    "AIRFLOW_CONN_GEMINI_API_DEFAULT": "Gemini emulator address (genai_base_url)",
    "AIRFLOW_CONFIG": "path: the config mount",
    "PYTHONPATH": "path: the include mount",
}

#: Keys the processes get that the compose file does not set, and why.
ADDED_KEYS: Mapping[str, str] = {
    # What the image or the container gives each service.
    "AIRFLOW_HOME": "the image's /opt/airflow",
    "AIRFLOW__CORE__DAGS_FOLDER": "the image's default, $AIRFLOW_HOME/dags: the dags mount",
    "AIRFLOW__CORE__PLUGINS_FOLDER": "the image's default, $AIRFLOW_HOME/plugins (empty: the package is installed)",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "a container's fqdn is its $HOSTNAME, which the healthchecks pass",
    "PATH": "the venv's bin first, as the image's",
    # Ports: every service has the host to itself in compose; here they share one.
    "AIRFLOW__API__HOST": "api-server on 127.0.0.1",
    "AIRFLOW__API__PORT": "api-server port (8080 in its container)",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "scheduler health port (8974)",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "worker log server port (8793)",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "one per triggerer: two on one host need two ports",
    # The test's own knobs: speed on 2 cores and isolation from other tests.
    "AIRFLOW__API__WORKERS": "one API worker on a 2-core machine",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "a few Celery slots on a 2-core machine",
    "GEMINI_BATCH_POLL_INTERVAL": "the job tasks poll every second (docs/design.md knob)",
    "GEMINI_BATCH_MAX_REQUESTS_PER_JOB": "a few shards from a small day, so several mapped job tasks",
    "AIRFLOW_VAR_GEMINI_BATCH_DATASET": "the test's own dataset",
    "AIRFLOW_VAR_GEMINI_BATCH_BUCKET": "the test's own bucket",
    "GEMINI_BATCH_DEPLOYMENT_TEST": "a marker to find every process the test started",
}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")
# scheme://[userinfo@]host[:port]; the host ends at a port, path, quote or whitespace.
_URL_AUTHORITY = re.compile(
    r"(?P<prefix>[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s\"']*@)?)(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>\d+))?"
)


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file, YAML merge keys resolved (as ``docker compose config`` resolves them)."""
    return yaml.safe_load(path.read_text())


def interpolate(value: str, variables: Mapping[str, str] | None = None) -> str:
    """Compose's ``${NAME}``, ``${NAME-default}`` and ``${NAME:-default}`` against ``variables``.

    ``:-`` takes the default when the variable is unset or empty, ``-`` only when unset.
    """
    variables = variables or {}

    def one(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        if op == ":-":
            return variables.get(name) or default
        if op == "-":
            return variables.get(name, default)
        return variables.get(name, "")

    return _VARIABLE.sub(one, value)


def rewrite_addresses(value: str, addresses: Mapping[str, str]) -> str:
    """Replace ``host[:port]`` of every URL whose host is a key of ``addresses`` by its value.

    Works inside any text (a JSON connection, a shell command); the scheme, credentials and path
    stay. ``addresses`` maps a hostname to ``host:port``.
    """

    def one(match: re.Match[str]) -> str:
        target = addresses.get(match["host"])
        return match[0] if target is None else f"{match['prefix']}{target}"

    return _URL_AUTHORITY.sub(one, value)


def rewrite_paths(value: str, mounts: Mapping[str, Path]) -> str:
    """Replace a container path prefix (longest first) by the host folder mounted there."""
    for container, host in sorted(mounts.items(), key=lambda item: -len(item[0])):
        value = re.sub(rf"{re.escape(container)}(?=/|$|:)", str(host), value)
    return value


def mounts(service: Mapping[str, Any], state_dir: Path) -> dict[str, Path]:
    """Container folder -> host folder, from the service's ``volumes``.

    The repository's folders are used in place; :data:`STATE_MOUNTS` go to ``state_dir``.
    """
    result: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target = interpolate(volume).split(":")[:2]
        if not source.startswith("."):
            continue  # a named volume: no host folder
        name = Path(source).name
        result[target] = state_dir / name if name in STATE_MOUNTS else (ROOT / source).resolve()
    return result


@dataclass(frozen=True)
class HostLayout:
    """Where the services live outside containers.

    :param addresses: Container hostname -> ``127.0.0.1:port`` (every one of :data:`SERVICE_HOSTS`).
    :param home: The private ``AIRFLOW_HOME`` (``config`` and ``logs`` go under it).
    """

    addresses: Mapping[str, str]
    home: Path


def service_environment(
    compose: Mapping[str, Any], name: str, layout: HostLayout
) -> tuple[dict[str, str], set[str]]:
    """The compose environment of service ``name`` rewritten for the host, and the keys that changed.

    Raises ValueError when the changed keys are not exactly those of :data:`OVERRIDDEN_KEYS` that
    the service has: the compose file and this module disagree.
    """
    missing = set(SERVICE_HOSTS) - set(layout.addresses)
    if missing:
        raise ValueError(f"no host address for {sorted(missing)}")
    service = compose["services"][name]
    folder_map = mounts(service, layout.home)
    env: dict[str, str] = {}
    changed: set[str] = set()
    for key, raw in service.get("environment", {}).items():
        value = interpolate(str(raw))
        host_value = rewrite_paths(rewrite_addresses(value, layout.addresses), folder_map)
        env[key] = host_value
        if host_value != value:
            changed.add(key)
    expected = set(OVERRIDDEN_KEYS) & set(env)
    if changed != expected:
        raise ValueError(
            f"{name}: the host rewrite changed {sorted(changed)}, OVERRIDDEN_KEYS names {sorted(expected)}"
        )
    leaked = [key for key, value in env.items() if CONTAINER_HOME in value]
    if leaked:
        raise ValueError(f"{name}: container paths left in {leaked}")
    return env, changed


def command(compose: Mapping[str, Any], name: str) -> list[str]:
    """The Airflow command of a service: the image's entrypoint runs ``airflow <command>``."""
    return ["airflow", *shlex.split(compose["services"][name]["command"])]


def healthcheck(compose: Mapping[str, Any], name: str, host_port: int | None = None) -> list[str]:
    """The service's healthcheck as an argv for the host.

    ``CMD`` runs as is, ``CMD-SHELL`` through ``/bin/sh -c`` (compose's ``$$`` is a literal
    ``$``). ``localhost:<port>`` (the service's own port in its container) becomes
    ``127.0.0.1:<host_port>``, where the service listens on the host.
    """
    test = compose["services"][name]["healthcheck"]["test"]
    kind, args = (test[0], test[1:]) if isinstance(test, list) else ("CMD-SHELL", [test])
    args = [arg.replace("$$", "$") for arg in args]
    if host_port is not None:
        args = [re.sub(r"localhost:\d+", f"127.0.0.1:{host_port}", arg) for arg in args]
    if kind == "CMD":
        return args
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(args)]
    raise ValueError(f"{name}: unknown healthcheck form {kind!r}")


def init_steps(compose: Mapping[str, Any]) -> tuple[list[list[str]], tuple[str, str] | None]:
    """What ``airflow-init`` does, as Airflow commands, and the admin user (username, password).

    The image's entrypoint migrates the DB when ``_AIRFLOW_DB_MIGRATE`` is true and creates the
    admin user when ``_AIRFLOW_WWW_USER_CREATE`` is true; the init script runs ``airflow config
    list`` so every service shares the config file it writes (its secrets included).
    """
    env = {k: interpolate(str(v)) for k, v in compose["services"]["airflow-init"]["environment"].items()}
    steps = [["airflow", "config", "list"]]
    if env.get("_AIRFLOW_DB_MIGRATE") == "true":
        steps.append(["airflow", "db", "migrate"])
    admin = None
    if env.get("_AIRFLOW_WWW_USER_CREATE") == "true":
        admin = (env["_AIRFLOW_WWW_USER_USERNAME"], env["_AIRFLOW_WWW_USER_PASSWORD"])
        steps.append(
            ["airflow", "users", "create", "--username", admin[0], "--password", admin[1], "--firstname", "Airflow",
             "--lastname", "Admin", "--email", "airflowadmin@example.com", "--role", "Admin"]
        )  # fmt: skip
    return steps, admin
