"""Nomination forms: field parsing per type, lists, derived fields, masks, attachments by magic
bytes, what is pending or missing, and the forms of both campaign files with their load errors."""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.answers import AnswerError
from conversations.campaign import Campaign, CampaignError
from conversations.form_display import display
from conversations.form_parse import DONE, cross_field_errors, parse_field, parse_list_item
from conversations.forms import (
    FieldType,
    Form,
    FormField,
    Material,
    derive_fields,
    form_for,
    missing_materials,
    pending_fields,
    prefill,
)
from conversations.idnumber import check_digit
from conversations.loader import parse_campaign

ROOT = Path(__file__).resolve().parents[2]
SKILLS = ROOT / "campaigns" / "jl-skills-2022.yaml"
EMPLOYMENT = ROOT / "campaigns" / "jl-employment-2022.yaml"
SOURCE = "campaigns/bad.yaml"
TODAY = dt.date(2022, 10, 20)

Data = dict[str, Any]


@functools.cache
def campaign(path: Path) -> Campaign:
    return parse_campaign(path.read_text(encoding="utf-8"), str(path))


def skills_form() -> Form:
    form = form_for(campaign(SKILLS), "technical_expert")
    assert form is not None
    return form


def employment_form(category: str) -> Form:
    form = form_for(campaign(EMPLOYMENT), category)
    assert form is not None
    return form


def make_id(born: dt.date, *, male: bool, region: str = "220104", seq: str = "00") -> str:
    body = f"{region}{born:%Y%m%d}{seq}{1 if male else 2}"
    return body + check_digit(body)


def field(**spec: Any) -> FormField:
    spec.setdefault("key", "f")
    spec.setdefault("label", "字段")
    if spec["type"] != "derived":
        spec.setdefault("question", "被推荐人的字段是？")
    return FormField.model_validate(spec)


# --------------------------------------------------------------------------------------------
# Every field type: valid and invalid input (a type without a case fails the registry test)
# --------------------------------------------------------------------------------------------

ID_MALE = make_id(dt.date(1988, 3, 15), male=True)
ID_FEMALE_X = next(
    make_id(dt.date(1990, 1, 1), male=False, seq=f"{n:02d}")
    for n in range(100)
    if make_id(dt.date(1990, 1, 1), male=False, seq=f"{n:02d}").endswith("X")
)
POLITICAL = [
    {"value": "cpc_member", "label": "中共党员"},
    {"value": "cyl_member", "label": "共青团员"},
    {"value": "masses", "label": "群众"},
]


@dataclass(frozen=True)
class TypeCase:
    field: FormField
    valid: list[tuple[str, Any]]  # typed text → stored value
    invalid: list[tuple[str, str]]  # typed text → a fragment of the refusal


