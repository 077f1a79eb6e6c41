"""The create operator's arguments, checked, and the plan of its job: what to submit, for which work.

Invariants: every check here runs before any network call and raises
:class:`~gemini_batch.exceptions.GeminiBatchConfigError` naming the bad value and the fix. The
input fingerprint covers exactly what makes a job's results (backend, model, source, dest,
create_config), never the identity, the display name or the try number: equal fingerprints mean
the same work may share a job; a changed fingerprint means new work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gemini_batch.backends import BACKENDS, Backend
from gemini_batch.exceptions import GeminiBatchConfigError
from gemini_batch.identity import WorkIdentity, validate_labels
from gemini_batch.job_task import JobTask, task_of
from gemini_batch.sources import (
    BatchSource,
    default_destination,
    is_templated,
    parse_destination,
    parse_source,
)

#: The fields of the SDK's ``CreateBatchJobConfig`` a DAG author may pass through.
CREATE_CONFIG_FIELDS = frozenset({"display_name", "dest", "http_options", "webhook_config"})


@dataclass(frozen=True)
class CreateArguments:
    """The create operator's job arguments as given (possibly still templated before rendering).

    Each field is an operator attribute of the same name.
    """

    src: Any
    model: Any
    backend: Any = None
    dest: Any = None
    display_name: Any = None
    labels: Any = None
    create_config: Any = None
    task: Any = None


@dataclass(frozen=True)
class CreatePlan:
    """Everything a try needs to find or submit its job, validated, before any network call.

    :param fingerprint: 16 hex characters over backend, model, source, dest and create_config (and
        the task when it embeds).
    :param dest: the user's destination, or None for the run-scoped default (see :meth:`destination`).
    :param task: ``generate`` or ``embed`` (job_task.task_of: the model's kind or the argument).
    """

    source: BatchSource
    backend: Backend
    model: str
    identity: WorkIdentity
    dest: str | None
    display_name: str
    labels: dict[str, str]
    create_config: dict[str, Any]
    fingerprint: str
    task: JobTask = "generate"

    def destination(self, submission: int) -> str | None:
        """Where the ``submission``-th job of this work writes: the user's dest, else a fresh default."""
        return self.dest or default_destination(
            self.source,
            work_id=self.identity.work_id,
            dag_id=self.identity.dag_id,
            task_id=self.identity.task_id,
            submission=submission,
        )


def check_backend(backend: Any) -> None:
    """``backend`` must be None, a template, or one of :data:`~gemini_batch.sources.BACKENDS`."""
    if backend is not None and not is_templated(backend) and backend not in BACKENDS:
        raise GeminiBatchConfigError(f"backend must be one of {BACKENDS} or None, got {backend!r}.")


def _check_model(model: Any) -> None:
    if not isinstance(model, str) or not model.strip():
        raise GeminiBatchConfigError(f"model must be a model name such as 'gemini-2.5-flash', got {model!r}.")


def check_create_config(args: CreateArguments) -> None:
    """``create_config`` holds known ``CreateBatchJobConfig`` fields, none given twice."""
    create_config = args.create_config
    if create_config is None or is_templated(create_config):
        return
    if not isinstance(create_config, Mapping):
        raise GeminiBatchConfigError(
            "create_config must be a dict of CreateBatchJobConfig fields, got "
            f"{type(create_config).__name__}."
        )
    unknown = set(create_config) - CREATE_CONFIG_FIELDS
    if unknown:
        raise GeminiBatchConfigError(
            f"create_config has unknown fields {sorted(unknown)}; CreateBatchJobConfig accepts "
            f"{sorted(CREATE_CONFIG_FIELDS)}."
        )
    for field_name, arg in (("display_name", args.display_name), ("dest", args.dest)):
        if create_config.get(field_name) is not None and arg is not None:
            raise GeminiBatchConfigError(
                f"{field_name} is given twice (argument and create_config['{field_name}']); keep one."
            )


def validate_static(args: CreateArguments) -> None:
    """Parse-time checks of every argument whose value is already known (templates wait for execute)."""
    check_backend(args.backend)
    if not is_templated(args.model):
        _check_model(args.model)
    check_create_config(args)
    backend = None if is_templated(args.backend) else args.backend
    task = None if is_templated(args.model) or is_templated(args.task) else task_of(args.model, args.task)
    source = None if is_templated(args.src) else parse_source(args.src, backend=backend, task=task)
    if source is not None and not is_templated(args.dest):
        parse_destination(args.dest, source)
    if not is_templated(args.labels):
        validate_labels(args.labels)
    effective = source.backend if source is not None else backend
    if effective == "gemini_api" and args.labels:
        raise GeminiBatchConfigError(
            "labels apply to Vertex AI jobs only; the Gemini API has no job labels. Remove labels."
        )


def input_fingerprint(
    *,
    backend: str,
    model: str,
    source: BatchSource,
    dest: str | None,
    config: Mapping[str, Any],
    task: JobTask = "generate",
) -> str:
    """16 hex characters of SHA-256 over what makes a job's results (see the module docstring).

    The task is hashed only when it is ``embed``: a generation job keeps the fingerprint it had
    before embeddings existed, so work in flight across an upgrade is still recognised.
    """
    fields = {
        "backend": backend,
        "model": model,
        "source": source.fingerprint(),
        "dest": dest,
        "config": dict(config),
    }
    if task != "generate":
        fields["task"] = task
    payload = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan_create(args: CreateArguments, identity: WorkIdentity) -> CreatePlan:
    """Validate the rendered arguments and derive the job's identity, names and fingerprint."""
    check_backend(args.backend)
    check_create_config(args)
    _check_model(args.model)
    task = task_of(args.model, args.task)
    source = parse_source(args.src, backend=args.backend, task=task)
    create_config = dict(args.create_config or {})
    config_dest = create_config.pop("dest", None)
    dest = parse_destination(args.dest if args.dest is not None else config_dest, source)
    labels = validate_labels(args.labels)
    if source.backend == "gemini_api" and labels:
        raise GeminiBatchConfigError("labels apply to Vertex AI jobs only; remove labels for the Gemini API.")
    model = args.model.strip()
    config_display_name = create_config.pop("display_name", None)
    base_name = args.display_name if args.display_name is not None else config_display_name
    return CreatePlan(
        source=source,
        backend=source.backend,
        model=model,
        identity=identity,
        dest=dest,
        display_name=identity.display_name(base_name),
        labels=identity.labels(labels) if source.backend == "vertex" else {},
        create_config=create_config,
        fingerprint=input_fingerprint(
            backend=source.backend, model=model, source=source, dest=dest, config=create_config, task=task
        ),
        task=task,
    )


__all__ = [
    "CREATE_CONFIG_FIELDS",
    "CreateArguments",
    "CreatePlan",
    "check_backend",
    "check_create_config",
    "input_fingerprint",
    "plan_create",
    "validate_static",
]
