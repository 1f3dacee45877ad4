"""Moving a nomination through the levels by chat: the clerk's next steps after the unit
publicity, an official's queue, a return with a reason, the notifications each move writes, and
who may see what — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness, regions
from support.filing import REQUIRED, bound_clerk, choose, file_to_attachments

from conversations.identity import Level, Role
from storage import invites, outbox
from storage import nominations as noms
from storage.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = FIXED_NOW

    def __call__(self) -> dt.datetime:
        return self.now


def official(store: Store, user: str, region: str, level: Level, clock: Clock) -> ConsoleHarness:
    with store.transaction() as conn:
        code = invites.create_invite(
            conn,
            role=Role.OFFICIAL,
            region=regions().get(region),
            level=level,
            now=FIXED_NOW,
            ttl=timedelta(days=30),
        ).code
    console = ConsoleHarness(store, user=user, clock=clock)
    console.open()
    assert "绑定成功" in console.send(f"/bind {code}")
    return console


def submitted(store: Store, tmp_path: Path, clock: Clock) -> tuple[ConsoleHarness, str]:
    """A technical_expert nomination of a unit in 长春市朝阳区, in its unit publicity."""
    clerk = bound_clerk(store, tmp_path, clock=clock)
    file_to_attachments(clerk)
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%%EOF")
    # With the nominee's signed consent form, so it may leave the unit (issue 11).
    for material in [*REQUIRED, "nominee_consent"]:
        choose(clerk, f"upload:{material}")
        clerk.send(f"/file {pdf}")
    choose(clerk, "done")
    assert "已提交，当前状态：单位公示" in choose(clerk, "submit")
    with store.reading() as conn:
        code = conn.execute(sa.select(noms.nominations.c.tracking_code)).scalar_one()
    return clerk, str(code)


def open_first(console: ConsoleHarness, command: str) -> str:
    console.send(command)
    return choose(console, console.options()[0][1])


def status_of(store: Store, code: str) -> str:
    with store.reading() as conn:
        record = noms.by_tracking_code(conn, store.sealer, code)
    assert record is not None
    return record.status


def test_from_unit_publicity_to_a_county_return(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    clerk, code = submitted(store, tmp_path, clock)
    county = official(store, "county", "220104", Level.COUNTY, clock)
    elsewhere = official(store, "elsewhere", "220105", Level.COUNTY, clock)

    # The publicity runs 2022-10-20..26: it cannot be closed before its last day.
    detail = open_first(clerk, "/mine")
    assert "公示期：2022-10-20 至 2022-10-26" in detail
    assert "move:finish_unit_publicity" not in detail
    clerk.send("返回")
    clock.now = FIXED_NOW + timedelta(days=6)  # 2022-10-26, the last working day
    open_first(clerk, "/mine")
    choose(clerk, "move:finish_unit_publicity")
    assert "已办理：公示期满无异议，当前状态：征求意见" in clerk.last
    assert status_of(store, code) == "opinions"

    # 征求意见: the submit move appears once every department is ticked off.
    detail = open_first(clerk, "/mine")
    assert "move:submit_to_county" not in detail
    departments = [v for _, v in clerk.options() if v.startswith("opinion:")]
    assert "opinion:公安部门" in departments
    for department in departments:
        choose(clerk, department)
    choose(clerk, "move:submit_to_county")
    assert status_of(store, code) == "county_review"

    # The same person nominated by another unit for the other skills award: officials see it.
    with store.transaction() as conn:
        record = noms.by_tracking_code(conn, store.sealer, code)
        assert record is not None
        noms.create_draft(
            conn,
            store.sealer,
            campaign="jl-skills-2022",
            category="skills_grand_award",
            kind="individual",
            unit_id=record.unit_id,
            region="220104",
            created_by=record.created_by,
            payload={"fields": {"name": "张小三", "id_number": "220104199001010028"}},
            now=FIXED_NOW,
            initial_status="provincial_review",
        )

    # The county office of the nomination's region has it in its queue; another county not.
    assert "目前没有等待您审核的推荐" in elsewhere.send("/queue")
    detail = open_first(county, "/queue")
    assert "规则提示：" in detail
    assert "「一、（一）」同一推荐对象不得同时申报本次活动的两个奖项" in detail
    assert "身份证号：220104199001010028" in detail  # officials see it in full ...
    with store.reading() as conn:
        reads = [
            a for a in noms.audit_trail(conn, store.sealer) if a.action == "read_personal_data"
        ]
    assert reads  # ... and each read is audited

    before = outbox.depth(store)
    choose(county, "move:county_return")
    assert county.asking() == "reason"
    county.send("征求意见表缺少纪检监察机关盖章")
    assert "已办理：退回修改，当前状态：已退回" in county.last
    assert status_of(store, code) == "returned"
    with store.reading() as conn:
        record = noms.by_tracking_code(conn, store.sealer, code)
        trail = noms.audit_trail(conn, store.sealer, nomination_id=record.id)  # type: ignore[union-attr]
    [returned] = [a for a in trail if a.to_status == "returned"]
    assert returned.detail == {"reason": "征求意见表缺少纪检监察机关盖章"}
    assert outbox.depth(store) == before + 1  # the clerk is told, with the reason
    news = clerk.send("/whoami")
    assert "【通知】推荐（跟踪码" in news
    assert "退回修改，当前状态：已退回。理由：征求意见表缺少纪检监察机关盖章" in news


def test_nobody_else_can_open_a_nomination(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    _, code = submitted(store, tmp_path, clock)
    other_clerk_unit = invites.UnitSpec(name="另一家公司", uscc="91220104MA14ABCD3K"[:-1] + "X")
    stranger = ConsoleHarness(store, user="stranger", clock=clock)
    stranger.open()
    assert "只有绑定了单位的经办人" in stranger.send("/mine")
    assert "只有绑定了评审办公室身份" in stranger.send("/queue")
    with store.reading() as conn:
        refused = {a.action for a in noms.audit_trail(conn, store.sealer) if not a.allowed}
    assert {"mine", "queue"} <= refused
    assert other_clerk_unit.name  # a clerk of another unit sees an empty /mine (tested above)
