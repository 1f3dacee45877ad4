"""Reminders in the chat (issue 10): /reminders, /subscribe, /unsubscribe, the verdict's offer,
a campaign that is over, and the strict window the move to the province must keep."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import (
    CAMPAIGNS,
    FIXED_NOW,
    SHARED_FILES,
    ConsoleHarness,
    catalog,
    regions,
)
from support.keys import TEST_SEALER
from support.review_rig import IN_WINDOW, audit_rows, clerk, official, place, status_of

from bot.wiring import workday_end_from
from conversations.effects import Move
from conversations.identity import Level
from conversations.keys import Channel, ConversationKey
from conversations.reads import Refusal, RefusalKind
from notifications.calendar import WorkdayCalendar
from storage import reminders as rows
from storage.files import FileStore
from storage.reads import StoreReads
from storage.store import Store
from storage.writer import Writer

SH = dt.timezone(dt.timedelta(hours=8))
IN_2026 = dt.datetime(2026, 12, 2, 9, 0, tzinfo=SH)
OCTOBER = dt.datetime(2022, 10, 20, 9, 30, tzinfo=SH)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(f"sqlite:///{tmp_path / 'r.db'}", sealer=TEST_SEALER) as s:
        yield s


def person(store: Store, when: dt.datetime, name: str = "zhang") -> ConsoleHarness:
    console = ConsoleHarness(store, user=name, clock=lambda: when)
    console.open()
    return console


def pending(store: Store) -> list[rows.ReminderEntry]:
    with store.reading() as conn:
        return rows.entries(conn, store.sealer, status="pending")


# ----- over, or not ------------------------------------------------------------------------


def test_a_campaign_whose_windows_have_passed_says_so_when_chosen(store: Store) -> None:
    out = person(store, IN_2026).send("jl-skills-2022")
    assert "本次评选的报送推荐材料已于 2022-11-04 截止" in out
    assert "提前或逾期报送均不予受理" in out
    assert "[category]" in out  # and the self-check goes on: it is still a useful check


def test_a_current_campaign_says_nothing_of_the_kind(store: Store) -> None:
    assert "截止" not in person(store, OCTOBER).send("jl-skills-2022")


def test_the_employment_campaign_has_no_windows_and_no_note(store: Store) -> None:
    assert "已于" not in person(store, IN_2026).send("jl-employment-2022")


def test_a_filing_on_a_closed_campaign_says_so_too(store: Store) -> None:
    clerk(store)  # bound while the invitation was valid
    unit = ConsoleHarness(store, user="clerk", clock=lambda: IN_2026)
    unit.send("/new")
    unit.send("同意")
    out = unit.send("jl-skills-2022")
    assert "本次评选的报送推荐材料已于 2022-11-04 截止" in out
    assert "[category]" in out


# ----- the verdict's offer, /subscribe, /reminders, /unsubscribe ---------------------------


def eligible_verdict(console: ConsoleHarness) -> str:
    """A technical-expert self-check answered to an eligible verdict."""
    console.send("jl-skills-2022")
    console.send("technical_expert")
    out = console.last
    for _ in range(40):
        if console.verdict() is not None:
            return out
        key = console.asking()
        answer = {
            "works_in_jilin": "是", "frontline_skill_position": "是", "is_unit_head": "否",
            "is_retired": "否", "applying_both_awards": "否", "holds_jilin_technical_expert": "否",
            "skill_level": "高级技师", "rural_or_new_occupation_title": "否",
            "years_in_occupation": "12", "consent": "同意", "summary": "1",
        }.get(key or "", "否")  # fmt: skip
        if key and key.startswith("achv_"):
            answer = "是"
        out = console.send(answer)
    raise AssertionError(f"no verdict: {out}")


def test_the_verdict_offers_the_window_reminders_and_subscribe_plans_them(store: Store) -> None:
    console = person(store, OCTOBER)
    out = eligible_verdict(console)
    assert "发送 /subscribe 订阅本次评选的报送时间提醒" in out
    assert "开始前 7、3、1 天和报送期间每天 08:30" in out
    assert pending(store) == []
    assert "已开启：「第八届吉林技能大奖和吉林省技术能手」的报送时间提醒" in console.send(
        "/subscribe"
    )
    due = [e.due_at.astimezone(SH) for e in pending(store)]
    assert [d.date() for d in due] == [dt.date(2022, 10, 27), dt.date(2022, 10, 31),
                                       dt.date(2022, 11, 2), dt.date(2022, 11, 3),
                                       dt.date(2022, 11, 4)]  # fmt: skip
    listed = console.send("/reminders")
    assert "2022-10-27 08:30  报送推荐材料7天后开始（报送时间提醒）" in listed
    assert "第八届吉林技能大奖和吉林省技术能手：报送时间提醒开" in listed
    assert "吉林省促进就业创业和农民工工作先进集体和先进个人：报送时间提醒关" in listed


def test_unsubscribe_by_kind_and_campaign_number(store: Store) -> None:
    console = person(store, OCTOBER)
    console.send("/subscribe 2")
    assert len(pending(store)) == 5
    assert "已关闭" in console.send("/unsubscribe 报送 2")
    assert pending(store) == []
    assert "目前没有待发送的提醒" in console.send("/reminders")


def test_wrong_words_are_said_and_change_nothing(store: Store) -> None:
    console = person(store, OCTOBER)
    assert "没有“每周”这类提醒" in console.send("/subscribe 每周")
    assert "没有第 9 项评选活动" in console.send("/subscribe 9")
    assert "每日汇总只发给评审办公室的工作人员" in console.send("/subscribe 汇总")
    with store.reading() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(rows.reminder_prefs)).scalar() == 0
        )
    assert "[campaign]" in console.last  # and the question it was waiting for is asked again


def test_a_bound_clerk_gets_the_window_reminders_and_an_official_the_digest(store: Store) -> None:
    clerk(store, clock=lambda: OCTOBER)
    city = official(store, "city", "220100", Level.CITY, clock=lambda: OCTOBER)
    topics = {(e.recipient_id, e.topic) for e in pending(store)}
    assert ("clerk", "window_soon") in topics
    assert ("city", "digest") in topics
    assert ("city", "window_soon") not in topics  # officials get alerts, not the windows
    assert "已关闭" in city.send("/unsubscribe 汇总")
    assert ("city", "digest") not in {(e.recipient_id, e.topic) for e in pending(store)}
    assert "每日汇总关" in city.send("/reminders")


def test_tracking_a_nomination_subscribes_to_its_campaigns_windows(store: Store) -> None:
    clerk(store, clock=lambda: OCTOBER)
    place(store, status="county_review")
    with store.reading() as conn:
        code = conn.execute(sa.select(rows.sa.literal_column("tracking_code")).select_from(
            sa.table("nominations"))).scalar_one()  # fmt: skip
    follower = person(store, OCTOBER, "family")
    assert "已同时为您订阅该评选的报送时间提醒" in follower.send(f"/track {code}")
    assert {e.topic for e in pending(store) if e.recipient_id == "family"} == {
        "window_soon", "window_open",
    }  # fmt: skip


# ----- the strict window ------------------------------------------------------------------


def test_delivering_to_the_province_outside_the_strict_window_is_refused_with_the_clause(
    store: Store,
) -> None:
    early = clerk(store, region="220000", clock=lambda: OCTOBER)  # reports to the province
    nomination = place(store, status="opinions", region="220000")
    early.send("/mine")
    early.send("1")
    out = early.send("报送省评选表彰工作领导小组办公室")
    assert (
        "「三、（三）」报送推荐材料时间为 2022-11-03 至 2022-11-04，提前或逾期报送均不予受理"
        in out
    )
    assert "今天（2022-10-20）不在报送时间内" in out
    assert status_of(store, nomination) == "opinions"
    assert ("submit", False) in audit_rows(store, nomination)
    on_time = ConsoleHarness(store, user="clerk", clock=lambda: IN_WINDOW)
    on_time.send("/mine")
    on_time.send("1")
    on_time.send("报送省评选表彰工作领导小组办公室")
    assert status_of(store, nomination) == "provincial_review"


def test_the_writer_refuses_a_move_outside_the_window_whatever_the_core_said(
    store: Store,
) -> None:
    clerk(store, region="220000", clock=lambda: OCTOBER)
    nomination = place(store, status="opinions", region="220000")
    forged = Move(nomination, "submit_to_province", expected_status="opinions",
                  expected_version=1, to_status="provincial_review")  # fmt: skip
    key = ConversationKey(Channel.CONSOLE.value, "clerk")
    with store.conversation(key) as tx:
        reads = StoreReads(
            tx, store.sealer, regions(), catalog=catalog(), now=OCTOBER,
            workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
        )  # fmt: skip
        writer = Writer(tx, store.sealer, reads, catalog(),
                        files=FileStore(SHARED_FILES, store.sealer), now=OCTOBER)  # fmt: skip
        with pytest.raises(Refusal) as refused:
            writer.apply([forged])
    assert refused.value.kind is RefusalKind.NOT_ALLOWED
    assert refused.value.detail == "window"
    assert status_of(store, nomination) == "opinions"


def test_a_moved_window_is_what_the_gate_and_the_verdict_hold(store: Store) -> None:
    early = clerk(store, region="220000", clock=lambda: OCTOBER)
    nomination = place(store, status="opinions", region="220000")
    with store.transaction() as conn:
        rows.move_window(conn, catalog().get("jl-skills-2022"), "submission",
                         dt.date(2022, 10, 19), dt.date(2022, 10, 21), now=FIXED_NOW)  # fmt: skip
    out = eligible_verdict(person(store, OCTOBER))
    assert "报送推荐材料：2022-10-19 至 2022-10-21" in out
    early.send("/mine")
    early.send("1")
    early.send("报送省评选表彰工作领导小组办公室")
    assert status_of(store, nomination) == "provincial_review"
