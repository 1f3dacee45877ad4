"""Uploads checked as a clerk sends them on the console (issue 11): a file too big is refused
with its real size, though the console reads only the limit and one byte of it; a zip renamed
.docx is refused and a real Word document taken — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import sqlalchemy as sa
from support.filing import attach, bound_clerk, file_to_attachments

from storage import nominations as noms
from storage.store import Store


def word_document(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return path


def stored_kinds(store: Store) -> list[tuple[str, str]]:
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(noms.attachments.c.material_key, noms.attachments.c.media_type)
        ).all()
    return sorted((r.material_key, r.media_type) for r in rows)


def test_a_file_too_big_is_refused_with_its_real_size(store: Store, tmp_path: Path) -> None:
    clerk = bound_clerk(store, tmp_path)
    file_to_attachments(clerk)
    big = tmp_path / "扫描件.pdf"
    with big.open("wb") as out:
        out.write(b"%PDF-1.7\n")
        out.truncate(int(21.3 * 1024 * 1024))  # sparse: no 21 MB written to the disk

    said = attach(clerk, "id_card", big)

    assert (
        "文件太大：21.3 MB，身份证复印件每个文件不能超过 20 MB。请压缩或拆分后重新上传。" in said
    )
    assert "20.00 MB" not in said
    assert clerk.asking() == "file"  # asked again for the file
    assert stored_kinds(store) == []


def test_a_zip_renamed_docx_is_refused_and_a_word_document_taken(
    store: Store, tmp_path: Path
) -> None:
    clerk = bound_clerk(store, tmp_path)
    file_to_attachments(clerk)
    fake = tmp_path / "支撑材料.docx"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("照片/1.jpg", b"\xff\xd8\xff\xe0")
    fake.write_bytes(buffer.getvalue())

    said = attach(clerk, "skill_achievements", fake)
    assert "“支撑材料.docx”的文件名是 .docx，但内容不是 Word 文档" in said
    assert clerk.asking() == "file"
    assert stored_kinds(store) == []

    real = word_document(tmp_path / "支撑材料2.docx")
    assert "已收到“有代表性的技术技能成果、师带徒贡献等支撑材料”（docx）" in clerk.send(
        f"/file {real}"
    )
    assert stored_kinds(store) == [("skill_achievements", "docx")]
