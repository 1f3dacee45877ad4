"""The PDF twins of the DOCX/XLSX documents (issue 12), read back with pdfium and compared with
the nominations they were made from: the 推荐汇总表 row by row in the columns of its campaign's
template, the labels on every page, phones masked below the province; the 征求意见表, the
档案袋封面 and the 推荐报告 per nominee as the Word documents have them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from typing import Any

import pypdfium2 as pdfium
import pytest
from support.console_harness import catalog

from conversations.documents import Audience, DocKind, Entry, FileLine, Header, entry_of, ranked
from conversations.forms import form_for
from conversations.idnumber import check_digit
from documents.pdf import cover_pdf, opinions_pdf, report_pdf, summary_pdf
from documents.sheet import cell_text, columns

NOW = dt.datetime(2022, 11, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SKILLS, EMPLOYMENT = "jl-skills-2022", "jl-employment-2022"
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章"
ID_RE = re.compile(r"\d{17}[\dX]")
MOBILE_RE = re.compile(r"1\d{10}")


def id_number(body17: str) -> str:
    return body17 + check_digit(body17)


LONG_EMPLOYER = (
    "中国第一汽车集团有限公司解放公司长春汽车厂总装配车间驾驶室分厂"  # wraps in its cell
)


def skills_fields(n: int) -> dict[str, Any]:
    employer = LONG_EMPLOYER if n % 7 == 0 else f"一汽解放第{n}分公司"
    return {
        "name": f"{SURNAMES[n % len(SURNAMES)]}晓{n:02d}", "mobile": f"139{n:08d}",
        "id_number": id_number(f"220104198{n % 10}0315{n:03d}"), "ethnicity": "汉族",
        "political_status": "cpc_member", "education": "bachelor",
        "employer": employer, "position": "钳工班长", "occupation": "钳工",
        "skill_level": "senior_technician", "certificate_number": "S000022010400123",
        "years_in_occupation": 5 + n % 20, "has_classified_material": False,
    }  # fmt: skip


def unit_fields(n: int) -> dict[str, Any]:
    return {
        "unit_name": f"长春市第{n}就业服务中心", "uscc": f"12220104MB{n:07d}X",
        "unit_type": "public_institution", "is_non_public": False,
        "founded_on": dt.date(2000 + n % 20, 5, 20), "staff_count": 10 + n,
        "key_group_hires": n, "contact_person": f"王{n}", "mobile": f"136{n:08d}",
    }  # fmt: skip


def make(
    campaign_id: str,
    category: str,
    fields: dict[str, Any],
    audience: Audience,
    doc: DocKind,
    *,
    n: int = 1,
    rank: int | None = None,
    recorded: tuple[str, ...] = (),
    attachments: list[tuple[str, FileLine]] | None = None,
) -> Entry:
    campaign = catalog().get(campaign_id)
    form = form_for(campaign, category)
    assert form is not None
    unit = str(fields.get("unit_name") or fields.get("employer"))
    return entry_of(
        campaign, form, id=n, code=f"CODE-{n:04d}", category=category, status="county_review",
        unit=unit, region="长春市朝阳区", region_code="220104", fields=fields,
        attachments=attachments or [], opinions_recorded=recorded, publicity=None, rank=rank,
        audience=audience, doc=doc,
    )  # fmt: skip


def header(campaign_id: str, audience: Audience) -> Header:
    return Header(campaign_id, catalog().get(campaign_id).title, "长春市朝阳区", audience, NOW)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pages_of(data: bytes) -> list[str]:
    doc = pdfium.PdfDocument(data)
    try:
        found = []
        for i in range(len(doc)):
            page = doc[i]
            text = page.get_textpage()
            found.append(squeeze(str(text.get_text_range())))
            text.close()
            page.close()
        return found
    finally:
        doc.close()


def page_sizes(data: bytes) -> list[tuple[float, float]]:
    doc = pdfium.PdfDocument(data)
    try:
        return [doc.get_page_size(i) for i in range(len(doc))]
    finally:
        doc.close()


def find_in_order(text: str, parts: list[str], at: int = 0) -> int:
    """Where the last of `parts` ends, each found after the one before; fails naming it."""
    for part in parts:
        found = text.find(squeeze(part), at)
        assert found >= 0, f"{part!r} missing after {at}: {text[at : at + 80]!r}"
        at = found + len(squeeze(part))
    return at


# ----- 推荐汇总表 ------------------------------------------------------------------------------

# Both campaigns (person columns of seed 001, unit columns of seed 000), each for an audience
# that sees masked phones and for the province that sees them in full.
CASES = [
    (SKILLS, "technical_expert", "person", skills_fields, 40, Audience.UNIT),
    (SKILLS, "technical_expert", "person", skills_fields, 40, Audience.PROVINCE),
    (EMPLOYMENT, "employment_collective", "unit", unit_fields, 30, Audience.CITY),
    (EMPLOYMENT, "employment_collective", "unit", unit_fields, 30, Audience.PROVINCE),
]


@pytest.mark.parametrize(("campaign_id", "category", "kind", "fields", "count", "audience"), CASES)
def test_the_summary_is_every_row_in_the_order_given_with_the_labels_on_every_page(
    campaign_id: str,
    category: str,
    kind: str,
    fields: Any,
    count: int,
    audience: Audience,
) -> None:
    made = [fields(n) for n in range(1, count + 1)]
    # Ranks given backwards: the PDF keeps the order it is handed, as the XLSX does.
    entries = [
        make(campaign_id, category, f, audience, DocKind.SUMMARY, n=n, rank=count + 1 - n)
        for n, f in enumerate(made, 1)
    ]
    # Every third entry made in full by mistake: the PDF masks it again for the audience.
    given = [
        make(campaign_id, category, f, Audience.PROVINCE, DocKind.SUMMARY, n=n, rank=count + 1 - n)
        if n % 3 == 0
        else entries[n - 1]
        for n, f in enumerate(made, 1)
    ]
    out = io.BytesIO()
    assert summary_pdf(header(campaign_id, audience), kind, iter(given), out) == count
    pages = pages_of(out.getvalue())
    assert len(pages) > 1
    assert all(w > h for w, h in page_sizes(out.getvalue()))  # landscape
    title = catalog().get(campaign_id).title + "推荐汇总表"
    assert pages[0].startswith(squeeze(title))
    assert "推荐单位（地区）：长春市朝阳区生成时间：2022-11-0309:00" in pages[0]
    cols = columns(campaign_id, kind)
    labels = [c.label for c in cols]
    rows = [[str(cell_text(c, e, seq)) for c in cols] for seq, e in enumerate(entries, 1)]
    row_at = 0
    for number, page in enumerate(pages, 1):
        at = find_in_order(page, labels)  # the column labels head every page
        while row_at < len(rows):
            try:
                at = find_in_order(page, rows[row_at], at)
            except AssertionError:
                break
            row_at += 1
        assert page.endswith(f"—{number}—")
    assert row_at == len(rows)  # every row, in order, across the pages
    text = "".join(pages)
    phones = [f["mobile"] for f in made]
    if audience is Audience.PROVINCE:
        assert all(p in text for p in phones)
    else:
        assert not MOBILE_RE.search(text)
        assert not ID_RE.search(text)
        assert all(p[:3] + "****" + p[-4:] in text for p in phones)


# ----- 征求意见表, 档案袋封面, 推荐报告 --------------------------------------------------------


def test_the_opinions_are_a_page_per_nominee_with_each_department_and_its_state() -> None:
    person = make(
        SKILLS, "technical_expert", skills_fields(1), Audience.UNIT, DocKind.OPINIONS,
        recorded=("公安部门",),
    )  # fmt: skip
    unit = make(
        EMPLOYMENT, "employment_collective", unit_fields(2), Audience.UNIT, DocKind.OPINIONS
    )
    assert person.opinions
    assert unit.opinions
    bare = dataclasses.replace(person, code="CODE-BARE", opinions=())
    out = io.BytesIO()
    opinions_pdf(header(SKILLS, Audience.UNIT), [person, unit, bare], out)
    pages = pages_of(out.getvalue())
    assert len(pages) == 3
    for page, entry, label in ((pages[0], person, "姓名"), (pages[1], unit, "单位名称")):
        expected = [catalog().get(SKILLS).title, "推荐对象征求意见表", label, entry.name]
        expected += ["推荐单位", entry.unit, "申报类别", entry.category_label]
        expected += ["跟踪编号", entry.code, "征求意见情况", "征求意见部门", "是否已取得"]
        for department in entry.opinions:
            state = "已取得" if department in entry.opinions_recorded else "待征求"
            expected += [department, "意见：", "（盖章）", "年月日", state]
        find_in_order(page, expected)
    assert pages[0].count("已取得") == 2  # the heading and 公安部门
    assert pages[1].count("待征求") == len(unit.opinions)
    # A nominee with no department to consult: the page says so, and has no table.
    find_in_order(
        pages[2], [bare.name, "CODE-BARE", "征求意见情况", "本推荐对象无需征求部门意见。"]
    )
    assert "征求意见部门" not in pages[2]


def test_the_cover_lists_each_material_with_its_file_count() -> None:
    files = [
        ("id_card", FileLine(1, "身份证.png", "png")),
        ("qualification_certificate", FileLine(2, "证书1.pdf", "pdf")),
        ("qualification_certificate", FileLine(3, "证书2.pdf", "pdf")),
    ]
    person = make(
        SKILLS, "technical_expert", skills_fields(4), Audience.CITY, DocKind.COVER,
        attachments=files,
    )  # fmt: skip
    unit = make(EMPLOYMENT, "employment_collective", unit_fields(5), Audience.CITY, DocKind.COVER)
    out = io.BytesIO()
    cover_pdf(header(SKILLS, Audience.CITY), [person, unit], out)
    pages = pages_of(out.getvalue())
    assert len(pages) == 2
    for page, entry, label in ((pages[0], person, "姓名"), (pages[1], unit, "单位名称")):
        expected = [catalog().get(SKILLS).title, "申报材料档案袋封面", label, entry.name]
        expected += ["申报类别", entry.category_label, "推荐单位", entry.unit]
        expected += ["地区", entry.region, "跟踪编号", entry.code, "材料清单", "序号", "份数"]
        for seq, material in enumerate(entry.materials, 1):
            expected += [str(seq), material.name, str(len(material.files))]
        find_in_order(page, expected)
    counts = {m.key: len(m.files) for m in person.materials}
    assert counts["qualification_certificate"] == 2
    assert counts["id_card"] == 1


@pytest.mark.parametrize("publicity", [None, (dt.date(2022, 10, 10), dt.date(2022, 10, 14))])
def test_the_report_names_the_nominees_in_ranking_order(
    publicity: tuple[dt.date, dt.date] | None,
) -> None:
    entries = [
        make(SKILLS, "technical_expert", skills_fields(n), Audience.UNIT, DocKind.REPORT, n=n,
             rank=rank)
        for n, rank in ((1, 2), (2, None), (3, 1))
    ]  # fmt: skip
    out = io.BytesIO()
    contact = "赵敏 0431-88886666" if publicity else ""
    report_pdf(header(SKILLS, Audience.UNIT), entries, out, contact=contact, publicity=publicity)
    text = "".join(pages_of(out.getvalue()))
    title = catalog().get(SKILLS).title
    expected = [f"关于推荐{title}人选的报告", "【请填写】（主送单位）：", f"按照{title}工作"]
    expected += ["长春市朝阳区组织开展了推荐工作", "一、推荐人选", "推荐以下3名人选"]
    for seq, entry in enumerate(ranked(entries), 1):
        expected.append(f"{seq}.{entry.name}，{entry.unit}，{entry.category_label}")
    expected += ["二、专家评议情况", "【请填写】专家评议的时间", "三、公示情况"]
    if publicity:
        expected.append("推荐人选已于2022年10月10日至10月14日在长春市朝阳区进行公示")
    else:
        expected.append("【请填写】公示的时间、范围和结果")
    expected += ["四、联系人及联系方式", f"联系人：{contact or '【请填写】（姓名、联系电话）'}"]
    expected += ["长春市朝阳区（盖章）", "年月日"]
    find_in_order(text, expected)
    assert [e.name for e in ranked(entries)] == [entries[2].name, entries[0].name, entries[1].name]
    assert not MOBILE_RE.search(text)