CASES: dict[FieldType, TypeCase] = {
    FieldType.TEXT: TypeCase(
        field(type="text", label="姓名", min_length=2, max_length=10),
        [("张三", "张三"), ("  李四\n", "李四"), ("金（Kim）·哲", "金（Kim）·哲")],
        [
            ("张", "姓名至少 2 个字，您填写了 1 个字"),
            ("张" * 11, "不能超过 10 个字"),
            ("", "没有收到"),
        ],
    ),
    FieldType.INT: TypeCase(
        field(type="int", label="职工人数", min=1, max=100),
        [("8", 8), ("８人", 8), ("100", 100), ("十五人", 15)],
        [
            ("八人左右", "无法识别“八人左右”：请输入一个整数"),
            ("0", "职工人数不能小于 1，您填写的是 0"),
            ("101", "不能大于 100"),
            ("跳过", "职工人数是必填项，不能跳过。请输入一个整数"),
        ],
    ),
    FieldType.DATE: TypeCase(
        field(type="date", label="成立日期", not_future=True, min=dt.date(1900, 1, 1)),
        [("2015-06-01", "2015-06-01"), ("2015年6月1日", "2015-06-01"), ("20221020", "2022-10-20")],
        [
            ("2015-02-30", "不是一个真实的日期"),
            ("去年", "无法识别“去年”：请按"),
            ("2022-10-21", "成立日期不能晚于今天（2022-10-20）"),
            ("1899-12-31", "不能小于 1900-01-01"),
        ],
    ),
    FieldType.ENUM: TypeCase(
        field(type="enum", label="政治面貌", choices=POLITICAL),
        [("1", "cpc_member"), ("群众", "masses"), ("cyl_member", "cyl_member")],
        [("党员吧", "无法识别“党员吧”。请回复序号（1–3）或选项文字：1. 中共党员"), ("4", "1–3")],
    ),
    FieldType.BOOL: TypeCase(
        field(type="bool", label="材料是否涉密"),
        [("是", True), ("否", False), ("无", False), ("没有", False)],
        [("也许", "无法识别“也许”：请回答“是”或“否”"), ("/skip", "必填")],
    ),
    FieldType.ID_NUMBER: TypeCase(
        field(type="id_number", label="身份证号"),
        [(ID_MALE, ID_MALE), (ID_FEMALE_X.lower(), ID_FEMALE_X), (f" {ID_MALE} ", ID_MALE)],
        [
            (ID_MALE[:17], "身份证号有误：身份证号码应为 18 位，您输入了 17 位"),
            (ID_MALE[:17] + ("1" if ID_MALE[17] != "1" else "2"), "校验位不符"),
            (make_id(dt.date(2030, 1, 1), male=True), "出生日期 2030-01-01 不合理"),
        ],
    ),
    FieldType.MOBILE: TypeCase(
        field(type="mobile", label="联系电话"),
        [("13912345678", "13912345678"), ("+86 139 1234 5678", "13912345678")],
        [("12345", "手机号码"), ("0431-88690627", "不是手机号码")],
    ),
    FieldType.USCC: TypeCase(
        field(type="uscc", label="统一社会信用代码"),
        [
            ("91110000600037341L", "91110000600037341L"),
            ("91110000600037341l", "91110000600037341L"),
        ],
        [("91110000600037341O", "不能有 O"), ("9111000060003734", "应为 18 位")],
    ),
    FieldType.LIST: TypeCase(
        field(type="list", label="获奖及荣誉称号", max_items=3, item_max_length=20),
        [("2019年 吉林省技术能手", ["2019年 吉林省技术能手"]), ("甲\n\n乙\n完成", ["甲", "乙"])],
        [
            ("完成", "获奖及荣誉称号至少需要 1 项，目前有 0 项"),
            ("甲\n乙\n丙\n丁", "最多 3 项"),
            ("奖" * 21, "每一项不能超过 20 个字，这一项有 21 个字"),
        ],
    ),
    FieldType.DERIVED: TypeCase(
        field(
            type="derived", key="gender", label="性别", derived={"kind": "gender", "source": "id"}
        ),
        [(ID_MALE, "男"), (ID_FEMALE_X, "女")],  # the source ID number → the derived value
        [("男", "computed, never asked")],
    ),
}


def test_every_field_type_has_valid_and_invalid_cases() -> None:
    assert set(CASES) == set(FieldType)
    for kind, case in CASES.items():
        assert case.field.type is kind
        assert case.valid, kind
        assert case.invalid, kind


def _valid() -> list[tuple[FieldType, str, Any]]:
    return [(k, text, value) for k, c in CASES.items() for text, value in c.valid]


def _invalid() -> list[tuple[FieldType, str, str]]:
    return [(k, text, why) for k, c in CASES.items() for text, why in c.invalid]


@pytest.mark.parametrize(("kind", "text", "expected"), _valid())
def test_valid_input_is_stored_as(kind: FieldType, text: str, expected: Any) -> None:
    case = CASES[kind]
    if kind is FieldType.DERIVED:
        form = Form(
            id="f",
            categories=["c"],
            kind="person",
            fields=[field(type="id_number", key="id", label="身份证号"), case.field],
        )
        assert derive_fields(form, {"id": text}) == {"gender": expected}
    else:
        assert parse_field(case.field, text, today=TODAY) == expected


@pytest.mark.parametrize(("kind", "text", "why"), _invalid())
def test_invalid_input_says_what_is_wrong_and_expected(
    kind: FieldType, text: str, why: str
) -> None:
    case = CASES[kind]
    if kind is FieldType.DERIVED:
        with pytest.raises(TypeError, match=why):
            parse_field(case.field, text, today=TODAY)
        return
    with pytest.raises(AnswerError) as info:
        parse_field(case.field, text, today=TODAY)
    assert why in str(info.value)


@pytest.mark.parametrize(
    ("spec", "text", "expected"),
    [
        ({"type": "int"}, "无", None),
        ({"type": "text"}, "跳过", None),
        ({"type": "list"}, "无", []),
        ({"type": "bool"}, "跳过", None),
        ({"type": "bool"}, "无", False),  # 无 answers a yes/no question, it does not skip it
        ({"type": "mobile"}, "/skip", None),
    ],
)
def test_optional_fields_accept_skip_words(spec: Data, text: str, expected: Any) -> None:
    assert parse_field(field(**spec, required=False), text, today=TODAY) == expected


def test_required_text_takes_skip_words_as_text() -> None:
    # 职务：无 is a real answer on a form.
    assert parse_field(field(type="text"), "无", today=TODAY) == "无"


