"""Users and their roles by chat (issue 11), through the console runtime on SQLite and PostgreSQL:
/help and /whoami per role, a used invitation code answered as an unknown one, a withdrawal
confirmed and reasoned, reasons that are sentences, and menus whose ending moves come last."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness, regions
from support.review_rig import audit_rows, bound, clerk, official, place, status_of

from conversations.help import help_text
from conversations.identity import Actor, Level, Role
from conversations.reads import InviteView
from storage import invites, tables
from storage import nominations as noms
from storage.reads import StoreReads
from storage.store import Store


def help_lines(out: str) -> list[str]:
    """The help's command lines, as the console printed them."""
    lines = out.splitlines()
    start = lines.index("可用命令：") + 1
    end = lines.index("回答选择题时，回复序号或选项文字都可以。")
    return lines[start:end]


def code_for(store: Store, **invite: object) -> str:
    with store.transaction() as conn:
        return invites.create_invite(
            conn,
            now=FIXED_NOW,
            ttl=dt.timedelta(days=7),
            **invite,  # type: ignore[arg-type]
        ).code


def official_code(store: Store) -> str:
    return code_for(store, role=Role.OFFICIAL, region=regions().get("220100"), level=Level.CITY)


# --- /help and /whoami ----------------------------------------------------------------------


def test_help_is_the_roles_own(store: Store) -> None:
    applicant = ConsoleHarness(store, user="ann")
    applicant.open()
    unit = clerk(store)
    city = official(store, "city", "220100", Level.CITY)
    assert help_lines(applicant.send("/help")) == help_lines(help_text(None))
    clerk_lines = help_lines(unit.send("/help"))
    official_lines = help_lines(city.send("/help"))
    assert "/mine 查看本单位的推荐，回复序号办理" in clerk_lines
    assert "/queue 查看等待您审核的推荐，回复序号办理" in official_lines  # it was missing
    assert not [line for line in official_lines if line.startswith(("/mine", "/new"))]
    assert not [line for line in clerk_lines if line.startswith("/queue")]
    applicant_lines = help_lines(applicant.last)
    assert not [line for line in applicant_lines if line.startswith(("/mine", "/queue"))]


def test_help_inside_a_self_check_and_after_an_unknown_command_is_the_roles_own(
    store: Store,
) -> None:
    city = official(store, "city", "220100", Level.CITY)
    city.send("jl-skills-2022")
    assert city.asking() == "category"
    out = city.send("/help")
    assert "/queue 查看等待您审核的推荐，回复序号办理" in out
    assert city.asking() == "category"  # the question it was at, asked again
    out = city.send("/shenhe")
    assert "没有这个命令：/shenhe。" in out
    assert help_lines(out) == help_lines(help_text(Actor(Role.OFFICIAL)))
    assert city.asking() == "category"


@pytest.mark.parametrize("role", [Role.APPLICANT, Role.CLERK, Role.OFFICIAL])
def test_every_command_the_help_shows_is_answered(store: Store, role: Role) -> None:
    if role is Role.APPLICANT:
        person = ConsoleHarness(store, user="ann")
        person.open()
    elif role is Role.CLERK:
        person = clerk(store)
    else:
        person = official(store, "city", "220100", Level.CITY)
    for line in help_lines(person.send("/help")):
        command = line.split()[0]
        out = person.send(command)
        assert "没有这个命令" not in out, command
        assert "只有绑定了" not in out, command  # not refused to the role it is shown to
        if person.asking() not in ("campaign", "category"):  # a listing or a filing: leave
            person.send("/cancel")


def test_whoami_names_the_region_and_the_unit(store: Store) -> None:
    unit = clerk(store)
    out = unit.send("/whoami")
    assert "您当前的身份：单位经办人 · 长春市朝阳区 · 长春市朝阳区示例有限公司。" in out
    assert "单位编号" not in out
    city = official(store, "city", "220100", Level.CITY)
    assert "您当前的身份：长春市评选表彰工作领导小组办公室（市级）。" in city.send("/whoami")


def test_binding_says_whom_the_code_made_you(store: Store) -> None:
    code = code_for(
        store,
        role=Role.CLERK,
        region=regions().get("220104"),
        unit=invites.UnitSpec(name="吉林某某有限公司", uscc="91220104MA14ABCD3K"),
    )
    person = ConsoleHarness(store, user="new")
    person.open()
    bound_text = person.send(f"/bind {code}")
    assert "绑定成功：您现在是单位经办人 · 长春市朝阳区 · 吉林某某有限公司。" in bound_text


