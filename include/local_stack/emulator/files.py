"""The Gemini API Files API: resumable uploads, metadata, bytes on disk.

Invariants: a file is visible (get, list, batch input) only once its upload is finalized and
its bytes and metadata are both on disk; an upload session is addressed by an unguessable id
in the upload URL (chunks carry no API key, as with the real service); sessions live in memory
and do not survive a restart (the client starts a new upload).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ApiError, invalid_argument
from .jobs import rfc3339
from .store import StateStore

FILE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
FILE_TTL_S = 48 * 3600
_ALPHABET = string.ascii_lowercase + string.digits


def file_not_found(name: str) -> ApiError:
    """The real service's answer for a file that does not exist (or is not yours)."""
    return ApiError(
        403,
        f"You do not have permission to access the File {name.removeprefix('files/')} or it may not exist.",
        "PERMISSION_DENIED",
    )


def file_id_of(name: str) -> str:
    """``abc`` from ``files/abc`` or ``abc``."""
    return name.removeprefix("files/")


@dataclass
class UploadSession:
    """An upload in progress."""

    id: str
    file_id: str
    display_name: str | None
    mime_type: str
    declared_size: int | None
    path: Path
    received: int = 0


class FileStore:
    """Files API state, in memory and under ``--state-dir/files``.

    :param store: Required. The state directory.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.files: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, UploadSession] = {}
        for meta in store.load_files():
            self.files[file_id_of(meta["name"])] = meta

    def reset(self) -> None:
        """Forget every file and upload (the state directory is wiped by the caller)."""
        self.files.clear()
        self.sessions.clear()

    # --- names --------------------------------------------------------------------------

    def new_id(self, requested: str | None = None) -> str:
        """A free file id: ``requested`` (validated) or a random one."""
        if requested:
            file_id = file_id_of(requested)
            if not FILE_ID.match(file_id):
                raise invalid_argument(
                    f"Invalid file name {requested!r}: use at most 40 lowercase letters, digits or "
                    "dashes, not starting or ending with a dash."
                )
            if file_id in self.files or any(s.file_id == file_id for s in self.sessions.values()):
                raise ApiError(409, f"File files/{file_id} already exists.", "ALREADY_EXISTS")
            return file_id
        while True:
            file_id = "".join(secrets.choice(_ALPHABET) for _ in range(12))
            if file_id not in self.files:
                return file_id

    # --- uploads ------------------------------------------------------------------------

    def start_upload(self, body: dict[str, Any], size_header: str | None, type_header: str | None) -> str:
        """Open a resumable upload; returns the session id for the upload URL."""
        spec = body.get("file") if isinstance(body, dict) else None
        spec = spec if isinstance(spec, dict) else {}
        file_id = self.new_id(spec.get("name"))
        size_value = size_header or spec.get("size_bytes") or spec.get("sizeBytes")
        try:
            declared = int(size_value) if size_value not in (None, "") else None
        except (TypeError, ValueError) as exc:
            raise invalid_argument(f"Invalid upload size {size_value!r}.") from exc
        mime = type_header or spec.get("mime_type") or spec.get("mimeType") or "application/octet-stream"
        session = UploadSession(
            id=secrets.token_urlsafe(24),
            file_id=file_id,
            display_name=spec.get("display_name") or spec.get("displayName"),
            mime_type=mime,
            declared_size=declared,
            path=self.store.upload_path(secrets.token_hex(16)),
        )
        session.path.write_bytes(b"")
        self.sessions[session.id] = session
        return session.id

    def session(self, session_id: str) -> UploadSession:
        """An open session, or a 404."""
        session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(404, "Upload session not found or already finalized.", "NOT_FOUND")
        return session

    def append(self, session_id: str, offset: int, data: bytes) -> UploadSession:
        """Add a chunk at ``offset`` (which must be the bytes received so far)."""
        session = self.session(session_id)
        if offset != session.received:
            raise invalid_argument(
                f"Upload offset {offset} does not match the {session.received} bytes received so far."
            )
        with open(session.path, "ab") as handle:
            handle.write(data)
        session.received += len(data)
        return session

    def finalize(self, session_id: str) -> dict[str, Any]:
        """Turn a complete upload into a file; returns its metadata."""
        session = self.session(session_id)
        if session.declared_size is not None and session.received != session.declared_size:
            raise invalid_argument(
                f"Upload finalized with {session.received} bytes, but {session.declared_size} were declared."
            )
        del self.sessions[session_id]
        return self._register(
            session.file_id, session.path, session.display_name, session.mime_type, source="UPLOADED"
        )

    def cancel(self, session_id: str) -> None:
        """Abandon an upload."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            session.path.unlink(missing_ok=True)

    def add_generated(self, file_id: str, path: Path, display_name: str, mime_type: str) -> dict[str, Any]:
        """Register a file the service wrote (a batch's results)."""
        return self.remember(self.store_bytes(file_id, path, display_name, mime_type, source="GENERATED"))

    def remember(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Make a stored file visible (event loop only: the index is not locked)."""
        self.files[file_id_of(meta["name"])] = meta
        return meta

    def _register(
        self, file_id: str, path: Path, display_name: str | None, mime_type: str, *, source: str
    ) -> dict[str, Any]:
        return self.remember(self.store_bytes(file_id, path, display_name, mime_type, source=source))

    def store_bytes(
        self, file_id: str, path: Path, display_name: str | None, mime_type: str, *, source: str
    ) -> dict[str, Any]:
        """Move ``path`` into the store and write its metadata; returns it (safe in a worker thread)."""
        target = self.store.file_data_path(file_id)
        shutil.move(str(path), target)
        digest = hashlib.sha256()
        with open(target, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        now = time.time()
        meta: dict[str, Any] = {
            "name": f"files/{file_id}",
            "mimeType": mime_type,
            "sizeBytes": str(os.path.getsize(target)),
            "createTime": rfc3339(now),
            "updateTime": rfc3339(now),
            "expirationTime": rfc3339(now + FILE_TTL_S),
            "sha256Hash": base64.b64encode(digest.hexdigest().encode()).decode(),
            "state": "ACTIVE",
            "source": source,
        }
        if display_name:
            meta["displayName"] = display_name
        self.store.save_file(file_id, meta)
        return meta

    # --- reads --------------------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any]:
        """A file's metadata, or the real 403 for a missing one."""
        meta = self.files.get(file_id_of(name))
        if meta is None:
            raise file_not_found(name)
        return meta

    def delete(self, name: str) -> None:
        """Remove a file."""
        file_id = file_id_of(name)
        if file_id not in self.files:
            raise file_not_found(name)
        del self.files[file_id]
        self.store.delete_file(file_id)

    def data_path(self, name: str) -> Path:
        """Where a file's bytes are."""
        self.get(name)
        return self.store.file_data_path(file_id_of(name))

    def newest_first(self) -> list[dict[str, Any]]:
        """All files, newest first."""
        return sorted(self.files.values(), key=lambda m: m["createTime"], reverse=True)


def file_view(meta: dict[str, Any], base_url: str, api_version: str) -> dict[str, Any]:
    """Metadata as the API returns it, with ``uri`` and ``downloadUri`` on this server."""
    file_id = file_id_of(meta["name"])
    view = dict(meta)
    view["uri"] = f"{base_url}/{api_version}/files/{file_id}"
    view["downloadUri"] = f"{base_url}/{api_version}/files/{file_id}:download?alt=media"
    return view
