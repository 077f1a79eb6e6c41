"""plugins/: Airflow's plugin loader never imports gemini_batch's files as top-level modules.

The loader imports every ``.py`` file under the plugins folder as a module named after the file;
plugins/.airflowignore keeps the package out of its way. Each case runs Airflow's own plugins
manager in a fresh interpreter and reads ``sys.modules`` afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Top-level modules whose file lies under the plugins folder but is not ``<name>.py`` or
# ``<name>/__init__.py`` there: what the plugin loader made of files deeper down.
_PROBE = """
import json, os, sys
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()
root = os.path.realpath(os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"])
made = []
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if "." in name or not path or not os.path.realpath(path).startswith(root + os.sep):
        continue
    rel = os.path.relpath(os.path.realpath(path), root)
    if rel not in (name + ".py", os.path.join(name, "__init__.py")):
        made.append(name)
print(json.dumps(sorted(made)))
"""


def _probe_output(plugins_folder: Path, airflow_home: Path) -> list[str]:
    """The probe's standard output, a line each: its JSON list last, anything Airflow logged before."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    return out.stdout.strip().splitlines()


def _top_level_modules_made_from(plugins_folder: Path, airflow_home: Path) -> list[str]:
    return json.loads(_probe_output(plugins_folder, airflow_home)[-1])


def test_plugin_loader_imports_no_module_of_the_package(tmp_path: Path) -> None:
    assert _top_level_modules_made_from(ROOT / "plugins", tmp_path) == []


def test_the_ignore_file_loads_without_a_warning(tmp_path: Path) -> None:
    """Loading plugins/ logs nothing: the JSON list is the probe's only line.

    Airflow 3.3.2 reads a glob .airflowignore with pathspec's GitWildMatchPattern, which pathspec
    1.0 deprecated (a DeprecationWarning in every Airflow process's log, and the name is to be
    removed): requirements.txt keeps pathspec below 1.0.
    """
    assert _probe_output(ROOT / "plugins", tmp_path) == ["[]"]


def test_without_the_ignore_file_the_probe_sees_the_shadowing_modules(tmp_path: Path) -> None:
    """The probe above can fail: the same folder without .airflowignore yields `hooks`, `limits`..."""
    folder = tmp_path / "plugins"
    shutil.copytree(ROOT / "plugins", folder, ignore=shutil.ignore_patterns(".airflowignore", "__pycache__"))

    made = _top_level_modules_made_from(folder, tmp_path / "home")

    assert {"hooks", "operators", "limits"} <= set(made)
