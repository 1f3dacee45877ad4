"""The PDFs of issue 12, read back with pdfium: the 推荐审批表 of both campaigns (person and unit
forms) shows every label and value in form order; the 公示名单 names, units and categories only;
the material book's table of contents names the page each item really starts on; files that
cannot be merged are listed and do not stop the book; a missing font is an error, not boxes."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import re
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from fpdf import FPDF
from PIL import Image
from support.console_harness import catalog

from conversations.documents import Audience, DocKind, Entry, FileLine, Header, entry_of
from conversations.forms import form_for
from conversations.idnumber import check_digit
from documents.fonts import ENV, FontMissing
from documents.layouts import FORMS as FORMS_LAYOUTS
from documents.layouts import layout_for
from documents.pdf import BookResult, book_pdf, form_pdf, publicity_pdf

NOW = dt.datetime(2022, 11, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
PERIOD = (dt.date(2022, 10, 10), dt.date(2022, 10, 14))


def id_number(body17: str) -> str:
    return body17 + check_digit(body17)


ZHANG_ID = id_number("22010419900315002")
LONG_DEEDS = "长期扎根装配一线，主持完成驾驶室总成装配工艺改进，年节约成本约一百二十万元。" * 14

SKILLS_FIELDS: dict[str, Any] = {
    "name": "张小三", "id_number": ZHANG_ID, "mobile": "13912345678", "ethnicity": "汉族",
    "political_status": "cpc_member", "education": "bachelor", "employer": "一汽解放有限公司",
    "position": "钳工班长", "occupation": "钳工", "skill_level": "senior_technician",
    "certificate_number": "S000022010400123", "years_in_occupation": 12,
    "awards": ["2019年吉林省五一劳动奖章", "2020年长春市技术能手"], "achievements": LONG_DEEDS,
    "has_classified_material": False,
}  # fmt: skip
EMPLOYMENT_PERSON_FIELDS: dict[str, Any] = {
    "name": "李玥", "id_number": id_number("22020219880808004"), "mobile": "13600003333",
    "ethnicity": "满族", "political_status": "masses", "education": "associate",
    "employer": "吉林市丰满区创业孵化基地", "position": "主任", "unit_type": "enterprise",
    "is_non_public": True, "is_unit_head": True, "admin_rank": "none",
    "achievements": "带动返乡农民工创业 86 人，吸纳就业 400 余人。",
}  # fmt: skip
EMPLOYMENT_UNIT_FIELDS: dict[str, Any] = {
    "unit_name": "长春市朝阳区就业服务中心", "uscc": "12220104MB1234567X",
    "unit_type": "public_institution", "is_non_public": False,
    "founded_on": dt.date(2003, 5, 20), "staff_count": 40, "key_group_hires": 12,
    "contact_person": "王五", "mobile": "13912345678",
    "achievements": "近三年组织专场招聘会 120 场，帮助 3000 余名高校毕业生就业。",
}  # fmt: skip

# campaign, category, fields, unit
FORMS = [
    ("jl-skills-2022", "technical_expert", SKILLS_FIELDS, "一汽解放有限公司"),
    (
        "jl-employment-2022", "employment_individual", EMPLOYMENT_PERSON_FIELDS,
        "吉林市丰满区创业孵化基地",
    ),
    (
        "jl-employment-2022", "employment_collective", EMPLOYMENT_UNIT_FIELDS,
        "长春市朝阳区就业服务中心",
    ),
]  # fmt: skip


def make_entry(
    campaign_id: str,
    category: str,
    fields: dict[str, Any],
    unit: str,
    *,
    audience: Audience = Audience.UNIT,
    doc: DocKind = DocKind.FORM,
    attachments: list[tuple[str, FileLine]] | None = None,
    code: str = "ABCD-EFGH",
) -> Entry:
    campaign = catalog().get(campaign_id)
    form = form_for(campaign, category)
    assert form is not None
    return entry_of(
        campaign, form, id=1, code=code, category=category, status="county_review", unit=unit,
        region="长春市朝阳区", region_code="220104", fields=fields,
        attachments=attachments or [], opinions_recorded=[], publicity=None, rank=1,
        audience=audience, doc=doc,
    )  # fmt: skip


def header(campaign_id: str, audience: Audience = Audience.UNIT) -> Header:
    return Header(campaign_id, catalog().get(campaign_id).title, "长春市朝阳区", audience, NOW)


def text_of(doc: pdfium.PdfDocument, i: int) -> str:
    page = doc[i]
    text = page.get_textpage()
    try:
        return str(text.get_text_range())
    finally:
        text.close()
        page.close()


def pages_text(path: Path) -> list[str]:
    doc = pdfium.PdfDocument(path)
    try:
        return [text_of(doc, i) for i in range(len(doc))]
    finally:
        doc.close()


def squeeze(text: str) -> str:
    """The text without line breaks and spaces: a value wrapped over lines reads as one."""
    return re.sub(r"\s+", "", text)


def assert_in_order(text: str, parts: list[str]) -> None:
    at = 0
    for part in parts:
        found = text.find(squeeze(part), at)
        assert found >= 0, f"{part!r} missing after position {at}: {text[at : at + 80]!r}"
        at = found + len(squeeze(part))


_FORM_PAGES: dict[str, list[str]] = {}


def rendered_forms(
    campaign_id: str, category: str, fields: dict[str, Any], unit: str
) -> list[str]:
    """The text of each page of the clerk's form of that nomination, rendered once per run."""
    if category not in _FORM_PAGES:
        out = io.BytesIO()
        form_pdf(header(campaign_id), make_entry(campaign_id, category, fields, unit), out)
        doc = pdfium.PdfDocument(out.getvalue())
        try:
            _FORM_PAGES[category] = [text_of(doc, i) for i in range(len(doc))]
        finally:
            doc.close()
    return _FORM_PAGES[category]