def test_free_text_keeps_chinese_punctuation_and_line_breaks() -> None:
    text = "一、技术革新（三项）；\r\n二、带徒 12 名。"
    assert (
        parse_field(field(type="text"), text, today=TODAY)
        == "一、技术革新（三项）；\n二、带徒 12 名。"
    )


# --------------------------------------------------------------------------------------------
# Bounds: text length and lists (hypothesis)
# --------------------------------------------------------------------------------------------

STORY_CHARS = st.text(alphabet="技能人才带徒革新成果效益，。", min_size=1, max_size=8)


@settings(deadline=None, max_examples=60)
@given(st.integers(min_value=1, max_value=1700), STORY_CHARS)
def test_main_deeds_are_bounded_by_the_form_space(n: int, chars: str) -> None:
    achievements = skills_form().field("achievements")
    assert (achievements.min_length, achievements.max_length) == (100, 1500)
    text = (chars * n)[:n]
    if 100 <= n <= 1500:
        assert parse_field(achievements, text, today=TODAY) == text
    else:
        with pytest.raises(AnswerError) as info:
            parse_field(achievements, text, today=TODAY)
        assert f"您填写了 {n} 个字" in str(info.value)
        assert ("至少 100 个字" if n < 100 else "不能超过 1500 个字") in str(info.value)


LIST_FIELD = field(type="list", label="获奖", min_items=2, max_items=5, item_max_length=30)


@given(st.integers(min_value=0, max_value=8), st.sampled_from(["完成", "/done", " 完成。"]))
def test_a_list_ends_only_after_min_items(count: int, word: str) -> None:
    if count >= 2:
        assert parse_list_item(LIST_FIELD, word, count=count) is DONE
    else:
        with pytest.raises(AnswerError, match=f"至少需要 2 项，目前有 {count} 项"):
            parse_list_item(LIST_FIELD, word, count=count)


@given(st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=40))
def test_list_items_are_bounded_in_number_and_length(count: int, length: int) -> None:
    item = "奖" * length
    if count >= 5:
        with pytest.raises(AnswerError, match="最多 5 项，已经填满。请回复“完成”结束"):
            parse_list_item(LIST_FIELD, item, count=count)
    elif length > 30:
        with pytest.raises(AnswerError, match=f"不能超过 30 个字，这一项有 {length} 个字"):
            parse_list_item(LIST_FIELD, item, count=count)
    else:
        assert parse_list_item(LIST_FIELD, item, count=count) == item


def test_an_optional_list_may_end_empty_but_not_a_required_one() -> None:
    awards = skills_form().field("awards")
    assert not awards.required
    assert parse_list_item(awards, "无", count=0) is DONE
    assert parse_list_item(awards, "完成", count=0) is DONE
    assert parse_list_item(awards, "无", count=1) is DONE  # 无 is never an item
    with pytest.raises(AnswerError, match="每条消息只填写一项"):
        parse_list_item(awards, "甲\n乙", count=0)
    required = field(type="list", label="荣誉")
    for word in ("完成", "无"):
        with pytest.raises(AnswerError, match="荣誉至少需要 1 项"):
            parse_list_item(required, word, count=0)
    some = field(type="list", label="荣誉", required=False, min_items=2)
    assert parse_list_item(some, "跳过", count=0) is DONE  # optional: may stay empty …
    with pytest.raises(AnswerError, match="至少需要 2 项，目前有 1 项"):
        parse_list_item(some, "完成", count=1)  # … but once begun, needs min_items
    assert parse_field(some, "甲\n乙", today=TODAY) == ["甲", "乙"]
    with pytest.raises(AnswerError, match="荣誉至少填写 2 项，您填写了 1 项"):
        parse_field(some, "甲", today=TODAY)


# --------------------------------------------------------------------------------------------
# Derived fields from generated valid ID numbers
# --------------------------------------------------------------------------------------------


@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY),
    st.from_regex(r"[1-6][0-9]{5}", fullmatch=True),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
)
def test_birth_month_and_gender_come_from_the_id_number(
    born: dt.date, region: str, seq: str
) -> None:
    body = f"{region}{born:%Y%m%d}{seq}"
    number = body + check_digit(body)
    form = skills_form()
    stored = parse_field(form.field("id_number"), number, today=TODAY)
    assert derive_fields(form, {"id_number": stored}) == {
        "birth_month": f"{born.year:04d}-{born.month:02d}",
        "gender": "男" if int(seq[2]) % 2 == 1 else "女",
    }


def test_nothing_is_derived_before_the_id_number_is_answered() -> None:
    assert derive_fields(skills_form(), {"name": "张三"}) == {}


