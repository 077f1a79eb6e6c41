"""get_provider_info.py: valid for Airflow, cheap to call, and in step with the hook and the package."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import tomllib

from gemini_batch import __version__
from gemini_batch.get_provider_info import get_provider_info
from gemini_batch.hooks import BASE_URL_EXTRA, GeminiApiHook

ROOT = Path(__file__).resolve().parents[2]


def _schema(name: str) -> dict:
    return json.loads(resources.files("airflow").joinpath(name).read_text())


def _connection_type() -> dict:
    (conn,) = get_provider_info()["connection-types"]
    return conn


def test_provider_info_passes_airflows_schema() -> None:
    jsonschema.validate(get_provider_info(), _schema("provider_info.schema.json"))


def test_field_behaviour_passes_airflows_schema_once_airflow_renames_its_keys() -> None:
    behaviour = _connection_type()["ui-field-behaviour"]
    # As ProvidersManager._add_customized_fields converts it.
    converted = {key.replace("-", "_"): value for key, value in behaviour.items()}

    jsonschema.validate(converted, _schema("customized_form_field_behaviours.schema.json"))


def test_package_name_and_version_are_the_distributions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    info = get_provider_info()

    assert info["package-name"] == project["name"]
    assert info["versions"] == [__version__]


def test_connection_type_is_the_hooks() -> None:
    conn = _connection_type()
    module, _, name = conn["hook-class-name"].rpartition(".")

    assert getattr(importlib.import_module(module), name) is GeminiApiHook
    assert conn["connection-type"] == GeminiApiHook.conn_type == "gemini_api"
    assert conn["hook-name"] == GeminiApiHook.hook_name


def test_form_shows_the_key_and_the_extras_the_hook_reads() -> None:
    conn = _connection_type()
    behaviour = conn["ui-field-behaviour"]

    assert behaviour["relabeling"] == {"password": "API key"}
    assert "password" not in behaviour["hidden-fields"]
    assert {"host", "schema", "port", "login"} <= set(behaviour["hidden-fields"])
    assert set(conn["conn-fields"]) == {BASE_URL_EXTRA, "api_version"}


@pytest.mark.parametrize("section", ["operators", "sensors", "hooks", "triggers"])
def test_listed_modules_import(section: str) -> None:
    for entry in get_provider_info()[section]:
        for module in entry["python-modules"]:
            importlib.import_module(module)


def test_extra_links_are_importable_link_classes() -> None:
    from airflow.sdk import BaseOperatorLink

    for path in get_provider_info()["extra-links"]:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), BaseOperatorLink)


def test_calling_it_imports_neither_airflow_nor_the_sdk() -> None:
    code = (
        "import sys; from gemini_batch.get_provider_info import get_provider_info; get_provider_info(); "
        "print(','.join(m for m in ('airflow', 'google.genai') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == ""