@pytest.mark.parametrize(("campaign_id", "category", "fields", "unit"), FORMS)
def test_the_form_shows_every_label_and_value_in_form_order(
    campaign_id: str, category: str, fields: dict[str, Any], unit: str
) -> None:
    entry = make_entry(campaign_id, category, fields, unit)
    text = squeeze("".join(rendered_forms(campaign_id, category, fields, unit)))
    campaign = catalog().get(campaign_id)
    form = form_for(campaign, category)
    assert form is not None
    assert [v.label for v in entry.values] == [f.label for f in form.fields]
    expected = [campaign.title, form.title, "跟踪编号", "ABCD-EFGH", "申报类别"]
    expected += [entry.category_label, "推荐单位", unit, "所在地区", "长春市朝阳区"]
    for value in entry.values:
        expected += [value.label, value.text]
    levels = layout_for(campaign_id, form.kind.value).levels
    assert levels[0].startswith("推荐单位")
    assert len(levels) == 4  # the unit, the county, the city, the province
    expected.append("审批意见")
    for office in levels:
        expected += [office, "（盖章）", "年月日"]
    assert_in_order(text, expected)
    # The clerk's own form is stamped by the unit: the ID number and phone in full.
    assert fields["mobile"] in text
    if "id_number" in fields:
        assert fields["id_number"] in text


def test_the_skills_form_prints_the_choices_labels_and_the_long_deeds_whole() -> None:
    pages = rendered_forms(*FORMS[0])
    assert len(pages) >= 2  # the deeds do not fit on the first page with the rest
    text = squeeze("".join(pages))
    assert_in_order(text, ["政治面貌", "中共党员", "文化程度", "大学本科", "技能等级", "高级技师"])
    assert_in_order(text, ["性别", "女", "出生年月", "1990-03"])  # derived from the ID number
    assert squeeze(LONG_DEEDS) in text
    assert_in_order(text, ["1.2019年吉林省五一劳动奖章", "2.2020年长春市技术能手"])
    assert [squeeze(p).rsplit("—", 2)[-2] for p in pages] == [
        str(n) for n in range(1, 1 + len(pages))
    ]