# --------------------------------------------------------------------------------------------
# Display, must_equal, not_future, le_field
# --------------------------------------------------------------------------------------------


def test_display_masks_id_numbers_and_mobiles_unless_full() -> None:
    form = skills_form()
    assert display(form.field("id_number"), "220104199001010024") == "220104********0024"
    assert display(form.field("id_number"), "220104199001010024", full=True) == (
        "220104199001010024"
    )
    assert display(form.field("mobile"), "13912345678") == "139****5678"
    assert display(form.field("mobile"), "13912345678", full=True) == "13912345678"
    assert form.field("id_number").sensitive
    assert form.field("mobile").sensitive


def test_display_shows_labels_lists_and_blanks() -> None:
    form = skills_form()
    assert display(form.field("skill_level"), "senior_technician") == "高级技师（一级）"
    assert display(form.field("has_classified_material"), False) == "否"
    assert display(form.field("awards"), ["2019年 技术能手", "2021年 五一劳动奖章"]) == (
        "1. 2019年 技术能手\n2. 2021年 五一劳动奖章"
    )
    assert display(form.field("awards"), []) == "无"
    assert display(form.field("awards"), None) == "无"  # optional, skipped
    assert display(form.field("name"), None) == "（未填写）"
    assert display(field(type="text", sensitive=True), "秘密") == "（已隐藏）"
    assert display(field(type="text", sensitive=True), "秘密", full=True) == "秘密"


def test_a_field_of_id_number_or_mobile_type_cannot_be_declared_not_sensitive() -> None:
    with pytest.raises(ValueError, match="always sensitive"):
        field(type="mobile", sensitive=False)


@pytest.mark.parametrize(
    "text",
    ["材料已脱密，可公开", "材料已脱密,可公开", "“材料已脱密，可公开”", " 材料已脱密， 可公开。"],
)
def test_the_declassification_words_are_required_verbatim(text: str) -> None:
    note = skills_form().field("declassified_note")
    assert parse_field(note, text, today=TODAY) == "材料已脱密，可公开"


@pytest.mark.parametrize("text", ["材料已脱密", "材料已经脱密，可以公开", "已脱密", "可公开"])
def test_other_words_are_refused_quoting_the_required_ones(text: str) -> None:
    note = skills_form().field("declassified_note")
    with pytest.raises(AnswerError, match="须原样填写“材料已脱密，可公开”"):
        parse_field(note, text, today=TODAY)


def test_must_equal_default_message_quotes_both() -> None:
    f = field(type="text", label="声明", must_equal="属实")
    with pytest.raises(AnswerError, match="声明须原样填写“属实”，您填写的是“不属实”"):
        parse_field(f, "不属实", today=TODAY)


def test_not_future_uses_the_today_the_caller_passes() -> None:
    founded = employment_form("employment_collective").field("founded_on")
    assert founded.not_future
    assert parse_field(founded, "2022-10-20", today=TODAY) == "2022-10-20"
    with pytest.raises(AnswerError, match="不能晚于今天（2022-10-20），您填写的是 2022-10-21"):
        parse_field(founded, "2022-10-21", today=TODAY)
    later = TODAY + dt.timedelta(days=1)
    assert parse_field(founded, "2022-10-21", today=later) == "2022-10-21"


def test_key_group_hires_may_not_exceed_staff() -> None:
    form = employment_form("employment_collective")
    hires = form.field("key_group_hires")
    assert hires.le_field == "staff_count"
    assert parse_field(hires, "10", today=TODAY, values={"staff_count": 10}) == 10
    assert parse_field(hires, "11", today=TODAY) == 11  # without the form, no cross check
    with pytest.raises(AnswerError) as info:
        parse_field(hires, "11", today=TODAY, values={"staff_count": 10})
    assert str(info.value) == "吸纳重点群体就业人数（11）不能多于职工人数（10），请核对这两个数。"
    # A later change of staff_count breaks the rule: cross_field_errors finds it before submission.
    assert cross_field_errors(form, {"staff_count": 12, "key_group_hires": 11}) == {}
    assert cross_field_errors(form, {"staff_count": 8, "key_group_hires": 11}) == {
        "key_group_hires": "吸纳重点群体就业人数（11）不能多于职工人数（8），请核对这两个数。"
    }


def test_staff_count_is_at_least_one_and_hires_at_least_zero() -> None:
    form = employment_form("migrant_collective")
    with pytest.raises(AnswerError, match="职工人数至少为 1"):
        parse_field(form.field("staff_count"), "0", today=TODAY)
    with pytest.raises(AnswerError, match="不能是负数"):
        parse_field(form.field("key_group_hires"), "-1", today=TODAY)
    assert parse_field(form.field("key_group_hires"), "0", today=TODAY) == 0


