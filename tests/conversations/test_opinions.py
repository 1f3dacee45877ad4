"""The departments to consult (征求意见) follow the nominee, as the filing records it.

Issue: every individual of the employment campaign was asked for all ten departments' opinions,
and every enterprise for 统战/工商联, because the facts the `opinions` rules test (an
individual's employer `unit_type`, `is_non_public`, `is_unit_head`) were never collected. Here
each nominee is filed as the chat files it — the self-check answers, the form's prefill, then
every field the form still asks, typed by the clerk and parsed like any other answer — and the
departments are those the employment notice names in 三、（一）:

    推荐的先进单位和个人均需征求公安部门意见。其中，对机关事业单位及其工作人员，还应当按照管理
    权限征求组织人事部门、纪检监察机关意见；对企业和企业负责人，还应当征求生态环境、人力资源社会
    保障、税务、市场监管、应急管理等有关主管部门意见；对非公有制企业和企业负责人，还应当征求企业
    注册地统战、工商联等部门意见；对社会组织，还应当征求注册地民政部门意见。
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from conversations.campaign import Campaign, CampaignError
from conversations.form_parse import parse_field
from conversations.forms import form_for, pending_fields, prefill
from conversations.lifecycle import opinion_departments, opinion_facts
from conversations.loader import parse_campaign

ROOT = Path(__file__).resolve().parents[2]
EMPLOYMENT = "campaigns/jl-employment-2022.yaml"
TODAY = dt.date(2022, 10, 20)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

POLICE = "公安部门"
PERSONNEL = ["组织人事部门", "纪检监察机关"]
REGULATORS = ["生态环境部门", "人力资源社会保障部门", "税务部门", "市场监管部门", "应急管理部门"]
UNITED_FRONT = ["企业注册地统战部门", "企业注册地工商联"]
CIVIL_AFFAIRS = ["注册地民政部门"]

DEEDS = (
    "该同志长期扎根基层一线，近三年组织开展招聘活动六十余场，帮助两千三百余名高校毕业生、退役军人和"
    "就业困难人员实现就业，推动建设创业孵化基地两个，扶持创业实体一百二十户，带动就业八百余人，"
    "工作实绩突出，群众认可度高，多次受到上级部门表扬。"
)
UNIT_DEEDS = (
    "本单位近三年累计吸纳高校毕业生、退役军人和就业困难人员三百余人，设立就业见习岗位六十个，"
    "开展农民工技能培训两千人次，疫情期间不裁员、不减薪，稳定岗位一千二百个，获评市级劳动关系"
    "和谐单位，带动周边乡镇劳动力就近就业，社会反响良好。"
)
# What every individual's clerk types for the fields of 推荐审批表 that do not decide opinions.
PERSON = {
    "name": "张小三",
    "ethnicity": "汉族",
    "id_number": "220104198005060028",
    "political_status": "中共党员",
    "education": "大学本科",
    "awards": "无",
    "achievements": DEEDS,
    "mobile": "13912345678",
}
UNIT = {
    "unit_name": "长春市朝阳区示例单位",
    "uscc": "91220104MA14ABCD3K",
    "founded_on": "2010-05-20",
    "staff_count": "120",
    "contact_person": "李四",
    "mobile": "13912345678",
    "achievements": UNIT_DEEDS,
}


@cache
def _text() -> str:
    return (ROOT / EMPLOYMENT).read_text(encoding="utf-8")


@cache
def employment() -> Campaign:
    return parse_campaign(_text(), EMPLOYMENT)


def file_nominee(
    category: str, facts: Mapping[str, Any], typed: Mapping[str, str]
) -> dict[str, Any]:
    """The form values of a filing: prefilled from the self-check, then each field the form
    asks (in its order, relevance decided as it goes) answered with the clerk's typed text.
    Every typed answer must be asked for, and nothing else may be left."""
    c = employment()
    form = form_for(c, category)
    assert form is not None
    values: dict[str, Any] = prefill(form, facts)
    asked: list[str] = []
    while pending := pending_fields(form, values, facts, ordinal=c.ordinal, optional=True):
        field = pending[0]
        assert field.key in typed, f"the form asks {field.key}, which this filing does not answer"
        values[field.key] = parse_field(field, typed[field.key], today=TODAY, values=values)
        asked.append(field.key)
    assert sorted(asked) == sorted(typed)
    return values


def departments(category: str, facts: Mapping[str, Any], typed: Mapping[str, str]) -> list[str]:
    c = employment()
    values = file_nominee(category, facts, typed)
    lifecycle = c.lifecycle
    assert lifecycle is not None
    kind = c.category(category).kind.value
    return opinion_departments(lifecycle, opinion_facts(kind, values, facts))


STAFF = {"person_type": "employment_staff", "admin_rank": "section", "already_awarded": False}
WORKER = {"person_type": "employment_worker", "admin_rank": "none", "already_awarded": False}
MIGRANT = {"person_type": "migrant_worker", "admin_rank": "none", "rural_hukou": True}


@pytest.mark.parametrize(
    ("category", "facts", "typed", "expected"),
    [
        pytest.param(
            "employment_individual",
            STAFF,
            {
                **PERSON,
                "employer": "长春市朝阳区人力资源和社会保障局",
                "position": "就业促进科科长",
                "unit_type": "机关",
            },
            [POLICE, *PERSONNEL],
            id="agency employee: 机关事业单位工作人员",
        ),
        pytest.param(
            "employment_individual",
            WORKER,
            {
                **PERSON,
                "employer": "吉林省示例国有投资集团有限公司",
                "position": "董事长",
                "unit_type": "企业",
                "is_non_public": "否",
                "is_unit_head": "是",
            },
            [POLICE, *REGULATORS],
            id="state-owned-enterprise head: 企业负责人",
        ),
        pytest.param(
            "migrant_individual",
            {**MIGRANT, "achv_returning_entrepreneur": True},
            {
                **PERSON,
                "employer": "农安县示例农业发展有限公司",
                "position": "总经理",
                "unit_type": "4",
                "is_non_public": "是",
                "is_unit_head": "是",
            },
            [POLICE, *REGULATORS, *UNITED_FRONT],
            id="private-enterprise head: 非公有制企业负责人 (农民企业家)",
        ),
        pytest.param(
            "employment_collective",
            {"unit_type": "social_organization", "already_awarded": False},
            UNIT,
            [POLICE, *CIVIL_AFFAIRS],
            id="social-organisation collective: 社会组织",
        ),
        pytest.param(
            "migrant_individual",
            {**MIGRANT, "achv_skill_excellence": True},
            {
                **PERSON,
                "employer": "长春市示例建筑工程有限公司",
                "position": "钢筋工",
                "unit_type": "企业",
                "is_non_public": "是",
                "is_unit_head": "否",
            },
            [POLICE],
            id="migrant worker: an enterprise's worker, not its head",
        ),
        pytest.param(
            "employment_collective",
            {"unit_type": "enterprise", "already_awarded": False},
            {**UNIT, "is_non_public": "是", "key_group_hires": "45"},
            [POLICE, *REGULATORS, *UNITED_FRONT],
            id="non-public enterprise collective",
        ),
        pytest.param(
            "migrant_collective",
            {"unit_type": "enterprise", "already_awarded": False},
            {**UNIT, "is_non_public": "否", "key_group_hires": "30"},
            [POLICE, *REGULATORS],
            id="state-owned enterprise collective",
        ),
        pytest.param(
            "employment_individual",
            WORKER,
            {
                **PERSON,
                "employer": "灵活就业",
                "position": "网约车驾驶员",
                "unit_type": "无工作单位（灵活就业等）",
            },
            [POLICE],
            id="flexible worker without an employer",
        ),
    ],
)
def test_the_departments_follow_the_filed_nominee(
    category: str, facts: dict[str, Any], typed: dict[str, str], expected: list[str]
) -> None:
    assert departments(category, facts, typed) == expected


def test_a_corrected_answer_in_the_form_wins_over_the_self_check() -> None:
    # The self-check said enterprise; the clerk corrects the form's prefilled unit type.
    values = {"unit_type": "public_institution", "is_non_public": None}
    facts = {"unit_type": "enterprise", "is_non_public": True}
    assert opinion_facts("collective", values, facts) == {
        "unit_type": "public_institution",
        "is_non_public": True,  # left empty in the form: the self-check answer stands
        "nominee_kind": "collective",
    }
    lifecycle = employment().lifecycle
    assert lifecycle is not None
    assert opinion_departments(lifecycle, opinion_facts("collective", values, facts)) == [
        POLICE,
        *PERSONNEL,
    ]


def test_the_kind_is_individual_or_collective() -> None:
    with pytest.raises(ValueError, match="not 'unit'"):
        opinion_facts("unit", {}, {})


def test_the_new_questions_are_chinese_and_refuse_what_they_do_not_offer() -> None:
    form = form_for(employment(), "employment_individual")
    assert form is not None
    unit_type = form.field("unit_type")
    assert [c.label for c in unit_type.choices] == [
        "机关",
        "事业单位",
        "社会组织",
        "企业",
        "无工作单位（灵活就业等）",
    ]
    assert parse_field(unit_type, "事业单位", today=TODAY) == "public_institution"
    with pytest.raises(ValueError, match="无法识别“工厂”"):
        parse_field(unit_type, "工厂", today=TODAY)
    with pytest.raises(ValueError, match="请回答“是”或“否”"):
        parse_field(form.field("is_unit_head"), "也许", today=TODAY)


# --- the loader refuses a rule it cannot decide ---


def _data() -> dict[str, Any]:
    data = yaml.load(_text(), Loader=_Loader)  # noqa: S506 - a safe loader
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def _refused(change: Callable[[dict[str, Any]], None]) -> str:
    data = _data()
    change(data)
    with pytest.raises(CampaignError) as info:
        parse_campaign(yaml.dump(data, Dumper=_Dumper, allow_unicode=True), EMPLOYMENT)
    return str(info.value)


def _person_form(data: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in data["forms"] if f["id"] == "employment_nominee")


def _rule_index(data: dict[str, Any], department: str) -> int:
    rules = data["lifecycle"]["opinions"]
    return next(i for i, r in enumerate(rules) if department in r["departments"])


def test_a_rule_on_a_fact_the_form_does_not_ask_is_refused() -> None:
    """The bug as the loader now sees it: without the form's question, is_unit_head would be
    unknown for every individual and every enterprise department asked about all of them."""

    def drop_question(data: dict[str, Any]) -> None:
        form = _person_form(data)
        form["fields"] = [f for f in form["fields"] if f["key"] != "is_unit_head"]

    i = _rule_index(_data(), REGULATORS[0])
    assert _refused(drop_question) == (
        f"{EMPLOYMENT}: lifecycle.opinions[{i}].when: fact 'is_unit_head' is produced neither"
        " by form 'employment_nominee' nor by the self-check of category 'employment_individual'"
        " (individual): the departments to consult about its nominees cannot be decided"
    )


def test_a_rule_on_an_individuals_fact_for_every_nominee_is_refused() -> None:
    """admin_rank is asked of individuals only: a rule that does not exclude collectives
    cannot be decided for them."""
    rule = {"when": {"fact": "admin_rank", "eq": "county_division"}, "departments": ["审计部门"]}
    n = len(_data()["lifecycle"]["opinions"])
    message = _refused(lambda data: data["lifecycle"]["opinions"].append(rule))
    assert message == (
        f"{EMPLOYMENT}: lifecycle.opinions[{n}].when: fact 'admin_rank' is produced neither"
        " by form 'employment_unit' nor by the self-check of category 'employment_collective'"
        " (collective): the departments to consult about its nominees cannot be decided"
    )


def test_a_rule_that_excludes_the_other_kind_loads() -> None:
    data = _data()
    county = {"fact": "admin_rank", "eq": "county_division"}
    when = {"all": [{"fact": "nominee_kind", "eq": "individual"}, county]}
    data["lifecycle"]["opinions"].append({"when": when, "departments": ["审计部门"]})
    c = parse_campaign(yaml.dump(data, Dumper=_Dumper, allow_unicode=True), EMPLOYMENT)
    assert c.lifecycle is not None
    facts = opinion_facts(
        "individual", {"unit_type": "no_unit", "admin_rank": "county_division"}, {}
    )
    assert opinion_departments(c.lifecycle, facts) == [POLICE, "审计部门"]


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        pytest.param(
            {"fact": "unit_type", "eq": "factory"},
            "'factory' is not a choice of 'unit_type'",
            id="a value the field does not offer",
        ),
        pytest.param(
            {
                "all": [
                    {"fact": "unit_type", "eq": "enterprise"},
                    {"fact": "is_non_public", "eq": "yes"},
                ]
            },
            "'is_non_public' is bool, compared with 'yes'",
            id="a string for a yes/no field",
        ),
        pytest.param(
            {"fact": "nominee_kind", "eq": "unit"},
            "'unit' is not a value of 'nominee_kind' (individual, collective)",
            id="a kind of nominee that does not exist",
        ),
    ],
)
def test_a_rule_on_a_value_the_nominee_cannot_have_is_refused(
    when: dict[str, Any], problem: str
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["lifecycle"]["opinions"][1]["when"] = when

    assert _refused(change) == f"{EMPLOYMENT}: lifecycle.opinions[1].when: {problem}"
