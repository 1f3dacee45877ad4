"""Vocabularies of the forms (issue 11): 民族 (GB/T 3304), 政治面貌 (GB/T 4762), 文化程度
(GB/T 4658 folded into the forms' short list), and the formats of names, work units and
certificate numbers; how a field names one, and the load errors when it names one wrongly."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from conversations.answers import AnswerError
from conversations.campaign import CampaignError
from conversations.form_parse import parse_field
from conversations.forms import FormField
from conversations.loader import parse_campaign
from conversations.validators import (
    NAME_DOT_VARIANTS,
    ValidationError,
    parse_certificate_number,
    parse_person_name,
    parse_unit_name,
)
from conversations.vocab import (
    EDUCATION_LEVELS,
    ETHNIC_GROUPS,
    POLITICAL_STATUSES,
    VOCABULARIES,
    Term,
    Vocabulary,
    VocabularyError,
    choice_index,
)

ROOT = Path(__file__).resolve().parents[2]
SKILLS = ROOT / "campaigns" / "jl-skills-2022.yaml"
EMPLOYMENT = ROOT / "campaigns" / "jl-employment-2022.yaml"
TODAY = dt.date(2022, 10, 20)
FORM_POLITICAL = ("中共党员", "中共预备党员", "共青团员", "民主党派", "无党派人士", "群众")
FORM_EDUCATION = (
    "研究生", "大学本科", "大学专科", "中专（含技工学校、职业高中）", "高中", "初中及以下"
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# 民族: GB/T 3304
# --------------------------------------------------------------------------------------------


def test_the_56_groups_have_their_codes_and_97_98() -> None:
    by_code = {code: t.label for t in ETHNIC_GROUPS.terms for code in t.codes}
    assert len(by_code) == 58
    assert [by_code[f"{i:02d}"] for i in (1, 2, 10, 11, 15, 29, 43, 56)] == [
        "汉族", "蒙古族", "朝鲜族", "满族", "土家族", "柯尔克孜族", "乌孜别克族", "基诺族"
    ]  # fmt: skip
    assert all(by_code[f"{i:02d}"].endswith("族") for i in range(1, 57))
    assert (by_code["97"], by_code["98"]) == ("其他", "外国血统中国籍人士")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("汉族", "汉族"), ("汉", "汉族"), ("01", "汉族"), ("1", "汉族"), ("０１", "汉族"),
        (" 朝鲜族。", "朝鲜族"), ("朝鲜", "朝鲜族"), ("蒙古", "蒙古族"), ("蒙族", "蒙古族"),
        ("维族", "维吾尔族"), ("土", "土族"), ("土家", "土家族"), ("56", "基诺族"),
        ("97", "其他"), ("其它", "其他"), ("98", "外国血统中国籍人士"),
        ("外国血统", "外国血统中国籍人士"),
    ],
)  # fmt: skip
def test_an_ethnic_group_by_name_short_form_or_code(text: str, expected: str) -> None:
    assert ETHNIC_GROUPS.parse(text) == expected


@pytest.mark.parametrize("text", ["汉人", "57", "0", "99", "中国", "han", "汉族族"])
def test_anything_else_is_refused_saying_what_is_accepted(text: str) -> None:
    with pytest.raises(VocabularyError) as info:
        ETHNIC_GROUPS.parse(text, label="民族")
    message = str(info.value)
    assert message.startswith(f"无法识别民族“{text}”。请填写民族，例如 汉族、朝鲜族")
    assert "01 汉族" in message


# --------------------------------------------------------------------------------------------
# 政治面貌: GB/T 4762 onto the forms' short list
# --------------------------------------------------------------------------------------------


def test_every_political_code_falls_under_one_choice_of_the_forms() -> None:
    index = choice_index("political_statuses", FORM_POLITICAL)
    by_code = {c: t for t in POLITICAL_STATUSES.terms for c in t.codes}
    assert sorted(by_code) == [f"{i:02d}" for i in range(1, 14)]
    chosen = {code: FORM_POLITICAL[index[t.label]] for code, t in by_code.items()}
    assert chosen == {
        "01": "中共党员", "02": "中共预备党员", "03": "共青团员",
        **{f"{i:02d}": "民主党派" for i in range(4, 12)},
        "12": "无党派人士", "13": "群众",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("党员", "中国共产党党员"), ("中共党员", "中国共产党党员"),
        ("预备党员", "中国共产党预备党员"), ("团员", "中国共产主义青年团团员"),
        ("民革", "中国国民党革命委员会会员"), ("民盟", "中国民主同盟盟员"),
        ("九三学社", "九三学社社员"), ("台盟", "台湾民主自治同盟盟员"),
        ("无党派民主人士", "无党派人士"), ("无党派", "无党派人士"), ("13", "群众"),
    ],
)  # fmt: skip
def test_political_short_forms(text: str, expected: str) -> None:
    assert POLITICAL_STATUSES.parse(text) == expected


# --------------------------------------------------------------------------------------------
# 文化程度: GB/T 4658 names and codes onto the forms' short list
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", "研究生"), ("11", "研究生"), ("14", "研究生"), ("硕士研究生毕业", "研究生"),
        ("博士", "研究生"), ("20", "大学本科"), ("21", "大学本科"), ("本科", "大学本科"),
        ("大学本科毕业", "大学本科"), ("31", "大学专科"), ("大专", "大学专科"),
        ("专科", "大学专科"), ("41", "中专"), ("44", "中专"), ("47", "中专"), ("技校", "中专"),
        ("职高", "中专"), ("中等专科毕业", "中专"), ("61", "高中"), ("普通高中毕业", "高中"),
        ("71", "初中及以下"), ("初中", "初中及以下"), ("小学", "初中及以下"), ("81", "初中及以下"),
    ],
)  # fmt: skip
def test_education_by_gb_4658_name_code_or_short_form(text: str, expected: str) -> None:
    assert EDUCATION_LEVELS.parse(text) == expected


@pytest.mark.parametrize("text", ["22", "23", "大学本科肄业", "90", "幼儿园"])
def test_education_without_the_level_is_refused(text: str) -> None:
    """结业 and 肄业 do not give the level's 学历: the clerk chooses the level (issue 11)."""
    with pytest.raises(VocabularyError, match="请填写文化程度"):
        EDUCATION_LEVELS.parse(text)


