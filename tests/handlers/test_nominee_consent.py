"""The nominee's own consent (PIPL, issue 11), through the chat on SQLite and PostgreSQL.

Before issue 11 the clerk consented for the nominee: a nomination left the unit as soon as its
materials were in. Now every move out of the unit (submit, resubmit, on every route of both
campaigns) waits for the nominee's `/track CODE` then 同意, or for the signed consent form among
the attachments; 撤回同意 before it leaves puts it back to waiting.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness, catalog
from support.filing import attach, choose
from support.review_rig import IN_WINDOW, audit_rows, clerk, place, status_of

from conversations.identity import Level
from conversations.keys import Channel, ConversationKey
from conversations.lifecycle import SUBMIT_ACTIONS, Transition
from conversations.moves import lifecycle_of
from storage import nominations as noms
from storage import tables
from storage.store import Store

MISSING = "被推荐人尚未确认同意（/track 跟踪码 后回复“同意”），或上传签字的个人信息处理同意书"
SUBMIT = "报送县级人社部门"


def code_of(store: Store, nomination: int) -> str:
    with store.reading() as conn:
        record = noms.get(conn, store.sealer, nomination)
    assert record is not None
    return record.tracking_code


def nominee(store: Store, user: str = "nominee") -> ConsoleHarness:
    person = ConsoleHarness(store, user=user)
    person.open()
    return person


def submit(person: ConsoleHarness) -> str:
    person.send("/mine")
    person.send("1")
    return person.send(SUBMIT)


def notices_to(store: Store, user: str) -> list[str]:
    with store.reading() as conn:
        rows = conn.execute(
            sa.select(tables.outbox.c.text).where(
                tables.outbox.c.recipient_id == user, tables.outbox.c.kind == "notice"
            )
        ).scalars()
        return [store.sealer.open(text) for text in rows]


def consents(store: Store) -> int:
    with store.reading() as conn:
        count: int = conn.execute(
            sa.select(sa.func.count()).select_from(tables.nominee_consents)
        ).scalar_one()
    return count


def test_the_move_out_of_the_unit_waits_for_the_nominee_to_consent(store: Store) -> None:
    person = clerk(store)
    nomination = place(store, status="opinions", signed_consent=False)

    out = submit(person)
    assert MISSING in out
    assert status_of(store, nomination) == "opinions"
    assert ("submit", False) in audit_rows(store, nomination)

    # The nominee follows the nomination and is told what is collected, why, who sees it and
    # how long it is kept, then consents.
    applicant = nominee(store)
    shown = applicant.send(f"/track {code_of(store, nomination)}")
    assert "【个人信息处理告知】" in shown
    assert "收集的信息：姓名" in shown
    assert "身份证号" in shown
    assert "用途：“第八届吉林技能大奖和吉林省技术能手评选表彰”" in shown
    assert "县级、市（州）级、省级评选表彰工作领导小组办公室" in shown
    assert "未报送的草稿在活动最后阶段结束（2022-11-04）180 天后删除" in shown
    assert "回复“同意”" in shown
    assert "已记录您的同意（2022-10-20 09:30）" in applicant.send("同意")
    assert consents(store) == 1
    assert ("nominee_consent", True) in audit_rows(store, nomination)

    # The clerk and the nominee are told, through the outbox.
    told = "的被推荐人已确认同意个人信息处理（2022-10-20 09:30）"
    assert [told in text for text in notices_to(store, "clerk")] == [True]
    assert [told in text for text in notices_to(store, "nominee")] == [True]

    person.send("返回")
    submit(person)
    assert status_of(store, nomination) == "county_review"


def test_a_consent_taken_back_before_it_leaves_puts_it_back_to_waiting(store: Store) -> None:
    person = clerk(store)
    nomination = place(store, status="opinions", signed_consent=False)
    code = code_of(store, nomination)
    applicant = nominee(store)
    applicant.send(f"/track {code}")
    applicant.send("同意")

    shown = applicant.send(f"/track {code}")
    assert "您已于 2022-10-20 09:30 确认同意" in shown
    assert "已撤回您的同意" in applicant.send("撤回同意")
    assert consents(store) == 0
    assert ("nominee_consent_revoked", True) in audit_rows(store, nomination)
    assert any("已撤回个人信息处理同意" in text for text in notices_to(store, "clerk"))

    assert MISSING in submit(person)
    assert status_of(store, nomination) == "opinions"


def test_once_it_has_left_the_unit_the_consent_cannot_be_taken_back_in_chat(
    store: Store,
) -> None:
    person = clerk(store)
    nomination = place(store, status="opinions", signed_consent=False)
    code = code_of(store, nomination)
    applicant = nominee(store)
    applicant.send(f"/track {code}")
    applicant.send("同意")
    person.send("/mine")
    person.send("1")
    person.send(SUBMIT)
    assert status_of(store, nomination) == "county_review"

    applicant.send(f"/track {code}")
    assert "推荐已报出本单位，不能在此撤回同意" in applicant.send("撤回同意")
    assert consents(store) == 1
    assert ("nominee_consent", False) in audit_rows(store, nomination)


def test_the_signed_consent_form_lets_it_leave_without_the_nominee_in_chat(
    store: Store,
) -> None:
    person = clerk(store)
    nomination = place(store, status="opinions", signed_consent=True)
    submit(person)
    assert status_of(store, nomination) == "county_review"
    assert consents(store) == 0


def test_the_clerk_attaches_the_signed_form_after_a_refusal_and_it_leaves(
    store: Store, tmp_path: Path
) -> None:
    person = clerk(store)
    nomination = place(store, status="opinions", signed_consent=False)
    assert MISSING in submit(person)
    pdf = tmp_path / "consent.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%%EOF")
    choose(person, "continue_draft")  # 补充附件, while it is in the unit's hands
    assert "已收到“被推荐人个人信息处理同意书”" in attach(person, "nominee_consent", pdf)
    choose(person, "done")
    submit(person)
    assert status_of(store, nomination) == "county_review"


def test_the_clerk_cannot_consent_for_the_nominee(store: Store) -> None:
    person = clerk(store)
    nomination = place(store, status="opinions", signed_consent=False)
    shown = person.send(f"/track {code_of(store, nomination)}")
    assert "您是本单位经办人，不能代替被推荐人同意" in shown
    person.send("同意")
    assert consents(store) == 0
    assert MISSING in submit(person)


def test_a_word_other_than_agree_after_the_notice_records_nothing(store: Store) -> None:
    clerk(store)
    nomination = place(store, status="opinions", signed_consent=False)
    applicant = nominee(store)
    applicant.send(f"/track {code_of(store, nomination)}")
    out = applicant.send("2")  # the self-check question re-asked below the notice
    assert "已记录您的同意" not in out
    applicant.send("同意")  # the notice is one message back: an answer to the self-check now
    assert consents(store) == 0


def _ways_out() -> list[tuple[str, str, Transition, str]]:
    """Every move out of the unit of both campaigns, from each status it leaves, with the
    campaign's first individual category."""
    out = []
    for campaign in catalog():
        category = next(c for c in campaign.categories if c.kind.value == "individual")
        for t in lifecycle_of(campaign).transitions:
            if t.action in SUBMIT_ACTIONS:
                out.extend((campaign.id, category.id, t, source) for source in t.from_)
    return out


