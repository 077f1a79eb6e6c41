"""backends.py: the backend vocabulary, default connections and the inline-size measure."""

from __future__ import annotations

import json

import pytest

from gemini_batch.backends import (
    BACKENDS,
    DEFAULT_CONN_IDS,
    DEFAULT_GCP_CONN_ID,
    DEFAULT_GEMINI_API_CONN_ID,
    inline_request_bytes,
)


def test_each_backend_has_its_default_connection():
    assert BACKENDS == ("vertex", "gemini_api")
    assert dict(DEFAULT_CONN_IDS) == {"vertex": "google_cloud_default", "gemini_api": "gemini_api_default"}
    assert (DEFAULT_GCP_CONN_ID, DEFAULT_GEMINI_API_CONN_ID) == (
        DEFAULT_CONN_IDS["vertex"],
        DEFAULT_CONN_IDS["gemini_api"],
    )


def test_every_module_takes_the_defaults_from_here():
    from gemini_batch import hooks
    from gemini_batch.pipeline import dag_config, settings

    assert hooks.DEFAULT_GCP_CONN_ID is DEFAULT_GCP_CONN_ID
    assert hooks.DEFAULT_GEMINI_API_CONN_ID is DEFAULT_GEMINI_API_CONN_ID
    assert dag_config.job_task_kwargs()["gcp_conn_id"] == DEFAULT_GCP_CONN_ID
    assert dag_config.job_task_kwargs()["gemini_api_conn_id"] == DEFAULT_GEMINI_API_CONN_ID
    assert settings.PipelineSettings.resolve.__defaults__ == (DEFAULT_GCP_CONN_ID,)


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        ([], 2),
        ([{"a": 1}], len('[{"a":1}]')),
        ([{"a": 1}, {"b": [1, 2]}], len('[{"a":1},{"b":[1,2]}]')),
        ([{"t": "é"}], len('[{"t":"\\u00e9"}]')),  # escaped: never less than on the wire
        ([{"n": None, "x": True}], len('[{"n":null,"x":true}]')),
    ],
)
def test_inline_size_is_compact_ascii_json_of_the_list(requests, expected):
    assert inline_request_bytes(requests) == expected
    assert inline_request_bytes(iter(requests)) == expected


def test_inline_size_counts_values_json_cannot_encode_as_text():
    import datetime as dt

    day = dt.date(2026, 1, 1)
    assert inline_request_bytes([{"d": day}]) == len(json.dumps([{"d": "2026-01-01"}], separators=(",", ":")))
