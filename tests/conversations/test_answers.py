"""Answer parsers and ID numbers: examples plus hypothesis properties."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.answers import (
    MAX_INPUT,
    AnswerError,
    parse_answer,
    parse_bool,
    parse_date,
    parse_enum,
    parse_int,
)
from conversations.campaign import Fact, FactType
from conversations.facts import Choice
from conversations.idnumber import (
    IdNumberError,
    check_digit,
    mask_id_number,
    parse_id_number,
)

TODAY = dt.date(2026, 11, 27)
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("是", True), ("否", False), ("对", True), ("不是", False), ("有", True),
        ("没有", False), ("y", True), ("n", False), ("Y", True), ("1", True), ("2", False),
        ("１", True), (" 是。", True), ("true", True), ("false", False),
    ],
)  # fmt: skip
def test_parse_bool_accepts_what_people_type(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


@pytest.mark.parametrize("text", ["也许", "3", "", "是否", "yes no"])
def test_parse_bool_refuses_anything_else(text: str) -> None:
    with pytest.raises(AnswerError, match="是"):
        parse_bool(text)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "年", "岁", " 年"]))
def test_parse_int_roundtrips_ascii_and_fullwidth(n: int, suffix: str) -> None:
    assert parse_int(f"{n}{suffix}") == n
    assert parse_int(f"{n}".translate(FULLWIDTH) + suffix) == n


@pytest.mark.parametrize("text", ["八点五", "8.5", "abc", "--3", "1e3", "三年半"])
def test_parse_int_refuses_non_integers(text: str) -> None:
    with pytest.raises(AnswerError, match="整数"):
        parse_int(text)


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_parse_date_accepts_every_documented_form(day: dt.date) -> None:
    forms = [
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        day.strftime("%Y%m%d"),
        day.isoformat().translate(FULLWIDTH),
    ]
    for form in forms:
        assert parse_date(form) == day, form


@pytest.mark.parametrize("text", ["2022-02-30", "2021年2月29日", "20221301", "1990/13/1"])
def test_parse_date_refuses_impossible_dates(text: str) -> None:
    with pytest.raises(AnswerError, match="不是一个真实的日期"):
        parse_date(text)


def test_parse_date_refuses_unknown_format() -> None:
    with pytest.raises(AnswerError, match="格式"):
        parse_date("上个月")


LEVEL = Fact(
    key="skill_level",
    type=FactType.ENUM,
    label="等级",
    question="等级？",
    choices=[
        Choice(value="none", label="无"),
        Choice(value="senior", label="高级工（三级）"),
        Choice(value="technician", label="技师（二级）"),
        Choice(value="senior_technician", label="高级技师（一级）"),
    ],
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2", "senior"), ("２", "senior"), ("高级工", "senior"), ("高级工（三级）", "senior"),
     ("技师", "technician"), ("高级技师", "senior_technician"), ("senior_technician",
     "senior_technician")],
)  # fmt: skip
def test_parse_enum_by_number_label_or_value(text: str, expected: str) -> None:
    assert parse_enum(text, LEVEL) == expected


@pytest.mark.parametrize("text", ["0", "5", "师", "高级"])
def test_parse_enum_refuses_unknown(text: str) -> None:
    with pytest.raises(AnswerError, match="1–4"):
        parse_enum(text, LEVEL)


YEARS = Fact(
    key="years",
    type=FactType.INT,
    label="年限",
    question="多少年？",
    min=0,
    max=60,
    max_message="从事本职业的年限不超过 60 年，请核对。",
)


def test_bounds_use_the_campaign_message() -> None:
    with pytest.raises(AnswerError, match="不超过 60 年"):
        parse_answer(YEARS, "61", today=TODAY)
    assert parse_answer(YEARS, "60年", today=TODAY) == 60


@given(st.text(min_size=MAX_INPUT + 1, max_size=MAX_INPUT + 50))
def test_overlong_input_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(AnswerError, match="太长"):
        parse_answer(YEARS, text, today=TODAY)


@given(st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs"]), max_size=30))
def test_blank_or_control_only_input_is_refused(text: str) -> None:
    with pytest.raises(AnswerError):
        parse_answer(YEARS, text, today=TODAY)


# ----- ID numbers (GB 11643) -----------------------------------------------------------------

ID_FACT = Fact(key="id_number", type=FactType.ID_NUMBER, label="身份证号", question="身份证号？")


def make_id(region: str, born: dt.date, seq: int) -> str:
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    return body + check_digit(body)


regions = st.integers(min_value=110000, max_value=829999).map(str)
births = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY)


def test_standard_example_validates() -> None:
    # GB 11643-1999's own example, with a lower-case x as people type it.
    assert parse_id_number("11010519491231002x", today=TODAY).value == "11010519491231002X"


@given(regions, births, st.integers(min_value=0, max_value=999))
def test_every_well_formed_number_validates_and_keeps_its_birth_date(
    region: str, born: dt.date, seq: int
) -> None:
    number = make_id(region, born, seq)
    parsed = parse_id_number(number, today=TODAY)
    assert parsed.birth_date == born
    assert parsed.is_male == (seq % 2 == 1)


@given(regions, births, st.integers(min_value=0, max_value=999), st.integers(0, 16))
def test_any_single_digit_change_is_caught(
    region: str, born: dt.date, seq: int, position: int
) -> None:
    number = make_id(region, born, seq)
    digit = (int(number[position]) + 1) % 10
    changed = number[:position] + str(digit) + number[position + 1 :]
    with pytest.raises(IdNumberError):
        parse_id_number(changed, today=TODAY)


@given(regions, st.integers(min_value=0, max_value=999))
def test_impossible_birth_dates_are_refused(region: str, seq: int) -> None:
    body = f"{region}19900230{seq:03d}"
    with pytest.raises(IdNumberError, match="出生日期"):
        parse_id_number(body + check_digit(body), today=TODAY)


def test_future_birth_date_is_refused() -> None:
    body = "22010420990101002"
    with pytest.raises(IdNumberError, match="不合理"):
        parse_id_number(body + check_digit(body), today=TODAY)


def test_county_code_that_did_not_exist_in_the_birth_year_is_accepted() -> None:
    # DESIGN §6: 110115 (大兴区) exists only from 2001, yet numbers coded after the change carry it
    # for people born earlier. stdnum.cn.ric.validate rejects these; we must not.
    number = make_id("110115", dt.date(1990, 5, 17), 21)
    assert parse_id_number(number, today=TODAY).region_code == "110115"


@pytest.mark.parametrize(
    ("text", "why"),
    [("2201041990", "18 位"), ("22010419900101002A", "最后一位"), ("22010419900101O024", "前 17")],
)
def test_malformed_numbers_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(IdNumberError, match=why):
        parse_id_number(text, today=TODAY)


@given(regions, births, st.integers(min_value=0, max_value=999))
def test_masking_hides_the_birth_date(region: str, born: dt.date, seq: int) -> None:
    number = make_id(region, born, seq)
    masked = mask_id_number(number)
    assert masked == number[:6] + "********" + number[-4:]
    assert f"{born:%Y%m%d}" not in masked


def test_id_answer_through_parse_answer_is_normalised() -> None:
    number = make_id("220104", dt.date(1985, 6, 1), 2)
    assert parse_answer(ID_FACT, f" {number.lower()} ", today=TODAY) == number