# --------------------------------------------------------------------------------------------
# Attachments: bounded in size (what an upload is: tests/conversations/test_form_files.py)
# --------------------------------------------------------------------------------------------


def test_a_material_may_not_allow_more_than_twenty_megabytes() -> None:
    with pytest.raises(ValueError, match="less than or equal to 20"):
        Material(key="m", name="表", max_mb=21)


# --------------------------------------------------------------------------------------------
# What is missing and what is pending
# --------------------------------------------------------------------------------------------


def _keys(items: list[Material] | list[FormField]) -> list[str]:
    return [i.key for i in items]


def test_secrecy_review_is_required_only_with_classified_material() -> None:
    form = skills_form()
    required = {"approval_form", "id_card", "qualification_certificate", "diploma"}
    required |= {"skill_achievements", "opinions"}
    assert _keys(missing_materials(form, required, {"has_classified_material": False})) == []
    assert _keys(missing_materials(form, required, {"has_classified_material": True})) == [
        "secrecy_review"
    ]
    # Unanswered: not known to be unnecessary, so still listed.
    assert _keys(missing_materials(form, required, {})) == ["secrecy_review"]
    uploaded = required | {"secrecy_review"}
    assert missing_materials(form, uploaded, {"has_classified_material": True}) == []


def test_missing_materials_follow_the_checklist_order() -> None:
    assert _keys(missing_materials(skills_form(), set(), {"has_classified_material": False})) == [
        "approval_form",
        "id_card",
        "qualification_certificate",
        "diploma",
        "skill_achievements",
        "opinions",
    ]


@pytest.mark.parametrize(
    ("person_type", "extra"),
    [
        ("employment_staff", ["years_in_role_proof"]),
        ("employment_worker", []),
        ("migrant_staff", ["years_in_role_proof"]),
        ("migrant_worker", ["rural_hukou_proof", "migrant_work_proof"]),
    ],
)
def test_person_materials_depend_on_the_self_check_facts(
    person_type: str, extra: list[str]
) -> None:
    form = employment_form("employment_individual")
    missing = missing_materials(form, set(), {}, facts={"person_type": person_type})
    assert _keys(missing) == ["publicity", "police_opinion", "deeds", *extra]


@pytest.mark.parametrize(
    ("unit_type", "facts", "extra"),
    [
        ("government_agency", {}, ["agency_opinions"]),
        ("social_organization", {}, ["civil_affairs_opinion"]),
        (
            "enterprise",
            {"absorbs_key_groups": True},
            [
                "enterprise_opinions",
                "business_license",
                "key_groups_proof",
                "keeps_jobs_statement",
            ],
        ),
        ("enterprise", {}, ["enterprise_opinions", "business_license", "keeps_jobs_statement"]),
    ],
)
def test_unit_opinions_depend_on_the_unit_type(
    unit_type: str, facts: Data, extra: list[str]
) -> None:
    form = employment_form("employment_collective")
    missing = missing_materials(form, {"deeds"}, {"unit_type": unit_type}, facts=facts)
    assert _keys(missing) == ["publicity", "police_opinion", *extra]


def test_pending_fields_are_required_relevant_unanswered_in_order() -> None:
    form = skills_form()
    everything = [f.key for f in form.fields if f.type is not FieldType.DERIVED]
    optional = {"awards"}
    assert _keys(pending_fields(form, {}, {})) == [k for k in everything if k not in optional]
    assert _keys(pending_fields(form, {}, {}, optional=True)) == everything
    answered = dict.fromkeys(everything[:10], "x")
    assert _keys(pending_fields(form, answered, {}))[0] == everything[10]


def test_relevance_hides_fields_known_to_be_irrelevant() -> None:
    form = skills_form()
    base = {f.key: "x" for f in form.fields if f.key not in {"declassified_note"}}
    base.pop("certificate_number")
    with_level = {**base, "skill_level": "senior", "has_classified_material": False}
    assert _keys(pending_fields(form, with_level, {})) == ["certificate_number"]
    no_level = {**with_level, "skill_level": "none"}
    assert _keys(pending_fields(form, no_level, {})) == []
    classified = {**no_level, "has_classified_material": True}
    assert _keys(pending_fields(form, classified, {})) == ["declassified_note"]
    unknown = {k: v for k, v in no_level.items() if k != "has_classified_material"}
    assert _keys(pending_fields(form, unknown, {})) == [
        "has_classified_material",
        "declassified_note",  # relevance unknown: still pending until the answer rules it out
    ]