def test_the_forms_short_list_covers_every_education_term() -> None:
    index = choice_index("education_levels", FORM_EDUCATION)
    assert {t.label: FORM_EDUCATION[index[t.label]] for t in EDUCATION_LEVELS.terms} == {
        "研究生": "研究生",
        "大学本科": "大学本科",
        "大学专科": "大学专科",
        "中专": "中专（含技工学校、职业高中）",
        "高中": "高中",
        "初中及以下": "初中及以下",
    }


# --------------------------------------------------------------------------------------------
# The data itself
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "terms",
    [
        (Term("甲", ("01",), ("一",)), Term("乙", ("02",), ("一",))),  # a short form twice
        (Term("甲", ("01",)), Term("乙", ("01",))),  # a code twice
        (Term("甲", ("1a",)),),  # a code that is not digits
        (Term("甲", broader="丙"),),  # a broader term that is not in the list
    ],
)
def test_a_vocabulary_whose_words_name_two_terms_is_refused(terms: tuple[Term, ...]) -> None:
    with pytest.raises(ValueError, match="term"):
        Vocabulary(name="x", title="x", terms=terms, examples="甲", hint="")


def test_choice_index_refuses_what_cannot_name_choices() -> None:
    with pytest.raises(ValueError, match="'党派' is not a term of vocabulary"):
        choice_index("political_statuses", ("中共党员", "党派"))
    with pytest.raises(ValueError, match=r"'党员' names the same term as choices\[0\]"):
        choice_index("political_statuses", ("中共党员", "党员"))
    with pytest.raises(ValueError, match="is a format of free text"):
        choice_index("person_name", ("张三",))
    with pytest.raises(ValueError, match="unknown vocabulary 'nation' .known: certificate_id"):
        choice_index("nation", ("汉族",))


