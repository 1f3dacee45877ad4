"""Who receives which documents and what they show (issue 12): the audience of each role, full
ID numbers and phones only for the province and the clerk's own form, and the /rank input."""

from __future__ import annotations

import pytest

from conversations.documents import (
    CLERK_SET,
    OFFICIAL_SET,
    Audience,
    DocKind,
    apply_order,
    audience_for,
    documents_for,
    shows_in_full,
)
from conversations.identity import Actor, Level, Role


@pytest.mark.parametrize(
    ("actor", "audience", "documents"),
    [
        (None, None, ()),
        (Actor(Role.APPLICANT), None, ()),
        (Actor(Role.CLERK, region="220104", unit_id=1), Audience.UNIT, CLERK_SET),
        (Actor(Role.OFFICIAL, "220104", Level.COUNTY), Audience.COUNTY, OFFICIAL_SET),
        (Actor(Role.OFFICIAL, "220100", Level.CITY), Audience.CITY, OFFICIAL_SET),
        (Actor(Role.OFFICIAL, "220000", Level.PROVINCE), Audience.PROVINCE, OFFICIAL_SET),
    ],
)
def test_each_role_has_its_audience_and_its_set(
    actor: Actor | None, audience: Audience | None, documents: tuple[DocKind, ...]
) -> None:
    assert audience_for(actor) == audience
    assert documents_for(actor) == documents


def test_a_clerk_gets_no_public_list_and_an_office_gets_one() -> None:
    assert DocKind.PUBLICITY not in CLERK_SET
    assert DocKind.PUBLICITY in OFFICIAL_SET


def test_full_numbers_only_for_the_province_and_the_clerks_own_form() -> None:
    full = {(a, k) for a in Audience for k in DocKind if shows_in_full(a, k)}
    assert full == {(Audience.PROVINCE, k) for k in DocKind if k is not DocKind.PUBLICITY} | {
        (Audience.UNIT, DocKind.FORM)
    }


@pytest.mark.parametrize(
    ("typed", "order"),
    [
        ("3 1 2", [30, 10, 20]),
        ("3，1，2", [30, 10, 20]),
        ("３、１", [30, 10, 20]),  # full-width digits; 2 left out keeps its place after
        ("2", [20, 10, 30]),
    ],
)
def test_a_typed_order_becomes_the_ranking(typed: str, order: list[int]) -> None:
    assert apply_order([10, 20, 30], typed) == order


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "请按新的顺序输入序号"),
        ("3 a", "「a」不是序号"),
        ("4 1", "没有第 4 项"),
        ("0", "没有第 0 项"),
        ("1 1", "第 1 项写了两次"),
    ],
)
def test_a_wrong_order_is_answered_in_chinese(typed: str, said: str) -> None:
    answer = apply_order([10, 20, 30], typed)
    assert isinstance(answer, str)
    assert said in answer
