"""Checking an upload against a form's material: its size, and its type by its first bytes
(magic numbers), never by the file name alone. Callers hand in the first bytes; no I/O here."""

from __future__ import annotations

from conversations.forms import FileKind, Material
from conversations.validators import ValidationError

MB = 1024 * 1024
_MAGIC: tuple[tuple[bytes, FileKind], ...] = (
    (b"\xff\xd8\xff", FileKind.JPG),
    (b"\x89PNG\r\n\x1a\n", FileKind.PNG),
    (b"%PDF-", FileKind.PDF),
)
_ZIP = b"PK\x03\x04"
_KIND_NAMES = {
    FileKind.JPG: "JPG 图片",
    FileKind.PNG: "PNG 图片",
    FileKind.PDF: "PDF 文件",
    FileKind.DOCX: "Word 文档（.docx）",
}
HEAD_BYTES = 8  # callers hand in at least this many first bytes of the file


class AttachmentError(ValidationError):
    """An upload cannot be accepted; str() says why and what is accepted, in Chinese."""


def check_attachment(material: Material, *, filename: str, size: int, head: bytes) -> FileKind:
    """Check an upload for `material`; return its type, detected from the first bytes.

    The type comes from the content, never from the name alone: a .pdf that is a PNG is a PNG.
    A docx is a zip (PK\\x03\\x04) *and* a name ending in .docx; any other zip is refused.
    Raises AttachmentError naming the problem: too large (naming the limit), empty, unknown
    type, or a type this material does not accept.
    """
    accepted = "、".join(k.value for k in material.accept)
    if size > material.max_mb * MB:
        raise AttachmentError(
            f"文件太大：{size / MB:.2f} MB，{material.name}每个文件不能超过 {material.max_mb} MB。"
            "请压缩或拆分后重新上传。"
        )
    if size <= 0 or not head:
        raise AttachmentError(f"文件是空的，请重新上传{material.name}（{accepted}）。")
    kind = _detect(filename, head)
    if kind not in material.accept:
        raise AttachmentError(
            f"{material.name}只接受 {accepted} 格式，您上传的是{_KIND_NAMES[kind]}。"
        )
    return kind


def _detect(filename: str, head: bytes) -> FileKind:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    is_docx_name = filename.lower().endswith(".docx")
    if head.startswith(_ZIP):
        if is_docx_name:
            return FileKind.DOCX
        raise AttachmentError(
            "不接受压缩包：请直接上传 jpg、png、pdf 图片或文件，Word 文档请用 .docx 格式。"
        )
    if is_docx_name:
        raise AttachmentError(
            f"“{_short(filename, 40)}”的文件名是 .docx，但内容不是 Word 文档，文件可能已损坏。"
            "请重新保存为 .docx 或导出为 pdf 后上传。"
        )
    raise AttachmentError(
        f"无法识别“{_short(filename, 40)}”的文件类型：只接受 jpg、png、pdf 或 docx 文件。"
    )


def _short(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


__all__ = ["HEAD_BYTES", "MB", "AttachmentError", "check_attachment"]
