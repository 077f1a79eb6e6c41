"""The README's two commands, run as written from a clean clone, the way CI runs them.

The clone holds what is committed (a clean clone is what CI and a newcomer get), builds its own
``.venv`` and runs ``make demo`` then ``make test``. The inner ``make test`` skips this test
(``README_TEST_INNER``), so it does not recurse.

The inner ``make test`` does everything a newcomer's does (the fresh ``.venv``, the Debian
packages, lint, collecting every test) but runs the unit tests only: the integration tests are
the outer run's, on the same commit, and the clone's own end-to-end proof is ``make demo``, the
main pipeline against the local stack. Running them twice doubled ``make test`` past its budget.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INNER = "README_TEST_INNER"


def readme_commands() -> list[str]:
    """The commands of the README's first shell block, comments stripped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "the README has no ```bash block"
    return [
        line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()
    ]


def test_readme_leads_with_make_demo_and_make_test() -> None:
    assert readme_commands() == ["make demo", "make test"]


def test_ci_runs_make_test_and_nothing_else() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    commands = [line for line in lines if not line.startswith(("set ", "cd "))]
    assert commands == ["make test"]


def clean_env(**extra: str) -> dict[str, str]:
    """A newcomer's shell: none of this test session's Airflow, stack or venv settings."""
    drop = (
        "AIRFLOW",
        "STORAGE_EMULATOR_HOST",
        "BIGQUERY_EMULATOR_HOST",
        "GOOGLE_",
        "GEMINI_",
        "LOCAL_STACK",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTEST_",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return {**env, **extra}


@pytest.mark.integration
@pytest.mark.timeout(1500)
@pytest.mark.skipif(os.environ.get(INNER) == "1", reason="inside the README test's own `make test`")
@pytest.mark.skipif(
    not (ROOT / ".git").exists() or shutil.which("git") is None, reason="needs a git checkout"
)
def test_readme_commands_pass_from_a_clean_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = clean_env(CI="true", PYTEST_ADDOPTS='-m "not integration"', **{INNER: "1"})
    for command in readme_commands():
        result = subprocess.run(
            command.split(),
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=1200,
        )
        assert result.returncode == 0, f"`{command}` failed in a clean clone:\n{result.stdout[-6000:]}"
        if command == "make demo":
            assert "Demo succeeded." in result.stdout
            assert "rows answered  1,000" in result.stdout
        if command == "make test":
            assert re.search(r"\d+ passed", result.stdout), result.stdout[-3000:]
