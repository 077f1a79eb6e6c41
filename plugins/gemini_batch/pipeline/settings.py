"""Where the pipelines keep their data: project, dataset, bucket, table names, model.

Invariant: settings are resolved when a task runs, never when a DAG file is parsed (no
Variable or connection lookup at parse time). Each value comes from an Airflow Variable
``gemini_batch_<name>`` (``AIRFLOW_VAR_GEMINI_BATCH_<NAME>`` in the environment works too), else
a default that fits the local stack. The first task of every pipeline DAG checks them all
(:meth:`PipelineSettings.problems`, then the dataset and bucket exist), so a bad Variable fails
the run before any job, with a message naming the Variable and what to set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from gemini_batch.backends import DEFAULT_GCP_CONN_ID
from gemini_batch.pipeline.refs import GcsUri, TableRef

__all__ = ["DEFAULT_DATASET", "DEFAULT_MODEL", "RULES", "PipelineSettings", "default_bucket", "variable_name"]

DEFAULT_DATASET = "gemini_batch"
DEFAULT_MODEL = "gemini-2.5-flash"


#: What each setting must look like: (pattern, the rule in words, an example). Google's naming rules:
#: projects (6-30 chars, optionally domain-scoped), datasets and tables (letters, digits, _; tables
#: also -), buckets (3-63 lowercase chars), models (a bare id such as gemini-2.5-flash), locations.
RULES: dict[str, tuple[re.Pattern[str], str, str]] = {
    "project": (
        re.compile(r"^(?:[a-z][a-z0-9.\-]*[a-z0-9]:)?[a-z][a-z0-9\-]{4,28}[a-z0-9]$"),
        "6-30 lowercase letters, digits or hyphens, starting with a letter",
        "my-project",
    ),
    "dataset": (re.compile(r"^[A-Za-z0-9_]{1,1024}$"), "letters, digits and underscores", "gemini_batch"),
    "bucket": (
        re.compile(r"^[a-z0-9][a-z0-9_\-]{1,61}[a-z0-9]$|^[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]$"),
        "3-63 lowercase letters, digits, '-' or '_' (dots for domain buckets), no gs:// prefix",
        "my-project-gemini-batch",
    ),
    "model": (
        re.compile(r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$"),
        "a model id such as gemini-2.5-flash (no 'models/' or 'publishers/' prefix)",
        DEFAULT_MODEL,
    ),
    "location": (re.compile(r"^(?:global|[a-z]+-[a-z]+[0-9]+)$"), "a Vertex AI location", "us-central1"),
    "prompts_table": (
        re.compile(r"^[A-Za-z0-9_\-]{1,1024}$"),
        "a table name (no project or dataset)",
        "prompts",
    ),
    "results_table": (
        re.compile(r"^[A-Za-z0-9_\-]{1,1024}$"),
        "a table name (no project or dataset)",
        "results",
    ),
    "errors_table": (
        re.compile(r"^[A-Za-z0-9_\-]{1,1024}$"),
        "a table name (no project or dataset)",
        "errors",
    ),
}


def variable_name(setting: str) -> str:
    """The Airflow Variable of a setting: ``gemini_batch_<setting>``."""
    return f"gemini_batch_{setting}"


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

    def problems(self) -> list[str]:
        """Every setting that breaks its rule (:data:`RULES`), each naming its Variable and the fix.

        The project may also come from ``GOOGLE_CLOUD_PROJECT`` or the connection; the message says so.
        """
        found = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None or field.name not in RULES:
                continue
            pattern, rule, example = RULES[field.name]
            if not isinstance(value, str) or not pattern.match(value):
                where = (
                    " (or GOOGLE_CLOUD_PROJECT, or the connection's project)"
                    if field.name == "project"
                    else ""
                )
                found.append(
                    f"Variable {variable_name(field.name)}{where} is {value!r}: it must be {rule}. "
                    f"Set it to e.g. {example!r}, or delete it to use the default."
                )
        if self.results_table == self.errors_table:
            found.append(
                f"Variables {variable_name('results_table')} and {variable_name('errors_table')} name the same "
                f"table {self.results_table!r}: set them to two different tables."
            )
        return found

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
            value = Variable.get(variable_name(name), default=None)
            return value.strip() if isinstance(value, str) and value.strip() else None

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