# --- a used code is an unknown code -----------------------------------------------------------


def test_a_used_code_is_answered_exactly_like_an_unknown_one(store: Store) -> None:
    code = official_code(store)
    first = ConsoleHarness(store, user="first")
    first.open()
    assert "绑定成功" in first.send(f"/bind {code}")
    second = ConsoleHarness(store, user="second")
    second.open()
    used = second.send(f"/bind {code}")
    unknown = second.send("/bind ZZZZ-ZZZZ")
    assert used == unknown
    assert "已被使用" not in used
    assert used.startswith("邀请码无效，请核对 8 位邀请码（形如 ABCD-EFGH）后重新输入。")
    # The audit trail still tells the operator which was which.
    with store.reading() as conn:
        whys = [
            (a.detail or {}).get("why")
            for a in noms.audit_trail(conn, store.sealer)
            if a.action == "bind" and not a.allowed
        ]
    assert whys == ["used", "invalid"]


def test_a_code_used_meanwhile_is_answered_like_an_unknown_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The step read the code as valid; another chat bound it before the writer applied ours.
    code = official_code(store)
    first = ConsoleHarness(store, user="first")
    first.open()
    first.send(f"/bind {code}")
    seen_valid = InviteView("valid", Role.OFFICIAL.value, "220100", Level.CITY.value, None)
    real = StoreReads.invite
    monkeypatch.setattr(
        StoreReads,
        "invite",
        lambda self, typed: seen_valid if typed == code else real(self, typed),
    )
    late = ConsoleHarness(store, user="late")
    late.open()
    raced = late.send(f"/bind {code}")
    unknown = late.send("/bind ZZZZ-ZZZZ")
    assert raced == unknown
    with store.reading() as conn:
        members = conn.execute(sa.select(tables.memberships)).all()
    assert len(members) == 1  # only the first chat is bound


# --- withdrawing: a reason, then a confirmation -----------------------------------------------


def follower(store: Store, nomination: int) -> ConsoleHarness:
    with store.reading() as conn:
        record = noms.get(conn, store.sealer, nomination)
    assert record is not None
    fan = ConsoleHarness(store, user="nominee")
    fan.open()
    assert "已关注" in fan.send(f"/track {record.tracking_code}")
    return fan


def open_detail(person: ConsoleHarness, command: str = "/mine") -> str:
    person.send(command)
    return person.send("1")


def test_a_withdrawal_asks_a_reason_and_a_confirmation_and_tells_it(store: Store) -> None:
    unit = clerk(store)
    nomination = place(store, status="unit_publicity")
    fan = follower(store, nomination)
    open_detail(unit)
    asked = unit.send("move:withdraw")
    assert unit.asking() == "reason"
    assert "请说明撤回推荐的理由（会告知关注这项推荐的人）；发送 /cancel 放弃。" in asked
    out = unit.send("被推荐人本人申请放弃推荐")
    assert unit.asking() == "confirm"
    assert "您将撤回推荐：张*三 · 吉林省技术能手 · 单位公示" in out
    assert "理由：被推荐人本人申请放弃推荐" in out
    assert "办理后状态将变为“已撤回”，不能恢复，也不能再报送。确定撤回推荐吗？" in out
    assert unit.options() == [("1", "confirm"), ("2", "back")]
    assert status_of(store, nomination) == "unit_publicity"  # nothing moved yet
    assert "已办理：撤回推荐，当前状态：已撤回" in unit.send("1")
    assert status_of(store, nomination) == "withdrawn"
    with store.reading() as conn:
        trail = noms.audit_trail(conn, store.sealer, nomination_id=nomination)
    [move] = [a for a in trail if a.to_status == "withdrawn"]
    assert (move.action, move.detail) == ("withdraw", {"reason": "被推荐人本人申请放弃推荐"})
    news = fan.send("/track")
    assert "【通知】推荐（跟踪码" in news
    assert "撤回推荐，当前状态：已撤回。理由：被推荐人本人申请放弃推荐。" in news
    # Its detail says who withdrew it, when and why — not that it was returned.
    detail = open_detail(unit)
    assert "撤回：单位经办人于 2022-10-20 撤回，理由：被推荐人本人申请放弃推荐" in detail
    assert "退回：" not in detail


