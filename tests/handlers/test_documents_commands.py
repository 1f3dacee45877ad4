"""The chat commands of issue 12: /documents, /rank, /region, /quota, through the console.

/rank runs through the whole runtime (its SetRanking is applied, the stored order read back).
/documents and /quota end in a RequestDocuments that a document worker serves outside the step;
here they are checked at the effects level: `chat` runs the assistant on the real reads, applies
every other effect and saves the conversation, and hands back the step's effects.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.console_harness import CAMPAIGNS, FIXED_NOW, ConsoleHarness, catalog, regions
from support.review_rig import clerk, official, place, write

from bot.wiring import workday_end_from
from conversations.assistant import Assistant
from conversations.crossrules import limits_for, quota_band
from conversations.documents import CLERK_SET, DOC_TITLES, OFFICIAL_SET, DocKind
from conversations.effects import RequestDocuments, SetRanking
from conversations.engine import Engine, Inbound, Step
from conversations.identity import Level, Role
from conversations.keys import Channel, ConversationKey
from conversations.overview import PAGE
from conversations.reads import Context, Refusal, RefusalKind
from notifications.calendar import WorkdayCalendar
from storage import tables
from storage.files import FileStore
from storage.quotas import set_quota
from storage.rankings import ranking
from storage.reads import StoreReads
from storage.store import Store
from storage.writer import Writer

SKILLS = "jl-skills-2022"
EMPLOYMENT = "jl-employment-2022"
MENU = [c.id for c in catalog()]  # the campaign menu's order: its numbers


def number(campaign: str) -> str:
    return str(MENU.index(campaign) + 1)


def chat(store: Store, user: str, text: str) -> Step:
    """One message of console `user` through the assistant (real reads, real state); the
    step's effects are applied as the runtime would, except RequestDocuments (the document
    worker's), and returned."""
    key = ConversationKey(Channel.CONSOLE.value, user)
    assistant = Assistant(catalog(), Engine(catalog(), clock=lambda: FIXED_NOW))
    with store.conversation(key) as tx:
        reads = StoreReads(
            tx, store.sealer, regions(), catalog=catalog(), now=FIXED_NOW,
            workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
        )  # fmt: skip
        ctx = Context(now=FIXED_NOW, new_code=lambda: "ABCDEFGHJK")
        step = assistant.resume(tx.state, Inbound(text), reads, ctx)
        writer = Writer(
            tx, store.sealer, reads, catalog(), now=FIXED_NOW,
            files=FileStore(Path("/nonexistent"), store.sealer),
        )  # fmt: skip
        writer.apply([e for e in step.effects if not isinstance(e, RequestDocuments)])
        tx.save(step.state)
    return step


def said(step: Step) -> str:
    return "\n".join(r.text for r in step.replies)


def requested(step: Step) -> list[RequestDocuments]:
    return [e for e in step.effects if isinstance(e, RequestDocuments)]


def codes(store: Store) -> dict[str, int]:
    """tracking code -> nomination id"""
    with store.reading() as conn:
        rows = conn.execute(sa.select(tables.nominations.c.tracking_code, tables.nominations.c.id))
        return {code: int(i) for code, i in rows}


def listed(store: Store, text: str) -> list[int]:
    """The nominations a numbered list shows, in its order (by their tracking codes), each
    numbered in turn."""
    by_code = codes(store)
    out = []
    lines = [x for x in text.splitlines() if "跟踪码" in x]
    for n, line in enumerate(lines, int(lines[0].split(".")[0]) if lines else 1):
        assert line.startswith(f"{n}. "), line
        found = [i for code, i in by_code.items() if f"跟踪码 {code}" in line]
        assert len(found) == 1, line
        out.append(found[0])
    return out


def stored_order(store: Store, scope: str, campaign: str = SKILLS) -> list[int]:
    with store.reading() as conn:
        positions = ranking(conn, campaign=campaign, scope=scope)
    return sorted(positions, key=positions.__getitem__)


def unit_scope(store: Store, region: str = "220104") -> str:
    with store.reading() as conn:
        unit = conn.execute(
            sa.select(sa.func.min(tables.units.c.id)).where(tables.units.c.region_code == region)
        ).scalar_one()
    return f"unit:{unit}"


# ----- who may -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["/documents", "/rank", "/region", "/quota"])
def test_an_applicant_is_refused_and_told_who_may(store: Store, command: str) -> None:
    applicant = ConsoleHarness(store, user="someone")
    applicant.open()
    out = applicant.send(f"{command} {number(SKILLS)}")
    assert "评审办公室" in out
    if command in ("/documents", "/rank"):
        assert "单位经办人" in out
    assert not any("RequestDocuments" in e or "SetRanking" in e for e in applicant.effects)
    assert applicant.asking() == "campaign"  # and the self-check's question is asked again


