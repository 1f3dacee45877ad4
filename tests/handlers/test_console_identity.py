"""Identity and tracking by chat: /bind, /whoami, /mine, /track — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness, regions

from conversations.identity import Level, Role
from conversations.keys import ConversationKey
from storage import invites, tables
from storage import nominations as noms
from storage.store import Store

UNIT = invites.UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K")


def invite(store: Store, role: Role, region: str, **extra: object) -> str:
    with store.transaction() as conn:
        issued = invites.create_invite(
            conn,
            role=role,
            region=regions().get(region),
            now=FIXED_NOW,
            ttl=timedelta(days=7),
            **extra,  # type: ignore[arg-type]
        )
    return issued.code


def nomination_of_unit(store: Store, clerk_code: str) -> noms.NominationRecord:
    """A draft of the unit the clerk code belongs to, made by a clerk bound with the code."""
    clerk = ConsoleHarness(store, user="filer")
    clerk.open()
    clerk.send(f"/bind {clerk_code}")
    with store.transaction() as conn:
        unit_id = conn.execute(sa.select(tables.units.c.id)).scalar_one()
        user_id = conn.execute(
            sa.select(tables.memberships.c.user_id).where(tables.memberships.c.unit_id == unit_id)
        ).scalar_one()
        return noms.create_draft(
            conn,
            store.sealer,
            campaign="jl-skills-2022",
            category="technical_expert",
            kind="individual",
            unit_id=unit_id,
            region="220104",
            created_by=user_id,
            payload={"fields": {"name": "张小三", "id_number": "220104199001010024"}},
            now=FIXED_NOW,
            initial_status="draft",
        )


def test_whoami_starts_as_applicant(store: Store) -> None:
    console = ConsoleHarness(store, user="ann")
    console.open()
    assert "申报人" in console.send("/whoami")
    assert console.asking() == "campaign"  # the conversation goes on where it was


def test_bind_with_a_clerk_code_then_list_the_units_nominations(store: Store) -> None:
    code = invite(store, Role.CLERK, "220104", unit=UNIT)
    record = nomination_of_unit(store, invite(store, Role.CLERK, "220104", unit=UNIT))
    clerk = ConsoleHarness(store, user="kim")
    clerk.open()
    bound = clerk.send(f"/bind {code.lower()}")
    assert "绑定成功：您现在是单位经办人 · 长春市朝阳区 · 长春市朝阳区示例有限公司。" in bound
    assert "/mine 查看本单位的推荐" in clerk.send("/help")
    out = clerk.send("/mine")
    assert f"1. 张*三 · 吉林省技术能手 · 草稿 · 跟踪码 {record.tracking_code}" in out
    assert "张小三" not in out


def test_bind_refusals_are_polite_and_audited(store: Store) -> None:
    code = invite(store, Role.OFFICIAL, "220100", level=Level.CITY)
    first = ConsoleHarness(store, user="a")
    first.open()
    bound = first.send(f"/bind {code}")
    assert "绑定成功：您现在是长春市评选表彰工作领导小组办公室（市级）。" in bound
    second = ConsoleHarness(store, user="b")
    second.open()
    out = second.send(f"/bind {code}")
    assert "绑定成功" not in out
    assert "/bind 邀请码" not in out  # a reason, not the help
    assert "请在 /bind 后面加上邀请码" in second.send("/bind")
    assert "绑定成功" not in second.send("/bind ZZZZ-ZZZZ")
    with store.reading() as conn:
        refusals = [a for a in noms.audit_trail(conn, store.sealer) if not a.allowed]
    assert [a.action for a in refusals] == ["bind", "bind"]


def test_mine_is_refused_to_applicants_and_audited(store: Store) -> None:
    console = ConsoleHarness(store, user="nosy")
    console.open()
    assert "只有绑定了单位的经办人" in console.send("/mine")
    with store.reading() as conn:
        [entry] = noms.audit_trail(conn, store.sealer)
    assert (entry.action, entry.allowed, entry.role) == ("mine", False, "applicant")


def test_track_subscribes_and_lists(store: Store) -> None:
    record = nomination_of_unit(store, invite(store, Role.CLERK, "220104", unit=UNIT))
    fan = ConsoleHarness(store, user="fan")
    fan.open()
    assert "还没有关注" in fan.send("/track")
    out = fan.send(f"/track {record.tracking_code.lower()}")
    assert f"已关注：张*三 · 吉林省技术能手 · 草稿 · 跟踪码 {record.tracking_code}" in out
    assert "1. 张*三" in fan.send("/track")
    assert "没有找到跟踪码" in fan.send("/track NOPE123456")
    with store.reading() as conn:
        assert len(noms.subscribers(conn, record.id)) == 1


def test_guessing_tracking_codes_is_limited_and_audited(store: Store) -> None:
    # Issue 8: /track had no guessing limit, so tracking codes could be enumerated by chat.
    record = nomination_of_unit(store, invite(store, Role.CLERK, "220104", unit=UNIT))
    guesser = ConsoleHarness(store, user="guesser")
    guesser.open()
    for n in range(5):
        out = guesser.send(f"/track ZZZZ{n:06d}")
        assert "没有找到跟踪码" in out
        assert "错误次数过多" not in out
    out = guesser.send(f"/track {record.tracking_code}")  # even the right code, for now
    assert "跟踪码错误次数过多，请 1 小时后再试" in out
    assert "已关注" not in out
    with store.reading() as conn:
        assert noms.subscribers(conn, record.id) == []
        trail = [(e.action, e.allowed) for e in noms.audit_trail(conn, store.sealer)]
    assert trail.count(("track", False)) == 6  # five wrong codes and the refusal
    other = ConsoleHarness(store, user="someone-else")  # the limit is per chat identity
    other.open()
    assert "已关注" in other.send(f"/track {record.tracking_code}")


def test_the_guessing_limit_lifts_after_an_hour(store: Store) -> None:
    record = nomination_of_unit(store, invite(store, Role.CLERK, "220104", unit=UNIT))
    guesser = ConsoleHarness(store, user="guesser")
    guesser.open()
    for n in range(5):
        guesser.send(f"/track ZZZZ{n:06d}")
    with store.transaction() as conn:  # the wrong guesses were made an hour ago
        conn.execute(sa.update(noms.audit_log).values(at=FIXED_NOW - timedelta(minutes=61)))
    assert "已关注" in guesser.send(f"/track {record.tracking_code}")


@pytest.mark.parametrize("name", ["张", "张三", "张小三", "欧阳娜娜"])
def test_masked_names_never_show_the_whole_name(name: str) -> None:
    from conversations.policy import mask_name

    masked = mask_name(name)
    assert masked != name
    assert len(masked) == len(name)


def test_a_failing_step_is_answered_and_rolled_back(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    console = ConsoleHarness(store, user="unlucky")
    console.open()
    console.send("jl-skills-2022")
    key = ConversationKey("console", "unlucky")
    before = store.load_state(key)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret 220104199001010028")

    monkeypatch.setattr("conversations.engine.Engine._on_category", broken)
    out = console.send("technical_expert")
    assert "处理这条消息时出错了" in out
    assert "之前的回答都还在" in out
    assert store.load_state(key) == before
    assert "220104199001010028" not in caplog.text  # the log says where, not what
    assert "RuntimeError" in caplog.text


def test_guessing_invitation_codes_is_limited(store: Store) -> None:
    code = invite(store, Role.OFFICIAL, "220100", level=Level.CITY)
    guesser = ConsoleHarness(store, user="guesser")
    guesser.open()
    for n in range(5):
        assert "错误次数过多" not in guesser.send(f"/bind ZZZZ-ZZZ{n + 2}")
    assert "错误次数过多" in guesser.send(f"/bind {code}")  # even the right code, for now
    with store.reading() as conn:
        assert conn.execute(sa.select(tables.memberships)).first() is None