# --------------------------------------------------------------------------------------------
# Formats: names of people and units, certificate numbers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("张三", "张三"), (" 张 三 ", "张三"), ("欧阳娜娜", "欧阳娜娜"), ("张三。", "张三"),
        ("阿依古丽·买买提", "阿依古丽·买买提"), ("阿依古丽・买买提", "阿依古丽·买买提"),
        ("阿依古丽•买买提", "阿依古丽·买买提"), ("阿依古丽‧买买提", "阿依古丽·买买提"),
        ("阿依古丽 · 买买提", "阿依古丽·买买提"), ("𠮷野", "𠮷野"),  # CJK extension B
        ("爱新觉罗·溥仪·载沣", "爱新觉罗·溥仪·载沣"),
    ],
)  # fmt: skip
def test_a_person_name_is_chinese_characters_and_one_middle_dot(text: str, expected: str) -> None:
    assert parse_person_name(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("张3", "联系人中不能有数字"), ("张三三2号", "不能有数字"), ("张三１", "不能有数字"),
        ("Zhang San", "不能有拉丁字母"), ("张Ｓａｎ", "不能有拉丁字母"),
        ("张三😀", "不能有表情符号"), ("张三♥", "不能有表情符号"),
        ("·张三", "“·”只能用在两个字之间"), ("阿依古丽··买买提", "只能用在两个字之间"),
        ("张三·", "只能用在两个字之间"), ("张", "至少 2 个字"), ("张-三", "不能有“-”"),
        ("张（三）", "不能有“（”“）”"), ("Иван", "不能有“И”"),
    ],
)  # fmt: skip
def test_other_names_are_refused_with_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_person_name(text, label="联系人")
    message = str(info.value)
    assert why in message
    assert message.endswith("例如 阿依古丽·买买提。") or "至少" in message
    assert "联系人" in message


@given(
    st.lists(
        st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1),
        min_size=1,
        max_size=4,
    ).filter(lambda parts: sum(map(len, parts)) >= 2),
    st.lists(st.sampled_from(NAME_DOT_VARIANTS), min_size=3, max_size=3),
)
def test_any_dot_between_chinese_parts_is_stored_as_the_middle_dot(
    parts: list[str], dots: list[str]
) -> None:
    typed = parts[0] + "".join(dot + part for dot, part in zip(dots, parts[1:], strict=False))
    assert parse_person_name(typed) == "·".join(parts)


@pytest.mark.parametrize(
    "text", ["长春市朝阳区示例有限公司", "灵活就业", "吉林省ABC科技有限公司", "中国一汽（集团）"]
)
def test_a_work_unit_name_keeps_what_was_typed(text: str) -> None:
    assert parse_unit_name(f" {text} ") == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("123456", "不能只有数字或符号"), ("——、、", "不能只有数字或符号"),
        ("公司", "至少 4 个字"), ("一汽", "至少 4 个字"), ("示例公司😀", "不能有表情符号"),
    ],
)  # fmt: skip
def test_a_work_unit_that_is_no_name_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_unit_name(text)
    assert why in str(info.value)
    assert "请填写工作单位全称" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GZ-2020-001", "GZ-2020-001"), ("gz-2020-001", "GZ-2020-001"),
        ("ＧＺ－２０２０－００１", "GZ-2020-001"), ("GZ–2020—001", "GZ-2020-001"),
        ("1922 0000 0030", "192200000030"), ("S000022010001235000123", "S000022010001235000123"),
        ("123456", "123456"), ("1" * 40, "1" * 40),
    ],
)  # fmt: skip
def test_a_certificate_number_is_letters_digits_and_dashes(text: str, expected: str) -> None:
    assert parse_certificate_number(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("证书编号是123456", "不能有汉字"), ("高级工证书", "不能有汉字"),
        ("12345", "您输入了 5 位"),
        ("1" * 41, "您输入了 41 位"), ("ABCDEFG", "应当有数字"), ("-123456", "不能以“-”开头"),
        ("123456-", "不能以“-”开头或结尾"), ("12_3456", "只能有字母、数字和“-”"),
        ("12/3456", "只能有字母、数字和“-”"),
    ],
)  # fmt: skip
def test_other_certificate_numbers_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_certificate_number(text)
    assert why in str(info.value)
    assert "请按证书上的编号原样填写" in str(info.value)


# --------------------------------------------------------------------------------------------
# On form fields: `vocabulary:`, what it stores, and its load errors
# --------------------------------------------------------------------------------------------


