"""Fixtures for the Gemini batch emulator's tests: SDK clients in both modes, input helpers.

The stack itself (``local_stack``, ``stack_admin``, ``gcs_client``, ``bq_client``,
``gcs_bucket``, ``bq_dataset``) comes from ``tests/conftest.py``; ``stack_admin`` resets the
emulator (jobs, files, faults) before each test that uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from emulator_helpers import jsonl

if TYPE_CHECKING:
    from google.cloud import bigquery, storage
    from google.genai import Client

    from local_stack.endpoints import StackEndpoints


def make_vertex_client(stack: StackEndpoints, **http: Any) -> Client:
    """A Vertex-mode client pointed at the emulator, with a static bearer token."""
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    return genai.Client(
        vertexai=True,
        project=stack.project,
        location=stack.location,
        credentials=Credentials(token="local"),
        http_options=types.HttpOptions(base_url=stack.gemini_url, **http),
    )


def make_gemini_client(stack: StackEndpoints, api_key: str | None = None, **http: Any) -> Client:
    """A Gemini API client pointed at the emulator."""
    from google import genai
    from google.genai import types

    return genai.Client(
        api_key=api_key or stack.api_key, http_options=types.HttpOptions(base_url=stack.gemini_url, **http)
    )


@pytest.fixture
def vertex_client(local_stack: StackEndpoints) -> Client:
    """Vertex AI mode (project, location, bearer token)."""
    return make_vertex_client(local_stack)


@pytest.fixture
def gemini_client(local_stack: StackEndpoints) -> Client:
    """Gemini API mode (API key)."""
    return make_gemini_client(local_stack)


@pytest.fixture
def upload_jsonl(gcs_bucket: storage.Bucket) -> Callable[[str, list[Any]], str]:
    """``upload_jsonl(name, lines) -> gs:// URI`` in the test's bucket."""

    def upload(name: str, lines: list[Any]) -> str:
        gcs_bucket.blob(name).upload_from_string(jsonl(lines), content_type="application/jsonl")
        return f"gs://{gcs_bucket.name}/{name}"

    return upload


@pytest.fixture
def bq_table(bq_client: bigquery.Client, bq_dataset: bigquery.Dataset) -> Callable[..., str]:
    """``bq_table(name, rows, request_type="JSON") -> bq:// URI``: rows of id, request, note."""
    import io
    import json

    from google.cloud import bigquery

    def create(name: str, rows: list[dict[str, Any]], request_type: str = "JSON") -> str:
        schema = [
            bigquery.SchemaField("id", "INT64"),
            bigquery.SchemaField("request", request_type),
            bigquery.SchemaField("note", "STRING"),
        ]
        table_id = f"{bq_client.project}.{bq_dataset.dataset_id}.{name}"
        bq_client.create_table(bigquery.Table(table_id, schema=schema))
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        config = bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema)
        bq_client.load_table_from_file(io.BytesIO(data), table_id, job_config=config).result()
        return f"bq://{table_id}"

    return create