def test_a_county_form_masks_the_id_number_and_phone_even_of_an_entry_made_in_full(
    tmp_path: Path,
) -> None:
    entry = make_entry(*FORMS[0], audience=Audience.PROVINCE)  # full values, by mistake
    assert entry.value("id_number") == ZHANG_ID
    out = tmp_path / "form.pdf"
    form_pdf(header("jl-skills-2022", Audience.COUNTY), entry, out)
    text = squeeze("".join(pages_text(out)))
    assert "220104********0024" in text
    assert "139****5678" in text
    assert ZHANG_ID not in text
    assert "13912345678" not in text


PUBLIC = [
    (
        "jl-skills-2022", "technical_expert", {**SKILLS_FIELDS, "name": "阿依古丽·买买提"},
        "吉林化纤集团有限责任公司",
    ),
    (
        "jl-skills-2022", "skills_grand_award",
        {
            **SKILLS_FIELDS, "name": "赵喆", "mobile": "13800001111",
            "id_number": id_number("22010219851101001"), "position": "电气调试组长",
        },
        "长春轨道客车股份有限公司",
    ),
    (
        "jl-skills-2022", "technical_expert",
        {
            **SKILLS_FIELDS, "name": "孙堃", "mobile": "13700002222",
            "id_number": id_number("22240119790607004"), "occupation": "焊工",
        },
        "延边州特种设备检验所",
    ),
]  # fmt: skip


def test_the_publicity_list_has_names_units_and_categories_only_in_the_order_given(
    tmp_path: Path,
) -> None:
    entries = [make_entry(*p, audience=Audience.PUBLIC, doc=DocKind.PUBLICITY) for p in PUBLIC]
    out = tmp_path / "publicity.pdf"
    publicity_pdf(header("jl-skills-2022"), entries, out, period=PERIOD, workdays=5)
    raw = "".join(pages_text(out))
    text = squeeze(raw)
    assert "公示期为2022年10月10日至10月14日（5个工作日）" in text
    assert squeeze("联系人及电话：【请填写】长春市朝阳区2022年10月10日—1—") in text
    expected = ["拟推荐人选公示名单", "序号", "姓名", "单位", "申报类别"]
    for seq, (_, category, fields, unit) in enumerate(PUBLIC, 1):
        label = next(
            c.name for c in catalog().get("jl-skills-2022").categories if c.id == category
        )
        expected += [str(seq), fields["name"], unit, label]
    assert_in_order(text, expected)
    assert not re.search(r"\d{17}[\dX]", text)  # no ID number
    assert not re.search(r"1\d{10}", text)  # no mobile
    for _, _, fields, _ in PUBLIC:
        for key in ("id_number", "mobile", "position", "occupation", "certificate_number"):
            assert squeeze(str(fields[key])) not in text, key
    assert "*" not in raw  # not even masked: the public list does not carry them at all


def test_a_list_of_collectives_names_its_column_and_gives_the_contact(tmp_path: Path) -> None:
    entry = make_entry(*FORMS[2], audience=Audience.PUBLIC, doc=DocKind.PUBLICITY)
    out = tmp_path / "publicity.pdf"
    publicity_pdf(
        header("jl-employment-2022"), [entry], out, period=(dt.date(2022, 12, 29),
        dt.date(2023, 1, 5)), workdays=5, contact="王五 0431-88886666",
    )  # fmt: skip
    text = squeeze("".join(pages_text(out)))
    assert "公示期为2022年12月29日至2023年1月5日（5个工作日）" in text
    assert_in_order(
        text, ["序号", "单位名称", "单位", "申报类别", "1", "长春市朝阳区就业服务中心"]
    )
    assert "联系人及电话：王五0431-88886666" in text


def test_the_pdf_forms_sign_off_at_the_levels_the_word_templates_are_drawn_with() -> None:
    # documents/templates/draw.py is a script (not installed); the PDF reads documents.layouts.
    draw = importlib.import_module("documents.templates.draw")
    assert {k: (v.heading, v.levels) for k, v in draw.FORMS.items()} == {
        k: (v.heading, v.levels) for k, v in FORMS_LAYOUTS.items()
    }


