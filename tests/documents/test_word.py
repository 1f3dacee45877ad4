"""The Word documents of issue 12 (documents.word): each one reopened with python-docx and read
paragraph by paragraph and cell by cell against the nominations it was made from, for both
campaigns and both form kinds; the ranking honoured; GB/T 9704 page and fonts; ID numbers and
phones only where the audience may read them, never in the public list."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.document import Document as DocumentObject
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.text.paragraph import Paragraph
from support.console_harness import catalog

from conversations.documents import Audience, DocKind, Entry, FileLine, Header, entry_of
from conversations.forms import form_for
from conversations.idnumber import check_digit, mask_id_number
from conversations.validators import mask_mobile
from documents.sheet import TemplateError
from documents.templates import draw
from documents.word import (
    cover_docx,
    form_docx,
    opinions_docx,
    publicity_docx,
    report_docx,
    template_path,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2022, 11, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SKILLS, EMPLOYMENT = "jl-skills-2022", "jl-employment-2022"
FULL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
FULL_PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
BODY, TITLE = "仿宋_GB2312", "方正小标宋简体"


def id_number(body17: str) -> str:
    return body17 + check_digit(body17)


# name, ID number, phone, rank: 李四 is ranked first, 阿依古丽 not ranked (last).
PEOPLE = [
    ("张小三", id_number("22010419900315002"), "13912345678", 2),
    ("李四", id_number("22010219851101001"), "13800001111", 1),
    ("阿依古丽·买买提", id_number("22240119790607004"), "13700002222", None),
]
ACHIEVEMENTS = "长期在生产一线从事钳工工作，" * 10  # over the form's 100 characters


def skills_entry(
    name: str, idn: str, phone: str, rank: int | None, audience: Audience, doc: DocKind,
    *, attachments: list[tuple[str, FileLine]] | None = None, recorded: tuple[str, ...] = (),
) -> Entry:  # fmt: skip
    campaign = catalog().get(SKILLS)
    form = form_for(campaign, "technical_expert")
    assert form is not None
    fields = {
        "name": name, "id_number": idn, "mobile": phone, "ethnicity": "汉族",
        "political_status": "cpc_member", "education": "bachelor",
        "employer": "一汽解放汽车有限公司", "position": "钳工班长", "occupation": "钳工",
        "skill_level": "senior_technician", "certificate_number": "S2019-000123",
        "years_in_occupation": 12, "awards": ["2019年 吉林省技术能手", "2020年 A&B <优秀> 奖"],
        "achievements": ACHIEVEMENTS, "has_classified_material": False,
    }  # fmt: skip
    return entry_of(
        campaign, form, id=hash(name) & 0xFFFF, code=f"SK-{abs(hash(name)) % 10000:04d}",
        category="technical_expert", status="county_review", unit="一汽解放汽车有限公司",
        region="长春市朝阳区", region_code="220104", fields=fields,
        attachments=attachments or [], opinions_recorded=recorded, publicity=None, rank=rank,
        audience=audience, doc=doc,
    )  # fmt: skip


def employment_person(audience: Audience, doc: DocKind, *, rank: int | None = 1) -> Entry:
    campaign = catalog().get(EMPLOYMENT)
    form = form_for(campaign, "employment_individual")
    assert form is not None
    fields = {
        "name": "王五", "id_number": id_number("22010419800101001"), "mobile": "13612345678",
        "ethnicity": "朝鲜族", "political_status": "masses", "education": "associate",
        "employer": "长春市朝阳区就业服务局", "position": "科员", "unit_type": "government_agency",
        "is_non_public": False, "is_unit_head": False, "admin_rank": "section",
        "awards": [], "achievements": ACHIEVEMENTS,
    }  # fmt: skip
    return entry_of(
        campaign, form, id=7, code="EM-0007", category="employment_individual",
        status="unit_publicity", unit="长春市朝阳区就业服务局", region="长春市朝阳区",
        region_code="220104", fields=fields, attachments=[], opinions_recorded=["公安部门"],
        publicity=None, rank=rank, audience=audience, doc=doc,
    )  # fmt: skip


def employment_unit(audience: Audience, doc: DocKind, *, rank: int | None = 2) -> Entry:
    campaign = catalog().get(EMPLOYMENT)
    form = form_for(campaign, "employment_collective")
    assert form is not None
    fields = {
        "unit_name": "吉林省宏达人力资源有限公司", "uscc": "91220104MA1234567X",
        "unit_type": "enterprise", "is_non_public": True, "founded_on": dt.date(2015, 6, 1),
        "staff_count": 40, "key_group_hires": 12, "contact_person": "赵六",
        "mobile": "13512345678", "achievements": ACHIEVEMENTS,
    }  # fmt: skip
    return entry_of(
        campaign, form, id=8, code="EM-0008", category="employment_collective",
        status="unit_publicity", unit="吉林省宏达人力资源有限公司", region="长春市朝阳区",
        region_code="220104", fields=fields, attachments=[], opinions_recorded=[],
        publicity=None, rank=rank, audience=audience, doc=doc,
    )  # fmt: skip


def header(campaign: str, audience: Audience, scope: str = "长春市朝阳区") -> Header:
    return Header(campaign, catalog().get(campaign).title, scope, audience, NOW)


# ----- reading a document back --------------------


def opened(path: Path) -> DocumentObject:
    return docx.Document(str(path))


def tables(doc: DocumentObject) -> list[list[list[str]]]:
    return [[[c.text for c in row.cells] for row in t.rows] for t in doc.tables]


def texts(doc: DocumentObject) -> list[str]:
    """The body's paragraphs in order, without the empty ones."""
    return [p.text for p in doc.paragraphs if p.text.strip()]


