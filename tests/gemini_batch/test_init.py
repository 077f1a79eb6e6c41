"""__init__.py: importing the package is cheap; names resolve lazily."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_import_gemini_batch_imports_neither_airflow_nor_the_sdk():
    code = (
        "import sys, gemini_batch; "
        "heavy = [m for m in ('airflow', 'google.genai', 'google.auth') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == ""


def test_public_names_resolve_lazily():
    import gemini_batch
    from gemini_batch.operators import GeminiBatchCreateJobOperator

    assert gemini_batch.GeminiBatchCreateJobOperator is GeminiBatchCreateJobOperator
    assert "GeminiBatchJobSensor" in dir(gemini_batch)
    for name in gemini_batch.__all__:
        assert getattr(gemini_batch, name) is not None
    with pytest.raises(AttributeError):
        gemini_batch.NoSuchThing  # noqa: B018
