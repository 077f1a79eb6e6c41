"""`make mutation`: mutation testing (mutmut) of the modules where a bug costs money or rows.

mutmut names a mutant by the module path it derives from the file path, and only strips ``src/``
(or ``source/``) from it; our package lives in ``plugins/`` and the tests import it as
``gemini_batch`` through pytest's ``pythonpath``. So the run happens in a staging folder
(``.mutation/``) where the package sits at ``src/gemini_batch``, with copies of the tests and of
what they read, and a pyproject.toml that says so. Only the fast unit tests run against mutants.

Prints the kill rate, and every survivor with its diff, so each can be killed or shown equivalent.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / ".mutation"

#: The modules mutated: identity, states, the retry decision, the pre-flight checks, the polling
#: core, validation and the SQL rendering (paths relative to plugins/).
MODULES = (
    "gemini_batch/identity.py",
    "gemini_batch/states.py",
    "gemini_batch/api_errors.py",
    "gemini_batch/job_record.py",
    "gemini_batch/resume.py",
    "gemini_batch/create_plan.py",
    "gemini_batch/preflight.py",
    "gemini_batch/polling.py",
    "gemini_batch/pipeline/request_shape.py",
    "gemini_batch/pipeline/jsonl_scan.py",
    "gemini_batch/pipeline/typed_reading.py",
    "gemini_batch/pipeline/bigquery_checks.py",
    "gemini_batch/pipeline/findings.py",
    "gemini_batch/pipeline/sharding.py",
    "gemini_batch/pipeline/builder.py",
    "gemini_batch/pipeline/costs_table.py",
    "gemini_batch/pipeline/sql/__init__.py",
)
#: Unit tests only: mutants run the fast loop.
TEST_ARGS = [
    "-q",
    "-x",
    "-m",
    "not integration",
    "-p",
    "no:cacheprovider",
    # mutmut runs the suite twice in one process (stats, then clean); this contract test counts the
    # SDK's calls through compat's once-per-process probe, so its second run sees the first's calls.
    "--deselect",
    "tests/gemini_batch/test_compat.py::test_contract_with_the_installed_google_genai",
    # A unit test takes well under a second; a mutant that loops forever (in _iter_lines, say) fails
    # its test after 20 s instead of waiting out the suite's 300 s limit, which made one module take
    # longer than a session.
    "-o",
    "timeout=20",
]


def stage(modules: tuple[str, ...] = MODULES) -> None:
    """Lay out .mutation/ afresh (keeping mutmut's cache dir is not worth the staleness risk)."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "plugins", STAGE / "src", ignore=ignore)
    for name in ("tests", "include", "dags"):
        shutil.copytree(ROOT / name, STAGE / name, ignore=ignore)
    # The project's own pyproject.toml (tests read [project]), with the package's folder renamed
    # in pytest's pythonpath and mutmut's section added.
    text = (ROOT / "pyproject.toml").read_text()
    pythonpath = tomllib.loads(text)["tool"]["pytest"]["ini_options"]["pythonpath"]
    staged = ["src" if p == "plugins" else p for p in pythonpath]
    old_line = next(line for line in text.splitlines() if line.startswith("pythonpath = "))
    text = text.replace(old_line, f"pythonpath = {staged!r}")
    text += (
        "\n[tool.mutmut]\n"
        "source_paths = ['src']\n"
        f"only_mutate = {['src/' + m for m in modules]!r}\n"
        "also_copy = ['include', 'dags']\n"
        f"pytest_add_cli_args = {TEST_ARGS!r}\n"
        "pytest_add_cli_args_test_selection = ['tests/gemini_batch', 'tests/pipeline']\n"
    )
    (STAGE / "pyproject.toml").write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "modules", nargs="*", default=list(MODULES), help="paths under plugins/ (default: the list above)"
    )
    args = parser.parse_args()
    stage(tuple(args.modules))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    mutmut = [str(Path(sys.executable).parent / "mutmut")]
    run = subprocess.run(
        [*mutmut, "run", "--max-children", str(args.max_children)],
        cwd=STAGE,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    (STAGE / "run.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0 or "failed to collect stats" in run.stdout:
        print((run.stdout + run.stderr)[-4000:])
        print(f"mutation: mutmut run failed (exit {run.returncode}); nothing was measured")
        return 1
    listing = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=STAGE, env=env, capture_output=True, text=True, check=True
    ).stdout
    verdicts: dict[str, list[str]] = {}
    for line in listing.splitlines():
        match = re.match(r"\s*(\S+): (.+)$", line)
        if match:
            verdicts.setdefault(match.group(2).strip(), []).append(match.group(1))
    killed = len(verdicts.get("killed", [])) + len(verdicts.get("timeout", []))
    survivors = [
        name for verdict, names in verdicts.items() if verdict not in ("killed", "timeout") for name in names
    ]
    total = killed + len(survivors)
    for name in survivors:
        diff = subprocess.run(
            [*mutmut, "show", name], cwd=STAGE, env=env, capture_output=True, text=True
        ).stdout
        print(diff)
    print({verdict: len(names) for verdict, names in sorted(verdicts.items())})
    rate = killed / total if total else 1.0
    print(f"mutation: {killed} of {total} mutants killed ({rate:.1%}); {len(survivors)} survived")
    return 0


if __name__ == "__main__":
    sys.exit(main())
