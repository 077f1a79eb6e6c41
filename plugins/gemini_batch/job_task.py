"""What a batch job does: generate content or embed it. One rule, from the model or an argument.

Invariants: the task follows from the model's id (a ``text-embedding-*``,
``text-multilingual-embedding-*``, ``gemini-embedding-*`` or ``embedding-*`` model embeds; any
other model generates) unless the DAG author names it, and an explicit task always wins (a tuned
or new embedding model whose id the rule does not know). Imports nothing from the provider or
an SDK, so anything may import it.
"""

from __future__ import annotations

from typing import Any, Literal

from gemini_batch.exceptions import GeminiBatchConfigError

__all__ = ["EMBEDDING_MODEL_PREFIXES", "JOB_TASKS", "JobTask", "model_id", "task_of"]

#: ``generate``: generateContent requests, answers with candidates; ``embed``: embedding requests,
#: answers with vectors (Gemini API ``asyncBatchEmbedContent``, Vertex AI text-embedding jobs).
JobTask = Literal["generate", "embed"]
JOB_TASKS: tuple[JobTask, ...] = ("generate", "embed")

#: Model ids that embed: Vertex AI's text-embedding models and the Gemini embedding models.
EMBEDDING_MODEL_PREFIXES = (
    "text-embedding-",
    "text-multilingual-embedding-",
    "gemini-embedding-",
    "embedding-",
)


def model_id(model: str) -> str:
    """The bare id of a model name: ``models/X``, ``publishers/google/models/X`` and a full Vertex
    resource name all give ``X``."""
    return model.strip().rsplit("/", 1)[-1]


def task_of(model: Any, task: Any = None) -> JobTask:
    """The task of a job for ``model``: ``task`` when given, else what the model's id says.

    :param model: Required. The model name as the DAG author wrote it.
    :param task: Optional. ``generate`` or ``embed``; None: follow the model.
    :raises GeminiBatchConfigError: ``task`` is neither None nor one of :data:`JOB_TASKS`.
    """
    if task is not None:
        if task not in JOB_TASKS:
            raise GeminiBatchConfigError(f"task must be one of {JOB_TASKS} or None, got {task!r}.")
        return task
    if isinstance(model, str) and model_id(model).startswith(EMBEDDING_MODEL_PREFIXES):
        return "embed"
    return "generate"