def all_text(doc: DocumentObject) -> str:
    """Every character of the document: body, tables, headers and footers."""
    parts = [p.text for p in doc.paragraphs]
    parts += [c.text for t in doc.tables for row in t.rows for c in row.cells]
    for section in doc.sections:
        parts += [p.text for p in section.header.paragraphs + section.footer.paragraphs]
    return "\n".join(parts)


def paragraphs(doc: DocumentObject) -> Iterator[Paragraph]:
    yield from doc.paragraphs
    for t in doc.tables:
        for row in t.rows:
            for cell in row.cells:
                yield from cell.paragraphs


def east_asian(run: Any) -> str | None:
    rpr = run._r.rPr
    fonts = None if rpr is None else rpr.find(qn("w:rFonts"))
    return None if fonts is None else fonts.get(qn("w:eastAsia"))


def page_breaks(doc: DocumentObject) -> int:
    return sum(
        1 for br in doc.element.body.iter(qn("w:br")) if br.get(qn("w:type")) == "page"
    )  # fmt: skip


def rows_after(table: list[list[str]], first: str) -> list[list[str]]:
    """The rows of a table below its header row, whose first cell is `first`."""
    assert table[0][0] == first
    return table[1:]


# ----- 推荐审批表 --------------------

# The approval blocks, as the notices' procedures run
# (seed 001 三、（一）; seed 000 三、（一）–（四）).
SKILLS_LEVELS = [
    "推荐单位意见",
    "县级人力资源和社会保障部门审核意见",
    "市（州）级人力资源和社会保障部门意见",
    "吉林技能大奖和吉林省技术能手评选表彰工作领导小组办公室意见",
]
EMPLOYMENT_LEVELS = [
    "县（市、区）评选表彰工作领导小组办公室意见",
    "市（州）评选表彰工作领导小组意见",
    "省评选表彰工作领导小组意见",
]


def check_form(path: Path, entry: Entry, campaign: str, category: str) -> list[list[str]]:
    """The form against the campaign's form and the entry; returns the approval rows."""
    doc = opened(path)
    camp = catalog().get(campaign)
    form = form_for(camp, category)
    assert form is not None
    assert texts(doc)[:2] == [camp.title, form.title]
    info, values, approvals = tables(doc)
    category_label = next(c.name for c in camp.categories if c.id == category)
    assert info == [
        ["跟踪编号", entry.code, "申报类别", category_label],
        ["推荐单位", entry.unit, "所在地区", "长春市朝阳区"],
    ]
    # Every field of the form, in the form's order, with the value the entry shows.
    assert [r[0] for r in values] == [f.label for f in form.fields]
    assert values == [[v.label, v.text] for v in entry.values]
    for row in approvals:
        assert row[1].split("\n")[-2:] == ["（盖章）", "年　　月　　日"]
    return approvals


