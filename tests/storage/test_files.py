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
    assert files.get(digest) == PDF


def test_a_known_document_cannot_be_confirmed_from_the_disk(tmp_path: Path) -> None:
    # Issue 8: files were named by the SHA-256 of their plain content, so whoever held the disk
    # or a backup could hash a known ID-card scan and look for it. Names are keyed now.
    files = FileStore(tmp_path / "att", TEST_SEALER)
    name = files.put(PDF)
    on_disk = {p.name for p in (tmp_path / "att").rglob("*") if p.is_file()}
    assert on_disk == {name}
    assert hashlib.sha256(PDF).hexdigest() not in on_disk
    assert hashlib.sha256(PDF).hexdigest() != name
    other_key = FileStore(tmp_path / "other", Sealer([Sealer.new_key()])).put(PDF)
    assert other_key != name  # the name depends on the key, not only on the content


def test_a_rotated_key_list_still_finds_the_stored_file(tmp_path: Path) -> None:
    old_key = Sealer.new_key()
    name = FileStore(tmp_path / "att", Sealer([old_key])).put(PDF)
    rotated = FileStore(tmp_path / "att", Sealer([Sealer.new_key(), old_key]))
    assert rotated.put(PDF) == name  # deduplicated across the rotation
    assert rotated.get(name) == PDF


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
    with pytest.raises(FileStoreError, match="file name"):
        FileStore(tmp_path / "att", TEST_SEALER).get(digest)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileStoreError, match="not found"):
        FileStore(tmp_path / "att", TEST_SEALER).get("0" * 64)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_any_content_round_trips(tmp_path: Path, data: bytes) -> None:
    files = FileStore(tmp_path / "att", TEST_SEALER)
    assert files.get(files.put(data)) == data


def test_workers_starting_at_once_both_finish_the_file_names_upgrade(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two `serve` workers starting together on one PostgreSQL database both find the upgrade
    not done: the second to write its mark must not fail its start (CI saw a worker die on
    store_meta's unique key). Here worker B runs the whole upgrade inside A's transaction,
    just before A writes its mark."""
    import sqlalchemy as sa

    from storage.files import upgrade_file_names
    from storage.store import Store
    from storage.tables import store_meta

    files = FileStore(tmp_path / "att", TEST_SEALER)
    with (
        Store(postgres_url, sealer=TEST_SEALER) as a,
        Store(postgres_url, sealer=TEST_SEALER) as b,
    ):
        ran: list[bool] = []

        def b_meanwhile(conn: object, clause: object, *args: object) -> None:
            if not ran and isinstance(clause, sa.Insert) and clause.table is store_meta:
                ran.append(True)
                upgrade_file_names(b, files)

        sa.event.listen(a._engine, "before_execute", b_meanwhile)
        try:
            assert upgrade_file_names(a, files) == 0
        finally:
            sa.event.remove(a._engine, "before_execute", b_meanwhile)
        assert ran == [True]
        assert upgrade_file_names(a, files) == 0  # marked: the scan is skipped