def test_relevance_reads_facts_and_form_values_win() -> None:
    form = employment_form("employment_collective")
    answered = {"unit_name": "某公司", "uscc": "x", "founded_on": "2015-01-01", "staff_count": 9}
    enterprise = {"unit_type": "enterprise"}
    pending = _keys(pending_fields(form, answered, enterprise))
    # the self-check says enterprise
    assert pending[:3] == ["unit_type", "is_non_public", "key_group_hires"]
    pending = _keys(
        pending_fields(form, {**answered, "unit_type": "public_institution"}, enterprise)
    )
    assert "key_group_hires" not in pending  # the form's own answer wins over the self-check


def test_prefill_takes_the_self_check_answers_of_reused_facts() -> None:
    facts = {"skill_level": "technician", "years_in_occupation": 9, "works_in_jilin": True}
    assert prefill(skills_form(), facts) == {"skill_level": "technician", "years_in_occupation": 9}
    unit = employment_form("migrant_collective")
    assert prefill(unit, {"unit_type": "enterprise", "years_since_founding": 4}) == {
        "unit_type": "enterprise"
    }


# --------------------------------------------------------------------------------------------
# The campaign files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [SKILLS, EMPLOYMENT], ids=["skills", "employment"])
def test_every_category_has_exactly_one_form_of_its_kind(path: Path) -> None:
    loaded = campaign(path)
    assert loaded.forms
    for category in loaded.categories:
        serving = [f for f in loaded.forms if category.id in f.categories]
        assert len(serving) == 1, category.id
        expected = "person" if category.kind.value == "individual" else "unit"
        assert serving[0].kind.value == expected


def test_the_forms_carry_the_fields_of_the_approval_form() -> None:
    labels = {
        form.id: [f.label for f in form.fields]
        for path in (SKILLS, EMPLOYMENT)
        for form in campaign(path).forms
    }
    person = ["姓名", "性别", "民族", "出生年月", "身份证号", "政治面貌", "文化程度", "工作单位"]
    assert labels["skills_nominee"] == [
        *person,
        "职务/岗位",
        "职业（工种）",
        "技能等级",
        "证书编号",
        "从事本职业（工种）年限",
        "获奖及荣誉称号",
        "主要事迹",
        "联系电话",
        "材料是否涉密",
        "脱密声明",
    ]
    assert labels["employment_nominee"] == [
        *person,
        "职务/岗位",
        "工作单位类型",
        "非公有制企业",
        "企业负责人",
        "行政级别",
        "获奖及荣誉称号",
        "主要事迹",
        "联系电话",
    ]
    assert labels["employment_unit"] == [
        "单位名称",
        "统一社会信用代码",
        "单位类型",
        "非公有制企业",
        "成立日期",
        "职工人数",
        "吸纳重点群体就业人数",
        "联系人",
        "联系电话",
        "主要事迹",
    ]


def test_reused_fields_name_the_facts_of_the_self_check() -> None:
    reused = {
        (form.id, f.key): f.reuse
        for path in (SKILLS, EMPLOYMENT)
        for form in campaign(path).forms
        for f in form.fields
        if f.reuse
    }
    assert reused == {
        ("skills_nominee", "skill_level"): "skill_level",
        ("skills_nominee", "years_in_occupation"): "years_in_occupation",
        ("employment_nominee", "id_number"): "id_number",
        ("employment_nominee", "unit_type"): "unit_type",  # the employer's
        ("employment_nominee", "admin_rank"): "admin_rank",
        ("employment_unit", "unit_type"): "unit_type",
    }


def test_a_campaign_without_forms_still_loads() -> None:
    data = _skills()
    del data["forms"]
    assert parse_campaign(_dump(data), SOURCE).forms == []


# --------------------------------------------------------------------------------------------
# Load errors name the YAML path
# --------------------------------------------------------------------------------------------


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.cache
def _data(path: Path) -> Data:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe
    assert isinstance(data, dict)
    return data


def _skills() -> Data:
    """A fresh copy of the skills campaign as YAML data, to change in one place."""
    return copy.deepcopy(_data(SKILLS))


def _employment() -> Data:
    return copy.deepcopy(_data(EMPLOYMENT))


def _dump(data: Data) -> str:
    return yaml.dump(data, Dumper=_DUMPER, allow_unicode=True)


def _field_index(data: Data, form: int, key: str) -> int:
    return next(i for i, f in enumerate(data["forms"][form]["fields"]) if f["key"] == key)


def _skills_field(key: str, change: Callable[[Data], None]) -> Callable[[], Data]:
    def make() -> Data:
        data = _skills()
        change(data["forms"][0]["fields"][_field_index(data, 0, key)])
        return data

    return make


