"""Shared test harness: a private Airflow home, the metadata DB, the local stack, clients.

Invariant: everything Airflow reads from the environment is set at import time of this file,
before any test module imports airflow, so every test runs against a throwaway AIRFLOW_HOME
and SQLite DB and never against the user's own Airflow. Integration tests (marked
``integration``) get real Google clients pointed at the local stack through its env, the same
code path ``make stack-up`` users take.

Fixtures:
- ``airflow_db`` (session): the metadata DB, created once.
- ``run_dag`` (function): ``run_dag(dag, **test_kwargs) -> DagRun``; registers a DAG defined in
  a test and runs it in-process with ``dag.test()`` (deferred tasks run their trigger in line).
- ``local_stack`` (session): a running stack's ``StackEndpoints``; its ``env()`` is in
  ``os.environ`` for the session.
- ``stack_admin`` (function): ``AdminClient`` of the Gemini emulator, faults and jobs reset.
- ``gcs_client`` / ``bq_client`` (session), ``gcs_bucket`` / ``bq_dataset`` (function, fresh
  per test, deleted afterwards).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local_stack.endpoints import ENV_NAMES

REPO_ROOT = Path(__file__).resolve().parent.parent

_STACK_AND_CLOUD_VARS = {
    *(name for name in ENV_NAMES if name != "NO_GCE_CHECK"),
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "LOCAL_STACK_DIR",
}


def _configure_airflow_env() -> Path:
    """Point Airflow at a session-private home before anything imports it."""
    home = Path(tempfile.mkdtemp(prefix="gemini-batch-airflow-home-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # Google clients built without an endpoint must not probe the GCE metadata server.
            "NO_GCE_CHECK": "True",
        }
    )
    # A stack started by hand (`set -a; . .local-stack/env`) or real Google credentials in the
    # developer's shell must not reach unit tests; integration tests get the stack's variables
    # back from the `local_stack` fixture.
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_") or n in _STACK_AND_CLOUD_VARS]:
        del os.environ[name]
    if os.environ.get("KEEP_AIRFLOW_HOME") != "1":
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


AIRFLOW_HOME = _configure_airflow_env()

if TYPE_CHECKING:
    from google.cloud import bigquery, storage

    from local_stack.admin import AdminClient
    from local_stack.endpoints import StackEndpoints


# --- Airflow ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's Airflow metadata DB (SQLite), created once from the ORM and stamped at head.

    This is what ``airflow db migrate`` does to an empty DB, without its CLI start-up cost.
    """
    from airflow.utils import db

    db.initdb()
    return AIRFLOW_HOME / "airflow.db"


def _register_dag(dag: Any) -> None:
    """Write a DAG defined in a test into the metadata DB, as the DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()
        update_dag_parsing_results_in_db(
            "dags-folder",
            None,
            [LazyDeserializedDAG.from_dag(dag)],
            {},
            None,
            set(),
            session=session,
        )


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., Any]:
    """Run a DAG object in-process: ``run_dag(dag, **dag_test_kwargs) -> DagRun``.

    Registers the DAG (it need not live in ``dags/``), then calls ``dag.test()``, which runs
    every task in this process and a deferred task's trigger in line. Check ``dag_run.state``.
    """

    def run(dag: Any, **kwargs: Any) -> Any:
        _register_dag(dag)
        return dag.test(**kwargs)

    return run


# --- local stack -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEndpoints]:
    """A local stack for the whole session, its ``env()`` in ``os.environ`` (restored after)."""
    from local_stack.stack import start

    stack = start(tmp_path_factory.mktemp("local-stack"), ephemeral=True)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in stack.endpoints.env().items():
                patch.setenv(name, value)
            yield stack.endpoints
    finally:
        stack.stop()


@pytest.fixture
def stack_admin(local_stack: StackEndpoints) -> AdminClient:
    """The Gemini emulator's admin client, with faults back to defaults and no jobs or files."""
    from local_stack.admin import AdminClient

    client = AdminClient(local_stack.admin_url)
    client.reset_faults()
    client.reset()
    return client


@pytest.fixture(scope="session")
def gcs_client(local_stack: StackEndpoints) -> storage.Client:
    """The real storage client; ``STORAGE_EMULATOR_HOST`` sends it to the GCS emulator."""
    from google.cloud import storage

    return storage.Client(project=local_stack.project)


@pytest.fixture(scope="session")
def bq_client(local_stack: StackEndpoints) -> bigquery.Client:
    """The real BigQuery client, anonymous, pointed at the BigQuery emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=local_stack.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": local_stack.bigquery_url},
    )


def _unique_name(request: pytest.FixtureRequest, sep: str, limit: int) -> str:
    """A readable, unique resource name from the test's name."""
    base = re.sub(r"[^a-z0-9]+", sep, request.node.name.lower()).strip(sep)
    suffix = uuid.uuid4().hex[:8]
    return f"t{sep}{base[: limit - len(suffix) - 3]}{sep}{suffix}"


@pytest.fixture
def gcs_bucket(gcs_client: storage.Client, request: pytest.FixtureRequest) -> Iterator[storage.Bucket]:
    """A fresh, empty bucket for one test; deleted with its objects afterwards."""
    bucket = gcs_client.create_bucket(_unique_name(request, "-", 63))
    yield bucket
    for blob in list(gcs_client.list_blobs(bucket)):
        blob.delete()
    bucket.delete()


@pytest.fixture
def bq_dataset(bq_client: bigquery.Client, request: pytest.FixtureRequest) -> Iterator[bigquery.Dataset]:
    """A fresh dataset for one test; deleted with its tables afterwards."""
    dataset = bq_client.create_dataset(_unique_name(request, "_", 1024))
    yield dataset
    bq_client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)
