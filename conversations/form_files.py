"""Checking an upload against a form's material: its size, and its type by its content (magic
numbers, and for Word the parts inside the zip), never by the file name alone. Callers hand in
the bytes they received and the file's real size; no I/O here.

The types: JPG (FF D8 FF), PNG (89 'PNG' 0D 0A 1A 0A), PDF ('%PDF-'), and DOCX — a zip
(PK 03 04) that holds `[Content_Types].xml` and `word/document.xml`, the two parts every Word
document has (ECMA-376 Part 2, the Open Packaging Conventions; `word/document.xml` is the main
part Word writes). Any other zip, an .xlsx or a .zip renamed .docx, is not a Word document.
"""

from __future__ import annotations

import math
import zipfile

from conversations.forms import FileKind, Material
from conversations.validators import ValidationError

MB = 1024 * 1024
_MAGIC: tuple[tuple[bytes, FileKind], ...] = (
    (b"\xff\xd8\xff", FileKind.JPG),
    (b"\x89PNG\r\n\x1a\n", FileKind.PNG),
    (b"%PDF-", FileKind.PDF),
)
_ZIP = b"PK\x03\x04"
# Compound File Binary (OLE2): a Word 97–2003 .doc, or a .docx saved with a password.
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DOCX_PARTS = ("[Content_Types].xml", "word/document.xml")
_KIND_NAMES = {
    FileKind.JPG: "JPG 图片",
    FileKind.PNG: "PNG 图片",
    FileKind.PDF: "PDF 文件",
    FileKind.DOCX: "Word 文档（.docx）",
}


class AttachmentError(ValidationError):
    """An upload cannot be accepted; str() says why and what is accepted, in Chinese."""


def check_attachment(
    material: Material, *, filename: str, data: bytes, size: int | None = None
) -> FileKind:
    """Check an upload for `material`; return its type, detected from its content.

    `data` is what the channel received; `size` the file's real size when the channel read
    only part of a file too big to take (the console reads at most the limit and one byte):
    the message states the real size. The type comes from the content, never from the name
    alone: a .pdf that is a PNG is a PNG, a Word document is one by the parts inside its zip.
    Raises AttachmentError naming the problem: too large (its size and the limit), empty, a
    zip that is not a Word document, an unknown type, or a type this material does not accept.
    """
    size = len(data) if size is None else size
    accepted = "、".join(k.value for k in material.accept)
    if size > material.max_mb * MB:
        raise AttachmentError(
            f"文件太大：{format_mb(size)}，{material.name}每个文件不能超过 {material.max_mb} MB。"
            "请压缩或拆分后重新上传。"
        )
    if size <= 0 or not data:
        raise AttachmentError(f"文件是空的，请重新上传{material.name}（{accepted}）。")
    kind = _detect(filename, data)
    if kind not in material.accept:
        raise AttachmentError(
            f"{material.name}只接受 {accepted} 格式，您上传的是{_KIND_NAMES[kind]}。"
        )
    return kind


def format_mb(size: int) -> str:
    """A size in MB (1 MB = 1024 × 1024 bytes) to one decimal, rounded up: a file over a limit
    never reads as the limit itself (20 MB and one byte is 20.1 MB), 21.3 MB is 「21.3 MB」 and
    a whole number drops its 「.0」 (「21 MB」)."""
    tenths = math.ceil(size * 10 / MB)
    whole, tenth = divmod(tenths, 10)
    return f"{whole} MB" if tenth == 0 else f"{whole}.{tenth} MB"


def is_docx(data: bytes) -> bool:
    """Whether `data` is a zip holding the parts of a Word document (DOCX_PARTS).

    Reads the zip's directory only: nothing is decompressed, so a zip bomb costs nothing."""
    if not data.startswith(_ZIP):
        return False
    try:
        with zipfile.ZipFile(_Bytes(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        return False  # cut short or damaged: not a document Word can open either
    return all(part in names for part in DOCX_PARTS)


class _Bytes:
    """The received bytes as the read-only, seekable file zipfile reads a directory from.

    In memory, like io.BytesIO, which conversations/ does not import (tests/test_architecture.py
    keeps the core's modules off the io module, whose other streams are files)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._at, len(self._data))[whence]
        self._at = max(0, base + offset)
        return self._at

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else self._at + n
        out = self._data[self._at : end]
        self._at += len(out)
        return out


def _detect(filename: str, data: bytes) -> FileKind:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    shown = _short(filename, 40)
    docx_name = filename.lower().endswith(".docx")
    if data.startswith(_ZIP):
        if is_docx(data):
            return FileKind.DOCX
        if docx_name:
            raise AttachmentError(
                f"“{shown}”的文件名是 .docx，但内容不是 Word 文档"
                "（缺少 Word 文档的组成部分，可能是改了扩展名的压缩包或已损坏的文件）。"
                "请用 Word 另存为 .docx 或导出为 pdf 后上传。"
            )
        raise AttachmentError(
            "不接受压缩包：请直接上传 jpg、png、pdf 图片或文件，Word 文档请用 .docx 格式。"
        )
    if data.startswith(_OLE2):
        raise AttachmentError(
            f"“{shown}”是旧版 Word 文档（.doc）或设置了打开密码的文档，无法接收。"
            "请用 Word 另存为 .docx（不设密码）或导出为 pdf 后上传。"
        )
    if docx_name:
        raise AttachmentError(
            f"“{shown}”的文件名是 .docx，但内容不是 Word 文档，文件可能已损坏。"
            "请重新保存为 .docx 或导出为 pdf 后上传。"
        )
    raise AttachmentError(f"无法识别“{shown}”的文件类型：只接受 jpg、png、pdf 或 docx 文件。")


def _short(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


__all__ = ["DOCX_PARTS", "MB", "AttachmentError", "check_attachment", "format_mb", "is_docx"]
