"""The gemini-batch-airflow distribution: what a built wheel holds.

Builds the sdist, then the wheel from it, with the PEP 517 frontend a user runs (``python -m
build``; no isolation, the venv has the backend), and reads the wheel as a zip file.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugins" / "gemini_batch"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (member,) = [m for m in wheel.namelist() if m.endswith(f".dist-info/{name}")]
    return wheel.read(member).decode()


def test_wheel_holds_every_file_of_the_package_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    source = {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    packaged = {m for m in wheel.namelist() if ".dist-info/" not in m}

    assert packaged == source
    assert "gemini_batch/pipeline/sql/merge_results.sql" in packaged
    assert not [m for m in wheel.namelist() if m.startswith(("tests/", "include/", "local_stack/", "dags/"))]


def test_wheel_registers_the_provider_entry_point(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))

    assert dict(entry_points["apache_airflow_provider"]) == {
        "provider_info": "gemini_batch.get_provider_info:get_provider_info"
    }


def test_wheel_version_is_the_package_version(wheel: zipfile.ZipFile) -> None:
    from gemini_batch import __version__

    metadata = _dist_info(wheel, "METADATA")

    assert f"\nVersion: {__version__}\n" in metadata
    assert "\nRequires-Dist: apache-airflow>=3.3\n" in metadata
