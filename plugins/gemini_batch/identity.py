"""The identity of a piece of work and how a job carries it.

Invariants: the identity is (dag_id, task_id, run_id, map_index) and never includes
try_number, so every try, clear and re-run of the same task instance names the same work. A
``scope`` (the pipelines pass the data interval and the input's content fingerprint) takes the
run id's place in the work id: every run with the same scope, its map index included, names the
same work, so two runs of one data interval share its jobs. ``run_id`` still names the task
instance (its state, for ``on_kill``).
``work_id`` is a short hash of it; every job carries ``awid-<work_id>`` in its display name
(both backends) and Vertex AI jobs also carry the label ``airflow-work-id``. A job is "ours"
only if its display name ends with that tag, so a lookup never adopts somebody else's job.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gemini_batch.exceptions import GeminiBatchConfigError

WORK_ID_LABEL = "airflow-work-id"
DISPLAY_TAG_PREFIX = "awid-"
#: Vertex AI display names hold at most 128 characters.
MAX_DISPLAY_NAME = 128
#: Vertex AI label keys and values: at most 63 characters, lowercase letters, digits, _ and -.
MAX_LABEL_LENGTH = 63
MAX_LABELS = 64
#: The labels the operator puts on every Vertex AI job (see :meth:`WorkIdentity.labels`).
OPERATOR_LABELS = ("airflow-dag", "airflow-task", WORK_ID_LABEL)

#: The one home of Vertex AI's label rules (job labels and request labels alike): keys start with
#: a lowercase letter; keys and values hold at most 63 lowercase ASCII letters, digits, ``_``, ``-``.
LABEL_KEY_RE = re.compile(r"\A[a-z][a-z0-9_\-]{0,62}\Z")
LABEL_VALUE_RE = re.compile(r"\A[a-z0-9_\-]{0,63}\Z")


def label_value(text: str) -> str:
    """Turn any text into a valid Vertex label value (lowercase ``[a-z0-9_-]``, at most 63 chars)."""
    value = re.sub(r"[^a-z0-9_\-]+", "-", text.lower()).strip("-")
    return value[:MAX_LABEL_LENGTH]


def label_key_problem(key: Any) -> str | None:
    """Why ``key`` is not a valid Vertex AI label key, or None when it is."""
    return _label_problem(
        lambda: f"label key {key!r}", key, LABEL_KEY_RE, "keys start with a lowercase letter and"
    )


def label_value_problem(key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid Vertex AI value of label ``key``, or None when it is."""
    problem = _label_problem(lambda: f"label {key}={value!r}", value, LABEL_VALUE_RE, "values")
    if problem and isinstance(value, str) and len(value) <= MAX_LABEL_LENGTH:
        problem += f". Try {label_value(value)!r}"
    return problem


def _label_problem(what: Callable[[], str], text: Any, rule: re.Pattern[str], rule_text: str) -> str | None:
    # ``what`` is formatted only for a problem: request labels are checked on every line of a file.
    if not isinstance(text, str):
        return f"{what()} is invalid: it must be a string, got {type(text).__name__}"
    if rule.match(text):
        return None
    if len(text) > MAX_LABEL_LENGTH:
        return (
            f"{what()} is invalid: it is {len(text)} characters long; at most {MAX_LABEL_LENGTH} are allowed"
        )
    return (
        f"{what()} is invalid: Vertex AI label {rule_text} hold at most {MAX_LABEL_LENGTH} "
        "lowercase letters, digits, '_' or '-'"
    )


