"""Attachment files: content-addressed, sealed at rest, checked on read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.keys import TEST_SEALER

from storage.crypto import Sealer
from storage.files import FileStore, FileStoreError

PDF = b"%PDF-1.7\n" + "身份证复印件 220104199001010024".encode() + b"\n%%EOF"


def test_put_then_get_round_trips(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "att", TEST_SEALER)
    digest = files.put(PDF)
    assert digest == hashlib.sha256(PDF).hexdigest()
    assert files.get(digest) == PDF


def test_content_is_sealed_on_disk(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "att", TEST_SEALER)
    files.put(PDF)
    [stored] = [p for p in (tmp_path / "att").rglob("*") if p.is_file()]
    raw = stored.read_bytes()
    assert b"%PDF" not in raw
    assert b"220104199001010024" not in raw


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "att", TEST_SEALER)
    assert files.put(PDF) == files.put(PDF)
    assert len([p for p in (tmp_path / "att").rglob("*") if p.is_file()]) == 1


def test_a_damaged_file_is_refused_not_returned(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "att", TEST_SEALER)
    digest = files.put(PDF)
    path = next(p for p in (tmp_path / "att").rglob(digest))
    path.write_bytes(path.read_bytes()[:-5] + b"xxxxx")
    with pytest.raises(FileStoreError, match="damaged"):
        files.get(digest)


def test_another_key_cannot_read(tmp_path: Path) -> None:
    digest = FileStore(tmp_path / "att", TEST_SEALER).put(PDF)
    with pytest.raises(FileStoreError, match="wrong AWARDBOT_SECRET_KEY"):
        FileStore(tmp_path / "att", Sealer([Sealer.new_key()])).get(digest)


@pytest.mark.parametrize("digest", ["../../etc/passwd", "a" * 63, "G" * 64, ""])
def test_only_digests_name_files(tmp_path: Path, digest: str) -> None:
    with pytest.raises(FileStoreError, match="SHA-256"):
        FileStore(tmp_path / "att", TEST_SEALER).get(digest)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileStoreError, match="not found"):
        FileStore(tmp_path / "att", TEST_SEALER).get("0" * 64)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_any_content_round_trips(tmp_path: Path, data: bytes) -> None:
    files = FileStore(tmp_path / "att", TEST_SEALER)
    assert files.get(files.put(data)) == data
