"""The review chain can be trusted (issue 9): a stale choice does nothing, the writer re-checks
every move, every way off the unit's desk passes one gate, one audit row per read.

Each test reproduces a bug of the chain as it was: on the main before the effects-out redesign
the stale `1` rejected the nomination with the reason 同意推荐, the draft left by /cancel started
its publicity without a single attachment, and one opening wrote two audit rows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.console_harness import CAMPAIGNS, ConsoleHarness, catalog
from support.keys import TEST_SEALER
from support.review_rig import IN_WINDOW, audit_rows, clerk, official, place, status_of, write
from support.stores import store_url_for

from bot.wiring import workday_end_from
from conversations.effects import Move
from conversations.identity import Level
from conversations.lifecycle import Transition
from conversations.moves import is_entry, lifecycle_of
from conversations.reads import Refusal, RefusalKind
from notifications.calendar import WorkdayCalendar
from storage.store import Store


def test_a_stale_number_is_answered_with_the_fresh_choices_and_moves_nothing(store: Store) -> None:
    clerk(store)
    nomination = place(store, status="city_review")
    a = official(store, "a", "220100", Level.CITY)
    b = official(store, "b", "220100", Level.CITY)
    for person in (a, b):
        person.send("/queue")
        person.send("1")
    assert "1. 综合评审通过，开始公示" in a.last
    b.send("1")  # B starts the city publicity
    assert status_of(store, nomination) == "city_publicity"
    out = a.send("1")  # A's `1` was meant for the choices B's move replaced
    assert "该推荐已由他人办理，当前状态：市（州）级公示" in out
    assert "请选择操作" in out  # the fresh choices, to choose again
    out = a.send("同意推荐")  # what A typed next in the bug report: not a reason now
    assert status_of(store, nomination) == "city_publicity"
    moves = [row for row in audit_rows(store, nomination) if row[0] not in ("read_personal_data",)]
    assert moves == [("start_publicity", True)]  # B's move, and nothing of A's


def test_a_reason_typed_after_someone_else_moved_it_moves_nothing(store: Store) -> None:
    clerk(store)
    nomination = place(store, status="county_review")
    a = official(store, "a", "220104", Level.COUNTY)
    b = official(store, "b", "220104", Level.COUNTY)
    for person in (a, b):
        person.send("/queue")
        person.send("1")
    asked = a.send("move:county_return")
    assert "请说明退回修改的理由" in asked  # the prompt names the move
    b.send("move:county_approve")
    out = a.send("同意推荐")
    assert "该推荐已由他人办理" in out
    assert status_of(store, nomination) == "city_review"


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Store]:
    with store_url_for("postgresql", tmp_path) as url:
        store = Store(url, sealer=TEST_SEALER)
        try:
            yield store
        finally:
            store.close()


def test_the_writer_refuses_a_move_another_worker_committed_first(pg_store: Store) -> None:
    """A real race on PostgreSQL: A's step has read the nomination and decided; before its
    writer runs, B's step (another connection) commits a move. The writer re-checks the row:
    A's move changes nothing, is audited as refused, and A is told."""
    store = pg_store
    clerk(store)
    nomination = place(store, status="city_review")
    calendar = workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml"))
    b = official(store, "b", "220100", Level.CITY)
    b.send("/queue")
    b.send("1")
    b.send("move:city_return")  # B is asked for the reason

    def b_commits_first(start: dt.date, workdays: int) -> dt.date:
        # Inside A's step, after A's reads and before A's writer: B's reason, on its own
        # connection and transaction, commits the return.
        worker = threading.Thread(target=b.send, args=("材料不全，请补充",))
        worker.start()
        worker.join(timeout=30)
        return calendar(start, workdays)

    a = official(store, "a", "220100", Level.CITY)
    a_racing = ConsoleHarness(store, user="a", workday_end=b_commits_first)
    a_racing.send("/queue")
    a_racing.send("1")
    out = a_racing.send("move:city_start_publicity")  # needs the calendar: the race window
    assert status_of(store, nomination) == "returned"  # B's move, not A's
    assert "该推荐已由他人办理" in out
    assert ("move", False) in audit_rows(store, nomination)
    assert ("start_publicity", True) not in audit_rows(store, nomination)
    del a


def _apply(store: Store, user: str, move: Move) -> None:
    """The writer, on `user`'s own step transaction, given one effect as a forger would."""
    write(store, user, [move])