def test_the_skills_form_shows_every_value_in_form_order_and_the_approval_blocks(
    tmp_path: Path,
) -> None:
    name, idn, phone, _ = PEOPLE[0]
    entry = skills_entry(*PEOPLE[0], Audience.PROVINCE, DocKind.FORM)
    out = tmp_path / "form.docx"
    form_docx(header(SKILLS, Audience.PROVINCE), entry, out)
    approvals = check_form(out, entry, SKILLS, "technical_expert")
    assert [r[0] for r in approvals] == SKILLS_LEVELS
    values = dict((r[0], r[1]) for r in tables(opened(out))[1])
    assert values["姓名"] == name
    assert values["身份证号"] == idn  # the province reads it in full
    assert values["联系电话"] == phone
    assert values["性别"] == "女"  # derived from the ID number (17th digit 2)
    assert values["出生年月"] == "1990-03"
    assert values["技能等级"] == "高级技师（一级）"
    assert values["主要事迹"] == ACHIEVEMENTS
    # A list is one line per item, and &, < and > are text, not XML.
    assert values["获奖及荣誉称号"] == "1. 2019年 吉林省技术能手\n2. 2020年 A&B <优秀> 奖"


@pytest.mark.parametrize(
    ("make", "category", "first"),
    [
        (employment_person, "employment_individual", "推荐单位意见"),
        (employment_unit, "employment_collective", "推荐单位（主管部门）意见"),
    ],
)
def test_the_employment_forms_person_and_collective(
    tmp_path: Path, make: Any, category: str, first: str
) -> None:
    entry = make(Audience.PROVINCE, DocKind.FORM)
    out = tmp_path / "form.docx"
    form_docx(header(EMPLOYMENT, Audience.PROVINCE), entry, out)
    approvals = check_form(out, entry, EMPLOYMENT, category)
    assert [r[0] for r in approvals] == [first, *EMPLOYMENT_LEVELS]
    values = dict((r[0], r[1]) for r in tables(opened(out))[1])
    if category == "employment_collective":
        assert values["单位名称"] == "吉林省宏达人力资源有限公司"
        assert values["统一社会信用代码"] == "91220104MA1234567X"
        assert values["单位类型"] == "企业"
        assert values["成立日期"] == "2015-06-01"
        assert values["联系电话"] == "13512345678"
        assert "先进集体基本情况" in texts(opened(out))
    else:
        assert values["姓名"] == "王五"
        assert values["民族"] == "朝鲜族"
        assert values["行政级别"] == "乡科级及以下"
        assert "先进个人基本情况" in texts(opened(out))


@pytest.mark.parametrize("audience", [Audience.COUNTY, Audience.CITY])
def test_a_form_below_the_province_masks_the_id_number_and_the_phone(
    tmp_path: Path, audience: Audience
) -> None:
    _, idn, phone, _ = PEOPLE[1]
    out = tmp_path / "form.docx"
    form_docx(header(SKILLS, audience), skills_entry(*PEOPLE[1], audience, DocKind.FORM), out)
    text = all_text(opened(out))
    assert FULL_ID.findall(text) == []
    assert FULL_PHONE.findall(text) == []
    assert mask_id_number(idn) in text
    assert mask_mobile(phone) in text


def test_the_form_masks_for_its_audience_even_an_entry_made_for_the_province(
    tmp_path: Path,
) -> None:
    out = tmp_path / "form.docx"
    province_entry = employment_unit(Audience.PROVINCE, DocKind.FORM)
    form_docx(header(EMPLOYMENT, Audience.CITY), province_entry, out)
    text = all_text(opened(out))
    assert FULL_PHONE.findall(text) == []
    assert "135****5678" in text


def test_the_province_and_the_clerks_own_form_show_them_in_full(tmp_path: Path) -> None:
    # shows_in_full: the province, and the clerk's own 推荐审批表, which the unit stamps.
    _, idn, phone, _ = PEOPLE[2]
    for audience in (Audience.PROVINCE, Audience.UNIT):
        out = tmp_path / f"{audience}.docx"
        form_docx(header(SKILLS, audience), skills_entry(*PEOPLE[2], audience, DocKind.FORM), out)
        text = all_text(opened(out))
        assert FULL_ID.findall(text) == [idn]
        assert FULL_PHONE.findall(text) == [phone]


# ----- 档案袋封面 and 征求意见表 --------------------


def file(n: int, name: str) -> FileLine:
    return FileLine(n, name, "pdf")


