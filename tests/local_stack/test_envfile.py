"""The env file: what a shell sources is what ``read_env_file`` returns."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from local_stack.envfile import format_env, parse_env, read_env_file, shell_quote, write_env_file

TRICKY = {
    "PLAIN": "value",
    "JSON": '{"conn_type": "x", "extra": {"a": true, "b": "it\'s"}}',
    "SPACES": "a b  c",
    "DOLLAR": "$HOME `id` \\n",
    "EMPTY": "",
}


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("abc", "'abc'"), ("", "''"), ("it's", "'it'\\''s'"), ('{"a": 1}', "'{\"a\": 1}'")],
)
def test_shell_quote_always_single_quotes(value: str, quoted: str) -> None:
    assert shell_quote(value) == quoted


def test_written_file_reads_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "env"
    write_env_file(path, TRICKY, header="a header\nover two lines")

    assert read_env_file(path) == TRICKY
    assert path.read_text().startswith("# a header\n# over two lines\n")


def test_a_posix_shell_sources_the_same_values(tmp_path: Path) -> None:
    path = tmp_path / "env"
    write_env_file(path, TRICKY)
    script = f"set -a; . {path}; set +a; " + "; ".join(f'printf "%s\\0" "${name}"' for name in TRICKY)

    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, text=True, env={}).stdout

    assert out.split("\0")[:-1] == list(TRICKY.values())


def test_export_form_parses_too() -> None:
    assert parse_env(format_env({"A": "1 2"}, export=True)) == {"A": "1 2"}


@pytest.mark.parametrize("line", ["NOT AN ASSIGNMENT", "1BAD='x'", "A='unterminated"])
def test_parse_rejects_lines_that_are_not_assignments(line: str) -> None:
    with pytest.raises(ValueError):
        parse_env(line)


def test_format_rejects_names_a_shell_cannot_assign() -> None:
    with pytest.raises(ValueError, match="not a shell variable name"):
        format_env({"BAD-NAME": "x"})