@pytest.mark.parametrize(
    ("who", "move", "kind"),
    [
        # an official's move, forged by the clerk
        ("clerk", Move(0, "county_approve", "county_review", 1, "city_review"), "not_allowed"),
        # the version the core saw is not the row's
        ("county", Move(0, "county_approve", "county_review", 7, "city_review"), "stale"),
        # a transition that does not lead where the effect says
        ("county", Move(0, "county_approve", "county_review", 1, "awarded"), "not_allowed"),
        # a move from a status the nomination is not in
        ("county", Move(0, "city_start_publicity", "city_review", 1, "city_publicity"), "stale"),
        # an office of another county
        ("elsewhere", Move(0, "county_approve", "county_review", 1, "city_review"), "not_yours"),
    ],
)
def test_a_forged_or_stale_move_effect_changes_nothing(
    store: Store, who: str, move: Move, kind: str
) -> None:
    clerk(store)
    official(store, "county", "220104", Level.COUNTY)
    official(store, "elsewhere", "220105", Level.COUNTY)
    nomination = place(store, status="county_review")
    forged = Move(nomination, *[getattr(move, f) for f in
                                ("transition", "expected_status", "expected_version",
                                 "to_status")])  # fmt: skip
    with pytest.raises(Refusal) as refused:
        _apply(store, who, forged)
    assert refused.value.kind is RefusalKind(kind)
    assert status_of(store, nomination) == "county_review"


# The region of a unit whose nominations enter the chain at each level (regions.yaml).
ENTRY_REGION = {Level.COUNTY: "220104", Level.CITY: "220581", Level.PROVINCE: "220000"}


def _entry_moves() -> list[tuple[str, Transition, str]]:
    out = []
    for campaign in catalog():
        lifecycle = lifecycle_of(campaign)
        for t in lifecycle.transitions:
            if is_entry(lifecycle, t):
                out.extend((campaign.id, t, source) for source in t.from_)
    return out


@pytest.mark.parametrize(
    ("campaign", "move", "source"),
    _entry_moves(),
    ids=[f"{c}:{t.id}:{s}" for c, t, s in _entry_moves()],
)
def test_every_way_off_the_units_desk_is_gated(
    store: Store, campaign: str, move: Transition, source: str
) -> None:
    """Every entry move of both lifecycles, from each status it leaves, through the chat path
    (`/mine`, then the move): a nomination without its required materials stays where it is."""
    region = ENTRY_REGION[move.entry_level or Level.COUNTY]
    # A move that delivers in a strict window is tried inside it: the gate is what is tested.
    person = clerk(store, region=region, clock=(lambda: IN_WINDOW) if move.window else None)
    category = catalog().get(campaign).categories[0]
    nomination = place(
        store, campaign=campaign, category=category.id, status=source, materials=False,
        kind=category.kind.value, region=region,
    )  # fmt: skip
    person.send("/mine")
    person.send("1")
    out = person.send(move.label)
    assert "缺少必需的附件" in out
    assert status_of(store, nomination) == source


def test_a_draft_left_with_cancel_cannot_start_its_publicity_without_its_files(
    store: Store,
) -> None:
    person = clerk(store)
    nomination = place(store, status="draft", materials=False)
    person.send("/mine")
    person.send("1")
    out = person.send("开始单位公示")
    assert "缺少必需的附件" in out
    assert status_of(store, nomination) == "draft"


def test_the_same_id_number_for_both_skills_awards_is_refused_on_every_path(
    store: Store,
) -> None:
    person = clerk(store)
    same = {"name": "张小三", "id_number": "220104199003070028"}
    place(store, category="skills_grand_award", status="county_review", fields=same)
    draft = place(store, category="technical_expert", status="draft", fields=same)
    person.send("/mine")
    person.send("2")
    out = person.send("开始单位公示")
    assert "不得同时申报" in out
    assert status_of(store, draft) == "draft"


def test_one_opening_writes_one_audit_row_and_a_screen_without_personal_data_none(
    store: Store,
) -> None:
    clerk(store)
    person = place(
        store, status="county_review",
        fields={"name": "张小三", "id_number": "220104199003070028", "mobile": "13912345678"},
    )  # fmt: skip
    unit = place(
        store, campaign="jl-employment-2022", category="employment_collective",
        status="county_review", fields={"unit_name": "长春市示例就业服务中心"}, kind="collective",
    )  # fmt: skip
    county = official(store, "county", "220104", Level.COUNTY)
    county.send("/queue")
    county.send("1")
    assert "220104199003070028" in county.last  # in full, for an official
    assert audit_rows(store, person).count(("read_personal_data", True)) == 1
    county.send("返回")
    county.send("2")
    assert audit_rows(store, unit).count(("read_personal_data", True)) == 0
