"""create_plan.py: which arguments pass the parse-time and execute-time checks, and each refusal's words."""

from __future__ import annotations

import re
import types as pytypes
from typing import Any

import pytest

from gemini_batch.create_plan import (
    CreateArguments,
    check_backend,
    input_fingerprint,
    plan_create,
    validate_static,
)
from gemini_batch.exceptions import GeminiBatchConfigError
from gemini_batch.identity import WorkIdentity
from gemini_batch.sources import parse_source

MODEL = "gemini-2.5-flash"
INLINE = [{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}]
XCOM = pytypes.SimpleNamespace(resolve=lambda context: None)  # an XComArg-like value: checked at execute
BACKENDS_MESSAGE = "backend must be one of ('vertex', 'gemini_api') or None, got 'openai'."


@pytest.mark.parametrize(
    ("backend", "ok"),
    [(None, True), ("vertex", True), ("gemini_api", True), ("{{ params.b }}", True), ("openai", False)],
)
def test_check_backend(backend, ok):
    if ok:
        check_backend(backend)
    else:
        with pytest.raises(GeminiBatchConfigError, match=re.escape(BACKENDS_MESSAGE)):
            check_backend(backend)


STATIC_OK = [
    ("templated backend", {"src": "bq://p.d.t", "backend": "{{ params.backend }}"}),
    ("templated model", {"src": "bq://p.d.t", "model": "{{ params.model }}"}),
    ("XCom model", {"src": "bq://p.d.t", "model": XCOM}),
    ("templated source, known dest", {"src": "{{ params.src }}", "dest": "bq://p.d.out"}),
    ("templated dest", {"src": "bq://p.d.t", "dest": "{{ params.dest }}"}),
    ("templated create_config", {"src": "bq://p.d.t", "create_config": "{{ params.cfg }}"}),
    ("templated labels", {"src": "bq://p.d.t", "labels": "{{ params.labels }}"}),
    ("templated task, inline source", {"src": INLINE, "task": "{{ params.task }}"}),
]


@pytest.mark.parametrize("kwargs", [c[1] for c in STATIC_OK], ids=[c[0] for c in STATIC_OK])
def test_templated_values_wait_for_execute(kwargs):
    validate_static(CreateArguments(**{"model": MODEL, **kwargs}))


STATIC_BAD = [
    ("unknown backend", {"src": "bq://p.d.t", "backend": "openai"}, BACKENDS_MESSAGE),
    (
        "create_config not a dict",
        {"src": "bq://p.d.t", "create_config": [1]},
        "create_config must be a dict of CreateBatchJobConfig fields, got list.",
    ),
    (
        "display_name twice",
        {"src": "bq://p.d.t", "display_name": "a", "create_config": {"display_name": "b"}},
        "display_name is given twice (argument and create_config['display_name']); keep one.",
    ),
    (
        "dest twice",
        {"src": "bq://p.d.t", "dest": "bq://p.d.o", "create_config": {"dest": "bq://p.d.o"}},
        "dest is given twice (argument and create_config['dest']); keep one.",
    ),
    (
        "labels for the Gemini API",
        {"src": INLINE, "labels": {"team": "ml"}},
        "labels apply to Vertex AI jobs only; the Gemini API has no job labels. Remove labels.",
    ),
    (
        "task embed overrides a generation model: inline rules of embeddings",
        {"src": [{"contents": INLINE[0]["contents"] * 2}], "task": "embed"},
        "Inline embedding request #0 must have 'contents' with exactly one Content (one vector per request), "
        "e.g. {'contents': [{'parts': [{'text': '...'}]}]}.",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), [c[1:] for c in STATIC_BAD], ids=[c[0] for c in STATIC_BAD])
def test_static_refusals_say_what_to_do(kwargs, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        validate_static(CreateArguments(**{"model": MODEL, **kwargs}))
    assert str(error.value) == message


PLAN_BAD = [
    ("unknown backend", {"src": "bq://p.d.t", "backend": "openai"}, BACKENDS_MESSAGE),
    (
        "a BigQuery source for the Gemini API",
        {"src": "bq://p.d.t", "backend": "gemini_api"},
        "The Gemini API has no BigQuery source ('bq://p.d.t').",
    ),
    (
        "labels for the Gemini API",
        {"src": "files/abc", "backend": "gemini_api", "labels": {"team": "ml"}},
        "labels apply to Vertex AI jobs only; remove labels for the Gemini API.",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), [c[1:] for c in PLAN_BAD], ids=[c[0] for c in PLAN_BAD])
def test_plan_refusals_say_what_to_do(kwargs, message):
    with pytest.raises(GeminiBatchConfigError) as error:
        plan_create(CreateArguments(**{"model": MODEL, **kwargs}), WorkIdentity("dag", "task", "run"))
    assert str(error.value).startswith(message)


def test_a_gemini_api_plan_has_no_labels():
    plan = plan_create(CreateArguments(src=INLINE, model=MODEL), WorkIdentity("dag", "task", "run"))
    assert (plan.backend, plan.labels) == ("gemini_api", {})


def test_the_fingerprint_takes_config_values_json_cannot_encode():
    config: dict[str, Any] = {"http_options": pytypes.SimpleNamespace(timeout=5)}
    source = parse_source("bq://p.d.t")
    fingerprint = input_fingerprint(backend="vertex", model=MODEL, source=source, dest=None, config=config)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
