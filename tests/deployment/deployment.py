"""The compose deployment started as processes: databases, airflow-init, the Airflow services.

:func:`start` runs what ``docker compose up`` runs, in compose's order: Postgres and Redis (with
the compose file's credentials), the steps of ``airflow-init``, then api-server, scheduler,
dag-processor, one Celery worker and two triggerers, each with its compose environment rewritten
by :mod:`.compose`. It waits for each service's own compose healthcheck to pass. The caller must
call ``procs.stop_all()`` (a finalizer), which ends every process and removes the database's
folder, even after a failed start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests

from . import compose as cfg
from .processes import Database, Processes, free_port, start_postgres, start_redis, wait_for

TRIGGERERS = ("airflow-triggerer-1", "airflow-triggerer-2")


class Api:
    """The Airflow REST API with a bearer token (FAB: ``POST /auth/token``)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def login(self, username: str, password: str) -> None:
        response = self.session.post(
            f"{self.base}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.session.request(method, self.base + path, json=body, timeout=30)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.call(method, path, body)
        if status not in (200, 201):
            raise AssertionError(f"{method} {path}: {status} {payload}")
        return payload


@dataclass
class Deployment:
    """The running deployment: processes, the REST API, the metadata DB, the triggerers' job ids."""

    procs: Processes
    compose: Mapping[str, Any]
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    api: Api | None = None
    db_url: str = ""
    database: Database | None = None
    triggerer_jobs: dict[int, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)

    def engine(self) -> Any:
        import sqlalchemy

        return sqlalchemy.create_engine(self.db_url, poolclass=sqlalchemy.pool.NullPool)

    def query(self, sql: str, **params: Any) -> list[Any]:
        import sqlalchemy

        engine = self.engine()
        try:
            with engine.connect() as conn:
                return list(conn.execute(sqlalchemy.text(sql), params))
        finally:
            engine.dispose()

    def triggerer_job_ids(self, *, running_only: bool = True) -> set[int]:
        """Ids of the triggerers' jobs in the metadata DB (``job`` rows of type TriggererJob)."""
        sql = "SELECT id FROM job WHERE job_type = 'TriggererJob'" + (
            " AND state = 'running'" if running_only else ""
        )
        return {row.id for row in self.query(sql)}

    def new_triggerer_job(self, known: set[int]) -> int | None:
        """The job id of a triggerer that registered after ``known`` was taken, if one has."""
        self.check_services()
        new = self.triggerer_job_ids() - known
        return next(iter(new)) if new else None

    def check_services(self, *, except_: tuple[str, ...] = ()) -> None:
        """Fail with its log's tail if an Airflow service exited."""
        for name in self.services:
            proc = self.procs.started[name]
            if name not in except_ and not proc.alive():
                raise AssertionError(f"{name} exited with {proc.popen.returncode}:\n{proc.tail(60)}")


def host_base_env() -> dict[str, str]:
    """The test's environment without anything Airflow, Google or stack related (a clean shell)."""
    drop = ("AIRFLOW", "_AIRFLOW", "STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "GOOGLE_", "GEMINI_",
            "LOCAL_STACK", "PYTHONPATH")  # fmt: skip
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def checkout_path(env: Mapping[str, str]) -> dict[str, str]:
    """PYTHONPATH ending with this checkout's plugins/: the services run this checkout's package.

    The shared venv's editable install may point at another checkout (a worktree's test would
    otherwise run the main checkout's code); an image built from this checkout would hold this
    code. plugins/ itself holds only the package, so nothing else becomes importable.
    """
    mine = str(cfg.ROOT / "plugins")
    return {"PYTHONPATH": os.pathsep.join(p for p in (env.get("PYTHONPATH"), mine) if p)}


def start(
    procs: Processes,
    *,
    stack: Any,
    home: Path,
    extra: Mapping[str, str],
    compose: Mapping[str, Any] | None = None,
    timeout: float = 240.0,
    gemini_port: int | None = None,
) -> Deployment:
    """Start the deployment; ``stack`` is the local stack's ``StackEndpoints``.

    :param extra: Values of test knobs among :data:`compose.ADDED_KEYS` (dataset, bucket, poll...).
    :param gemini_port: Optional. Where Airflow reaches the Gemini emulator (e.g. a delay proxy in
        front of it); default the emulator itself.
    """
    compose = compose or cfg.load()
    home.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(procs=procs, compose=compose)
    base = host_base_env()
    postgres_env = {
        k: cfg.interpolate(str(v)) for k, v in compose["services"]["postgres"]["environment"].items()
    }
    deployment.database = start_postgres(
        procs, user=postgres_env["POSTGRES_USER"], password=postgres_env["POSTGRES_PASSWORD"],
        database=postgres_env["POSTGRES_DB"], base_env=base,
    )  # fmt: skip
    redis_port = start_redis(procs, home, base)

    api_port, health_port = free_port(), free_port()
    layout = cfg.HostLayout(
        addresses={
            "postgres": f"127.0.0.1:{deployment.database.port}",
            "redis": f"127.0.0.1:{redis_port}",
            "airflow-apiserver": f"127.0.0.1:{api_port}",
            "gcs-emulator": f"127.0.0.1:{stack.storage_port}",
            "bigquery-emulator": f"127.0.0.1:{stack.bigquery_port}",
            "gemini-emulator": f"127.0.0.1:{gemini_port or stack.gemini_port}",
        },
        home=home,
    )
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    (home / "plugins").mkdir(parents=True, exist_ok=True)
    repo_mounts = cfg.mounts(compose["services"]["airflow-scheduler"], home)
    added = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo_mounts[f"{cfg.CONTAINER_HOME}/dags"]),
        # The image's plugins folder is empty (the package is installed); a plugins mount, if the
        # compose file had one again, would bring the repository's plugins/ as it would in compose.
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(
            repo_mounts.get(f"{cfg.CONTAINER_HOME}/plugins", home / "plugins")
        ),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health_port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
        **extra,
    }
    unknown = set(added) - set(cfg.ADDED_KEYS)
    if unknown:
        raise ValueError(f"keys not declared in compose.ADDED_KEYS: {sorted(unknown)}")

    def env_of(service: str, **more: str) -> dict[str, str]:
        env, _ = cfg.service_environment(compose, service, layout)
        clash = set(env) & (set(added) | set(more))
        if clash:
            raise ValueError(f"{service}: the compose file sets {sorted(clash)}, which the test also adds")
        return {**base, **env, **added, **more, **checkout_path(env)}

    init_env = env_of("airflow-init")
    deployment.db_url = init_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    steps, admin = cfg.init_steps(compose)
    for index, step in enumerate(steps):
        procs.run(f"airflow-init-{index}-{step[1]}", step, init_env, timeout=300)

    deployment.api = Api(f"http://127.0.0.1:{api_port}")
    host_ports = {"airflow-apiserver": api_port, "airflow-scheduler": health_port}
    for service in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker"):
        deployment.envs[service] = env_of(service)
        procs.start(service, cfg.command(compose, service), deployment.envs[service], cwd=home)
        deployment.services.append(service)
    for name in TRIGGERERS:
        env = env_of("airflow-triggerer", AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()))
        deployment.envs[name] = env
        known = deployment.triggerer_job_ids(running_only=False)
        procs.start(name, cfg.command(compose, "airflow-triggerer"), env, cwd=home)
        deployment.services.append(name)
        job_id = wait_for(
            partial(deployment.new_triggerer_job, known), timeout=timeout, what=f"{name} to register"
        )
        deployment.triggerer_jobs[job_id] = name

    # Each service's own compose healthcheck, as the container runs it ($HOSTNAME: the host's).
    check_env = {**deployment.envs["airflow-worker"], "HOSTNAME": socket.gethostname()}
    pending = {
        service: cfg.healthcheck(compose, service, host_ports.get(service))
        for service in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                        "airflow-triggerer")
    }  # fmt: skip
    deadline = time.monotonic() + timeout
    while pending:
        deployment.check_services()
        running = {
            service: subprocess.Popen(argv, env=check_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
            for service, argv in pending.items()
        }  # fmt: skip
        outputs = {}
        for service, proc in running.items():
            out, _ = proc.communicate(timeout=120)
            outputs[service] = out.decode(errors="replace")[-2000:]
            if proc.returncode == 0:
                del pending[service]
        if pending and time.monotonic() > deadline:
            tails = "\n".join(f"--- {s}: {outputs[s]}" for s in pending)
            raise TimeoutError(
                f"healthchecks still failing after {timeout:.0f} s: {sorted(pending)}\n{tails}"
            )
        if pending:
            time.sleep(2)

    assert admin is not None, "airflow-init creates no admin user: the test cannot log in"
    deployment.api.login(*admin)
    return deployment