@pytest.mark.parametrize("command", ["/region", "/quota"])
def test_a_clerk_is_refused_the_offices_overview(store: Store, command: str) -> None:
    unit = clerk(store)
    place(store)
    out = unit.send(f"{command} {number(SKILLS)}")
    assert "只有评审办公室人员" in out
    assert "跟踪码" not in out
    assert unit.effects == []


# ----- /documents ----------------------------------------------------------------------------


def test_a_clerks_documents_are_the_unit_set_after_the_campaign_menu(store: Store) -> None:
    clerk(store)
    asked = chat(store, "clerk", "/documents")
    assert requested(asked) == []
    assert asked.replies[-1].key == "campaign"
    assert [o.value for o in asked.replies[-1].options] == MENU
    step = chat(store, "clerk", number(SKILLS))
    assert requested(step) == [RequestDocuments(SKILLS, tuple(k.value for k in CLERK_SET))]
    text = said(step)
    assert "正在生成" in text
    assert "完成后将以文件发送到本对话" in text
    assert all(DOC_TITLES[k] in text for k in CLERK_SET)
    assert DOC_TITLES[DocKind.PUBLICITY] not in text


def test_an_officials_documents_are_the_region_set(store: Store) -> None:
    clerk(store)
    official(store, "city", "220100", Level.CITY)
    step = chat(store, "city", f"/documents {EMPLOYMENT}")
    assert requested(step) == [RequestDocuments(EMPLOYMENT, tuple(k.value for k in OFFICIAL_SET))]
    assert all(DOC_TITLES[k] in said(step) for k in OFFICIAL_SET)
    # by the menu's number, too
    step = chat(store, "city", f"/documents {number(SKILLS)}")
    assert requested(step) == [RequestDocuments(SKILLS, tuple(k.value for k in OFFICIAL_SET))]


def test_a_campaign_number_that_is_not_on_the_menu_is_said(store: Store) -> None:
    clerk(store)
    step = chat(store, "clerk", "/documents 9")
    assert requested(step) == []
    assert "没有第 9 个评选表彰活动" in said(step)


# ----- /rank ---------------------------------------------------------------------------------


def test_rank_lists_the_stored_order_re_asks_bad_answers_and_stores_a_good_one(
    store: Store,
) -> None:
    unit = clerk(store)
    a, b, c = (place(store, fields={"name": n}) for n in ("张小三", "李小四", "王小五"))
    place(store, fields={"name": "赵草稿"}, status="draft")
    place(store, fields={"name": "钱撤回"}, status="withdrawn")
    place(store, campaign=EMPLOYMENT, category="employment_individual", fields={"name": "孙就业"})
    write(store, "clerk", [SetRanking(SKILLS, (c, a))])  # b unranked: after the ranked

    out = unit.send(f"/rank {number(SKILLS)}")
    assert listed(store, out) == [c, a, b]
    assert "张*三" in out  # names masked as every list masks them
    assert "李小四" not in out
    assert "请按新的顺序输入序号，例如：3 1 2" in out
    for typed, why in (
        ("3 3", "第 3 项写了两次"),
        ("9", "没有第 9 项"),
        ("abc", "「abc」不是序号"),
    ):
        out = unit.send(typed)
        assert why in out
        assert unit.asking() == "rank"
        assert listed(store, out) == [c, a, b]  # asked again with the same list
        assert not any("SetRanking" in e for e in unit.effects)
    assert stored_order(store, unit_scope(store)) == [c, a]

    out = unit.send("3 1")
    assert stored_order(store, unit_scope(store)) == [b, c, a]
    assert "已保存新的推荐排序" in out
    assert listed(store, out) == [b, c, a]
    assert unit.asking() == "campaign"  # back where the conversation was

    again = unit.send(f"/rank {SKILLS}")
    assert listed(store, again) == [b, c, a]


def test_cancel_or_another_command_leaves_rank_and_nothing_changes(store: Store) -> None:
    unit = clerk(store)
    a, b = place(store), place(store)
    unit.send(f"/rank {number(SKILLS)}")
    assert "已放弃排序" in unit.send("/cancel")
    assert unit.asking() == "campaign"
    unit.send(f"/rank {number(SKILLS)}")
    assert "您当前的身份" in unit.send("/whoami")
    out = unit.send("2 1")  # now the self-check's campaign answer, not an order
    assert "已保存" not in out
    assert stored_order(store, unit_scope(store)) == []
    assert listed(store, unit.send(f"/rank {number(SKILLS)}")) == [a, b]


