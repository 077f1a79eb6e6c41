"""Reading inputs from and writing outputs to the GCS and BigQuery emulators.

Invariants: only the real ``google-cloud-storage`` and ``google-cloud-bigquery`` clients are
used, pointed at ``STORAGE_EMULATOR_HOST`` / ``BIGQUERY_EMULATOR_HOST``; without those
variables nothing is contacted (a job that needs them fails with a message naming the
variable), so the emulator can never reach real Google Cloud. Every function here blocks: the
runner calls them in a worker thread. Problems the user caused (a missing object, table,
bucket or dataset) raise :class:`StorageProblem`, which fails the job with that message.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GCS_URI = re.compile(r"^gs://(?P<bucket>[^/]+)/(?P<path>.*)$")
_WILDCARD = re.compile(r"[*?\[]")


class StorageProblem(Exception):
    """An input or output location is missing or unusable; ``status`` is the gRPC status name.

    :param status: Required. ``NOT_FOUND``, ``INVALID_ARGUMENT`` or ``FAILED_PRECONDITION``.
    :param message: Required. What a user reads in the job's ``error.message``.
    """

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class BigQueryTable:
    """A ``bq://project.dataset.table`` reference (``table`` may be None for a dataset)."""

    project: str
    dataset: str | None
    table: str | None

    @property
    def table_id(self) -> str:
        """``project.dataset.table`` for the BigQuery client."""
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def dataset_uri(self) -> str:
        """``bq://project.dataset``."""
        return f"bq://{self.project}.{self.dataset}"


def parse_bq_uri(uri: str) -> BigQueryTable:
    """Parse ``bq://p``, ``bq://p.d`` or ``bq://p.d.t``; raises ValueError otherwise."""
    if not uri.startswith("bq://"):
        raise ValueError(f"BigQuery URI must start with bq://, got {uri!r}")
    parts = uri[len("bq://") :].split(".")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"BigQuery URI must be bq://project[.dataset[.table]], got {uri!r}")
    return BigQueryTable(parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)


def parse_gcs_uri(uri: str) -> tuple[str, str]:
    """``(bucket, path)`` of ``gs://bucket/path``; raises ValueError otherwise."""
    match = GCS_URI.match(uri)
    if not match:
        raise ValueError(f"Cloud Storage URI must be gs://bucket/path, got {uri!r}")
    return match["bucket"], match["path"]


class CloudClients:
    """Lazily built, shared storage and BigQuery clients for the emulators.

    :param project: Required. The project the clients bill to (any name works locally).
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self._lock = threading.Lock()
        self._storage: Any = None
        self._bigquery: Any = None

    def storage(self) -> Any:
        """The ``google.cloud.storage.Client`` for the GCS emulator."""
        with self._lock:
            if self._storage is None:
                if not os.environ.get("STORAGE_EMULATOR_HOST"):
                    raise StorageProblem(
                        "FAILED_PRECONDITION",
                        "STORAGE_EMULATOR_HOST is not set: the Gemini batch emulator reads and writes "
                        "gs:// only through the local GCS emulator.",
                    )
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import storage

                self._storage = storage.Client(project=self.project, credentials=AnonymousCredentials())
            return self._storage

    def bigquery(self) -> Any:
        """The ``google.cloud.bigquery.Client`` for the BigQuery emulator."""
        with self._lock:
            if self._bigquery is None:
                host = os.environ.get("BIGQUERY_EMULATOR_HOST")
                if not host:
                    raise StorageProblem(
                        "FAILED_PRECONDITION",
                        "BIGQUERY_EMULATOR_HOST is not set: the Gemini batch emulator reads and writes "
                        "bq:// only through the local BigQuery emulator.",
                    )
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import bigquery

                self._bigquery = bigquery.Client(
                    project=self.project,
                    credentials=AnonymousCredentials(),
                    client_options={"api_endpoint": host},
                )
            return self._bigquery


# --- Cloud Storage ---------------------------------------------------------------------------


def _gcs_object_names(client: Any, uri: str) -> tuple[str, list[str]]:
    """The bucket and the object names a source URI stands for, in name order."""
    from google.api_core.exceptions import NotFound

    bucket, path = parse_gcs_uri(uri)
    if not _WILDCARD.search(path) and not path.endswith("/") and path:
        return bucket, [path]
    try:
        if path.endswith("/") or not path:
            blobs = client.list_blobs(bucket, prefix=path, delimiter="/")
        else:
            prefix = path[: _WILDCARD.search(path).start()]  # type: ignore[union-attr]
            blobs = client.list_blobs(bucket, prefix=prefix, match_glob=path)
        names = sorted(b.name for b in blobs if not b.name.endswith("/"))
    except NotFound as exc:
        raise StorageProblem("NOT_FOUND", f"Cloud Storage bucket gs://{bucket} does not exist.") from exc
    if not names:
        raise StorageProblem("NOT_FOUND", f"No Cloud Storage objects match {uri}.")
    return bucket, names


def read_gcs_lines(clients: CloudClients, uris: list[str]) -> list[bytes]:
    """Every non-blank line of every object the URIs name (files, folders, wildcards), in order."""
    from google.api_core.exceptions import NotFound

    client = clients.storage()
    lines: list[bytes] = []
    for uri in uris:
        bucket, names = _gcs_object_names(client, uri)
        for name in names:
            try:
                data = client.bucket(bucket).blob(name).download_as_bytes()
            except NotFound as exc:
                raise StorageProblem(
                    "NOT_FOUND", f"Input file gs://{bucket}/{name} does not exist (or its bucket does not)."
                ) from exc
            lines.extend(line for line in data.split(b"\n") if line.strip())
    return lines


def write_gcs_file(clients: CloudClients, local_path: Path, uri: str, content_type: str) -> None:
    """Upload ``local_path`` to ``gs://bucket/name``."""
    from google.api_core.exceptions import NotFound

    bucket, name = parse_gcs_uri(uri)
    try:
        clients.storage().bucket(bucket).blob(name).upload_from_filename(
            str(local_path), content_type=content_type
        )
    except NotFound as exc:
        raise StorageProblem("NOT_FOUND", f"Output bucket gs://{bucket} does not exist.") from exc


