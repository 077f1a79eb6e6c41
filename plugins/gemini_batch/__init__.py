"""gemini_batch: retry-safe, deferrable Gemini batch prediction for Apache Airflow 3.

Invariant: ``import gemini_batch`` imports neither Airflow nor google-genai; every public name
is resolved on first attribute access, so a DAG file that imports the package stays cheap to
parse until it actually builds an operator.

Public API::

    from gemini_batch import (
        GeminiBatchCreateJobOperator,  # create-and-wait, all sources, retry-safe
        GeminiBatchJobSensor,          # wait on an existing job by name
        GeminiBatchGetJobOperator, GeminiBatchListJobsOperator,
        GeminiBatchCancelJobOperator, GeminiBatchDeleteJobOperator,
        GeminiBatchJobTrigger, GeminiBatchHook, GeminiBatchJobLink,
        GeminiApiHook,                 # the `gemini_api` connection type's hook
    )
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: The distribution's version: pyproject.toml and ``get_provider_info()`` both read it from here.
__version__ = "0.1.0"

_LAZY = {
    "GeminiBatchCreateJobOperator": "gemini_batch.operators",
    "GeminiBatchGetJobOperator": "gemini_batch.job_operators",
    "GeminiBatchListJobsOperator": "gemini_batch.job_operators",
    "GeminiBatchCancelJobOperator": "gemini_batch.job_operators",
    "GeminiBatchDeleteJobOperator": "gemini_batch.job_operators",
    "GeminiBatchJobSensor": "gemini_batch.sensors",
    "GeminiBatchJobTrigger": "gemini_batch.triggers",
    "GeminiBatchHook": "gemini_batch.hooks",
    "GeminiApiHook": "gemini_batch.hooks",
    "GeminiBatchJobLink": "gemini_batch.links",
    "BatchManifest": "gemini_batch.manifest",
    "build_manifest": "gemini_batch.manifest",
    "WorkIdentity": "gemini_batch.identity",
    "BatchSource": "gemini_batch.sources",
    "parse_source": "gemini_batch.sources",
    "JobRef": "gemini_batch.sources",
    "Counts": "gemini_batch.states",
    "outcome_of": "gemini_batch.states",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from gemini_batch.hooks import GeminiApiHook, GeminiBatchHook
    from gemini_batch.identity import WorkIdentity
    from gemini_batch.job_operators import (
        GeminiBatchCancelJobOperator,
        GeminiBatchDeleteJobOperator,
        GeminiBatchGetJobOperator,
        GeminiBatchListJobsOperator,
    )
    from gemini_batch.links import GeminiBatchJobLink
    from gemini_batch.manifest import BatchManifest, build_manifest
    from gemini_batch.operators import GeminiBatchCreateJobOperator
    from gemini_batch.sensors import GeminiBatchJobSensor
    from gemini_batch.sources import BatchSource, JobRef, parse_source
    from gemini_batch.states import Counts, outcome_of
    from gemini_batch.triggers import GeminiBatchJobTrigger


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gemini_batch' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
