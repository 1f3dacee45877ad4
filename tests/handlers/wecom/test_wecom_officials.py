"""Officials on WeCom: bound by their WeCom user id with /bind, they review from the app and
receive the outbox's notifications as app messages."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from support.console_harness import FIXED_NOW, regions
from support.filing import UNIT, bound_clerk

from conversations.identity import Level, Role
from notifications.outbox import Dispatcher
from storage import invites, outbox, tables
from storage import nominations as noms

if TYPE_CHECKING:
    from conftest import Rig


def official_invite(rig: Rig, region: str = "220104") -> str:
    with rig.store.transaction() as conn:
        return invites.create_invite(
            conn,
            role=Role.OFFICIAL,
            region=regions().get(region),
            level=Level.COUNTY,
            now=FIXED_NOW,
            ttl=timedelta(days=30),
        ).code


def county_nomination(rig: Rig, tmp_path: Path) -> str:
    """A nomination of a unit in 长春市朝阳区 waiting for the county's review."""
    bound_clerk(rig.store, tmp_path, clock=rig.clock)
    with rig.store.transaction() as conn:
        unit_id = conn.execute(
            sa.select(tables.units.c.id).where(tables.units.c.uscc == UNIT.uscc)
        ).scalar_one()
        clerk_id = conn.execute(
            sa.select(tables.memberships.c.user_id).where(
                tables.memberships.c.role == Role.CLERK.value
            )
        ).scalar_one()
        record = noms.create_draft(
            conn,
            rig.store.sealer,
            campaign="jl-skills-2022",
            category="technical_expert",
            kind="individual",
            unit_id=unit_id,
            region="220104",
            created_by=clerk_id,
            payload={"fields": {"name": "张小三", "id_number": "220104199001010028"}},
            now=FIXED_NOW,
            initial_status="county_review",
        )
    return record.tracking_code


async def test_an_official_binds_by_wecom_user_id_and_reviews_the_queue(
    rig: Rig, tmp_path: Path
) -> None:
    code = await asyncio.to_thread(county_nomination, rig, tmp_path)

    assert "只有绑定了评审办公室身份的人员" in await rig.say("lisi", "/queue")
    assert "绑定成功" in await rig.say("lisi", f"/bind {official_invite(rig)}")
    queue = await rig.say("lisi", "/queue")
    assert "等待您审核的推荐共 1 项" in queue
    assert code in queue
    assert "1. " in queue  # choices as numbered lines
    detail = await rig.say("lisi", "1")
    assert code in detail
    assert "张小三" in detail
    assert "2. 退回修改" in detail
    # A review move answered in WeCom: return it with a reason.
    asked = await rig.say("lisi", "2")
    done = await rig.say("lisi", "身份证复印件不清晰，请重新上传")
    assert "请说明退回修改的理由" in asked
    assert "已办理：退回修改，当前状态：已退回" in done
    with rig.store.reading() as conn:
        record = noms.by_tracking_code(conn, rig.store.sealer, code)
    assert record is not None
    assert record.status == "returned"
    # Another WeCom member is not that official.
    assert "只有绑定了评审办公室身份的人员" in await rig.say("wangwu", "/queue")
    with rig.store.reading() as conn:
        users = conn.execute(
            sa.text("SELECT channel, external_id FROM users WHERE channel = 'wecom'")
        ).all()
    assert sorted(tuple(u) for u in users) == [("wecom", "lisi"), ("wecom", "wangwu")]


def enqueue(rig: Rig, *messages: outbox.OutboxMessage) -> None:
    with rig.store.transaction() as conn:
        outbox.enqueue(conn, rig.store.sealer, messages, now=rig.clock())


NOTICE = "【待审】有 1 项推荐等待您审核。"


def notice(n: int, user: str = "lisi") -> outbox.OutboxMessage:
    return outbox.OutboxMessage(
        idempotency_key=f"wecom-test-{user}-{n}", channel="wecom", recipient_id=user, text=NOTICE
    )


def dispatcher(rig: Rig) -> Dispatcher:
    return Dispatcher(
        rig.store,
        {"wecom": rig.adapter.sender()},
        clock=rig.clock,
        worker_id="wecom-test",
        batch_size=50,
    )


async def test_an_outbox_notification_is_delivered_as_an_app_message(rig: Rig) -> None:
    enqueue(rig, notice(1))
    report = await asyncio.to_thread(dispatcher(rig).run_once)
    assert (report.delivered, report.retried, report.failed) == (1, 0, 0)
    assert rig.fake.texts() == [("lisi", NOTICE)]
    [send] = rig.fake.calls_to("/cgi-bin/message/send")
    assert send.body is not None
    assert (send.body["agentid"], send.body["msgtype"]) == (rig.fake.agent_id, "text")
    entry = outbox.find(rig.store, "wecom-test-lisi-1")
    assert entry is not None
    assert entry.status == "delivered"


async def test_the_31st_message_in_a_minute_waits_for_the_outbox(rig: Rig) -> None:
    enqueue(rig, *(notice(n) for n in range(1, 32)), notice(99, user="wangwu"))
    report = await asyncio.to_thread(dispatcher(rig).run_once)

    assert (report.delivered, report.retried, report.failed) == (31, 1, 0)
    assert [user for user, _ in rig.fake.texts()].count("lisi") == 30
    assert ("wangwu", NOTICE) in rig.fake.texts()  # own limit
    deferred = [
        e
        for n in range(1, 32)
        if (e := outbox.find(rig.store, f"wecom-test-lisi-{n}")) and e.status == "pending"
    ]
    assert len(deferred) == 1
    # Sent all in the same (frozen) instant: the oldest frees a slot a minute later.
    assert deferred[0].next_attempt_at == rig.clock() + timedelta(minutes=1)
    assert deferred[0].last_error is not None
    assert "30" in deferred[0].last_error

    rig.clock.now += timedelta(minutes=1)
    report = await asyncio.to_thread(dispatcher(rig).run_once)
    assert report.delivered == 1
    assert [user for user, _ in rig.fake.texts()].count("lisi") == 31
