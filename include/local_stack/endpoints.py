"""Where a running local stack answers, and the environment that points clients at it.

Invariant: :meth:`StackEndpoints.env` returns exactly the variables that docs/design.md lists
for ``.local-stack/env``, no more and no fewer; every client (Airflow connections, the Google
libraries, the admin client) finds the stack through them alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

DEFAULT_PROJECT = "local-project"
DEFAULT_LOCATION = "us-central1"
DEFAULT_API_KEY = "local-gemini-api-key"
HOST = "127.0.0.1"

#: The names :meth:`StackEndpoints.env` returns, in the order the env file lists them.
ENV_NAMES: tuple[str, ...] = (
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
)


@dataclass(frozen=True)
class StackEndpoints:
    """The ports of one running stack and the defaults it was started with.

    :param storage_port: Required. Port of the GCS emulator (gcp-storage-emulator).
    :param bigquery_port: Required. REST port of the BigQuery emulator (bqemulator).
    :param bigquery_grpc_port: Required. gRPC port of the BigQuery emulator.
    :param gemini_port: Required. Port of the Gemini batch emulator (both APIs and admin).
    :param project: Optional. The Google Cloud project every emulator defaults to.
    :param location: Optional. The Vertex AI location.
    :param api_key: Optional. The Gemini API key the emulator accepts.
    :param host: Optional. The address all three listen on.
    """

    storage_port: int
    bigquery_port: int
    bigquery_grpc_port: int
    gemini_port: int
    project: str = DEFAULT_PROJECT
    location: str = DEFAULT_LOCATION
    api_key: str = DEFAULT_API_KEY
    host: str = HOST

    @property
    def storage_url(self) -> str:
        """Base URL of the GCS emulator (the value of ``STORAGE_EMULATOR_HOST``)."""
        return f"http://{self.host}:{self.storage_port}"

    @property
    def bigquery_url(self) -> str:
        """Base URL of the BigQuery REST API (the value of ``BIGQUERY_EMULATOR_HOST``)."""
        return f"http://{self.host}:{self.bigquery_port}"

    @property
    def gemini_url(self) -> str:
        """Base URL of the Gemini batch emulator: Vertex, Gemini API and Files API."""
        return f"http://{self.host}:{self.gemini_port}"

    @property
    def admin_url(self) -> str:
        """Base URL of the emulator's admin API (for :class:`local_stack.admin.AdminClient`)."""
        return f"{self.gemini_url}/admin"

    def google_cloud_connection(self) -> dict[str, object]:
        """The ``google_cloud_default`` connection: anonymous credentials, genai endpoint override."""
        return {
            "conn_type": "google_cloud_platform",
            "extra": {
                "is_anonymous": True,
                "project": self.project,
                "location": self.location,
                "genai_base_url": self.gemini_url,
            },
        }

    def gemini_api_connection(self) -> dict[str, object]:
        """The ``gemini_api_default`` connection: the emulator's API key and endpoint."""
        return {
            "conn_type": "gemini_api",
            "password": self.api_key,
            "extra": {"genai_base_url": self.gemini_url},
        }

    def env(self) -> dict[str, str]:
        """Every variable of ``.local-stack/env``, in :data:`ENV_NAMES` order."""
        values = {
            "STORAGE_EMULATOR_HOST": self.storage_url,
            "BIGQUERY_EMULATOR_HOST": self.bigquery_url,
            "GOOGLE_VERTEX_BASE_URL": self.gemini_url,
            "GOOGLE_GEMINI_BASE_URL": self.gemini_url,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "GOOGLE_CLOUD_LOCATION": self.location,
            "GEMINI_API_KEY": self.api_key,
            "LOCAL_STACK_ADMIN_URL": self.admin_url,
            "NO_GCE_CHECK": "True",
            "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(self.google_cloud_connection()),
            "AIRFLOW_CONN_GEMINI_API_DEFAULT": json.dumps(self.gemini_api_connection()),
        }
        return {name: values[name] for name in ENV_NAMES}

    def to_dict(self) -> dict[str, object]:
        """A JSON-able form, stored in the state file."""
        return {
            "storage_port": self.storage_port,
            "bigquery_port": self.bigquery_port,
            "bigquery_grpc_port": self.bigquery_grpc_port,
            "gemini_port": self.gemini_port,
            "project": self.project,
            "location": self.location,
            "api_key": self.api_key,
            "host": self.host,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> StackEndpoints:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)  # type: ignore[arg-type]