# ----- the material book -----------------------------------------------------------------------


def marker_pdf(*markers: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=20)
    for marker in markers:
        pdf.add_page()
        pdf.cell(0, 10, marker)
    return bytes(pdf.output())


def picture(size: tuple[int, int], fmt: str, *, orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (180, 40, 40))
    out = io.BytesIO()
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, format=fmt, exif=exif)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


# Uploaded in an order unlike the notice's: the book follows the notice.
UPLOADS: list[tuple[str, FileLine, bytes | None]] = [
    ("honor_certificates", FileLine(6, "荣誉.pdf", "pdf"), marker_pdf("MARKER-HONOR")),
    ("skill_achievements", FileLine(4, "成果.docx", "docx"), b"PK\x03\x04 not merged"),
    ("id_card", FileLine(1, "身份证.png", "png"), picture((600, 380), "PNG")),
    (
        "qualification_certificate", FileLine(2, "证书.pdf", "pdf"),
        marker_pdf("MARKER-CERT-1", "MARKER-CERT-2"),
    ),
    ("skill_achievements", FileLine(5, "损坏.pdf", "pdf"), b"%PDF-1.4\n1 0 obj << /Type /Catalog"),
    ("diploma", FileLine(3, "毕业证.jpg", "jpg"), picture((600, 400), "JPEG", orientation=6)),
    ("other_evidence", FileLine(7, "丢失.pdf", "pdf"), None),
]  # fmt: skip


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Entry, BookResult, Path]:
    attachments = [(key, file) for key, file, _ in UPLOADS]
    data = {file.attachment_id: content for _, file, content in UPLOADS}
    entry = make_entry(*FORMS[0], doc=DocKind.BOOK, attachments=attachments)
    out = tmp_path_factory.mktemp("book") / "book.pdf"
    result = book_pdf(header("jl-skills-2022"), entry, lambda f: data[f.attachment_id], out)
    return entry, result, out


def toc_page(text: str, name: str) -> int:
    found = re.search(re.escape(name) + r"\s+(\d+)\s", text)
    assert found, f"{name} has no page in the table of contents"
    return int(found.group(1))


def test_the_book_opens_with_the_contents_in_the_notices_order(
    book: tuple[Entry, BookResult, Path],
) -> None:
    entry, result, out = book
    pages = pages_text(out)
    assert result.pages == len(pages)
    contents = squeeze(pages[0])
    assert contents.startswith("申报材料目录")
    campaign = catalog().get("jl-skills-2022")
    form = form_for(campaign, "technical_expert")
    assert form is not None
    names = [m.name for m in form.materials]
    assert names[0] == form.title  # seed 001 lists the 推荐审批表 first
    expected: list[str] = []
    for seq, material in enumerate(form.materials, 1):
        expected += [str(seq), material.name]
        expected += [f.filename for key, f, _ in UPLOADS if key == material.key]
    assert_in_order(contents, expected)
    assert result.merged == ("身份证.png", "证书.pdf", "毕业证.jpg", "荣誉.pdf")


