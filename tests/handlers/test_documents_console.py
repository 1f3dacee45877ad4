"""/documents end to end on the console (issue 12): a clerk ranks and asks, the worker renders
from the database, the files arrive in the chat (the console's downloads folder); each file is
opened again with its own library and checked against the nominations stored; an office gets
its region's set and the 公示名单 masked; /quota brings a PNG; every export is audited."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from docx import Document
from fpdf import FPDF
from openpyxl import load_workbook
from PIL import Image
from support.console_harness import ConsoleHarness, catalog
from support.review_rig import audit_rows, clerk, official, place

from conversations.identity import Level
from conversations.idnumber import check_digit
from storage import nominations as noms
from storage.files import FileStore
from storage.store import Store

SKILLS = "jl-skills-2022"
FULL_ID = re.compile(r"\b\d{17}[\dX]\b")
FULL_PHONE = re.compile(r"\b1\d{10}\b")


def idn(body: str) -> str:
    return body + check_digit(body)


PEOPLE = [
    ("张小三", idn("22010419900315002"), "13912345678"),
    ("李小四", idn("22010219851101001"), "13800001111"),
    ("王小五", idn("22010519790607004"), "13700002222"),
]


def fields(name: str, id_number: str, mobile: str) -> dict[str, object]:
    return {
        "name": name, "id_number": id_number, "mobile": mobile, "ethnicity": "汉族",
        "political_status": "中共党员", "education": "大学本科", "employer": "一汽解放有限公司",
        "position": "钳工班长", "occupation": "钳工", "skill_level": "senior_technician",
        "years_in_occupation": 12,
    }  # fmt: skip


def saved(output: str) -> list[Path]:
    return [Path(m) for m in re.findall(r"已保存到：(\S+)", output)]


def delivered(path: Path) -> str:
    """The name the bot gave the file (the console prefixes g<id>- to keep files apart)."""
    assert re.match(r"g\d+-", path.name), path.name
    return re.sub(r"^g\d+-", "", path.name)


def docx_text(path: Path) -> str:
    doc = Document(str(path))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


def pdf_pages(path: Path) -> list[str]:
    pdf = pdfium.PdfDocument(str(path))
    try:
        out = []
        for page in pdf:
            text = page.get_textpage()
            out.append(text.get_text_range())
            text.close()
            page.close()
        return out
    finally:
        pdf.close()


def marker_pdf(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=20)
    pdf.cell(text=text)
    return bytes(pdf.output())


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    return tmp_path / "files"


def setting(store: Store, files_dir: Path) -> list[int]:
    """The clerk's unit with three filed nominations; the second has a real scanned PDF."""
    clerk(store)
    ids = [place(store, fields=fields(*p), materials=False) for p in PEOPLE]
    files = FileStore(files_dir, store.sealer)
    ref = files.put(marker_pdf("SCAN-OF-LI"))
    with store.transaction() as conn:
        noms.add_attachment(
            conn, store.sealer, nomination_id=ids[1], material_key="id_card", file_ref=ref,
            media_type="pdf", size=1, filename="身份证.pdf", now=_now(),
        )  # fmt: skip
    return ids


def catalog_of(campaign: str):  # type: ignore[no-untyped-def]
    return catalog().get(campaign)


def _now():  # type: ignore[no-untyped-def]
    from support.console_harness import FIXED_NOW

    return FIXED_NOW


def test_a_clerk_ranks_then_receives_the_units_documents_made_from_what_is_stored(
    store: Store, tmp_path: Path, files_dir: Path
) -> None:
    setting(store, files_dir)
    chat = ConsoleHarness(store, user="clerk", files_dir=files_dir, downloads=tmp_path / "dl")
    chat.open()
    listed = chat.send("/rank jl-skills-2022")
    masked = ["张*三", "李*四", "王*五"]  # the chat masks names; the unit's files do not
    assert sorted(masked, key=listed.index) == masked
    chat.send("3 1 2")  # 王小五, 张小三, 李小四
    out = chat.send("/documents jl-skills-2022")
    paths = saved(out)
    assert paths, out
    by_name = {delivered(p): p for p in paths}

    # 汇总表: the clerk's order, every value as stored, phones and IDs masked for the unit.
    (summary,) = [p for n, p in by_name.items() if n.endswith(".xlsx")]
    (printable,) = [p for n, p in by_name.items() if n.endswith("推荐汇总表.pdf")]
    assert "王小五" in "".join(pdf_pages(printable))
    book = load_workbook(summary, read_only=True)
    try:
        rows = [list(r) for r in book.active.iter_rows(min_row=4, values_only=True)]
    finally:
        book.close()
    assert [r[1] for r in rows] == ["王小五", "张小三", "李小四"]
    assert [r[12] for r in rows] == [1, 2, 3]  # 推荐排序
    assert [r[3] for r in rows] == ["1979-06", "1990-03", "1985-11"]  # 出生年月 from the ID
    flat = "\n".join(str(c) for r in rows for c in r)
    assert not FULL_ID.search(flat)
    assert not FULL_PHONE.search(flat)
    assert "137****2222" in flat

    # 推荐审批表: one DOCX and one PDF each; the unit's own form, which it stamps, in full.
    forms = sorted(n for n in by_name if n.startswith("推荐审批表"))
    assert len(forms) == 6
    (zhang_docx,) = [by_name[n] for n in forms if "张小三" in n and n.endswith(".docx")]
    text = docx_text(zhang_docx)
    assert PEOPLE[0][1] in text
    assert PEOPLE[0][2] in text
    assert "钳工班长" in text
    (zhang_pdf,) = [by_name[n] for n in forms if "张小三" in n and n.endswith(".pdf")]
    assert "张小三" in "".join(pdf_pages(zhang_pdf))

    # The material book: contents first, the form next, the scanned PDF merged behind.
    (li_book,) = [p for n, p in by_name.items() if n.startswith("申报材料目录") and "李小四" in n]
    pages = pdf_pages(li_book)
    assert "申报材料目录" in pages[0]
    assert any("SCAN-OF-LI" in page for page in pages[1:])

    for kind in ("档案袋封面", "征求意见表", "推荐报告"):
        (doc,) = [p for n, p in by_name.items() if kind in n and n.endswith(".docx")]
        (twin,) = [p for n, p in by_name.items() if kind in n and n.endswith(".pdf")]
        for text in (docx_text(doc), "\n".join(pdf_pages(twin))):
            assert "张小三" in text
            assert not FULL_ID.search(text)

    # The export is audited once, for the unit's audience.
    assert ("export", True) in audit_rows(store)