def _field(**spec: Any) -> FormField:
    return FormField.model_validate({"key": "f", "label": "民族", "question": "？", **spec})


def test_a_text_field_with_a_closed_list_stores_the_canonical_label() -> None:
    field = _field(type="text", vocabulary="ethnic_groups")
    assert parse_field(field, "汉", today=TODAY) == "汉族"
    assert parse_field(field, "10", today=TODAY) == "朝鲜族"
    with pytest.raises(AnswerError, match="无法识别民族“汉人”。请填写民族"):
        parse_field(field, "汉人", today=TODAY)
    with pytest.raises(AnswerError, match="无法识别民族“无”"):  # required: 无 is no skip here
        parse_field(field, "无", today=TODAY)


def test_a_text_field_with_a_format_checks_the_text_and_its_length() -> None:
    field = _field(type="text", label="联系人", vocabulary="person_name", max_length=5)
    assert parse_field(field, "阿依・买买", today=TODAY) == "阿依·买买"
    with pytest.raises(AnswerError, match="联系人中不能有数字"):
        parse_field(field, "李四2", today=TODAY)
    with pytest.raises(AnswerError, match="联系人不能超过 5 个字"):
        parse_field(field, "阿依古丽·买买提", today=TODAY)


def test_every_vocabulary_is_reachable_by_its_name() -> None:
    assert {name: v.name for name, v in VOCABULARIES.items()} == {
        name: name
        for name in (
            "ethnic_groups", "political_statuses", "education_levels",
            "person_name", "work_unit", "certificate_id",
        )
    }  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"type": "text", "vocabulary": "nation"}, "unknown vocabulary 'nation'"),
        ({"type": "int", "vocabulary": "ethnic_groups"}, "vocabulary is only for enum and text"),
        ({"type": "text", "vocabulary": "ethnic_groups", "max_length": 10}, "closed list"),
        (
            {"type": "text", "vocabulary": "person_name", "must_equal": "张三"},
            "must_equal and vocabulary exclude each other",
        ),
        (
            {"type": "enum", "vocabulary": "person_name",
             "choices": [{"value": "a", "label": "张三"}]},
            "is a format of free text",
        ),
        (
            {"type": "enum", "vocabulary": "political_statuses",
             "choices": [{"value": "a", "label": "党员"}, {"value": "b", "label": "其他"}]},
            "choices[1]: '其他' is not a term of vocabulary 'political_statuses'",
        ),
    ],
)  # fmt: skip
def test_a_field_that_names_a_vocabulary_wrongly_does_not_load(
    spec: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValueError) as info:  # noqa: PT011 - the message is checked below
        _field(**spec)
    assert why in str(info.value)


def _campaign_with(path: Path, key: str, change: dict[str, Any]) -> str:
    data = copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))
    fields = data["forms"][0]["fields"]
    fields[next(i for i, f in enumerate(fields) if f["key"] == key)].update(change)
    return yaml.safe_dump(data, allow_unicode=True)


def test_the_campaign_load_error_names_the_field() -> None:
    text = _campaign_with(SKILLS, "ethnicity", {"vocabulary": "ethnicity"})
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, "campaigns/bad.yaml")
    message = str(info.value)
    assert message.startswith("campaigns/bad.yaml: forms[0].fields[2]"), message
    assert "unknown vocabulary 'ethnicity' (known: certificate_id, education_levels" in message


@pytest.mark.parametrize("path", [SKILLS, EMPLOYMENT], ids=["skills", "employment"])
def test_the_shipped_forms_name_their_vocabularies(path: Path) -> None:
    forms = parse_campaign(path.read_text(encoding="utf-8"), str(path)).forms
    named = {(f.key, f.vocabulary) for form in forms for f in form.fields if f.vocabulary}
    person = {
        ("name", "person_name"),
        ("ethnicity", "ethnic_groups"),
        ("political_status", "political_statuses"),
        ("education", "education_levels"),
        ("employer", "work_unit"),
    }
    if path == SKILLS:
        assert named == person | {("certificate_number", "certificate_id")}
    else:
        assert named == person | {("unit_name", "work_unit"), ("contact_person", "person_name")}