def test_the_cover_is_one_page_per_nominee_with_the_materials_and_their_file_counts(
    tmp_path: Path,
) -> None:
    attached = [
        ("id_card", file(1, "正面.jpg")), ("id_card", file(2, "反面.jpg")),
        ("diploma", file(3, "毕业证.pdf")), ("approval_form", file(4, "审批表.pdf")),
    ]  # fmt: skip
    first = skills_entry(*PEOPLE[0], Audience.UNIT, DocKind.COVER, attachments=attached)
    second = employment_unit(Audience.UNIT, DocKind.COVER)
    out = tmp_path / "cover.docx"
    cover_docx(header(SKILLS, Audience.UNIT), [first, second], out)
    doc = opened(out)
    assert page_breaks(doc) == 1  # two pages
    found = tables(doc)
    assert len(found) == 4  # per page: who, and the material list
    form = form_for(catalog().get(SKILLS), "technical_expert")
    assert form is not None
    counts = {"id_card": 2, "diploma": 1, "approval_form": 1}
    assert found[0] == [
        ["姓名", "张小三"],
        ["申报类别", "吉林省技术能手"],
        ["推荐单位", "一汽解放汽车有限公司"],
        ["地区", "长春市朝阳区"],
        ["跟踪编号", first.code],
    ]
    assert rows_after(found[1], "序号") == [
        [str(i), m.name, str(counts.get(m.key, 0))] for i, m in enumerate(form.materials, 1)
    ]
    unit_form = form_for(catalog().get(EMPLOYMENT), "employment_collective")
    assert unit_form is not None
    assert found[2][0] == ["单位名称", "吉林省宏达人力资源有限公司"]
    assert [r[1] for r in rows_after(found[3], "序号")] == [m.name for m in unit_form.materials]
    assert {r[2] for r in rows_after(found[3], "序号")} == {"0"}
    assert texts(doc).count("申报材料档案袋封面") == 2


def test_the_opinion_form_lists_the_departments_to_consult_per_nominee(tmp_path: Path) -> None:
    person = skills_entry(*PEOPLE[0], Audience.UNIT, DocKind.OPINIONS, recorded=("公安部门",))
    unit = employment_unit(Audience.UNIT, DocKind.OPINIONS)
    out = tmp_path / "opinions.docx"
    opinions_docx(header(SKILLS, Audience.UNIT), [person, unit], out)
    doc = opened(out)
    assert page_breaks(doc) == 1
    _, skills_rows, who, unit_rows = tables(doc)
    # Seed 001 三、（一）1: 组织人事部门、纪检监察机关和公安部门; 公安部门's opinion is in.
    assert [r[0] for r in rows_after(skills_rows, "征求意见部门")] == [
        "组织人事部门", "纪检监察机关", "公安部门",
    ]  # fmt: skip
    assert [r[3] for r in rows_after(skills_rows, "征求意见部门")] == [
        "待征求",
        "待征求",
        "已取得",
    ]
    # Seed 000 三、（一）: a non-public enterprise: 公安部门, the competent departments, and the
    # 统战 and 工商联 of where it is registered.
    assert who[0] == ["单位名称", "吉林省宏达人力资源有限公司"]
    assert [r[0] for r in rows_after(unit_rows, "征求意见部门")] == [
        "公安部门", "生态环境部门", "人力资源社会保障部门", "税务部门", "市场监管部门",
        "应急管理部门", "企业注册地统战部门", "企业注册地工商联",
    ]  # fmt: skip
    for row in rows_after(skills_rows, "征求意见部门") + rows_after(unit_rows, "征求意见部门"):
        assert row[1] == "意见："
        assert row[2] == "（盖章）\n年　　月　　日"


# ----- 推荐报告 and 公示名单 --------------------