def test_an_office_gets_its_regions_set_and_a_public_list_without_numbers(
    store: Store, tmp_path: Path, files_dir: Path
) -> None:
    setting(store, files_dir)
    official(store, "city", "220100", Level.CITY)
    chat = ConsoleHarness(store, user="city", files_dir=files_dir, downloads=tmp_path / "dl")
    chat.open()
    paths = saved(chat.send("/documents jl-skills-2022"))
    names = [delivered(p) for p in paths]
    assert any(n.startswith("长春市") and n.endswith("推荐汇总表.xlsx") for n in names), names
    publicity = [p for p in paths if "公示名单" in delivered(p)]
    assert {p.suffix for p in publicity} == {".docx", ".pdf"}
    for p in publicity:
        text = docx_text(p) if p.suffix == ".docx" else "\n".join(pdf_pages(p))
        for name, id_number, mobile in PEOPLE:
            assert name in text
            assert id_number not in text
            assert mobile not in text
            assert id_number[:6] + "*" not in text
        assert "工作日" in text
    # The city's forms are masked: it does not stamp them.
    form = next(p for p in paths if delivered(p).startswith("推荐审批表") and p.suffix == ".docx")
    assert not FULL_ID.search(docx_text(form))


def test_quota_sends_the_chart_and_its_figures(
    store: Store, tmp_path: Path, files_dir: Path
) -> None:
    setting(store, files_dir)
    official(store, "city", "220100", Level.CITY)
    from support.console_harness import regions

    from storage.quotas import set_quota

    with store.transaction() as conn:
        set_quota(
            conn, campaign=SKILLS, category="technical_expert", region=regions().get("220100"),
            places=2, now=_now(),
        )  # fmt: skip
    chat = ConsoleHarness(store, user="city", files_dir=files_dir, downloads=tmp_path / "dl")
    chat.open()
    out = chat.send("/quota jl-skills-2022")
    # The skills notice sets no 150 %–200 % band: the places are the most a city recommends.
    assert "长春市·吉林省技术能手：已推荐 3 名，名额 2 名（超出）" in out
    assert "个人信息" not in out  # a chart of counts names nobody
    # The bars are the database's counts: the chart drawn from the stored rows, read the way
    # the worker reads them, has one bar of 3 (长春市, 技术能手) and the chat's text is its twin.
    from conversations.documents import quota_figures, quota_text
    from documents.chart import quota_chart
    from storage import exports

    campaign = catalog_of(SKILLS)
    with exports.snapshot(store) as conn:
        figures = quota_figures(
            campaign, "长春市", exports.campaign_facts(conn, store.sealer, catalog(), SKILLS),
            exports.region_quotas(conn, regions(), campaign, "220100"),
            region_name=regions().full_name, contains=regions().contains,
        )  # fmt: skip
    bars = list(quota_chart(figures).axes[0].containers[0])
    assert [bar.get_width() for bar in bars] == [3]
    assert quota_text(figures) in out
    (png,) = [p for p in saved(out) if p.suffix == ".png"]
    with Image.open(io.BytesIO(png.read_bytes())) as image:
        assert image.format == "PNG"
        assert image.width > 300


def test_an_applicant_is_told_documents_are_for_clerks_and_offices(store: Store) -> None:
    chat = ConsoleHarness(store, user="someone")
    chat.open()
    out = chat.send("/documents jl-skills-2022")
    assert "经办人" in out or "工作人员" in out


def test_a_unit_with_only_a_draft_is_told_there_is_nothing_to_make(
    store: Store, tmp_path: Path
) -> None:
    clerk(store)
    place(store, fields={"name": "张小三"}, status="draft")
    chat = ConsoleHarness(store, user="clerk", downloads=tmp_path / "dl")
    chat.open()
    out = chat.send("/documents jl-skills-2022")
    assert "暂无已报送的推荐（草稿不计入），没有可生成的文件" in out
    assert saved(out) == []
