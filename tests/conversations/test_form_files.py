"""What an upload is, by its content: magic numbers for JPG, PNG and PDF, the parts inside the
zip for a Word document; and a file too big says its real size and the limit (issue 11)."""

from __future__ import annotations

import io
import zipfile

import pytest

from conversations.form_files import MB, AttachmentError, check_attachment, format_mb, is_docx
from conversations.forms import FileKind, Material

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPG = b"\xff\xd8\xff\xe0" + b"\x00" * 12
PDF = b"%PDF-1.7\n" + b"\x00" * 7
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8  # a Word 97-2003 .doc
ANY = Material(key="m", name="支撑材料")
SCANS = Material(key="id_card", name="身份证复印件", accept=["jpg", "png", "pdf"])


def zipped(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


DOCX = zipped("[Content_Types].xml", "_rels/.rels", "word/document.xml", "docProps/core.xml")
XLSX = zipped("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml")
PLAIN_ZIP = zipped("扫描件/身份证.jpg", "说明.txt")
ONLY_TYPES = zipped("[Content_Types].xml")  # the package, but no Word document in it
ONLY_DOCUMENT = zipped("word/document.xml")


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("a.jpg", JPG, FileKind.JPG),
        ("a.png", PNG, FileKind.PNG),
        ("a.pdf", PDF, FileKind.PDF),
        ("a.docx", DOCX, FileKind.DOCX),
        ("A.DOCX", DOCX, FileKind.DOCX),
        ("申报材料", DOCX, FileKind.DOCX),  # a Word document without its extension is one
        ("scan.pdf", PNG, FileKind.PNG),  # the content decides, not the name
        ("setup.exe", PDF, FileKind.PDF),
        ("noname", JPG, FileKind.JPG),
    ],
)
def test_the_type_comes_from_the_content(filename: str, data: bytes, expected: FileKind) -> None:
    assert check_attachment(ANY, filename=filename, data=data) == expected


@pytest.mark.parametrize(
    ("filename", "data", "why"),
    [
        ("a.docx", PLAIN_ZIP, "“a.docx”的文件名是 .docx，但内容不是 Word 文档"),
        ("a.docx", XLSX, "但内容不是 Word 文档"),
        ("a.docx", ONLY_TYPES, "但内容不是 Word 文档"),
        ("a.docx", ONLY_DOCUMENT, "但内容不是 Word 文档"),
        ("a.docx", DOCX[: len(DOCX) // 2], "但内容不是 Word 文档"),  # cut short: no directory
        ("a.docx", b"PK\x03\x04" + b"\x14\x00" * 6, "但内容不是 Word 文档"),
        ("a.docx", b"hello world", "内容不是 Word 文档，文件可能已损坏"),
        ("a.zip", PLAIN_ZIP, "不接受压缩包"),
        ("a.xlsx", XLSX, "不接受压缩包"),
        ("a.doc", OLE2, "“a.doc”是旧版 Word 文档（.doc）或设置了打开密码的文档"),
        ("a.docx", OLE2, "另存为 .docx（不设密码）或导出为 pdf"),
        ("a.exe", b"MZ\x90\x00", "只接受 jpg、png、pdf 或 docx"),
        ("a.pdf", b"", "文件是空的"),
    ],
)
def test_what_is_not_accepted_is_named(filename: str, data: bytes, why: str) -> None:
    with pytest.raises(AttachmentError) as info:
        check_attachment(ANY, filename=filename, data=data)
    assert why in str(info.value)


def test_a_random_zip_renamed_docx_is_refused_but_a_word_document_is_not() -> None:
    assert not is_docx(PLAIN_ZIP)
    assert is_docx(DOCX)
    with pytest.raises(AttachmentError, match="请用 Word 另存为 .docx 或导出为 pdf 后上传"):
        check_attachment(ANY, filename="推荐审批表.docx", data=PLAIN_ZIP)


def test_a_type_the_material_does_not_take_is_refused_naming_both() -> None:
    with pytest.raises(AttachmentError) as info:
        check_attachment(SCANS, filename="a.docx", data=DOCX)
    expected = "身份证复印件只接受 jpg、png、pdf 格式，您上传的是Word 文档（.docx）。"
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (21 * MB, "21 MB"),
        (int(21.3 * MB), "21.3 MB"),
        (20 * MB + 1, "20.1 MB"),  # over the limit never reads as the limit
        (int(20.05 * MB), "20.1 MB"),
        (25 * MB - 1, "25 MB"),
        (512 * MB, "512 MB"),
    ],
)
def test_sizes_read_in_megabytes_rounded_up_to_a_tenth(size: int, shown: str) -> None:
    assert format_mb(size) == shown


def test_a_file_too_big_states_its_real_size_and_the_limit() -> None:
    # The console reads the limit and one byte of a bigger file: the real size is passed on.
    read = PDF + b"\x00" * (20 * MB + 1 - len(PDF))
    with pytest.raises(AttachmentError) as info:
        check_attachment(ANY, filename="big.pdf", data=read, size=int(21.3 * MB))
    assert str(info.value) == (
        "文件太大：21.3 MB，支撑材料每个文件不能超过 20 MB。请压缩或拆分后重新上传。"
    )


def test_a_materials_own_limit_is_the_one_stated() -> None:
    small = Material(key="m", name="表", max_mb=5)
    with pytest.raises(AttachmentError, match="文件太大：5.1 MB，表每个文件不能超过 5 MB"):
        check_attachment(small, filename="a.pdf", data=PDF, size=5 * MB + 1)


def test_exactly_twenty_megabytes_is_accepted() -> None:
    assert check_attachment(ANY, filename="a.pdf", data=PDF, size=20 * MB) == FileKind.PDF