def test_each_page_the_contents_names_holds_that_item(
    book: tuple[Entry, BookResult, Path],
) -> None:
    entry, result, out = book
    pages = pages_text(out)
    contents = pages[0]
    form_at = toc_page(contents, "推荐审批表")
    assert form_at == 2
    assert squeeze(pages[form_at - 1]).startswith(squeeze(catalog().get("jl-skills-2022").title))
    assert "张小三" in pages[form_at - 1]
    cert = toc_page(contents, "证书.pdf")
    assert "MARKER-CERT-1" in pages[cert - 1]
    assert "MARKER-CERT-2" in pages[cert]
    honor = toc_page(contents, "荣誉.pdf")
    assert "MARKER-HONOR" in pages[honor - 1]
    assert honor == len(pages)  # the last material with a file
    # A material row names the page of its first file.
    assert toc_page(contents, "身份证复印件") == toc_page(contents, "身份证.png")
    # The scans are pages of their own: an image and no text; the form fills the pages between.
    id_at, diploma_at = toc_page(contents, "身份证.png"), toc_page(contents, "毕业证.jpg")
    assert form_at < id_at < cert < diploma_at < honor
    assert all("推荐单位意见" not in p for p in pages[id_at - 1 :])
    assert "办公室意见" in squeeze(pages[id_at - 2])  # the form's last block is just before
    doc = pdfium.PdfDocument(out)
    try:
        for at, landscape in ((id_at, True), (diploma_at, False)):  # 毕业证 is EXIF-rotated
            page = doc[at - 1]
            images = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
            width, height = page.get_size()
            page.close()
            assert len(images) == 1
            assert (width > height) == landscape
            assert pages[at - 1].strip() == ""
    finally:
        doc.close()


def test_files_that_cannot_be_merged_are_listed_with_the_reason(
    book: tuple[Entry, BookResult, Path],
) -> None:
    _, result, out = book
    assert result.skipped == (
        ("成果.docx", "未合并（DOCX 请另附）"),
        ("损坏.pdf", "文件无法读取"),
        ("丢失.pdf", "文件无法读取"),
    )
    contents = squeeze(pages_text(out)[0])
    for name, reason in result.skipped:
        assert squeeze(name + reason) in contents
    assert "被推荐人个人信息处理同意书未附" in contents  # a material with no file


def test_a_contents_longer_than_a_page_numbers_the_files_after_it(tmp_path: Path) -> None:
    many = [("other_evidence", FileLine(100 + i, f"附件{i:02d}.docx", "docx")) for i in range(40)]
    last = FileLine(99, "最后.pdf", "pdf")
    entry = make_entry(*FORMS[0], doc=DocKind.BOOK, attachments=[*many, ("secrecy_review", last)])
    data = {99: marker_pdf("MARKER-LAST")}
    out = tmp_path / "book.pdf"
    result = book_pdf(header("jl-skills-2022"), entry, lambda f: data.get(f.attachment_id), out)
    pages = pages_text(out)
    toc = [i for i, p in enumerate(pages) if "材料名称" in p]  # the heading repeats per page
    assert len(toc) > 1
    assert toc == list(range(len(toc)))
    contents = "".join(pages[: len(toc)])
    assert toc_page(contents, "推荐审批表") == len(toc) + 1
    assert "张小三" in pages[len(toc)]
    assert "MARKER-LAST" in pages[toc_page(contents, "最后.pdf") - 1]
    assert result.pages == len(pages)
    assert len(result.skipped) == 40


def test_an_employment_book_puts_the_form_first_although_the_notice_does_not_list_it(
    tmp_path: Path,
) -> None:
    entry = make_entry(*FORMS[2], doc=DocKind.BOOK)
    out = tmp_path / "book.pdf"
    result = book_pdf(header("jl-employment-2022"), entry, lambda f: None, out)
    pages = pages_text(out)
    contents = squeeze(pages[0])
    form = form_for(catalog().get("jl-employment-2022"), "employment_collective")
    assert form is not None
    assert_in_order(contents, ["1", form.title, "2", "2", form.materials[0].name])
    assert_in_order(contents, [m.name + "未附" for m in form.materials])
    assert "长春市朝阳区就业服务中心" in pages[1]
    assert result == BookResult(pages=len(pages), merged=(), skipped=())


def test_a_missing_font_is_an_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "no-such-font.otf"))
    entry = make_entry(*FORMS[0])
    out = tmp_path / "form.pdf"
    with pytest.raises(FontMissing, match="找不到中文字体文件"):
        form_pdf(header("jl-skills-2022"), entry, out)
    with pytest.raises(FontMissing):
        publicity_pdf(header("jl-skills-2022"), [entry], out, period=PERIOD, workdays=5)
    with pytest.raises(FontMissing):
        book_pdf(header("jl-skills-2022"), entry, lambda f: None, out)
    assert not out.exists()
