"""gemini_batch.pipeline: batch inputs in, typed BigQuery results out (issue 4).

Invariants: importing this package imports neither Airflow nor a Google client (each name is
resolved on first use), so DAG files stay cheap to parse; everything that moves rows runs
server-side in BigQuery or streams in bounded memory (see each module's docstring).

Public API::

    from gemini_batch.pipeline import (
        # validation before submit (request_shape.py, jsonl_scan.py, bigquery_checks.py, findings.py, limits.py)
        scan_jsonl, scan_gcs_jsonl, validate_bigquery_requests, validate_inline_requests, check_request,
        InputScan, ShardSpan, ValidationIssue, InputValidationError, JobLimits, VERTEX_LIMITS,
        # request building (builder.py) and sharding (sharding.py)
        RequestTemplate, build_bigquery_requests, export_requests_jsonl, BuiltFile,
        Shard, shard_bigquery_table, write_gcs_shards,
        # loading (loader.py, results.py)
        ResultsLoader, JobOutput, InputKeys, LoadCounts, ReconciliationError, ensure_results_tables,
        # names and settings (refs.py, settings.py)
        TableRef, GcsUri, PipelineSettings,
    )

The DAG-facing task bodies are in :mod:`gemini_batch.pipeline.tasks`, the DAGs' shared
configuration (results Asset, job-task arguments) in :mod:`gemini_batch.pipeline.dag_config`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "JobLimits": "limits",
    "VERTEX_LIMITS": "limits",
    "GEMINI_API_LIMITS": "limits",
    "GEMINI_API_INLINE_LIMITS": "limits",
    "check_request": "request_shape",
    "scan_jsonl": "jsonl_scan",
    "scan_gcs_jsonl": "jsonl_scan",
    "validate_bigquery_requests": "bigquery_checks",
    "validate_inline_requests": "request_shape",
    "InputScan": "findings",
    "ShardSpan": "findings",
    "ValidationIssue": "findings",
    "InputValidationError": "findings",
    "KEY_LABEL": "request_shape",
    "RequestTemplate": "builder",
    "BuiltFile": "builder",
    "build_bigquery_requests": "builder",
    "export_requests_jsonl": "builder",
    "Shard": "sharding",
    "shard_bigquery_table": "sharding",
    "write_gcs_shards": "sharding",
    "ResultsLoader": "loader",
    "JobOutput": "loader",
    "InputKeys": "loader",
    "LoadCounts": "results",
    "ReconciliationError": "results",
    "ensure_results_tables": "results",
    "TableRef": "refs",
    "GcsUri": "refs",
    "PipelineSettings": "settings",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from gemini_batch.pipeline.bigquery_checks import validate_bigquery_requests
    from gemini_batch.pipeline.builder import (
        BuiltFile,
        RequestTemplate,
        build_bigquery_requests,
        export_requests_jsonl,
    )
    from gemini_batch.pipeline.findings import InputScan, InputValidationError, ShardSpan, ValidationIssue
    from gemini_batch.pipeline.jsonl_scan import scan_gcs_jsonl, scan_jsonl
    from gemini_batch.pipeline.limits import (
        GEMINI_API_INLINE_LIMITS,
        GEMINI_API_LIMITS,
        VERTEX_LIMITS,
        JobLimits,
    )
    from gemini_batch.pipeline.loader import InputKeys, JobOutput, ResultsLoader
    from gemini_batch.pipeline.refs import GcsUri, TableRef
    from gemini_batch.pipeline.request_shape import KEY_LABEL, check_request, validate_inline_requests
    from gemini_batch.pipeline.results import LoadCounts, ReconciliationError, ensure_results_tables
    from gemini_batch.pipeline.settings import PipelineSettings
    from gemini_batch.pipeline.sharding import Shard, shard_bigquery_table, write_gcs_shards


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gemini_batch.pipeline' has no attribute {name!r}")
    value = getattr(import_module(f"gemini_batch.pipeline.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
