"""Answers as people type them (issue 11): numbers in Chinese numerals or full width with a
unit, a choice by a shorter form of its label (乡科级 for 乡科级及以下, 五级 for 初级工（五级）)
but never one that fits two choices, and the vocabularies' short forms and codes on the shipped
forms."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conversations.answers import AnswerError, chinese_int, match_choice, parse_answer, parse_int
from conversations.campaign import Campaign, Fact
from conversations.facts import Choice
from conversations.form_parse import parse_field
from conversations.forms import Form, form_for
from conversations.loader import parse_campaign

ROOT = Path(__file__).resolve().parents[2]
SKILLS = ROOT / "campaigns" / "jl-skills-2022.yaml"
EMPLOYMENT = ROOT / "campaigns" / "jl-employment-2022.yaml"
TODAY = dt.date(2022, 10, 20)


@functools.cache
def campaign(path: Path) -> Campaign:
    return parse_campaign(path.read_text(encoding="utf-8"), str(path))


def form(path: Path, category: str) -> Form:
    found = form_for(campaign(path), category)
    assert found is not None
    return found


# --------------------------------------------------------------------------------------------
# Chinese numerals
# --------------------------------------------------------------------------------------------

_DIGITS = "零一二三四五六七八九"


def _reading(n: int) -> str:
    """The standard reading of 0 ≤ n < 10⁸, written independently of the parser: 一百零五,
    十五 (not 一十五), 一万零五百, 十二万三千."""

    def below_10000(m: int, *, leading: bool) -> str:
        out, zero = "", False
        for unit, name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
            d = m // unit % 10
            if d == 0:
                zero = bool(out)
                continue
            if zero:
                out += "零"
                zero = False
            out += "" if (d == 1 and unit == 10 and not out and leading) else _DIGITS[d]
            out += name
        return out

    if n == 0:
        return "零"
    high, low = divmod(n, 10000)
    if not high:
        return below_10000(low, leading=True)
    text = below_10000(high, leading=True) + "万"
    if low:
        text += ("零" if low < 1000 else "") + below_10000(low, leading=False)
    return text


@settings(max_examples=1000)
@given(st.integers(min_value=0, max_value=10**8 - 1))
@example(1010000)  # 一百零一万: a 零 inside the part before 万
@example(20005)  # 两万零五 reads as 二万零五
def test_every_standard_reading_gives_its_number(n: int) -> None:
    assert chinese_int(_reading(n)) == n


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "年", "岁", "人", "个"]))
def test_parse_int_reads_chinese_numerals_with_a_unit(n: int, unit: str) -> None:
    assert parse_int(_reading(n) + unit) == n


def test_the_reference_reading_is_the_usual_one() -> None:
    assert [_reading(n) for n in (10, 15, 20, 105, 110, 1050, 10500, 123000, 10**6)] == [
        "十", "十五", "二十", "一百零五", "一百一十", "一千零五十", "一万零五百", "十二万三千",
        "一百万",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("两年", 2), ("两", 2), ("十五年", 15), ("三十五岁", 35), ("二十", 20), ("十", 10),
        ("一百零五", 105), ("一十五", 15), ("两百人", 200), ("两千零二十二", 2022),
        ("二〇二二", 2022), ("一〇五", 105), ("零", 0), ("〇", 0), ("十年多", 10),
        ("八年以上", 8), ("叁拾伍", 35), ("十二万三千人", 123000), ("一百万", 10**6),
        ("１５年", 15), ("３５岁", 35), ("１２０人", 120), ("五名", 5), ("两个", 2),
        ("三十五周岁", 35), ("两万零五", 20005), ("一百零一万", 1010000),
    ],
)  # fmt: skip
def test_numbers_as_people_type_them(text: str, expected: int) -> None:
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "一百五", "一万二", "三万五",  # spoken shortenings: say 一百五十, 一万二千
        "十十", "两十", "十两", "百", "万", "一百十", "三三", "零一", "一百零", "一万万",
        "八点五", "负三", "十来年", "十多年", "两年半", "大概十年", "廿",
    ],
)  # fmt: skip
def test_what_is_no_whole_number_is_refused(text: str) -> None:
    with pytest.raises(AnswerError, match="请输入一个整数"):
        parse_int(text)


def test_a_self_check_answer_in_chinese_numerals_is_bounded_as_digits_are() -> None:
    years = campaign(SKILLS).fact("years_in_occupation")
    assert parse_answer(years, "十五年", today=TODAY) == 15
    with pytest.raises(AnswerError) as info:
        parse_answer(years, "一百零五年", today=TODAY)
    with pytest.raises(AnswerError) as digits:
        parse_answer(years, "105", today=TODAY)
    assert str(info.value) == str(digits.value)


def test_a_form_int_takes_chinese_numerals_and_units() -> None:
    unit = form(EMPLOYMENT, "employment_collective")
    staff = unit.field("staff_count")
    assert parse_field(staff, "一百二十人", today=TODAY) == 120
    assert parse_field(staff, "１２０人", today=TODAY) == 120
    with pytest.raises(AnswerError, match="无法识别“一百二”：请输入一个整数"):
        parse_field(staff, "一百二", today=TODAY)


# --------------------------------------------------------------------------------------------
# Choices by a shorter form of their label
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fact", "text", "expected"),
    [
        ("skill_level", "初级工", "junior"), ("skill_level", "五级", "junior"),
        ("skill_level", "初级工(五级)", "junior"),
        ("skill_level", "高级技师", "senior_technician"),
        ("skill_level", "一级", "senior_technician"), ("skill_level", "技师", "technician"),
        ("skill_level", "首席技师", "chief_technician"),
    ],
)  # fmt: skip
def test_skill_levels_by_name_or_grade(fact: str, text: str, expected: str) -> None:
    assert parse_answer(campaign(SKILLS).fact(fact), text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("乡科级", "section"), ("乡科级以下", "section"), ("乡科级及以下", "section"),
        ("县处级", "county_division"), ("副厅级", "deputy_department_plus"),
        ("副厅级以上", "deputy_department_plus"),
    ],
)  # fmt: skip
def test_ranks_without_their_bound(text: str, expected: str) -> None:
    rank = campaign(EMPLOYMENT).fact("admin_rank")
    assert parse_answer(rank, text, today=TODAY) == expected


def test_a_bound_is_never_turned_round() -> None:
    """副厅级以下 is not 副厅级及以上: a typed bound must be the label's own."""
    rank = campaign(EMPLOYMENT).fact("admin_rank")
    with pytest.raises(AnswerError, match="请从下列选项中选择"):
        parse_answer(rank, "副厅级以下", today=TODAY)


