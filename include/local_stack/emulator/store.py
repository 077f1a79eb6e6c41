"""What the emulator keeps on disk under ``--state-dir``, so jobs and files survive a restart.

Layout::

    jobs/<id>.json           one job record, replaced atomically on every state change
    jobs/<id>.inline.json    inline requests of a Gemini API batch (written once at create)
    jobs/<id>.responses.json inline responses of a finished Gemini API batch
    files/<id>.json          Files API metadata; files/<id>.data the bytes
    uploads/<session>        bytes of an upload in progress (not resumed after a restart)
    work/<id>/               spool files of a running job
    faults.json              the current fault switches

Invariants: every JSON file is written to a temporary name and renamed over the old one
(``os.replace``), so a reader or a restart sees either the old or the new record, never half of
one. Writes are not fsync'ed: state survives a process restart, not a power cut.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .jsonutil import dumps, loads

log = logging.getLogger(__name__)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class StateStore:
    """The ``--state-dir`` tree.

    :param root: Required. The state directory (created if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.files_dir = self.root / "files"
        self.uploads_dir = self.root / "uploads"
        self.work_dir = self.root / "work"
        for directory in (self.jobs_dir, self.files_dir, self.uploads_dir, self.work_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # Uploads in progress and spool files do not survive a restart.
        for directory in (self.uploads_dir, self.work_dir):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, exist_ok=True)

    # --- jobs ---------------------------------------------------------------------------

    def save_job(self, record: dict[str, Any]) -> None:
        """Write one job record."""
        write_atomically(self.jobs_dir / f"{record['id']}.json", dumps(record))

    def load_jobs(self) -> Iterator[dict[str, Any]]:
        """Every stored job record (unreadable ones are logged and skipped)."""
        for path in sorted(self.jobs_dir.glob("*.json")):
            if path.name.count(".") > 1:
                continue  # <id>.inline.json / <id>.responses.json
            try:
                yield loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable job record %s: %s", path, exc)

    def save_job_blob(self, job_id: str, kind: str, value: Any) -> None:
        """Write a job's side payload (``inline`` requests or ``responses``)."""
        write_atomically(self.jobs_dir / f"{job_id}.{kind}.json", dumps(value))

    def load_job_blob(self, job_id: str, kind: str) -> Any:
        """Read a side payload, or None if there is none."""
        path = self.jobs_dir / f"{job_id}.{kind}.json"
        try:
            return loads(path.read_bytes())
        except FileNotFoundError:
            return None

    def job_work_dir(self, job_id: str) -> Path:
        """A fresh, empty spool directory for a job run."""
        directory = self.work_dir / job_id
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        return directory

    # --- files --------------------------------------------------------------------------

    def file_data_path(self, file_id: str) -> Path:
        """Where a stored file's bytes live."""
        return self.files_dir / f"{file_id}.data"

    def save_file(self, file_id: str, meta: dict[str, Any]) -> None:
        """Write a file's metadata."""
        write_atomically(self.files_dir / f"{file_id}.json", dumps(meta))

    def delete_file(self, file_id: str) -> None:
        """Remove a file's metadata and bytes."""
        for path in (self.files_dir / f"{file_id}.json", self.file_data_path(file_id)):
            path.unlink(missing_ok=True)

    def load_files(self) -> Iterator[dict[str, Any]]:
        """Every stored file's metadata whose bytes are present."""
        for path in sorted(self.files_dir.glob("*.json")):
            file_id = path.name[: -len(".json")]
            if not self.file_data_path(file_id).exists():
                continue
            try:
                yield loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable file record %s: %s", path, exc)

    def upload_path(self, session: str) -> Path:
        """Where an upload session's bytes accumulate."""
        return self.uploads_dir / session

    # --- faults -------------------------------------------------------------------------

    def save_faults(self, faults: dict[str, Any]) -> None:
        """Write the fault switches."""
        write_atomically(self.root / "faults.json", dumps(faults))

    def load_faults(self) -> dict[str, Any] | None:
        """The stored fault switches, or None."""
        try:
            return loads((self.root / "faults.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    # --- reset --------------------------------------------------------------------------

    def wipe(self) -> None:
        """Forget every job, file, upload and fault."""
        for directory in (self.jobs_dir, self.files_dir, self.uploads_dir, self.work_dir):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, exist_ok=True)
        (self.root / "faults.json").unlink(missing_ok=True)
