"""Write and read the shell-sourceable env file (``.local-stack/env``).

Invariants: every line is ``KEY='value'`` (POSIX single quotes, a quote inside written as
``'\\''``), so ``set -a; . .local-stack/env; set +a`` and :func:`read_env_file` agree exactly;
the file is its owner's only (0600: it holds the API key).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from local_stack.private_files import write_private_text

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def shell_quote(value: str) -> str:
    """Quote ``value`` in single quotes for a POSIX shell (always quoted, even when plain)."""
    return "'" + value.replace("'", "'\\''") + "'"


def format_env(env: Mapping[str, str], *, export: bool = False) -> str:
    """Render ``env`` as ``KEY='value'`` lines (``export KEY='value'`` with ``export=True``)."""
    prefix = "export " if export else ""
    lines = []
    for name, value in env.items():
        if not _NAME.match(name):
            raise ValueError(f"not a shell variable name: {name!r}")
        lines.append(f"{prefix}{name}={shell_quote(value)}")
    return "\n".join(lines) + "\n"


def write_env_file(path: Path, env: Mapping[str, str], *, header: str = "") -> None:
    """Write ``env`` to ``path`` atomically (a reader never sees half a file), mode 0600.

    :param path: Required. The file to write, e.g. ``.local-stack/env``.
    :param env: Required. Variable names to values.
    :param header: Optional. Comment text put above the variables, one ``#`` line per line.
    """
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    write_private_text(path, comment + format_env(env))


def parse_env(text: str) -> dict[str, str]:
    """Parse ``KEY=value`` lines as a POSIX shell would assign them; comments and blanks skipped."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        tokens = shlex.split(line, comments=False, posix=True)
        if len(tokens) != 1 or "=" not in tokens[0]:
            raise ValueError(f"line {number} is not a KEY=VALUE assignment: {raw!r}")
        name, _, value = tokens[0].partition("=")
        if not _NAME.match(name):
            raise ValueError(f"line {number} has no valid variable name: {raw!r}")
        env[name] = value
    return env


def read_env_file(path: Path) -> dict[str, str]:
    """Read an env file written by :func:`write_env_file` back into a dict."""
    return parse_env(Path(path).read_text(encoding="utf-8"))