LEVELS = [
    Choice(value="a1", label="初级（一档）"),
    Choice(value="a2", label="初级（二档）"),
    Choice(value="b", label="中级"),
    Choice(value="c", label="初级以上"),
]


def test_a_short_form_that_fits_two_choices_is_asked_again_listing_them() -> None:
    with pytest.raises(AnswerError) as info:
        match_choice("初级", LEVELS)
    assert (
        str(info.value) == "“初级”可能指：1. 初级（一档）；2. 初级（二档）。请回复其中一项的序号。"
    )


def test_the_whole_label_or_value_beats_a_short_form() -> None:
    choices = [Choice(value="x", label="初中及以下"), Choice(value="y", label="初中")]
    assert match_choice("初中", choices) == "y"
    assert match_choice("初中及以下", choices) == "x"
    assert match_choice("a2", LEVELS) == "a2"
    assert match_choice("二档", LEVELS) == "a2"
    assert match_choice("高级", LEVELS) is None


def test_a_fact_choice_that_fits_two_is_asked_again() -> None:
    fact = Fact.model_validate(
        {"key": "lvl", "type": "enum", "label": "等级", "question": "？",
         "choices": [c.model_dump() for c in LEVELS]}
    )  # fmt: skip
    with pytest.raises(AnswerError, match="“初级”可能指：1. 初级（一档）；2. 初级（二档）"):
        parse_answer(fact, "初级", today=TODAY)


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("education", "中专", "secondary_vocational"),
        ("education", "初中", "junior_high_or_below"),
        ("skill_level", "五级", "junior"),
        ("skill_level", "无", "none"),  # a choice, not the skip word of optional fields
    ],
)
def test_form_choices_by_a_shorter_label(key: str, text: str, expected: str) -> None:
    field = form(SKILLS, "technical_expert").field(key)
    assert parse_field(field, text, today=TODAY) == expected


def test_admin_rank_on_the_employment_form() -> None:
    field = form(EMPLOYMENT, "employment_individual").field("admin_rank")
    assert parse_field(field, "乡科级", today=TODAY) == "section"
    assert parse_field(field, "无", today=TODAY) == "none"