def validate_labels(labels: Mapping[str, Any] | None) -> dict[str, str]:
    """Check user labels against Vertex AI's rules; return them as a ``dict[str, str]``.

    :raises GeminiBatchConfigError: naming the first bad key or value and the rule.
    """
    if not labels:
        return {}
    if not isinstance(labels, Mapping):
        raise GeminiBatchConfigError(f"labels must be a dict of str to str, got {type(labels).__name__}.")
    total = len(set(labels) | set(OPERATOR_LABELS))
    if total > MAX_LABELS:
        room = MAX_LABELS - len(set(OPERATOR_LABELS) - set(labels))
        raise GeminiBatchConfigError(
            f"{len(labels)} labels given; Vertex AI allows {MAX_LABELS} per job and the operator adds "
            f"{', '.join(OPERATOR_LABELS)}: keep at most {room} of yours."
        )
    result: dict[str, str] = {}
    for key, value in labels.items():
        if key == WORK_ID_LABEL:
            raise GeminiBatchConfigError(f"Label '{WORK_ID_LABEL}' is set by the operator; remove it.")
        text = "" if value is None else str(value)
        problem = label_key_problem(key) or label_value_problem(key, text)
        if problem:
            raise GeminiBatchConfigError(f"{problem[0].upper()}{problem[1:]}.")
        result[key] = text
    return result


@dataclass(frozen=True)
class WorkIdentity:
    """Which task instance a job does the work of; the same on every try.

    :param dag_id: the DAG id.
    :param task_id: the task id.
    :param run_id: the DAG run id.
    :param map_index: the map index, -1 for an unmapped task.
    :param scope: Optional. What the work is about across runs (e.g. a data interval); when set it
        replaces ``run_id`` in the work id, so runs with the same scope share their jobs.
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    scope: str | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any], scope: str | None = None) -> WorkIdentity:
        """The identity of the running task instance (reads ``ti``; never its try_number).

        :param scope: Optional. See :class:`WorkIdentity`; empty means none (the run's own work).
        """
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=ti.run_id,
            map_index=-1 if map_index is None else int(map_index),
            scope=scope or None,
        )

    @property
    def work_id(self) -> str:
        """16 hex characters of SHA-256 over dag, task, run (or scope) and map index: stable, label-safe."""
        if self.scope is None:
            fields: list[Any] = [self.dag_id, self.task_id, self.run_id, self.map_index]
        else:  # a dict, so that no run id can hash like a scope
            fields = [self.dag_id, self.task_id, {"scope": self.scope}, self.map_index]
        payload = json.dumps(fields)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        """``awid-<work_id>``: the suffix every job's display name ends with."""
        return f"{DISPLAY_TAG_PREFIX}{self.work_id}"

    def labels(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Vertex AI labels: the user's, the work id, and readable dag and task labels."""
        labels = dict(extra or {})
        labels.setdefault("airflow-dag", label_value(self.dag_id))
        labels.setdefault("airflow-task", label_value(self.task_id))
        labels[WORK_ID_LABEL] = self.work_id
        return labels

    def display_name(self, base: str | None = None) -> str:
        """``<base> awid-<work_id>``, at most 128 characters; the default base is ``dag.task[i]``.

        :param base: Optional. The user's display name; shortened if needed, the tag is never cut.
        """
        if not base:
            base = f"{self.dag_id}.{self.task_id}"
            if self.map_index >= 0:
                base += f"[{self.map_index}]"
        suffix = f" {self.tag}"
        base = base[: MAX_DISPLAY_NAME - len(suffix)]
        return f"{base}{suffix}"

    def owns(self, job: Any) -> bool:
        """True when ``job`` (an SDK BatchJob, or anything with ``display_name``) carries this work's tag."""
        display_name = getattr(job, "display_name", None) or ""
        return display_name.endswith(self.tag)

    def vertex_list_filter(self) -> str:
        """The Vertex AI list filter that selects this work's jobs server-side."""
        return f'labels.{WORK_ID_LABEL}="{self.work_id}"'

    def describe(self) -> str:
        mapped = f", map_index={self.map_index}" if self.map_index >= 0 else ""
        scope = f", scope={self.scope}" if self.scope else ""
        return f"dag_id={self.dag_id}, task_id={self.task_id}, run_id={self.run_id}{mapped}{scope}"
