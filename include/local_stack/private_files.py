"""Files and directories of the local stack that only their owner may read.

Invariants: every directory made here is mode 0700 and every file 0600, whatever the umask and
whether or not it existed before (an older, more open one is tightened); a file is written
atomically (a reader sees the old or the new content, never half) and is never, even for a
moment, readable by others: it is created with its final mode, not chmod-ed afterwards.
The env file holds the Gemini API key; logs and data may hold prompts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600
#: The umask the stack's child processes run with, so what they write is private too.
CHILD_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) a directory only its owner can enter; return it."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def _open_private(path: Path, flags: int) -> int:
    descriptor = os.open(path, flags | os.O_CREAT, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return descriptor


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text`` (UTF-8), mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    descriptor = _open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def open_private_append(path: Path) -> BinaryIO:
    """Open ``path`` for appending bytes (created 0600, or tightened to 0600)."""
    return os.fdopen(_open_private(path, os.O_WRONLY | os.O_APPEND), "ab")


def open_private_update(path: Path) -> BinaryIO:
    """Open ``path`` for reading and appending (``a+``), created 0600 or tightened to 0600."""
    return os.fdopen(_open_private(path, os.O_RDWR | os.O_APPEND), "a+b")
