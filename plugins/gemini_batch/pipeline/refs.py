"""Parsed names of BigQuery tables and GCS objects.

Invariant: a name that reaches SQL text went through :class:`TableRef`, whose parts are checked
against BigQuery's identifier rules, so identifiers can be formatted into SQL while every value
travels as a query parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GcsUri", "TableRef"]

_PROJECT = re.compile(r"^[a-z][a-z0-9-]{0,127}$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$")


@dataclass(frozen=True)
class TableRef:
    """A fully qualified BigQuery table.

    :param project: Required. The project id.
    :param dataset: Required. The dataset id.
    :param table: Required. The table id.
    """

    project: str
    dataset: str
    table: str

    def __post_init__(self) -> None:
        for part, pattern, what in (
            (self.project, _PROJECT, "project"),
            (self.dataset, _DATASET, "dataset"),
            (self.table, _TABLE, "table"),
        ):
            if not pattern.match(part):
                raise ValueError(
                    f"invalid BigQuery {what} id {part!r} in {self.project}.{self.dataset}.{self.table}: "
                    f"use letters, digits and underscores"
                )

    @classmethod
    def parse(cls, value: str, *, default_project: str | None = None) -> TableRef:
        """Parse ``bq://p.d.t``, ``p.d.t`` or (with ``default_project``) ``d.t``."""
        text = value.strip()
        if text.startswith("bq://"):
            text = text[len("bq://") :]
        parts = text.replace("`", "").split(".")
        if len(parts) == 2 and default_project:
            parts = [default_project, *parts]
        if len(parts) != 3:
            raise ValueError(
                f"not a BigQuery table name: {value!r}; expected bq://project.dataset.table"
                + ("" if default_project else " (or dataset.table with a default project)")
            )
        return cls(*parts)

    @property
    def uri(self) -> str:
        """``bq://project.dataset.table``, the form the batch services take."""
        return f"bq://{self.project}.{self.dataset}.{self.table}"

    @property
    def api_repr(self) -> str:
        """``project.dataset.table``, the form the BigQuery client takes."""
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def sql(self) -> str:
        """The quoted identifier for SQL text."""
        return f"`{self.project}.{self.dataset}.{self.table}`"

    def sibling(self, table: str) -> TableRef:
        """Another table in the same dataset."""
        return TableRef(self.project, self.dataset, table)

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class GcsUri:
    """A ``gs://bucket/name`` object name or prefix.

    :param bucket: Required. The bucket.
    :param name: The object name or prefix inside the bucket (may be empty for the bucket root).
    """

    bucket: str
    name: str = ""

    def __post_init__(self) -> None:
        if not _BUCKET.match(self.bucket):
            raise ValueError(f"invalid GCS bucket name {self.bucket!r} in {self}")

    @classmethod
    def parse(cls, value: str) -> GcsUri:
        """Parse ``gs://bucket/name``."""
        if not value.startswith("gs://"):
            raise ValueError(f"not a GCS URI: {value!r}; expected gs://bucket/path")
        bucket, _, name = value[len("gs://") :].partition("/")
        return cls(bucket, name)

    def child(self, name: str) -> GcsUri:
        """The object ``name`` under this prefix (one ``/`` between them)."""
        base = self.name.rstrip("/")
        return GcsUri(self.bucket, f"{base}/{name.lstrip('/')}" if base else name.lstrip("/"))

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.name}"
