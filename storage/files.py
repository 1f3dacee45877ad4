"""Attachment files on disk, stored under their content hash and sealed at rest.

Attachments are copies of ID cards, certificates and diplomas: personal data. A file is named by
the SHA-256 of its plain content (so the same file sent twice is stored once and a nomination can
refer to it by hash) and its bytes are sealed with the store's keys before they touch the disk.
Writes go to a temporary file that is renamed into place, so a crash never leaves half a file
under a real name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from storage.crypto import Sealer, SealError


class FileStoreError(Exception):
    """A file cannot be stored or read; one-line message."""


class FileStore:
    """Content-addressed, sealed files under `root` (created on first use)."""

    def __init__(self, root: Path, sealer: Sealer) -> None:
        self.root = root
        self._sealer = sealer

    def put(self, data: bytes) -> str:
        """Store `data`; return its SHA-256 (hex). Storing the same content again is a no-op."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        sealed = self._sealer.seal_bytes(data)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(sealed)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise FileStoreError(
                f"无法保存附件 (cannot store attachment under {self.root}: {exc.strerror or exc})"
            ) from None
        return digest

    def get(self, digest: str) -> bytes:
        """The plain content stored under `digest`, checked against it."""
        path = self._path(digest)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise FileStoreError(f"附件不存在 (attachment {digest[:12]}… not found)") from None
        except OSError as exc:
            raise FileStoreError(
                f"无法读取附件 (cannot read attachment {digest[:12]}…: {exc.strerror or exc})"
            ) from None
        try:
            data = self._sealer.open_bytes(sealed)
        except SealError as exc:
            raise FileStoreError(str(exc)) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise FileStoreError(f"附件内容与记录不符 (attachment {digest[:12]}… is corrupt)")
        return data

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise FileStoreError(f"not a SHA-256 digest: {digest[:70]!r}")
        return self.root / digest[:2] / digest[2:4] / digest