def test_the_report_names_the_nominees_in_ranking_order(tmp_path: Path) -> None:
    entries = [skills_entry(*p, Audience.UNIT, DocKind.REPORT) for p in PEOPLE]
    out = tmp_path / "report.docx"
    report_docx(
        header(SKILLS, Audience.UNIT, "一汽解放汽车有限公司"), entries, out,
        contact="王老师 0431-88888888",
        publicity=(dt.date(2022, 10, 10), dt.date(2022, 10, 14)),
    )  # fmt: skip
    lines = texts(opened(out))
    assert lines[0] == "关于推荐第八届吉林技能大奖和吉林省技术能手评选表彰人选的报告"
    at = lines.index("一、推荐人选")
    assert lines[at + 1] == "经集体研究，推荐以下3名人选（按推荐顺序排列）："
    assert lines[at + 2 : at + 5] == [
        "1. 李四，一汽解放汽车有限公司，吉林省技术能手",
        "2. 张小三，一汽解放汽车有限公司，吉林省技术能手",
        "3. 阿依古丽·买买提，一汽解放汽车有限公司，吉林省技术能手",
    ]
    experts = lines[lines.index("二、专家评议情况") + 1]
    assert experts.startswith("【请填写】")
    said = lines[lines.index("三、公示情况") + 1]
    assert "2022年10月10日至10月14日" in said
    assert lines[lines.index("四、联系人及联系方式") + 1] == "联系人：王老师 0431-88888888"
    assert lines[-2:] == ["一汽解放汽车有限公司（盖章）", "年　　月　　日"]


def test_the_report_marks_what_is_not_known_yet(tmp_path: Path) -> None:
    out = tmp_path / "report.docx"
    report_docx(header(EMPLOYMENT, Audience.CITY, "长春市"), [employment_unit(Audience.CITY,
                DocKind.REPORT)], out)  # fmt: skip
    lines = texts(opened(out))
    assert lines[lines.index("三、公示情况") + 1].startswith("【请填写】")
    assert lines[lines.index("四、联系人及联系方式") + 1].startswith("联系人：【请填写】")
    assert (
        "1. 吉林省宏达人力资源有限公司，吉林省宏达人力资源有限公司，吉林省促进就业创业先进集体"
        in (lines)
    )


def test_the_publicity_list_is_name_unit_and_category_only_in_ranking_order(
    tmp_path: Path,
) -> None:
    # Entries made for the province (values in full): the list itself prints none of them.
    entries = [skills_entry(*p, Audience.PROVINCE, DocKind.FORM) for p in PEOPLE]
    out = tmp_path / "publicity.docx"
    publicity_docx(
        header(SKILLS, Audience.PUBLIC), entries, out,
        period=(dt.date(2022, 10, 10), dt.date(2022, 10, 14)), workdays=5,
        contact="王老师 0431-88888888",
    )  # fmt: skip
    doc = opened(out)
    lines = texts(doc)
    assert lines[:2] == ["第八届吉林技能大奖和吉林省技术能手评选表彰", "拟推荐人选公示名单"]
    assert "公示期为 2022年10月10日至10月14日（5个工作日）" in lines[2]
    [table] = tables(doc)
    assert table == [
        ["序号", "姓名", "单位", "申报类别"],
        ["1", "李四", "一汽解放汽车有限公司", "吉林省技术能手"],
        ["2", "张小三", "一汽解放汽车有限公司", "吉林省技术能手"],
        ["3", "阿依古丽·买买提", "一汽解放汽车有限公司", "吉林省技术能手"],
    ]
    assert "联系人及电话：王老师 0431-88888888" in lines
    text = all_text(doc)
    assert FULL_ID.findall(text) == []
    assert FULL_PHONE.findall(text) == []
    for _, idn, phone, _ in PEOPLE:
        assert mask_id_number(idn) not in text
        assert mask_mobile(phone) not in text
    assert "钳工" not in text  # nor any other value of the form


def test_a_publicity_period_across_the_new_year_names_both_years(tmp_path: Path) -> None:
    out = tmp_path / "publicity.docx"
    publicity_docx(
        header(EMPLOYMENT, Audience.PUBLIC), [employment_person(Audience.PUBLIC,
        DocKind.PUBLICITY)], out, period=(dt.date(2022, 12, 29), dt.date(2023, 1, 5)), workdays=5,
    )  # fmt: skip
    lines = texts(opened(out))
    assert "公示期为 2022年12月29日至2023年1月5日（5个工作日）" in lines[2]
    assert "联系人及电话：【请填写】" in lines


# ----- page, fonts, templates --------------------