# --------------------------------------------------------------------------------------------
# The shipped forms: vocabularies name the choices, stored values stay the choices' own
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "cpc_member"), ("中共党员", "cpc_member"), ("党员", "cpc_member"),
        ("中国共产党党员", "cpc_member"), ("01", "cpc_member"),
        ("预备党员", "cpc_probationary_member"),
        ("团员", "cyl_member"), ("03", "cyl_member"), ("4", "democratic_party_member"),
        ("民盟", "democratic_party_member"), ("九三学社社员", "democratic_party_member"),
        ("10", "democratic_party_member"), ("11", "democratic_party_member"),
        ("无党派", "non_party"), ("12", "non_party"), ("5", "non_party"), ("13", "masses"),
        ("6", "masses"), ("群众", "masses"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("path", [SKILLS, EMPLOYMENT], ids=["skills", "employment"])
def test_political_status_by_label_short_form_or_gb_4762_code(
    path: Path, text: str, expected: str
) -> None:
    field = form(path, _person(path)).field("political_status")
    assert parse_field(field, text, today=TODAY) == expected


def _person(path: Path) -> str:
    return "technical_expert" if path == SKILLS else "employment_individual"


def test_a_number_that_is_both_a_position_and_another_code_is_asked_again() -> None:
    field = form(SKILLS, "technical_expert").field("political_status")
    with pytest.raises(AnswerError) as info:
        parse_field(field, "05", today=TODAY)
    assert str(info.value) == (
        "“05”可能是序号 5（无党派人士），也可能是政治面貌代码 05"
        "（中国民主同盟盟员，即“民主党派”）。请回复选项文字。"
    )
    with pytest.raises(AnswerError, match="没有序号 7。请回复序号（1–6）"):
        parse_field(field, "7", today=TODAY)  # a code is written as the standard writes it: 07


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("本科", "bachelor"), ("21", "bachelor"), ("大学本科毕业", "bachelor"), ("2", "bachelor"),
        ("大专", "associate"), ("31", "associate"), ("技校", "secondary_vocational"),
        ("职高", "secondary_vocational"), ("47", "secondary_vocational"), ("61", "high_school"),
        ("小学", "junior_high_or_below"), ("10", "postgraduate"), ("硕士", "postgraduate"),
    ],
)  # fmt: skip
def test_education_by_gb_4658_name_code_or_short_form(text: str, expected: str) -> None:
    field = form(SKILLS, "technical_expert").field("education")
    assert parse_field(field, text, today=TODAY) == expected


def test_an_unknown_education_says_the_choices_and_the_short_forms() -> None:
    field = form(SKILLS, "technical_expert").field("education")
    with pytest.raises(AnswerError) as info:
        parse_field(field, "幼儿园", today=TODAY)
    assert str(info.value) == (
        "无法识别“幼儿园”。请回复序号（1–6）或选项文字：1. 研究生；2. 大学本科；3. 大学专科；"
        "4. 中专（含技工学校、职业高中）；5. 高中；6. 初中及以下。"
        "也可以写简称（本科、大专、技校）或文化程度代码（21 大学本科毕业、31 大学专科毕业）。"
    )


@pytest.mark.parametrize("path", [SKILLS, EMPLOYMENT], ids=["skills", "employment"])
def test_the_person_forms_store_canonical_names(path: Path) -> None:
    person = form(path, _person(path))
    assert parse_field(person.field("ethnicity"), "朝鲜", today=TODAY) == "朝鲜族"
    assert parse_field(person.field("ethnicity"), "01", today=TODAY) == "汉族"
    assert parse_field(person.field("name"), "阿依古丽・买买提", today=TODAY) == "阿依古丽·买买提"
    with pytest.raises(AnswerError, match="姓名中不能有拉丁字母"):
        parse_field(person.field("name"), "Zhang San", today=TODAY)
    with pytest.raises(AnswerError, match="工作单位不能只有数字或符号"):
        parse_field(person.field("employer"), "12345", today=TODAY)


def test_the_unit_form_checks_the_unit_and_contact_names() -> None:
    unit = form(EMPLOYMENT, "employment_collective")
    with pytest.raises(AnswerError, match="单位名称至少 4 个字"):
        parse_field(unit.field("unit_name"), "一汽", today=TODAY)
    with pytest.raises(AnswerError, match="联系人中不能有数字"):
        parse_field(unit.field("contact_person"), "李四1", today=TODAY)
    assert parse_field(unit.field("contact_person"), "李 四", today=TODAY) == "李四"


def test_the_certificate_number_is_normalised() -> None:
    field = form(SKILLS, "technical_expert").field("certificate_number")
    assert parse_field(field, "ｇｚ－２０２０－００１", today=TODAY) == "GZ-2020-001"
    with pytest.raises(AnswerError, match="证书编号中不能有汉字"):
        parse_field(field, "高级工证书一本", today=TODAY)