# --- BigQuery --------------------------------------------------------------------------------


#: What a job's input table must hold, by task: the column and what it holds.
INPUT_COLUMNS = {
    "generate": ("request", "JSON (or a JSON string) holding a GenerateContentRequest"),
    "embed": ("content", "STRING holding the text to embed"),
}


def read_bq_rows(
    clients: CloudClients, uri: str, task: str = "generate"
) -> tuple[list[Any], list[dict[str, Any]]]:
    """The schema (``SchemaField`` list) and rows (dicts) of the table ``bq://p.d.t``, which
    must have the task's input column (:data:`INPUT_COLUMNS`)."""
    from google.api_core.exceptions import NotFound

    ref = parse_bq_uri(uri)
    if ref.table is None:
        raise StorageProblem("INVALID_ARGUMENT", f"BigQuery source {uri} must name a table (bq://p.d.t).")
    client = clients.bigquery()
    try:
        table = client.get_table(ref.table_id)
    except NotFound as exc:
        raise StorageProblem("NOT_FOUND", f"BigQuery table {uri} does not exist.") from exc
    column, holds = INPUT_COLUMNS[task]
    if not any(f.name == column for f in table.schema):
        raise StorageProblem(
            "INVALID_ARGUMENT",
            f"BigQuery table {uri} has no column named {column}: the input table needs a {column} "
            f"column of {holds}.",
        )
    rows = [dict(row.items()) for row in client.list_rows(table, page_size=20_000)]
    return list(table.schema), rows


#: The columns a job's output table adds to the input's, by task. Embeddings follow Vertex's
#: documented example (``content``, ``predictions``, ``status``): ``predictions`` holds the JSON
#: text of the predictions list.
OUTPUT_COLUMNS = {
    "generate": {"response": "JSON", "status": "STRING", "processed_time": "TIMESTAMP"},
    "embed": {"predictions": "STRING", "status": "STRING"},
}


def output_schema(input_schema: list[Any], task: str = "generate") -> list[Any]:
    """The output table's columns: the input's, then the task's (:data:`OUTPUT_COLUMNS`)."""
    from google.cloud import bigquery

    added = OUTPUT_COLUMNS[task]
    kept = [f for f in input_schema if f.name not in added]
    return kept + [bigquery.SchemaField(name, kind) for name, kind in added.items()]


def ensure_bq_dataset(clients: CloudClients, ref: BigQueryTable) -> None:
    """Raise :class:`StorageProblem` unless the dataset exists."""
    from google.api_core.exceptions import NotFound

    try:
        clients.bigquery().get_dataset(f"{ref.project}.{ref.dataset}")
    except NotFound as exc:
        raise StorageProblem(
            "NOT_FOUND", f"BigQuery dataset {ref.dataset_uri} for the output does not exist."
        ) from exc


def ensure_bq_table_absent(clients: CloudClients, ref: BigQueryTable) -> None:
    """Raise :class:`StorageProblem` if the output table ``ref`` already exists.

    Vertex AI writes a batch job's BigQuery output into a table it creates; a ``bq://p.d.t``
    destination that already exists fails the job (``bq://p`` and ``bq://p.d`` always get a
    new table), so an output never mixes with, or is appended to, earlier rows.
    """
    from google.api_core.exceptions import NotFound

    try:
        clients.bigquery().get_table(ref.table_id)
    except NotFound:
        return
    raise StorageProblem(
        "ALREADY_EXISTS",
        f"BigQuery table bq://{ref.table_id} already exists. The output table of a batch prediction "
        "job must not exist: name a new table, or give bq://PROJECT.DATASET so the job creates one.",
    )


def create_bq_dataset(clients: CloudClients, project: str, dataset: str) -> None:
    """Create a dataset (output to a bare ``bq://project``)."""
    clients.bigquery().create_dataset(f"{project}.{dataset}", exists_ok=True)


def load_bq_ndjson(clients: CloudClients, table_id: str, schema: list[Any], ndjson: Path) -> None:
    """Append the NDJSON file to ``table_id`` (created with ``schema`` if missing).

    A file object without ``size`` is passed on purpose: bqemulator rejects multipart uploads.
    """
    from google.api_core.exceptions import GoogleAPICallError
    from google.cloud import bigquery

    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        schema=schema,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
    )
    try:
        with open(ndjson, "rb") as handle:
            clients.bigquery().load_table_from_file(handle, table_id, job_config=config).result(timeout=300)
    except GoogleAPICallError as exc:
        raise StorageProblem(
            "FAILED_PRECONDITION", f"Writing the output table {table_id} failed: {exc}"
        ) from exc