def every_document(tmp_path: Path) -> list[Path]:
    person = skills_entry(*PEOPLE[0], Audience.CITY, DocKind.FORM)
    unit = employment_unit(Audience.CITY, DocKind.FORM)
    period = (dt.date(2022, 10, 10), dt.date(2022, 10, 14))
    made = {
        "skills_form": lambda p: form_docx(header(SKILLS, Audience.CITY), person, p),
        "unit_form": lambda p: form_docx(header(EMPLOYMENT, Audience.CITY), unit, p),
        "cover": lambda p: cover_docx(header(SKILLS, Audience.CITY), [person], p),
        "opinions": lambda p: opinions_docx(header(SKILLS, Audience.CITY), [person], p),
        "report": lambda p: report_docx(header(SKILLS, Audience.CITY), [person], p),
        "publicity": lambda p: publicity_docx(
            header(SKILLS, Audience.PUBLIC), [person], p, period=period, workdays=5
        ),
    }
    paths = []
    for name, make in made.items():
        path = tmp_path / f"{name}.docx"
        make(path)
        paths.append(path)
    return paths


def test_every_document_is_a4_with_the_gb9704_margins_and_names_its_chinese_fonts(
    tmp_path: Path,
) -> None:
    for path in every_document(tmp_path):
        doc = opened(path)
        for section in doc.sections:
            for actual, mm in [
                (section.page_width, 210), (section.page_height, 297),
                (section.top_margin, 37), (section.bottom_margin, 35),
                (section.left_margin, 28), (section.right_margin, 26),
            ]:  # fmt: skip
                assert actual is not None
                assert abs(actual - Mm(mm)) < Mm(0.1), (path.name, mm)
        runs = [r for p in paragraphs(doc) for r in p.runs if r.text.strip()]
        assert runs, path.name
        assert {east_asian(r) for r in runs} <= {BODY, TITLE}, path.name
        title_run = doc.paragraphs[0].runs[0]
        assert east_asian(title_run) == TITLE
        assert title_run.font.size == Pt(22)  # 二号
        bodies = [r for r in runs if east_asian(r) == BODY]
        assert bodies, path.name
        assert {r.font.size for r in bodies} <= {Pt(16), Pt(14), Pt(12)}, path.name


def test_a_missing_template_is_a_clear_error() -> None:
    entry = skills_entry(*PEOPLE[0], Audience.UNIT, DocKind.FORM)
    lost = Header("no-such-campaign", "某评选", "长春市", Audience.UNIT, NOW)
    with pytest.raises(TemplateError, match="没有推荐审批表模板") as caught:
        form_docx(lost, dataclasses.replace(entry, campaign="no-such-campaign"), Path("x"))
    assert "\n" not in str(caught.value)
    with pytest.raises(TemplateError, match="没有推荐审批表模板"):
        template_path(SKILLS, DocKind.FORM, "unit")  # the skills campaign has no unit form
    # The documents every campaign shares fall back to common/.
    assert template_path("no-such-campaign", DocKind.COVER).parent.name == "common"


def test_the_committed_templates_are_what_the_draw_script_draws(tmp_path: Path) -> None:
    drawn = draw.draw(tmp_path)
    committed = sorted(
        p.relative_to(ROOT / "documents" / "templates")
        for p in (ROOT / "documents" / "templates").rglob("*.docx")
    )
    assert sorted(p.relative_to(tmp_path) for p in drawn) == committed
    for path in drawn:
        relative = path.relative_to(tmp_path)
        assert path.read_bytes() == (ROOT / "documents" / "templates" / relative).read_bytes(), (
            f"{relative}: run python -m documents.templates.draw and commit the result"
        )


def test_the_templates_are_installed_with_the_package(tmp_path: Path) -> None:
    """Build the packages as setuptools installs them (build_py, from pyproject.toml's
    package-data) and fill a template from there, in a fresh interpreter."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in config["tool"]["setuptools"]["packages"]:
        shutil.copytree(ROOT / package, source / package, ignore=skip)
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
         "--build-lib", str(lib)],
        cwd=source, check=True, capture_output=True,
    )  # fmt: skip
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from conversations.documents import DocKind;"
        "from documents.word import template_path;"
        "print(template_path('jl-skills-2022', DocKind.FORM, 'person'));"
        "print(template_path('jl-employment-2022', DocKind.FORM, 'unit'));"
        "print(template_path('jl-skills-2022', DocKind.PUBLICITY))"
    )
    found = subprocess.run(
        [sys.executable, "-I", "-c", script, str(lib)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert [Path(p).relative_to(lib).as_posix() for p in found] == [
        "documents/templates/jl-skills-2022/form_person.docx",
        "documents/templates/jl-employment-2022/form_unit.docx",
        "documents/templates/common/publicity.docx",
    ]
    assert (lib / "documents/templates/jl-skills-2022/summary.yaml").is_file()