# The region of a unit whose nominations enter the chain at each level (regions.yaml).
ENTRY_REGION = {Level.COUNTY: "220104", Level.CITY: "220581", Level.PROVINCE: "220000"}


@pytest.mark.parametrize(
    ("campaign", "category", "move", "source"),
    _ways_out(),
    ids=[f"{c}:{t.id}:{s}" for c, _, t, s in _ways_out()],
)
def test_every_way_out_of_the_unit_asks_for_the_consent(
    store: Store, campaign: str, category: str, move: Transition, source: str
) -> None:
    region = ENTRY_REGION[move.entry_level or Level.COUNTY]
    person = clerk(store, region=region, clock=(lambda: IN_WINDOW) if move.window else None)
    nomination = place(
        store, campaign=campaign, category=category, status=source, region=region,
        signed_consent=False,
    )  # fmt: skip
    person.send("/mine")
    person.send("1")
    assert MISSING in person.send(move.label)
    assert status_of(store, nomination) == source


def test_forget_deletes_ones_own_answers_and_subscriptions_and_nothing_else(
    store: Store,
) -> None:
    clerk(store)
    nomination = place(store, status="opinions", signed_consent=False)
    applicant = nominee(store)
    applicant.send(f"/track {code_of(store, nomination)}")  # follows, and window reminders
    applicant.send("同意")
    applicant.send("2")  # a self-check of the skills campaign, started
    with store.conversation(ConversationKey(Channel.CONSOLE.value, "nominee")) as tx:
        tx.add_result(
            campaign="jl-skills-2022", category="technical_expert", verdict="eligible",
            result={"answers": {}}, completed_at=FIXED_NOW,
        )  # fmt: skip
    assert "您将收到的提醒" in applicant.send("/reminders")

    asked = applicant.send("/forget")
    assert "将删除您的以下数据：自检记录 1 条、提醒设置 1 项、关注的推荐 1 项。" in asked
    assert "回复“确认删除”删除" in asked
    assert "未删除任何数据" in applicant.send("好的")  # anything else keeps it all
    assert "提醒设置 1 项" in applicant.send("/forget")
    done = applicant.send("确认删除")
    assert "已删除：自检记录 1 条、提醒设置 1 项、关注的推荐 1 项。" in done

    shown = applicant.send("/reminders")
    assert "目前没有待发送的提醒" in shown
    settings = shown.split("提醒设置：")[-1].split("发送 /subscribe")[0]
    assert "开" not in settings  # every kind of every campaign is off again
    assert "您还没有关注任何推荐" in applicant.send("/track")
    assert "没有可删除的个人数据" in applicant.send("/forget")
    with store.reading() as conn:
        results = conn.execute(sa.select(sa.func.count()).select_from(tables.selfcheck_results))
        assert results.scalar_one() == 0
    # Theirs only: the nomination, its consent and the audit trail stay.
    assert status_of(store, nomination) == "opinions"
    assert consents(store) == 1
    assert ("forget", True) in audit_rows(store)