def _unknown_category() -> Data:
    data = _skills()
    data["forms"][0]["categories"].append("nope")
    return data


def _duplicate_field() -> Data:
    data = _skills()
    data["forms"][0]["fields"].append(copy.deepcopy(data["forms"][0]["fields"][0]))
    return data


def _category_without_form() -> Data:
    data = _skills()
    data["forms"][0]["categories"] = ["skills_grand_award"]
    return data


def _category_in_two_forms() -> Data:
    data = _skills()
    second = copy.deepcopy(data["forms"][0])
    second["id"] = "second"
    second["categories"] = ["technical_expert"]
    data["forms"].append(second)
    return data


def _unit_form_for_individuals() -> Data:
    data = _skills()
    data["forms"][0]["kind"] = "unit"
    return data


def _enum_reuse_other_choices() -> Data:
    data = _employment()
    unit = 1
    f = data["forms"][unit]["fields"][_field_index(data, unit, "unit_type")]
    f["choices"] = f["choices"][:3]  # enterprise left out
    return data


def _enum_reuse_added_choice_first() -> Data:
    """An individual's employer may add 无工作单位 after the fact's values, never before them."""
    data = _employment()
    person = 0
    f = data["forms"][person]["fields"][_field_index(data, person, "unit_type")]
    f["choices"].insert(0, f["choices"].pop())  # no_unit first
    return data


def _enum_reuse_other_order() -> Data:
    data = _skills()
    f = data["forms"][0]["fields"][_field_index(data, 0, "skill_level")]
    f["choices"] = list(reversed(f["choices"]))
    return data


def _material_condition_unknown() -> Data:
    data = _skills()
    data["forms"][0]["materials"][8]["required_when"] = {"fact": "nope", "eq": True}
    return data


def _required_and_required_when() -> Data:
    data = _skills()
    data["forms"][0]["materials"][8]["required"] = True
    return data


def _employment_le_field_not_int() -> Data:
    data = _employment()
    f = data["forms"][1]["fields"][_field_index(data, 1, "key_group_hires")]
    f["le_field"] = "unit_name"
    return data


def _derived_from_text() -> Data:
    data = _skills()
    data["forms"][0]["fields"][_field_index(data, 0, "gender")]["derived"]["source"] = "name"
    return data


def _set(key: str, option: str, value: Any) -> Callable[[], Data]:
    def change(f: Data) -> None:
        f[option] = value

    return _skills_field(key, change)