@pytest.mark.parametrize("answer", ["2", "不撤回推荐，返回", "返回", "/cancel"])
def test_a_withdrawal_not_confirmed_changes_nothing(store: Store, answer: str) -> None:
    unit = clerk(store)
    nomination = place(store, status="draft")
    open_detail(unit)
    unit.send("move:withdraw")
    unit.send("单位决定暂不推荐")
    assert unit.asking() == "confirm"
    unit.send(answer)
    assert unit.asking() == "action"  # back at the nomination's choices
    assert status_of(store, nomination) == "draft"
    assert ("withdraw", True) not in audit_rows(store, nomination)


def test_a_confirmation_after_someone_else_moved_it_moves_nothing(store: Store) -> None:
    # Issue 7's rule holds for the confirmation: a screen of an older version does nothing.
    unit = clerk(store)
    colleague = bound(
        store,
        "colleague",
        role=Role.CLERK,
        region=regions().get("220104"),
        unit=invites.UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K"),
    )
    nomination = place(store, status="draft")
    open_detail(unit)
    unit.send("move:withdraw")
    unit.send("单位决定暂不推荐")
    open_detail(colleague)
    colleague.send("move:start_unit_publicity")
    assert status_of(store, nomination) == "unit_publicity"
    out = unit.send("1")
    assert "该推荐已由他人办理，当前状态：单位公示。您的选择未执行" in out
    assert status_of(store, nomination) == "unit_publicity"


# --- a reason is a sentence ----------------------------------------------------------------


@pytest.mark.parametrize("typed", ["👍", "1", "ok", "同意。", "！！！！", "👍👍👍👍👍"])
def test_a_reason_that_says_nothing_is_asked_again(store: Store, typed: str) -> None:
    clerk(store)
    county = official(store, "county", "220104", Level.COUNTY)
    nomination = place(store, status="county_review")
    open_detail(county, "/queue")
    county.send("move:county_return")
    out = county.send(typed)
    assert "理由请写成一句话，说明为什么退回修改（至少 4 个字；表情、标点和数字不算）。" in out
    assert county.asking() == "reason"  # asked again
    assert "请说明退回修改的理由（会告知单位经办人）" in out
    assert status_of(store, nomination) == "county_review"
    county.send("身份证复印件不清晰")
    assert status_of(store, nomination) == "returned"


# --- menus: the moves that end a nomination come last ----------------------------------------

ENDING = ("move:withdraw", "move:county_reject", "move:city_reject", "move:province_reject")


@pytest.mark.parametrize(
    ("status", "who"),
    [
        ("draft", "clerk"),
        ("unit_publicity", "clerk"),  # running: withdrawing is the only move
        ("opinions", "clerk"),
        ("returned", "clerk"),
        ("county_review", "county"),
        ("city_publicity", "city"),  # running: rejecting is the only move
    ],
)
def test_no_menu_offers_an_ending_move_first(store: Store, status: str, who: str) -> None:
    people = {"clerk": clerk(store)}
    people["county"] = official(store, "county", "220104", Level.COUNTY)
    people["city"] = official(store, "city", "220100", Level.CITY)
    place(store, status=status, materials=False)
    person = people[who]
    open_detail(person, "/mine" if who == "clerk" else "/queue")
    values = [v for _, v in person.options()]
    ending = [v for v in values if v in ENDING]
    assert ending, values
    assert values[0] not in ENDING
    assert values[-len(ending) :] == ending  # last of all, after 返回
    assert values[-len(ending) - 1] == "back"


def test_the_opinions_keep_their_numbers_when_the_submit_move_appears(store: Store) -> None:
    unit = clerk(store)
    nomination = place(store, status="opinions")
    with store.transaction() as conn:  # none of the opinions recorded yet
        record = noms.get(conn, store.sealer, nomination)
        assert record is not None
        noms.save_payload(
            conn, store.sealer, nomination, {**record.payload, "opinions": []},
            county_division=False, now=FIXED_NOW,
        )  # fmt: skip
    open_detail(unit)
    before = dict((v, n) for n, v in unit.options())
    assert "move:submit_to_county" not in before
    opinions = [v for v in before if v.startswith("opinion:")]
    for value in opinions:
        unit.send(before[value])  # by number, as a person taps them
    after = dict((v, n) for n, v in unit.options())
    assert "move:submit_to_county" in after  # every opinion ticked: it appears ...
    assert {v: after[v] for v in opinions} == {v: before[v] for v in opinions}  # ... below them
    assert after["move:withdraw"] == str(len(after))  # and withdrawing is still the last
