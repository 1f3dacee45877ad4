"""The reminder planner, pure (conversations.reminders): what is due, to whom, when, its keys."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.console_harness import CAMPAIGNS, catalog

from bot.catalog import load_catalog
from bot.wiring import CalendarWorkdays
from conversations.campaign import CampaignError
from conversations.identity import Level
from conversations.reads import PortRefusal
from conversations.reminder_spec import ReminderSpec, Topic
from conversations.reminders import (
    SHANGHAI,
    DigestReader,
    PlanFacts,
    PlanNomination,
    compose_digest,
    kind_of,
    out_of_quiet_hours,
    plan,
)
from notifications.calendar import WorkdayCalendar
from notifications.notice import NOTICE_KINDS

CALENDAR = CalendarWorkdays(WorkdayCalendar(CAMPAIGNS / "calendar.yaml"))
SKILLS = catalog().get("jl-skills-2022")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def facts(now: dt.datetime, **kw: object) -> PlanFacts:
    values: dict[str, object] = {
        "campaign": SKILLS,
        "windows": tuple(SKILLS.windows),
        "window_versions": {"submission": 0},
        "now": now,
    }
    values.update(kw)
    return PlanFacts(**values)  # type: ignore[arg-type]


def nomination(status: str, since: dt.datetime, **kw: object) -> PlanNomination:
    values: dict[str, object] = {
        "id": 7, "version": 3, "category": "technical_expert", "status": status, "since": since,
        "tracking_code": "CODE7", "nominee": "张*三", "clerks": frozenset({1}),
        "officials": {"county": frozenset({2}), "city": frozenset({3}),
                      "province": frozenset({4})},
    }  # fmt: skip
    values.update(kw)
    return PlanNomination(**values)  # type: ignore[arg-type]


def due(result: object, topic: Topic) -> list[tuple[int, dt.datetime]]:
    return [(r.user_id, r.due) for r in result.reminders if r.topic is topic]  # type: ignore[attr-defined]


class NoYear:
    """A calendar that knows no year (as one would for a year not yet published)."""

    def is_workday(self, day: dt.date) -> bool:
        raise PortRefusal(f"工作日历没有 {day.year} 年的放假安排")

    def nth_workday(self, start: dt.date, n: int) -> dt.date:
        raise PortRefusal(f"工作日历没有 {start.year} 年的放假安排")


def test_window_reminders_7_3_1_days_before_and_each_day_open_at_half_past_eight() -> None:
    result = plan(facts(local(2022, 10, 12, 9), window_audience=frozenset({5})), CALENDAR)
    assert [d for _, d in due(result, Topic.WINDOW_SOON)] == [
        local(2022, 10, 27, 8, 30), local(2022, 10, 31, 8, 30), local(2022, 11, 2, 8, 30),
    ]  # fmt: skip
    assert [d for _, d in due(result, Topic.WINDOW_OPEN)] == [
        local(2022, 11, 3, 8, 30), local(2022, 11, 4, 8, 30),
    ]  # fmt: skip


def test_a_reminder_already_past_is_not_planned_and_one_due_today_goes_now() -> None:
    result = plan(facts(local(2022, 11, 2, 10, 0), window_audience=frozenset({5})), CALENDAR)
    assert [d for _, d in due(result, Topic.WINDOW_SOON)] == [local(2022, 11, 2, 10, 0)]


def test_nothing_is_due_at_night() -> None:
    assert out_of_quiet_hours(local(2022, 11, 2, 21, 0)) == local(2022, 11, 3, 8, 0)
    assert out_of_quiet_hours(local(2022, 11, 2, 23, 59)) == local(2022, 11, 3, 8, 0)
    assert out_of_quiet_hours(local(2022, 11, 3, 7, 59)) == local(2022, 11, 3, 8, 0)
    assert out_of_quiet_hours(local(2022, 11, 3, 8, 0)) == local(2022, 11, 3, 8, 0)
    with pytest.raises(ValueError, match="quiet hours"):
        ReminderSpec.model_validate({**SKILLS.reminders.model_dump(), "at": "22:30"})  # type: ignore[union-attr]


def test_publicity_last_day_and_the_next_working_day_across_national_day() -> None:
    n = nomination(
        "unit_publicity", local(2022, 9, 29, 10),
        publicity=(dt.date(2022, 9, 29), dt.date(2022, 10, 10)),
    )  # fmt: skip
    result = plan(facts(local(2022, 9, 29, 10), nominations=(n,)), CALENDAR)
    assert due(result, Topic.PUBLICITY_LAST_DAY) == [(1, local(2022, 10, 10, 8, 30))]
    assert due(result, Topic.PUBLICITY_OUTCOME) == [(1, local(2022, 10, 11, 8, 30))]


def test_a_city_publicity_reminds_the_city_officials_and_warns_of_the_window() -> None:
    n = nomination(
        "city_publicity", local(2022, 10, 24, 10),
        publicity=(dt.date(2022, 10, 24), dt.date(2022, 10, 28)),
    )  # fmt: skip
    result = plan(facts(local(2022, 10, 24, 10), nominations=(n,)), CALENDAR)
    assert due(result, Topic.PUBLICITY_LAST_DAY) == [(3, local(2022, 10, 28, 8, 30))]
    # city_finish_publicity delivers to the province in the strict window: the day before it
    # closes and the day it closes, the city officials are told.
    assert due(result, Topic.WINDOW_CLOSING) == [
        (3, local(2022, 11, 3, 8, 30)), (3, local(2022, 11, 4, 8, 30)),
    ]  # fmt: skip


def test_waiting_at_a_level_longer_than_n_working_days_alerts_its_officials() -> None:
    n = nomination("county_review", local(2022, 9, 29, 15))  # Thursday before National Day
    result = plan(facts(local(2022, 9, 29, 15), nominations=(n,), waiting_workdays=3), CALENDAR)
    # Working days after 09-29: 09-30, 10-08 (make-up Saturday), 10-09 (make-up Sunday).
    assert due(result, Topic.WAITING_AT_LEVEL) == [(2, local(2022, 10, 9, 8, 30))]


def test_a_return_not_resubmitted_after_2_and_5_working_days() -> None:
    n = nomination("returned", local(2022, 10, 17, 16), return_reason="材料不清晰")
    result = plan(facts(local(2022, 10, 17, 16), nominations=(n,)), CALENDAR)
    assert due(result, Topic.RETURNED_WAITING) == [
        (1, local(2022, 10, 19, 8, 30)), (1, local(2022, 10, 24, 8, 30)),
    ]  # fmt: skip
    body = next(r.body for r in result.reminders if r.topic is Topic.RETURNED_WAITING)
    assert "材料不清晰" in body


def test_opinions_missing_three_working_days_before_the_window() -> None:
    n = nomination("opinions", local(2022, 10, 20, 9), missing_opinions=("公安部门",))
    result = plan(facts(local(2022, 10, 20, 9), nominations=(n,)), CALENDAR)
    # 3 working days before Thursday 11-03: 10-31 (Mon), 11-01, 11-02.
    assert due(result, Topic.OPINIONS_MISSING) == [(1, local(2022, 10, 31, 8, 30))]
    n = nomination("opinions", local(2022, 10, 20, 9))  # every opinion in: nothing to say
    assert due(plan(facts(local(2022, 10, 20, 9), nominations=(n,)), CALENDAR),
               Topic.OPINIONS_MISSING) == []  # fmt: skip


def test_keys_are_stable_and_change_with_the_version_of_what_they_are_planned_from() -> None:
    n = nomination("returned", local(2022, 10, 17, 16))
    one = plan(facts(local(2022, 10, 17, 16), nominations=(n,)), CALENDAR)
    again = plan(facts(local(2022, 10, 18, 9), nominations=(n,)), CALENDAR)
    assert {r.key for r in one.reminders} == {r.key for r in again.reminders}
    moved = plan(facts(local(2022, 10, 17, 16), nominations=(nomination(
        "returned", local(2022, 10, 17, 16), version=4),)), CALENDAR)  # fmt: skip
    assert not {r.key for r in one.reminders} & {r.key for r in moved.reminders}
    w1 = plan(facts(local(2022, 10, 12), window_audience=frozenset({5})), CALENDAR)
    w2 = plan(facts(local(2022, 10, 12), window_audience=frozenset({5}),
                    window_versions={"submission": 1}), CALENDAR)  # fmt: skip
    assert not {r.key for r in w1.reminders} & {r.key for r in w2.reminders}


def test_turned_off_kinds_are_not_planned() -> None:
    n = nomination("county_review", local(2022, 10, 20, 9))
    off = plan(facts(local(2022, 10, 20, 9), nominations=(n,),
                     off={2: frozenset({"deadline"})}), CALENDAR)  # fmt: skip
    assert due(off, Topic.WAITING_AT_LEVEL) == []


def test_a_year_the_calendar_lacks_is_unplanned_with_the_reason_never_guessed() -> None:
    n = nomination("returned", local(2022, 10, 17, 16))
    result = plan(facts(local(2022, 10, 17, 16), nominations=(n,)), NoYear())
    assert due(result, Topic.RETURNED_WAITING) == []
    assert {u.topic for u in result.unplanned} == {Topic.RETURNED_WAITING}
    assert all("2022" in u.reason for u in result.unplanned)


def test_digests_on_working_days_only_composed_when_due() -> None:
    reader = DigestReader(Level.CITY, "220100", "长春市")
    result = plan(facts(local(2022, 10, 28, 9), digest_audience={3: reader}), CALENDAR)
    days = [r.due.date() for r in result.reminders if r.topic is Topic.DIGEST]
    # Friday 10-28 (planned at 09:00, so due then), then 10-31 .. 11-04: no weekend.
    assert days == [dt.date(2022, 10, d) for d in (28, 31)] + [
        dt.date(2022, 11, d) for d in (1, 2, 3, 4)
    ]
    assert all(r.body == "" for r in result.reminders)  # composed when due, from the state then


def test_an_empty_digest_says_nothing() -> None:
    reader = DigestReader(Level.CITY, "220100", "长春市")
    assert compose_digest(SKILLS, reader, dt.date(2022, 11, 1), [], [], {}) == []


def test_every_topic_has_a_text_in_the_defaults_and_unknown_variables_fail_at_load(
    tmp_path: Path,
) -> None:
    assert SKILLS.reminders is not None
    assert set(SKILLS.reminders.texts) == set(Topic)

    text = (CAMPAIGNS / "reminders.yaml").read_text(encoding="utf-8")
    for name in ("jl-skills-2022.yaml", "regions.yaml"):
        (tmp_path / name).write_text((CAMPAIGNS / name).read_text(encoding="utf-8"), "utf-8")
    (tmp_path / "reminders.yaml").write_text(
        text.replace("{{ days }} 天），", "{{ dayz }} 天），"), "utf-8"
    )
    with pytest.raises(CampaignError, match="window_soon.body: unknown variable dayz"):
        load_catalog(tmp_path)
    assert ReminderSpec.model_fields["at"].default == "08:30"


def test_every_topic_goes_out_as_a_kind_the_outbox_and_the_channels_know() -> None:
    assert {kind_of(t) for t in Topic} == {"window", "deadline", "digest"}
    assert {kind_of(t) for t in Topic} <= NOTICE_KINDS
