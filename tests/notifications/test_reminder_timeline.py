"""Reminders over a whole campaign timeline, under a controllable clock (issue 10).

The real pieces: clerks, officials and applicants talk to the bot through the console harness
(the real assistant, runtime and writer, so their steps plan what they will receive); the real
ticker hands due reminders to the real outbox, whose dispatcher delivers them to a recording
console sender. The clock is moved by the test, every 30 minutes across the weeks of seed 001.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import ConsoleHarness
from support.keys import TEST_SEALER
from support.review_rig import clerk, official, place, status_of
from support.timeline import Timeline, local

from conversations.effects import Scope
from conversations.identity import Level
from storage import reminders as rows
from storage.store import Store
from storage.tables import users

WINDOW_REMINDERS = [  # seed 001: materials only on 2022-11-03/04; 7, 3, 1 days before, each day
    local(2022, 10, 27, 8, 30),
    local(2022, 10, 31, 8, 30),
    local(2022, 11, 2, 8, 30),
    local(2022, 11, 3, 8, 30),
    local(2022, 11, 4, 8, 30),
]


@pytest.fixture
def lite(tmp_path: Path) -> Store:
    """SQLite only (the whole timeline runs on both backends: the `store` fixture)."""
    with Store(f"sqlite:///{tmp_path / 'timeline.db'}", sealer=TEST_SEALER) as s:
        yield s


def applicant(store: Store, timeline: Timeline, name: str = "applicant") -> ConsoleHarness:
    person = ConsoleHarness(store, user=name, clock=timeline.clock)
    person.open()
    return person


def entries(store: Store, **where: object) -> list[rows.ReminderEntry]:
    with store.reading() as conn:
        return rows.entries(conn, store.sealer, **where)  # type: ignore[arg-type]


def test_the_whole_timeline_of_seed_001_every_reminder_once_at_its_time(store: Store) -> None:
    with Timeline(store, now=local(2022, 9, 28, 9, 0)) as line:
        walk_the_timeline(store, line)


def walk_the_timeline(store: Store, line: Timeline) -> None:
    unit = clerk(store, clock=line.clock)
    nomination = place(store, status="draft")
    # The unit's publicity starts on 2022-09-29: 5 working days across National Day (10-01 to
    # 10-07 off, 10-08 and 10-09 make-up working days) end on 10-10.
    line.at(local(2022, 9, 29, 10, 0))
    unit.send("/mine")
    unit.send("1")
    assert "公示" in unit.send("开始单位公示")
    assert status_of(store, nomination) == "unit_publicity"
    line.run(until=local(2022, 10, 12, 9, 0))
    # The notice date: an applicant asks for the window reminders of the skills campaign.
    person = applicant(store, line)
    assert "已开启" in person.send("/subscribe 2")
    line.run(until=local(2022, 11, 5, 23, 30))

    publicity = [d for d in line.of("clerk") if "公示" in d.text and "报送推荐材料" not in d.text]
    assert [(d.at, d.kind) for d in publicity] == [
        (local(2022, 10, 10, 8, 30), "deadline"),  # the last day of the publicity
        (local(2022, 10, 11, 8, 30), "deadline"),  # the next working day: record the outcome
    ]
    assert "今天是最后一天" in publicity[0].text
    assert "2022-09-29 至 2022-10-10" in publicity[0].text
    assert "记录公示结果" in publicity[1].text
    for who in ("clerk", "applicant"):
        windows = line.of(who, "window")
        assert [d.at for d in windows] == WINDOW_REMINDERS, who
        for d in windows:  # the strict window's warning, the address and the contact
            assert "提前或逾期报送均不予受理" in d.text
            assert "长春市亚泰大街3336号" in d.text
            assert "0431-88690627" in d.text
        assert "还有 7 天" in windows[0].text
        assert "今天是最后一天" in windows[-1].text
    assert all(8 <= d.at.hour < 21 for d in line.delivered), "nothing between 21:00 and 08:00"
    assert max(Counter(d.key for d in line.delivered).values()) == 1, "every reminder once"
    assert {d.user for d in line.delivered} == {"clerk", "applicant"}


def test_a_reminder_missed_while_down_is_sent_once_at_start_while_still_useful(
    lite: Store,
) -> None:
    line = Timeline(lite, now=local(2022, 10, 20, 9, 0))
    person = applicant(lite, line)
    person.send("/subscribe 2")
    line.run(until=local(2022, 11, 2, 8, 0))
    assert [d.at for d in line.of("applicant")] == WINDOW_REMINDERS[:2]
    # Down from 08:00 to 10:00 on 11-02: the 08:30 reminder of "1 day to go" is still useful.
    line.at(local(2022, 11, 2, 10, 0))
    line.ticker = line.new_ticker()
    line.run(until=local(2022, 11, 4, 12, 0))
    assert (
        [d.at for d in line.of("applicant")]
        == [
            *WINDOW_REMINDERS[:2],
            local(2022, 11, 2, 10, 0),  # at start, once
            *WINDOW_REMINDERS[3:],
        ]
    )


def test_a_reminder_whose_deadline_passed_while_down_is_skipped_with_the_reason(
    lite: Store,
) -> None:
    line = Timeline(lite, now=local(2022, 10, 20, 9, 0))
    applicant(lite, line).send("/subscribe 2")
    line.run(until=local(2022, 11, 2, 8, 0))
    # Down from 11-02 08:00 to 11-03 09:00: "opens tomorrow" is no use the day after.
    line.at(local(2022, 11, 3, 9, 0))
    line.ticker = line.new_ticker()
    line.run(until=local(2022, 11, 3, 12, 0))
    assert [d.at for d in line.of("applicant")] == [
        *WINDOW_REMINDERS[:2],
        local(2022, 11, 3, 9, 0),  # today's "the window is open", late but the same day
    ]
    skipped = entries(lite, status="skipped")
    assert [(e.topic, e.due_at.astimezone(local(2022, 1, 1).tzinfo)) for e in skipped] == [
        ("window_soon", local(2022, 11, 2, 8, 30))
    ]
    assert "错过" in (skipped[0].reason or "")
    assert "2022-11-02 21:00" in (skipped[0].reason or "")


def test_a_ticker_started_in_quiet_hours_waits_until_eight(lite: Store) -> None:
    line = Timeline(lite, now=local(2022, 10, 20, 9, 0))
    applicant(lite, line).send("/subscribe 2")
    line.run(until=local(2022, 11, 2, 8, 0))
    line.at(local(2022, 11, 2, 23, 10))  # back at 23:10: the 08:30 reminder waits for morning
    line.ticker = line.new_ticker()
    line.run(until=local(2022, 11, 3, 8, 0), every=dt.timedelta(minutes=10))
    assert [d.at for d in line.of("applicant")][2:] == []
    line.run(until=local(2022, 11, 3, 9, 0), every=dt.timedelta(minutes=10))
    # 11-02's "tomorrow" was past its deadline (21:00 that day): skipped; 11-03's at 08:30 as
    # planned, nothing at night.
    assert [d.at for d in line.of("applicant")][2:] == [local(2022, 11, 3, 8, 30)]


def test_moving_a_window_replans_and_nothing_stale_is_sent(lite: Store) -> None:
    line = Timeline(lite, now=local(2022, 10, 12, 9, 0))
    applicant(lite, line).send("/subscribe 2")
    line.run(until=local(2022, 10, 28, 9, 0))
    assert [d.at for d in line.of("applicant")] == WINDOW_REMINDERS[:1]
    campaign = line.planning.catalog.get("jl-skills-2022")
    with lite.transaction() as conn:  # what `awardbot campaign window set` does
        rows.move_window(
            conn, campaign, "submission", dt.date(2022, 11, 10), dt.date(2022, 11, 11),
            now=line.now,
        )  # fmt: skip
        change = line.planning.replan(conn, lite.sealer, Scope(campaign.id), now=line.now)
    assert change.superseded == 4
    assert change.added == 5
    line.run(until=local(2022, 11, 12, 12, 0))
    assert [d.at for d in line.of("applicant")] == [
        WINDOW_REMINDERS[0],  # sent before the move
        local(2022, 11, 3, 8, 30),  # 7 days before 11-10
        local(2022, 11, 7, 8, 30),
        local(2022, 11, 9, 8, 30),
        local(2022, 11, 10, 8, 30),
        local(2022, 11, 11, 8, 30),
    ]
    assert "2022-11-10" in line.of("applicant")[1].text
    superseded = [e for e in entries(lite, status="skipped") if e.reason == rows.SUPERSEDED]
    assert len(superseded) == 4


def test_a_stage_change_supersedes_the_old_stages_reminders(lite: Store) -> None:
    line = Timeline(lite, now=local(2022, 9, 29, 10, 0))
    unit = clerk(lite, clock=line.clock)
    nomination = place(lite, status="draft")
    unit.send("/mine")
    unit.send("1")
    unit.send("开始单位公示")
    pending = entries(lite, status="pending", campaign="jl-skills-2022")
    assert {e.topic for e in pending if e.nomination_id == nomination} == {
        "publicity_last_day", "publicity_outcome",
    }  # fmt: skip
    line.run(until=local(2022, 10, 8, 10, 0))
    unit.send("/mine")
    unit.send("1")
    unit.send("撤回推荐")
    unit.send("公示期间收到异议，单位决定撤回")  # the reason, then the confirmation (issue 11)
    unit.send("确定撤回推荐")
    assert status_of(lite, nomination) == "withdrawn"
    line.run(until=local(2022, 10, 12, 12, 0))
    assert [d for d in line.of("clerk") if "公示" in d.text] == []
    stale = [e for e in entries(lite, status="skipped") if e.nomination_id == nomination]
    assert {e.reason for e in stale} == {rows.SUPERSEDED}


def test_unsubscribe_is_honoured(lite: Store) -> None:
    line = Timeline(lite, now=local(2022, 10, 12, 9, 0))
    person = applicant(lite, line)
    person.send("/subscribe 2")
    line.run(until=local(2022, 10, 28, 9, 0))
    assert "已关闭" in person.send("/unsubscribe")
    line.run(until=local(2022, 11, 5, 9, 0))
    assert [d.at for d in line.of("applicant")] == WINDOW_REMINDERS[:1]
    assert entries(lite, status="pending", user_id=None) == []


def test_an_unsubscribe_after_planning_is_honoured_at_hand_off(lite: Store) -> None:
    """Even a row planned before the preference changed is not sent (checked when due)."""
    line = Timeline(lite, now=local(2022, 10, 12, 9, 0))
    applicant(lite, line).send("/subscribe 2")
    line.tick()  # the ticker leads and has planned: it does not re-plan again
    with lite.transaction() as conn:  # the preference alone, no re-plan
        user = conn.execute(sa.select(users.c.id)).scalar_one()
        rows.set_pref(conn, user, None, "all", False, now=line.now)
    line.run(until=local(2022, 10, 28, 9, 0))
    assert line.of("applicant") == []
    assert {e.reason for e in entries(lite, status="skipped")} == {rows.TURNED_OFF}


def test_the_digest_is_skipped_when_empty_and_says_what_waits(lite: Store) -> None:
    line = Timeline(lite, now=local(2022, 10, 12, 9, 0))
    clerk(lite, clock=line.clock)  # the unit of 220104 (朝阳区, under 长春市)
    official(lite, "city", "220100", Level.CITY, clock=line.clock)
    line.run(until=local(2022, 10, 13, 12, 0))
    assert line.of("city", "digest") == []
    digests = [e for e in entries(lite, campaign="jl-skills-2022") if e.topic == "digest"]
    settled = [(e.due_at, e.status, e.reason) for e in digests if e.status != "pending"]
    assert settled == [  # 10-12 (bound at 09:00, so due then) and 10-13, nothing to say
        (local(2022, 10, 12, 9, 0), "skipped", rows.NOTHING_TO_SAY),
        (local(2022, 10, 13, 8, 30), "skipped", rows.NOTHING_TO_SAY),
    ]
    place(lite, status="city_review")
    line.run(until=local(2022, 10, 14, 12, 0))
    [digest] = line.of("city", "digest")
    assert digest.at == local(2022, 10, 14, 8, 30)
    assert "市（州）级综合评审 1 件" in digest.text
