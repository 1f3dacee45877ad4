"""附件5 推荐汇总表 (issue 12): reopened with openpyxl and checked cell by cell against the
nominations it was made from, for both campaigns; the ranking is honoured; the phone is masked
for everyone below the province."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import load_workbook
from support.console_harness import catalog

from conversations.documents import Audience, DocKind, Entry, Header, entry_of, ranked
from conversations.forms import form_for
from conversations.idnumber import check_digit
from documents.sheet import HEADER_ROWS, TemplateError, columns, summary_xlsx

NOW = dt.datetime(2022, 11, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def id_number(body17: str) -> str:
    return body17 + check_digit(body17)


SKILLS_PEOPLE = [
    ("张小三", id_number("22010419900315002"), "13912345678", 2),
    ("李四", id_number("22010219851101001"), "13800001111", 1),
    ("阿依古丽·买买提", id_number("22240119790607004"), "13700002222", None),
]


def skills_entry(name: str, idn: str, phone: str, rank: int | None, audience: Audience) -> Entry:
    campaign = catalog().get("jl-skills-2022")
    form = form_for(campaign, "technical_expert")
    assert form is not None
    fields = {
        "name": name, "id_number": idn, "mobile": phone, "ethnicity": "汉族",
        "political_status": "中共党员", "education": "大学本科", "employer": "一汽解放有限公司",
        "position": "钳工班长", "occupation": "钳工", "skill_level": "senior_technician",
        "years_in_occupation": 12,
    }  # fmt: skip
    return entry_of(
        campaign, form, id=hash(name) & 0xFFFF, code="ABCD-EFGH", category="technical_expert",
        status="county_review", unit="一汽解放有限公司", region="长春市朝阳区",
        region_code="220104", fields=fields, attachments=[], opinions_recorded=[],
        publicity=None, rank=rank, audience=audience, doc=DocKind.SUMMARY,
    )  # fmt: skip


def header(campaign: str, audience: Audience) -> Header:
    title = catalog().get(campaign).title
    return Header(campaign, title, "长春市朝阳区", audience, NOW)


def rows(path: Path) -> list[list[object]]:
    book = load_workbook(path, read_only=True)
    try:
        return [list(r) for r in book.active.iter_rows(values_only=True)]
    finally:
        book.close()


@pytest.mark.parametrize("audience", [Audience.UNIT, Audience.CITY, Audience.PROVINCE])
def test_the_skills_summary_is_every_nomination_in_ranking_order_cell_by_cell(
    tmp_path: Path, audience: Audience
) -> None:
    entries = ranked([skills_entry(*p, audience) for p in SKILLS_PEOPLE])
    out = tmp_path / "summary.xlsx"
    assert summary_xlsx(header("jl-skills-2022", audience), "person", entries, out) == 3
    table = rows(out)
    assert table[0][0] == "第八届吉林技能大奖和吉林省技术能手评选表彰推荐汇总表"
    assert "长春市朝阳区" in str(table[1][0])
    assert table[2] == [
        "序号", "姓名", "性别", "出生年月", "民族", "政治面貌", "文化程度", "工作单位及职务",
        "职业（工种）", "技能等级", "从事本职业年限", "申报类别", "推荐排序", "联系电话",
    ]  # fmt: skip
    body = table[HEADER_ROWS:]
    # Ranked first by 推荐排序 (李四 1, 张小三 2), the unranked after them.
    assert [r[1] for r in body] == ["李四", "张小三", "阿依古丽·买买提"]
    assert [r[12] for r in body] == [1, 2, None]
    assert [r[0] for r in body] == [1, 2, 3]
    li = body[0]
    assert li[2:7] == ["男", "1985-11", "汉族", "中共党员", "大学本科"]
    assert li[7] == "一汽解放有限公司 钳工班长"
    assert li[8] == "钳工"
    assert "高级技师" in str(li[9])
    assert li[10] == "12"
    assert li[11] == "吉林省技术能手"
    phones = [str(r[13]) for r in body]
    if audience is Audience.PROVINCE:
        assert phones == ["13800001111", "13912345678", "13700002222"]
    else:
        assert phones == ["138****1111", "139****5678", "137****2222"]
        every = " ".join(str(v) for r in table for v in r)
        for _, idn, phone, _ in SKILLS_PEOPLE:
            assert phone not in every
            assert idn not in every


def test_the_employment_summary_has_the_collectives_columns(tmp_path: Path) -> None:
    campaign = catalog().get("jl-employment-2022")
    form = form_for(campaign, "employment_collective")
    assert form is not None
    fields = {
        "unit_name": "长春市朝阳区就业服务中心", "uscc": "12220104MB1234567X",
        "staff_count": 40, "key_group_hires": 12, "contact_person": "王五",
        "mobile": "13912345678",
    }  # fmt: skip
    entry = entry_of(
        campaign, form, id=1, code="WXYZ-0000", category="employment_collective",
        status="unit_publicity", unit="长春市朝阳区就业服务中心", region="长春市朝阳区",
        region_code="220104", fields=fields, attachments=[], opinions_recorded=[],
        publicity=None, rank=1, audience=Audience.COUNTY, doc=DocKind.SUMMARY,
    )  # fmt: skip
    out = tmp_path / "units.xlsx"
    summary_xlsx(header("jl-employment-2022", Audience.COUNTY), "unit", [entry], out)
    table = rows(out)
    labels = [c.label for c in columns("jl-employment-2022", "unit")]
    assert table[2] == labels
    row = dict(zip(labels, table[HEADER_ROWS], strict=True))
    assert row["单位名称"] == "长春市朝阳区就业服务中心"
    assert row["统一社会信用代码"] == "12220104MB1234567X"
    assert row["职工人数"] == "40"
    assert row["联系电话"] == "139****5678"
    assert row["推荐排序"] == 1
    assert row["申报类别"] == next(
        c.name for c in campaign.categories if c.id == "employment_collective"
    )


def test_a_campaign_without_a_template_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="没有汇总表模板"):
        columns("no-such-campaign", "person")
