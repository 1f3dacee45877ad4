"""The documents and the offices' overview in chat (issue 12): `/documents`, `/rank`,
`/region`, `/quota`.

- `/documents [活动]` (a clerk or an official) asks for the role's document set
  (`documents.documents_for`) as one `RequestDocuments`; a worker renders it and sends the
  files into the chat later, so the reply only says what is coming.
- `/rank [活动]` lists the caller's scope — a clerk's unit, an office's region — in its stored
  order (the ranked first by position, then the others by id) and takes the new order as the
  list's numbers (`documents.apply_order`): a bad answer is asked again with the reason, a good
  one is one `SetRanking`. Which nominations take part is the summary's own rule
  (`documents.in_documents`): filed (not the draft) and still holding their nominee (not
  withdrawn, rejected or revoked); a returned one stays.
- `/region [活动] [搜索词]` (an official): what the units of the region have filed — every
  status after the draft, at every level — counted by status and by category, then listed
  `PAGE` at a time (`下一页`). Search words narrow it to the nominations whose nominee's name,
  unit name or tracking code contains every word (case-insensitive).
- `/quota [活动]` (an official): the quota figures of the region and the regions under it as
  text (`documents.quota_text`), and a `RequestDocuments` for the chart (PNG).

The campaign: the one typed (its number as the menu lists it, or its id), else the one the
conversation is about, else the only one the bot runs; otherwise the campaign menu is asked.

Multi-turn like a review listing: the state is `OverviewState` with `previous`, the
conversation to return to; `/cancel`, `/back` or any other command leaves it. Pure.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversations.campaign import Campaign, Catalog
from conversations.documents import (
    DOC_TITLES,
    DocKind,
    apply_order,
    documents_for,
    in_documents,
    quota_figures,
    quota_text,
)
from conversations.effects import RequestDocuments, SetRanking
from conversations.engine import Option, Reply, Step, pick
from conversations.identity import Actor, Role
from conversations.reads import Env, NominationView, RegionEntry
from conversations.review import Leave, Review
from conversations.texts import render, render_text

DOCUMENTS, RANK, REGION, QUOTA = "/documents", "/rank", "/region", "/quota"
COMMANDS = (DOCUMENTS, RANK, REGION, QUOTA)
PAGE = 20  # nominations per page of /region
NEXT, BACK = "next_page", "back"
LEAVING = frozenset({"/cancel", "/back"})

TEXTS = {
    "documents_refused": (
        "只有单位经办人和评审办公室人员可以生成申报文件。"
        "如您是经办人或评审办公室人员，请先发送 /bind 邀请码。"
    ),
    "documents_sent": (
        "正在生成「{{ campaign }}」的{{ titles | join('、') }}，完成后将以文件发送到本对话。"
    ),
    "rank_refused": (
        "只有单位经办人（本单位的推荐）和评审办公室人员（本地区的推荐）可以排序。"
        "如您是经办人或评审办公室人员，请先发送 /bind 邀请码。"
    ),
    "rank_none": (
        "{{ scope }}在「{{ campaign }}」中还没有可以排序的推荐"
        "（已报送、未撤回、未被否决的推荐参与排序）。"
    ),
    "rank_one": "{{ scope }}在「{{ campaign }}」中只有 1 项推荐，无需排序：\n1. {{ line }}",
    "rank_list": (
        "{{ scope }}在「{{ campaign }}」中的推荐排序（当前顺序）：\n"
        "{% for line in lines %}{{ loop.index }}. {{ line }}\n{% endfor %}"
        "请按新的顺序输入序号，例如：3 1 2（未写的保持原来的先后，排在后面；发送 /cancel 放弃）"
    ),
    "rank_saved": (
        "已保存新的推荐排序（{{ campaign }}）：\n"
        "{% for line in lines %}{{ loop.index }}. {{ line }}\n{% endfor %}"
        "生成的推荐汇总表将按此顺序排列。"
    ),
    "rank_left": "已放弃排序，原来的顺序不变。",
    "documents_not_made": "未能提交生成文件的请求，请稍后重新发送命令。",
    "rank_refused_stale": "排序未保存：其中有推荐已不在您的范围内。请重新发送 /rank 查看。",
    "overview_refused": "只有评审办公室人员可以查看本地区的推荐总览和名额情况。",
    "region_none": "{{ scope }}在「{{ campaign }}」中还没有已报送的推荐。",
    "region_nothing_found": "{{ scope }}在「{{ campaign }}」中没有与“{{ search }}”相符的推荐。",
    "region_head": (
        "{{ scope }} · {{ campaign }}\n"
        "{% if search %}搜索“{{ search }}”：找到 {{ total }} 项"
        "{% else %}已报送的推荐共 {{ total }} 项{% endif %}\n"
        "按进度：{{ statuses | join('，') }}\n"
        "按类别：{{ categories | join('，') }}"
    ),
    "region_page": (
        "{% for line in lines %}{{ line }}\n{% endfor %}"
        "{% if paged %}共 {{ total }} 项，显示第 {{ first }}–{{ last }} 项。{% endif %}"
        "{% if more %}回复“下一页”查看第 {{ last + 1 }}–{{ next_last }} 项。{% endif %}"
    ),
    "region_more": "回复“下一页”继续，或“返回”：",
    "quota_chart": "推荐名额对照图（PNG）正在生成，完成后将以文件发送到本对话。",
    "pick_campaign": "请选择评选表彰活动（{{ command }}）：",
    "bad_campaign": "没有第 {{ word }} 个评选表彰活动：请回复活动序号（1–{{ count }}）。",
}


def _say(name: str, **context: Any) -> str:
    return render_text(TEXTS[name], **context)


class OverviewStage(StrEnum):
    CAMPAIGN = "campaign"  # which campaign the command is about
    RANK = "rank"  # the new order
    PAGE = "page"  # a /region list longer than a page: 下一页


class OverviewState(BaseModel):
    flow: str = "overview"
    stage: OverviewStage
    command: str
    about: str | None = None  # the campaign (not `campaign`: the conversation's own key)
    search: str = ""
    items: list[int] = Field(default_factory=list)  # /rank: ids as numbered; /region: listed
    page: int = 0  # /region: the page shown last (0 is the first)
    previous: dict[str, Any] | None = None  # the conversation to go back to


def in_overview(saved: dict[str, Any] | None) -> bool:
    return saved is not None and saved.get("flow") == "overview"


class Overview:
    """The four commands; `Leave` hands back to the conversation they interrupted."""

    def __init__(self, catalog: Catalog, review: Review) -> None:
        self.catalog = catalog
        self.review = review  # its one-line listing of a nomination

    # ----- entry points -------------------------------------------------------------------

    def start(
        self,
        command: str,
        argument: str,
        saved: dict[str, Any] | None,
        env: Env,
        current: str | None,
    ) -> Step | Leave:
        """`command` typed with `argument`, over the conversation `saved` (not an overview).
        `current` is the campaign that conversation is about, if any."""
        refusal = self._refusal(command, env.actor())
        if refusal is not None:
            return Leave(saved, [Reply(_say(refusal))])
        words = argument.split()
        campaign: Campaign | None = None
        if words and words[0] in self.catalog:
            campaign = self.catalog.get(words.pop(0))
        elif words and words[0].isdigit() and len(words[0]) <= 2:
            word = words.pop(0)
            if not 1 <= int(word) <= len(self.catalog):
                text = _say("bad_campaign", word=word, count=len(self.catalog))
                return Leave(saved, [Reply(text)])
            campaign = list(self.catalog)[int(word) - 1]
        elif current is not None and current in self.catalog:
            campaign = self.catalog.get(current)
        elif len(self.catalog) == 1:
            campaign = next(iter(self.catalog))
        state = OverviewState(
            stage=OverviewStage.CAMPAIGN, command=command, search=" ".join(words), previous=saved
        )
        if campaign is None:
            return self._ask(state, [])
        state.about = campaign.id
        return self._run(state, env)

    def resume(self, saved: dict[str, Any], text: str, env: Env) -> Step | Leave:
        """One message typed while an overview waits (not a command other than /cancel, /back:
        the assistant lets those leave)."""
        state = OverviewState.model_validate(saved)
        typed = text.strip()
        if state.stage is OverviewStage.RANK:
            if typed in LEAVING:
                return Leave(state.previous, [Reply(_say("rank_left"))])
            return self._on_order(state, typed, env)
        options = self._options(state)
        value = pick(typed, options)
        if typed in LEAVING or value == BACK:
            return Leave(state.previous, [])
        if value is None:
            return self._ask(state, [Reply(render("bad_choice", count=len(options)))])
        if state.stage is OverviewStage.CAMPAIGN:
            state.about = value
            return self._run(state, env)
        state.page += 1  # NEXT
        return self._region_page(state, [], env)

    def refused(self, saved: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Reply]]:
        """The writer refused this step's effect: the ranking (an id left the scope meanwhile),
        or the documents asked for after the campaign menu."""
        state = OverviewState.model_validate(saved)
        name = "rank_refused_stale" if state.command == RANK else "documents_not_made"
        return state.previous, [Reply(_say(name))]

    # ----- the commands -------------------------------------------------------------------

    def _run(self, state: OverviewState, env: Env) -> Step | Leave:
        campaign = self.catalog.get(state.about or "")
        if state.command == DOCUMENTS:
            return self._documents(state, campaign, env)
        if state.command == RANK:
            return self._rank(state, campaign, env)
        if state.command == REGION:
            return self._region(state, campaign, env)
        return self._quota(state, campaign, env)

    def _documents(self, state: OverviewState, campaign: Campaign, env: Env) -> Leave:
        kinds = documents_for(env.actor())
        env.add(RequestDocuments(campaign.id, tuple(k.value for k in kinds)))
        text = _say(
            "documents_sent", campaign=campaign.short_title, titles=[DOC_TITLES[k] for k in kinds]
        )
        return Leave(state.previous, [Reply(text)])

    def _rank(self, state: OverviewState, campaign: Campaign, env: Env) -> Step | Leave:
        views = self._rankable(campaign, env)
        scope = self._scope(env)
        if not views:
            text = _say("rank_none", scope=scope, campaign=campaign.short_title)
            return Leave(state.previous, [Reply(text)])
        if len(views) == 1:
            text = _say(
                "rank_one", scope=scope, campaign=campaign.short_title,
                line=self.review.line(views[0]),
            )  # fmt: skip
            return Leave(state.previous, [Reply(text)])
        state.stage, state.items = OverviewStage.RANK, [v.id for v in views]
        return self._ask(state, [], env)

    def _on_order(self, state: OverviewState, typed: str, env: Env) -> Step | Leave:
        order = apply_order(state.items, typed)
        if isinstance(order, str):
            return self._ask(state, [Reply(order)], env)
        campaign = self.catalog.get(state.about or "")
        env.add(SetRanking(campaign.id, tuple(order)))
        by_id = {v.id: v for v in self._rankable(campaign, env)}
        lines = [self.review.line(by_id[i]) for i in order if i in by_id]
        text = _say("rank_saved", campaign=campaign.short_title, lines=lines)
        return Leave(state.previous, [Reply(text)])

    def _region(self, state: OverviewState, campaign: Campaign, env: Env) -> Step | Leave:
        found = self._filed(campaign, env, state.search)
        scope = self._scope(env)
        if not found:
            name = "region_nothing_found" if state.search else "region_none"
            text = _say(name, scope=scope, campaign=campaign.short_title, search=state.search)
            return Leave(state.previous, [Reply(text)])
        lifecycle = campaign.lifecycle
        statuses = Counter(e.view.status for e in found)
        categories = Counter(e.view.category for e in found)
        head = _say(
            "region_head",
            scope=scope,
            campaign=campaign.short_title,
            search=state.search,
            total=len(found),
            statuses=[
                f"{s.label} {statuses[s.key]}"
                for s in (lifecycle.statuses if lifecycle is not None else [])
                if statuses[s.key]
            ],
            categories=[
                f"{c.name} {categories[c.id]}" for c in campaign.categories if categories[c.id]
            ],
        )
        state.stage, state.items, state.page = OverviewStage.PAGE, [e.view.id for e in found], 0
        return self._region_page(state, [Reply(head)], env)

    def _region_page(self, state: OverviewState, replies: list[Reply], env: Env) -> Step | Leave:
        campaign = self.catalog.get(state.about or "")
        by_id = {e.view.id: e for e in self._filed(campaign, env, "")}
        first = state.page * PAGE
        shown = state.items[first : first + PAGE]
        lines = [
            f"{n}. {self.review.line(by_id[i].view)} · {by_id[i].unit}"
            if i in by_id
            else f"{n}. {render('nomination_gone')}"
            for n, i in enumerate(shown, first + 1)
        ]
        total = len(state.items)
        last = first + len(shown)
        more = last < total
        text = _say(
            "region_page", lines=lines, total=total, first=first + 1, last=last, more=more,
            next_last=min(last + PAGE, total), paged=total > PAGE,
        )  # fmt: skip
        page = Reply(text)
        if not more:
            return Leave(state.previous, [*replies, page])
        return self._ask(state, [*replies, page])

    def _quota(self, state: OverviewState, campaign: Campaign, env: Env) -> Leave:
        actor = env.actor()
        region = actor.region if actor is not None and actor.region else ""
        reads = env.reads
        quotas = {
            c.id: [
                (q.region, q.places)
                for q in reads.quotas(campaign.id, c.id)
                if reads.contains(region, q.region)
            ]
            for c in campaign.categories
        }
        facts = [f for f in reads.campaign_facts(campaign.id) if reads.contains(region, f.region)]
        figures = quota_figures(
            campaign, reads.region_name(region), facts, quotas,
            region_name=reads.region_name, contains=reads.contains,
        )  # fmt: skip
        env.add(RequestDocuments(campaign.id, (DocKind.QUOTA.value,)))
        return Leave(state.previous, [Reply(quota_text(figures)), Reply(_say("quota_chart"))])

    # ----- what is listed -----------------------------------------------------------------

    def _rankable(self, campaign: Campaign, env: Env) -> list[NominationView]:
        """The caller's scope in the campaign, as the summary takes it, in the stored order."""
        actor = env.actor()
        if actor is None:
            return []
        if actor.role is Role.CLERK and actor.unit_id is not None:
            views = env.reads.unit_nominations(actor.unit_id)
        elif actor.role is Role.OFFICIAL and actor.region:
            views = [e.view for e in env.reads.region_nominations(campaign.id, actor.region)]
        else:
            return []
        mine = [v for v in views if v.campaign == campaign.id and in_documents(campaign, v.status)]
        ranking = env.reads.ranking(campaign.id)
        return sorted(mine, key=lambda v: (v.id not in ranking, ranking.get(v.id, 0), v.id))

    def _filed(self, campaign: Campaign, env: Env, search: str) -> list[RegionEntry]:
        """What the region's units have filed (every status but the draft), matching `search`."""
        actor = env.actor()
        region = actor.region if actor is not None and actor.region else ""
        initial = campaign.lifecycle.initial if campaign.lifecycle is not None else None
        words = [w.casefold() for w in search.split()]
        return [
            e
            for e in env.reads.region_nominations(campaign.id, region)
            if e.view.status != initial
            and all(
                w in e.name.casefold()
                or w in e.unit.casefold()
                or w in e.view.tracking_code.casefold()
                for w in words
            )
        ]

    # ----- plumbing -----------------------------------------------------------------------

    def _refusal(self, command: str, actor: Actor | None) -> str | None:
        """The refusal text's name when `actor` may not use `command`."""
        role = actor.role if actor is not None else Role.APPLICANT
        if command == DOCUMENTS and not documents_for(actor):
            return "documents_refused"
        if command == RANK and role not in (Role.CLERK, Role.OFFICIAL):
            return "rank_refused"
        official = role is Role.OFFICIAL and actor is not None and bool(actor.region)
        if command in (REGION, QUOTA) and not official:
            return "overview_refused"
        return None

    def _scope(self, env: Env) -> str:
        """本单位, or the office's region by name."""
        actor = env.actor()
        if actor is not None and actor.role is Role.CLERK:
            return "本单位"
        return env.reads.region_name(actor.region) if actor is not None and actor.region else ""

    def _options(self, state: OverviewState) -> tuple[Option, ...]:
        if state.stage is OverviewStage.CAMPAIGN:
            return tuple(Option(c.short_title, c.id) for c in self.catalog)
        return (Option("下一页", NEXT), Option("返回", BACK))

    def _ask(self, state: OverviewState, replies: list[Reply], env: Env | None = None) -> Step:
        """The replies, then the question the stage waits for."""
        if state.stage is OverviewStage.CAMPAIGN:
            text = _say("pick_campaign", command=state.command)
            question = Reply(text, key="campaign", options=self._options(state))
        elif state.stage is OverviewStage.RANK:
            assert env is not None
            campaign = self.catalog.get(state.about or "")
            by_id = {v.id: v for v in self._rankable(campaign, env)}
            lines = [
                self.review.line(by_id[i]) if i in by_id else render("nomination_gone")
                for i in state.items
            ]
            text = _say(
                "rank_list", scope=self._scope(env), campaign=campaign.short_title, lines=lines
            )
            question = Reply(text, key="rank")
        else:
            question = Reply(_say("region_more"), key="page", options=self._options(state))
        return Step(state.model_dump(mode="json"), [*replies, question])
