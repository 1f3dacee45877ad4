"""Attachment files on disk, named by a keyed hash of their content and sealed at rest.

Attachments are copies of ID cards, certificates and diplomas: personal data. A file is named by
the HMAC-SHA256 of its plain content under a key derived from AWARDBOT_SECRET_KEY
(`Sealer.keyed_names`): the same file sent twice is stored once and a nomination refers to it by
that name, but whoever holds the disk or a backup cannot confirm that a known document is stored
by hashing it (issue 8; the names used to be plain SHA-256). Its bytes are sealed with the
store's keys before they touch the disk. Writes go to a temporary file that is renamed into
place, so a crash never leaves half a file under a real name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import sqlalchemy as sa

from storage.crypto import Sealer, SealError
from storage.store import Store

NAMING = "attachment-name"  # the purpose the naming key is derived for
UPGRADED = "file_names"  # store_meta: "keyed" once legacy SHA-256 names were renamed


class FileStoreError(Exception):
    """A file cannot be stored or read; one-line message."""


class FileStore:
    """Sealed files under `root` (created on first use), named by a keyed content hash."""

    def __init__(self, root: Path, sealer: Sealer) -> None:
        self.root = root
        self._sealer = sealer

    def put(self, data: bytes) -> str:
        """Store `data`; return its name. Storing the same content again is a no-op (also
        when it was stored under an older key of a rotated list)."""
        names = self._sealer.keyed_names(data, NAMING)
        for name in names:
            if self._path(name).exists():
                return name
        self._write(names[0], data)
        return names[0]

    def get(self, name: str) -> bytes:
        """The plain content stored under `name`, checked against it."""
        data = self._read(name)
        if name not in self._sealer.keyed_names(data, NAMING):
            raise FileStoreError(f"附件内容与记录不符 (attachment {name[:12]}… is corrupt)")
        return data

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def upgrade_legacy(self, name: str) -> str | None:
        """A file still named by the plain SHA-256 of its content: store it under its keyed
        name and return that (the caller re-points its records, then `remove`s the old one);
        None if `name` is not such a file."""
        try:
            data = self._read(name)
        except FileStoreError:
            return None
        if hashlib.sha256(data).hexdigest() != name:
            return None
        new = self._sealer.keyed_names(data, NAMING)[0]
        if not self._path(new).exists():
            self._write(new, data)
        return new

    def remove(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def _read(self, name: str) -> bytes:
        path = self._path(name)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise FileStoreError(f"附件不存在 (attachment {name[:12]}… not found)") from None
        except OSError as exc:
            raise FileStoreError(
                f"无法读取附件 (cannot read attachment {name[:12]}…: {exc.strerror or exc})"
            ) from None
        try:
            return self._sealer.open_bytes(sealed)
        except SealError as exc:
            raise FileStoreError(str(exc)) from None

    def _write(self, name: str, data: bytes) -> None:
        path = self._path(name)
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

    def _path(self, name: str) -> Path:
        if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
            raise FileStoreError(f"not a SHA-256 file name: {name[:70]!r}")
        return self.root / name[:2] / name[2:4] / name


def upgrade_file_names(store: Store, files: FileStore) -> int:
    """Rename attachments still stored under their plain SHA-256 (before issue 8) to their
    keyed names, once per database; returns how many were renamed.

    Crash-safe and repeatable: the new file is written first, then the records are re-pointed
    in one transaction, then the old file is removed; a run that died half-way finds the old
    names again and finishes. Marked done in store_meta so later starts skip the scan.
    """
    from storage.nominations import attachments
    from storage.prepared import insert_ignoring_conflicts
    from storage.tables import store_meta

    done = sa.select(store_meta.c.value).where(store_meta.c.name == UPGRADED)
    with store.reading() as conn:
        if conn.execute(done).scalar_one_or_none() is not None:
            return 0
        refs = sorted(set(conn.execute(sa.select(attachments.c.file_ref)).scalars()))
    renamed: dict[str, str] = {}
    for ref in refs:
        new = files.upgrade_legacy(ref)
        if new is not None and new != ref:
            renamed[ref] = new
    with store.transaction() as conn:
        for old, new in renamed.items():
            conn.execute(
                sa.update(attachments).where(attachments.c.file_ref == old).values(file_ref=new)
            )
        # Workers starting at once on one database all get here: the first mark stands, the
        # others change nothing (a plain INSERT failed the second worker's start).
        conn.execute(
            insert_ignoring_conflicts(store_meta, conn.dialect.name)
            .values(name=UPGRADED, value="keyed")
            .on_conflict_do_nothing(index_elements=[store_meta.c.name])
        )
    for old in renamed:
        files.remove(old)
    return len(renamed)