SKILLS_FIELD = "forms[0] (skills_nominee).fields"
LOAD_ERRORS: list[tuple[str, Callable[[], Data], str]] = [
    (
        "unknown category in a form",
        _unknown_category,
        "forms[0] (skills_nominee).categories: unknown category 'nope'",
    ),
    ("duplicate field key", _duplicate_field, "forms[0]: fields: 'name' appears twice"),
    (
        "category without a form",
        _category_without_form,
        "categories[1] (technical_expert): no form serves this category",
    ),
    (
        "category in two forms",
        _category_in_two_forms,
        "forms[1] (second).categories: 'technical_expert' already has form 'skills_nominee'",
    ),
    (
        "unit form for individual categories",
        _unit_form_for_individuals,
        "forms[0] (skills_nominee).categories: 'skills_grand_award' is individual,"
        " a unit form serves collective categories",
    ),
    (
        "reuse of an unknown fact",
        _set("years_in_occupation", "reuse", "nope"),
        f"{SKILLS_FIELD}[12] (years_in_occupation): a field named like fact"
        " 'years_in_occupation' must reuse it",
    ),
    (
        "reuse of an unknown fact by a field of its own name",
        _set("occupation", "reuse", "nope"),
        f"{SKILLS_FIELD}[9] (occupation).reuse: unknown fact 'nope'",
    ),
    (
        "reuse of a fact of another type",
        _set("occupation", "reuse", "works_in_jilin"),
        f"{SKILLS_FIELD}[9] (occupation).reuse: fact 'works_in_jilin' is bool, the field is text",
    ),
    (
        "enum reuse with fewer choices",
        _enum_reuse_other_choices,
        "forms[1] (employment_unit).fields[2] (unit_type).reuse: choices"
        " ['government_agency', 'public_institution', 'social_organization'] differ from fact"
        " 'unit_type' ['government_agency', 'public_institution', 'social_organization',"
        " 'enterprise'] (the fact's values first, in the same order, are required)",
    ),
    (
        "enum reuse with a choice added before the fact's",
        _enum_reuse_added_choice_first,
        "forms[0] (employment_nominee).fields[9] (unit_type).reuse: choices ['no_unit',",
    ),
    (
        "enum reuse in another order",
        _enum_reuse_other_order,
        f"{SKILLS_FIELD}[10] (skill_level).reuse: choices ['chief_technician',",
    ),
    (
        "relevance names an unknown field or fact",
        _set("declassified_note", "relevant", {"fact": "nope", "eq": True}),
        f"{SKILLS_FIELD}[17] (declassified_note).relevant: unknown field or fact 'nope'",
    ),
    (
        "relevance names a later field",
        _set("name", "relevant", {"fact": "has_classified_material", "eq": True}),
        f"{SKILLS_FIELD}[0] (name).relevant: field 'has_classified_material' is not asked"
        " before this one",
    ),
    (
        "relevance compares an enum field with a value it lacks",
        _set("certificate_number", "relevant", {"fact": "skill_level", "ne": "master"}),
        f"{SKILLS_FIELD}[11] (certificate_number).relevant: 'master' is not a choice of"
        " 'skill_level'",
    ),
    (
        "relevance compares a bool fact with a string",
        _set("certificate_number", "relevant", {"fact": "is_retired", "eq": "no"}),
        f"{SKILLS_FIELD}[11] (certificate_number).relevant: 'is_retired' is bool,"
        " compared with 'no'",
    ),
    (
        "material condition names an unknown fact",
        _material_condition_unknown,
        "forms[0] (skills_nominee).materials[8] (secrecy_review).required_when:"
        " unknown field or fact 'nope'",
    ),
    (
        "required and required_when together",
        _required_and_required_when,
        "forms[0].materials[8]: required: true contradicts required_when; keep one",
    ),
    (
        "min/max on a text field",
        _set("name", "min", 1),
        "forms[0].fields[0]: min is only for date and int fields, not text",
    ),
    (
        "enum field without choices",
        _set("political_status", "choices", []),
        "forms[0].fields[5]: an enum field needs choices",
    ),
    (
        "field without a question",
        _set("ethnicity", "question", None),
        "forms[0].fields[2]: a field that is not derived needs a question",
    ),
    (
        "unknown field type",
        _set("name", "type", "string"),
        "forms[0].fields[0].type: Input should be 'text', 'int', 'date', 'enum', 'bool',"
        " 'id_number', 'mobile', 'uscc', 'list' or 'derived'",
    ),
    (
        "field key with capitals",
        _set("name", "key", "Name"),
        "forms[0].fields[0].key: String should match pattern '^[a-z][a-z0-9_]*$'",
    ),
    (
        "le_field names a text field",
        _employment_le_field_not_int,
        "forms[1]: fields[6] (key_group_hires).le_field: 'unit_name' is not an int field of"
        " this form",
    ),
    (
        "derived from a text field",
        _derived_from_text,
        "forms[0]: fields[1] (gender).derived.source: 'name' is not an id_number field of"
        " this form",
    ),
    (
        "material accepts an unknown type",
        lambda: _with_material({"key": "x", "name": "x", "accept": ["exe"]}),
        "forms[0].materials[10].accept[0]: Input should be 'jpg', 'png', 'pdf' or 'docx'",
    ),
    (
        "material over 20 MB",
        lambda: _with_material({"key": "x", "name": "x", "max_mb": 50}),
        "forms[0].materials[10].max_mb: Input should be less than or equal to 20",
    ),
]


def _with_material(material: Data) -> Data:
    data = _skills()
    data["forms"][0]["materials"].append(material)
    return data


@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in LOAD_ERRORS], ids=[c[0] for c in LOAD_ERRORS]
)
def test_form_load_error(make: Callable[[], Data], expected: str) -> None:
    with pytest.raises(CampaignError) as info:
        parse_campaign(_dump(make()), SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: "), message
    assert message.removeprefix(f"{SOURCE}: ").startswith(expected), message


def test_the_indices_above_are_the_skills_form() -> None:
    data = _skills()
    keys = [f["key"] for f in data["forms"][0]["fields"]]
    assert [keys[i] for i in (0, 1, 2, 5, 9, 10, 11, 12, 17)] == [
        "name",
        "gender",
        "ethnicity",
        "political_status",
        "occupation",
        "skill_level",
        "certificate_number",
        "years_in_occupation",
        "declassified_note",
    ]
    assert [m["key"] for m in data["forms"][0]["materials"]][8:] == [
        "secrecy_review", "nominee_consent",
    ]  # fmt: skip
    employment = _employment()
    assert [f["key"] for f in employment["forms"][1]["fields"]][2] == "unit_type"
    assert [f["key"] for f in employment["forms"][1]["fields"]][6] == "key_group_hires"