def test_a_clerk_ranks_only_their_units_nominations(store: Store) -> None:
    unit = clerk(store)
    clerk(store, "other", "220581")
    a, b = place(store), place(store)
    theirs = place(store, region="220581")
    out = unit.send(f"/rank {number(SKILLS)}")
    assert listed(store, out) == [a, b]
    # A forged order naming the other unit's nomination is refused by the writer...
    with pytest.raises(Refusal):
        write(store, "clerk", [SetRanking(SKILLS, (theirs, a, b))])
    # ...and a list that came to hold one (a state not made by this unit) is not stored: the
    # clerk is told, and the order stays as it was.
    key = ConversationKey(Channel.CONSOLE.value, "clerk")
    with store.conversation(key) as tx:
        state = dict(tx.state or {})
        state["items"] = [theirs, a, b]
        tx.save(state)
    out = unit.send("1 2 3")
    assert "排序未保存" in out
    assert stored_order(store, unit_scope(store)) == []
    assert stored_order(store, unit_scope(store, "220581")) == []


def test_an_office_ranks_its_regions_filed_nominations(store: Store) -> None:
    clerk(store)
    clerk(store, "other", "220581")
    city = official(store, "city", "220100", Level.CITY)
    a, b = place(store), place(store, status="city_review")
    place(store, region="220581")  # 梅河口市 is not 长春市's
    place(store, status="draft")
    out = city.send(f"/rank {number(SKILLS)}")
    assert "长春市" in out
    assert listed(store, out) == [a, b]
    city.send("2")
    assert stored_order(store, "region:220100:city") == [b, a]


# ----- /region -------------------------------------------------------------------------------


PLACED = [  # (name, category, status, region)
    ("张小三", "technical_expert", "county_review", "220104"),
    ("张大山", "skills_grand_award", "city_review", "220104"),
    ("李小四", "technical_expert", "returned", "220104"),
    ("王小五", "technical_expert", "withdrawn", "220104"),
    ("赵六", "skills_grand_award", "city_publicity", "220104"),
    ("钱草稿", "technical_expert", "draft", "220104"),  # not filed: not in the overview
    ("孙梅河", "technical_expert", "county_review", "220581"),  # not 长春市's
]


def placed(store: Store) -> dict[str, int]:
    clerk(store)
    clerk(store, "other", "220581")
    return {
        name: place(store, fields={"name": name}, category=category, status=status, region=region)
        for name, category, status, region in PLACED
    }


def counts_line(out: str, head: str) -> dict[str, int]:
    line = next(x for x in out.splitlines() if x.startswith(head))
    return {
        label: int(n)
        for label, n in (p.rsplit(" ", 1) for p in line.removeprefix(head).split("，"))
    }


def test_region_counts_by_status_and_category_and_lists_every_stage(store: Store) -> None:
    ids = placed(store)
    city = official(store, "city", "220100", Level.CITY)
    out = city.send(f"/region {number(SKILLS)}")
    campaign = catalog().get(SKILLS)
    lifecycle = campaign.lifecycle
    assert lifecycle is not None
    mine = [p for p in PLACED if p[3] == "220104" and p[2] != lifecycle.initial]
    statuses = Counter(lifecycle.status(p[2]).label for p in mine)
    categories = Counter(campaign.category(p[1]).name for p in mine)
    assert counts_line(out, "按进度：") == dict(statuses)
    assert counts_line(out, "按类别：") == dict(categories)
    assert f"共 {len(mine)} 项" in out
    assert sorted(listed(store, out)) == sorted(ids[p[0]] for p in mine)
    assert "长春市朝阳区示例有限公司" in out  # each line names its unit
    assert "下一页" not in out
    assert city.effects == []


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("张", ["张小三", "张大山"]),  # the full name, though the list shows 张*三
        ("小三", ["张小三"]),
        ("示例有限", ["张小三", "张大山", "李小四", "王小五", "赵六"]),
        ("单位220581", []),  # a unit outside the region
        ("张 大", ["张大山"]),  # every word must match
        ("钱草稿", []),
    ],
)
def test_region_search_by_name_and_unit(store: Store, search: str, expected: list[str]) -> None:
    ids = placed(store)
    province = official(store, "prov", "220000", Level.PROVINCE)
    city = official(store, "city", "220100", Level.CITY)
    out = city.send(f"/region {number(SKILLS)} {search}")
    if not expected:
        assert "没有与" in out
        assert listed(store, out) == []
    else:
        assert f"找到 {len(expected)} 项" in out
        assert sorted(listed(store, out)) == sorted(ids[n] for n in expected)
    # The province sees 梅河口市's too.
    assert ids["孙梅河"] in listed(store, province.send(f"/region {number(SKILLS)} 孙梅河"))


def test_region_search_by_tracking_code_ignores_case(store: Store) -> None:
    ids = placed(store)
    city = official(store, "city", "220100", Level.CITY)
    code = next(c for c, i in codes(store).items() if i == ids["李小四"])
    out = city.send(f"/region {number(SKILLS)} {code.lower()}")
    assert listed(store, out) == [ids["李小四"]]
    assert "找到 1 项" in out


