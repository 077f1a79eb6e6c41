"""Where the pipelines keep their data: project, dataset, bucket, table names, model.

Invariant: settings are resolved when a task runs, never when a DAG file is parsed (no
Variable or connection lookup at parse time). Each value comes from an Airflow Variable
``gemini_batch_<name>`` (``AIRFLOW_VAR_GEMINI_BATCH_<NAME>`` in the environment works too), else
a default that fits the local stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from gemini_batch.backends import DEFAULT_GCP_CONN_ID
from gemini_batch.pipeline.refs import GcsUri, TableRef

__all__ = ["DEFAULT_DATASET", "DEFAULT_MODEL", "PipelineSettings", "default_bucket"]

DEFAULT_DATASET = "gemini_batch"
DEFAULT_MODEL = "gemini-2.5-flash"


def default_bucket(project: str) -> str:
    """The default bucket of a project's pipelines: ``<project>-gemini-batch``."""
    return f"{project}-gemini-batch"


@dataclass(frozen=True)
class PipelineSettings:
    """The pipelines' locations.

    :param project: The Google Cloud project of the tables and jobs.
    :param dataset: The dataset of the prompts, requests, results and errors tables.
    :param bucket: The bucket of JSONL inputs, shards and staged results files.
    :param model: The default model.
    :param location: The Vertex AI location (None: the connection's).
    :param prompts_table: Table name of the prompts.
    :param results_table: Table name of the answers (the pipelines' Asset).
    :param errors_table: Table name of the failed rows.
    """

    project: str
    dataset: str = DEFAULT_DATASET
    bucket: str = ""
    model: str = DEFAULT_MODEL
    location: str | None = None
    prompts_table: str = "prompts"
    results_table: str = "results"
    errors_table: str = "errors"

    def __post_init__(self) -> None:
        if not self.bucket:
            object.__setattr__(self, "bucket", default_bucket(self.project))

    def table(self, name: str) -> TableRef:
        """A table of the pipelines' dataset."""
        return TableRef(self.project, self.dataset, name)

    @property
    def prompts(self) -> TableRef:
        return self.table(self.prompts_table)

    @property
    def results(self) -> TableRef:
        return self.table(self.results_table)

    @property
    def errors(self) -> TableRef:
        return self.table(self.errors_table)

    def gcs(self, path: str) -> str:
        """``gs://<bucket>/<path>``."""
        return str(GcsUri(self.bucket).child(path))

    @classmethod
    def resolve(cls, gcp_conn_id: str = DEFAULT_GCP_CONN_ID, **overrides: Any) -> PipelineSettings:
        """The settings from Airflow Variables; the project falls back to the connection's.

        Call it inside a task (it reads Variables and the connection).
        """
        from airflow.sdk import Variable

        def variable(name: str) -> str | None:
            value = Variable.get(f"gemini_batch_{name}", default=None)
            return value or None

        project = (
            variable("project") or os.environ.get("GOOGLE_CLOUD_PROJECT") or _connection_project(gcp_conn_id)
        )
        if not project:
            raise ValueError(
                "no project for the pipelines: set the Variable gemini_batch_project, GOOGLE_CLOUD_PROJECT, "
                f"or the 'project' extra of the connection {gcp_conn_id!r}"
            )
        values: dict[str, Any] = {"project": project}
        for name in (
            "dataset",
            "bucket",
            "model",
            "location",
            "prompts_table",
            "results_table",
            "errors_table",
        ):
            value = variable(name)
            if value is not None:
                values[name] = value
        return replace(cls(**values), **overrides)


def _connection_project(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook

    try:
        extra = BaseHook.get_connection(conn_id).extra_dejson
    except Exception:  # noqa: BLE001 - a missing connection only means no fallback here
        return None
    return extra.get("project") or extra.get("extra__google_cloud_platform__project")
