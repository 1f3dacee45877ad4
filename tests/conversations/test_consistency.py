"""conversations.consistency on its own: what disagrees, which values it names, refuse or warn,
and the `consistency:` section checked when a campaign loads (issue 11)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import catalog as bot_catalog
from conversations.campaign import Campaign, CampaignError
from conversations.consistency import (
    MIN_WORKING_AGE,
    Filer,
    Severity,
    answer_disagreements,
    birth_date_problem,
    form_disagreements,
    same_unit_name,
)
from conversations.forms import form_for
from conversations.idnumber import check_digit
from conversations.loader import parse_campaign
from conversations.reads import CodeHolder
from conversations.validators import uscc_check_char

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2022, 10, 20)


def campaign(campaign_id: str) -> Campaign:
    return bot_catalog.load_catalog(ROOT / "campaigns").get(campaign_id)


def id_number(born: str) -> str:
    body = f"220104{born.replace('-', '')}002"
    return body + check_digit(body)


def uscc(body17: str) -> str:
    return body17 + uscc_check_char(body17)


class Records:
    """The two reads the code checks make."""

    def __init__(self, holders: list[CodeHolder] | None = None) -> None:
        self.holders = holders or []

    def region_name(self, code: str) -> str:
        return {"220104": "长春市朝阳区", "220581": "梅河口市"}.get(code, code)

    def code_holders(self, code: str) -> list[CodeHolder]:
        return list(self.holders)


@pytest.mark.parametrize(
    ("value", "today", "refused"),
    [
        ("1900-01-01", TODAY, False),
        ("1899-12-31", TODAY, True),
        ("2022-10-20", TODAY, False),  # born today: a birth date (the age rule refuses it)
        ("2022-10-21", TODAY, True),
        ("2022-12-01", dt.date(2023, 1, 1), False),  # the as_of day itself: age 0
        ("2022-12-02", dt.date(2023, 1, 1), True),  # after the as_of: a negative age
    ],
)
def test_a_birth_date_between_1900_and_the_earlier_of_today_and_as_of(
    value: str, today: dt.date, refused: bool
) -> None:
    found = birth_date_problem(campaign("jl-employment-2022"), "birth_date", value, today=today)
    assert (found is not None) == refused
    if found is not None:
        assert found.facts == ("birth_date",)
        assert found.severity is Severity.REFUSE


def test_a_fact_that_is_no_birth_date_is_not_checked() -> None:
    employment = campaign("jl-employment-2022")
    assert birth_date_problem(employment, "years_in_role_total", 5, today=TODAY) is None


def test_years_of_work_up_to_the_age_less_16_agree() -> None:
    employment = campaign("jl-employment-2022")
    # 30 on the as_of day (2022-12-01, later than TODAY): at most 14 years.
    answers: dict[str, Any] = {"birth_date": "1992-12-01", "person_type": "employment_staff"}
    assert MIN_WORKING_AGE == 16
    ok = answer_disagreements(employment, {**answers, "years_in_role_total": 14}, today=TODAY)
    assert ok == []
    [found] = answer_disagreements(employment, {**answers, "years_in_role_total": 15}, today=TODAY)
    assert found.facts == ("birth_date", "years_in_role_total")
    assert "到 2022-12-01 年满 30 周岁" in found.message


def test_the_later_of_as_of_and_today_counts_the_age_for_years_of_work() -> None:
    employment = campaign("jl-employment-2022")
    answers = {"birth_date": "1992-12-01", "years_in_role_total": 15}
    assert answer_disagreements(employment, answers, today=dt.date(2023, 12, 1)) == []


def test_two_birth_dates_disagree_and_both_are_named() -> None:
    employment = campaign("jl-employment-2022")
    answers = {"birth_date": "1985-06-15", "id_number": id_number("1985-06-16")}
    [found] = answer_disagreements(employment, answers, today=TODAY)
    assert found.facts == ("birth_date", "id_number")
    assert "出生日期（1985-06-15）" in found.message
    assert "公民身份号码第 7–14 位的出生日期（1985-06-16）" in found.message
    same = {"birth_date": "1985-06-15", "id_number": id_number("1985-06-15")}
    assert answer_disagreements(employment, same, today=TODAY) == []


def unit_values(code: str, name: str = "长春市朝阳区示例有限公司") -> dict[str, Any]:
    return {"unit_name": name, "uscc": code}


def unit_check(
    values: dict[str, Any],
    holders: list[CodeHolder] | None = None,
    facts: dict[str, Any] | None = None,
) -> list[Any]:
    employment = campaign("jl-employment-2022")
    form = form_for(employment, "employment_collective")
    assert form is not None
    return form_disagreements(
        employment, form, values, facts or {}, today=TODAY,
        filer=Filer(unit_id=1, region="220104", tracking_code="MINE0001"), reads=Records(holders),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("division", "warned"),
    [
        ("220104", False),  # the clerk's county
        ("220100", False),  # 长春市: its registration authority covers the county
        ("220000", False),  # the province
        ("220105", True),  # another county of the city
        ("220581", True),
        ("110105", True),  # another province
    ],
)
def test_a_code_registered_outside_the_region_is_a_warning(division: str, warned: bool) -> None:
    found = unit_check(unit_values(uscc(f"91{division}MA14QWER9")))
    assert [d.severity for d in found] == ([Severity.WARN] if warned else [])
    if warned:
        assert found[0].fields == ("uscc",)


def test_registration_digits_that_are_no_division_code_are_a_warning() -> None:
    [found] = unit_check(unit_values(uscc("91ABCDEFMA14QWER9")))
    assert found.severity is Severity.WARN
    assert "“ABCDEF”不是行政区划代码" in found.message


def test_a_code_held_under_another_name_is_refused_naming_code_and_name() -> None:
    code = uscc("91220104MA14QWER9")
    registered = CodeHolder(name="长春市朝阳区示例有限公司", unit_id=7)
    assert unit_check(unit_values(code), [registered]) == []  # the same unit, filed by another
    [found] = unit_check(unit_values(code, "另一家公司"), [registered])
    assert found.severity is Severity.REFUSE
    assert found.fields == ("uscc", "unit_name")
    assert "已登记为「长春市朝阳区示例有限公司」" in found.message


def test_nominations_that_hold_a_code() -> None:
    code = uscc("91220104MA14QWER9")
    name = "长春市朝阳区示例有限公司"

    def held(**kw: Any) -> CodeHolder:
        return CodeHolder(**{"name": name, "unit_id": 2, "campaign": "jl-employment-2022",
                             "tracking_code": "OTHER001", **kw})  # fmt: skip

    assert unit_check(unit_values(code), [held(active=False)]) == []  # withdrawn: holds none
    assert unit_check(unit_values(code), [held(tracking_code="MINE0001")]) == []  # this one
    assert unit_check(unit_values(code), [held(unit_id=1)]) == []  # ours: the cross rules' call
    assert unit_check(unit_values(code), [held(campaign="next-year")]) == []  # another campaign
    [again] = unit_check(unit_values(code), [held()])
    assert "「四、（三）」推荐对象不能重复申报" in again.message
    [other] = unit_check(unit_values(code), [held(name="别的公司", campaign="next-year")])
    assert "已用于另一项推荐的「别的公司」" in other.message


def test_founding_date_against_the_years_answered() -> None:
    code = uscc("91220104MA14QWER9")
    # 2012-11-01: 9 full years on TODAY (2022-10-20), 10 on the as_of (2022-12-01).
    values = {**unit_values(code), "founded_on": "2012-11-01"}
    for years in (9, 10):
        assert unit_check(values, facts={"years_since_founding": years}) == []
    [more] = unit_check(values, facts={"years_since_founding": 11})
    assert (more.severity, more.facts, more.fields) == (
        Severity.REFUSE,
        ("years_since_founding",),
        ("founded_on",),
    )
    [fewer] = unit_check(values, facts={"years_since_founding": 8})
    assert fewer.severity is Severity.WARN


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("长春市朝阳区示例有限公司", "长春市朝阳区示例有限公司", True),
        ("吉林（长春）示例有限公司", "吉林(长春)示例有限公司", True),  # full and half width
        ("长春市 朝阳区示例有限公司", "长春市朝阳区示例有限公司", True),
        ("长春市朝阳区示例公司", "长春市朝阳区示例有限公司", False),
    ],
)
def test_unit_names_compare_by_their_words(one: str, other: str, same: bool) -> None:
    assert same_unit_name(one, other) is same


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"working_years": ["nope"]}, "consistency.working_years[0]: 'nope' is no fact"),
        ({"working_years": ["birth_date"]}, "fact 'birth_date' is date, not int"),
        ({"founding": [{"date": "staff_count", "years": "years_since_founding"}]},
         "consistency.founding[0].date: 'staff_count' is not a date field"),
        ({"founding": [{"date": "founded_on", "years": "unit_type"}]},
         "consistency.founding[0].years: 'unit_type' is not an int fact"),
        ({"working": []}, "consistency.working"),
    ],
)  # fmt: skip
def test_a_wrong_consistency_section_is_a_load_error(section: dict[str, Any], error: str) -> None:
    path = ROOT / "campaigns" / "jl-employment-2022.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["consistency"] = section
    with pytest.raises(CampaignError) as info:
        parse_campaign(yaml.safe_dump(data, allow_unicode=True), "campaigns/bad.yaml")
    assert error in str(info.value)