def test_a_long_region_list_is_paged(store: Store) -> None:
    clerk(store)
    total = PAGE + 5
    ids = [place(store, fields={"name": f"张{n:02d}"}) for n in range(total)]
    city = official(store, "city", "220100", Level.CITY)
    out = city.send(f"/region {number(SKILLS)}")
    assert listed(store, out) == ids[:PAGE]
    assert f"共 {total} 项，显示第 1–{PAGE} 项" in out
    assert f"回复“下一页”查看第 {PAGE + 1}–{total} 项" in out
    assert city.asking() == "page"
    out = city.send("下一页")
    assert listed(store, out) == ids[PAGE:]
    assert out.startswith(f"{PAGE + 1}. ")  # numbered on from the first page
    assert f"显示第 {PAGE + 1}–{total} 项" in out
    assert city.asking() == "campaign"  # the last page: back to the conversation


# ----- /quota --------------------------------------------------------------------------------


def test_quota_text_matches_the_figures_and_the_chart_is_requested(store: Store) -> None:
    clerk(store)
    clerk(store, "other", "220581")
    official(store, "city", "220100", Level.CITY)
    category = "employment_individual"
    places = {"220100": 2, "220104": 1, "220581": 3}  # 梅河口市's is not 长春市's
    with store.transaction() as conn:
        for region, n in places.items():
            set_quota(conn, campaign=EMPLOYMENT, category=category, region=regions().get(region),
                      places=n, now=FIXED_NOW)  # fmt: skip
    statuses = [("220104", "county_review"), ("220104", "city_review"), ("220104", "withdrawn"),
                ("220104", "draft"), ("220581", "county_review")]  # fmt: skip
    for region, status in statuses:
        place(store, campaign=EMPLOYMENT, category=category, status=status, region=region)

    step = chat(store, "city", f"/quota {EMPLOYMENT}")
    assert requested(step) == [RequestDocuments(EMPLOYMENT, (DocKind.QUOTA.value,))]
    text = said(step)
    campaign = catalog().get(EMPLOYMENT)
    limits = limits_for(campaign)
    assert limits.quota_ratio is not None
    rows = re.findall(
        r"^(.+)·(.+)：已推荐 (\d+) 名，名额 (\d+) 名，应推荐 (\d+)–(\d+) 名", text, re.M
    )
    expected = []
    for region in ("220100", "220104"):
        used = sum(
            1 for r, s in statuses if regions().contains(region, r) and s not in limits.not_places
        )
        low, high = quota_band(places[region], limits.quota_ratio)
        expected.append(
            (regions().full_name(region), campaign.category(category).name, used, places[region],
             low, high)
        )  # fmt: skip
    got = [(r, c, int(u), int(p), int(lo), int(hi)) for r, c, u, p, lo, hi in rows]
    assert sorted(got) == sorted(expected)
    assert expected[0][2] == 2  # the two filed ones of 朝阳区 count in 长春市's quota
    assert "梅河口市" not in text
    assert f"{limits.cap_label}：0 名" in text
    assert "PNG" in text


def test_a_clerk_cannot_ask_for_the_quota_chart(store: Store) -> None:
    clerk(store)
    step = chat(store, "clerk", f"/quota {EMPLOYMENT}")
    assert requested(step) == []
    assert "只有评审办公室人员" in said(step)


def test_the_roles_commands_answer_without_a_campaign_menu_when_one_is_given(
    store: Store,
) -> None:
    # (a smoke test over every role the commands accept)
    clerk(store)
    official(store, "city", "220100", Level.CITY)
    for user, role in (("clerk", Role.CLERK), ("city", Role.OFFICIAL)):
        step = chat(store, user, f"/rank {SKILLS}")
        assert "还没有可以排序的推荐" in said(step), role


def test_a_refused_document_request_after_the_menu_is_not_called_a_ranking(store: Store) -> None:
    clerk(store)
    chat(store, "clerk", "/documents")  # the campaign menu: an overview waits
    key = ConversationKey(Channel.CONSOLE.value, "clerk")
    assistant = Assistant(catalog(), Engine(catalog(), clock=lambda: FIXED_NOW))
    with store.conversation(key) as tx:
        reads = StoreReads(
            tx, store.sealer, regions(), catalog=catalog(), now=FIXED_NOW,
            workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
        )  # fmt: skip
        ctx = Context(now=FIXED_NOW, new_code=lambda: "ABCDEFGHJK")
        step = assistant.refused(tx.state, Refusal(RefusalKind.NOT_YOURS), reads, ctx)
    assert "未能提交生成文件的请求" in said(step)
    assert "排序" not in said(step)
    assert step.replies[-1].key == "campaign"  # the self-check's question, not the menu's
    assert "（/documents）" not in step.replies[-1].text
