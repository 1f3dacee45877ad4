"""The reminder commands and notes of a conversation: `/reminders`, `/subscribe`, `/unsubscribe`,
the offer on a verdict, and the note that a campaign's windows have passed.

What a user receives is planned elsewhere (conversations.reminders); here the user says what
they want (`SetReminders`) and the plan of what it touches is redone with the step (`Replan`).
"""

from __future__ import annotations

from dataclasses import dataclass

from conversations.campaign import Campaign, Catalog, Window
from conversations.effects import Replan, Scope, SetReminders
from conversations.engine import Reply
from conversations.identity import Role
from conversations.reads import Env
from conversations.reminders import (
    ALL_KINDS,
    KIND_DEADLINE,
    KIND_DIGEST,
    KIND_LABELS,
    KIND_WINDOW,
    REMINDER_KINDS,
    local,
)
from conversations.texts import render

SHOWN = 10  # upcoming reminders listed by /reminders

# What a user may type for each kind (the labels, their short forms, the English names).
_KIND_WORDS = {
    **dict.fromkeys(
        ("报送", "窗口", "报送提醒", "报送时间", "报送时间提醒", "window"), KIND_WINDOW
    ),
    **dict.fromkeys(("截止", "待办", "截止提醒", "截止与待办提醒", "deadline"), KIND_DEADLINE),
    **dict.fromkeys(("汇总", "每日汇总", "digest"), KIND_DIGEST),
    **dict.fromkeys(("全部", "所有", "all"), ALL_KINDS),
}


@dataclass(frozen=True, slots=True)
class _KindView:
    label: str
    on: bool


@dataclass(frozen=True, slots=True)
class _CampaignView:
    title: str
    kinds: list[_KindView]


@dataclass(frozen=True, slots=True)
class _Upcoming:
    when: str
    title: str
    kind: str


class Reminding:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ----- /reminders -----------------------------------------------------------------------

    def show(self, env: Env) -> list[Reply]:
        upcoming = env.reads.my_reminders(SHOWN + 1)
        items = [
            _Upcoming(local(r.due).strftime("%Y-%m-%d %H:%M"), r.title, KIND_LABELS[r.kind])
            for r in upcoming[:SHOWN]
        ]
        listing = (
            render("reminders_list", items=items, more=0 if len(upcoming) <= SHOWN else "若干")
            if items
            else render("reminders_none")
        )
        kinds = self._kinds_for(env)
        campaigns = [
            _CampaignView(
                c.short_title,
                [_KindView(KIND_LABELS[k], env.reads.reminder_settings(c.id)[k]) for k in kinds],
            )
            for c in self.catalog
        ]
        return [Reply(listing), Reply(render("reminders_settings", campaigns=campaigns))]

    # ----- /subscribe, /unsubscribe -------------------------------------------------------

    def change(self, argument: str, on: bool, env: Env, current: str | None) -> list[Reply]:
        """`argument`: an optional kind word and an optional campaign number (as /reminders
        lists them); by default every kind (an applicant: the window reminders) of the
        campaign the conversation is in, else of every campaign."""
        kind: str | None = None
        campaign: Campaign | None = None
        for word in argument.split():
            if word in _KIND_WORDS:
                kind = _KIND_WORDS[word]
            elif word.isdigit() and 1 <= int(word) <= len(self.catalog):
                campaign = list(self.catalog)[int(word) - 1]
            elif word in self.catalog:
                campaign = self.catalog.get(word)
            elif word.isdigit():
                return [Reply(render("reminders_bad_campaign", word=word))]
            else:
                return [Reply(render("reminders_bad_kind", word=word[:20]))]
        actor = env.actor()
        official = actor is not None and actor.role is Role.OFFICIAL
        if kind == KIND_DIGEST and not official and on:
            return [Reply(render("reminders_digest_officials"))]
        if kind is None:
            applicant = actor is None or actor.role is Role.APPLICANT
            kind = KIND_WINDOW if applicant and on else ALL_KINDS
        if campaign is None and current is not None and current in self.catalog:
            campaign = self.catalog.get(current)
        env.add(SetReminders(campaign.id if campaign else None, kind, on))
        for c in [campaign] if campaign else list(self.catalog):
            env.add(Replan(Scope(c.id), mine=True))
        what = KIND_LABELS.get(kind, "全部提醒")
        where = f"「{campaign.short_title}」的{what}" if campaign else f"所有评选活动的{what}"
        return [Reply(render("reminders_set", on=on, what=where))]

    # ----- notes in the flows --------------------------------------------------------------

    def offer(self, campaign_id: str, env: Env) -> Reply | None:
        """On a verdict: offer the window reminders, while a window is still ahead or open."""
        campaign = self.catalog.get(campaign_id)
        spec = campaign.reminders
        ahead = [w for w in env.reads.windows(campaign_id) if w.end >= env.ctx.today]
        if spec is None or not ahead:
            return None
        if env.reads.reminder_settings(campaign_id)[KIND_WINDOW]:
            return Reply(render("reminders_subscribed"))
        days = "、".join(str(d) for d in spec.window_days_before)
        return Reply(
            render("reminders_offer", days=days, at=spec.at, strict=any(w.strict for w in ahead))
        )

    def closed(self, campaign_id: str, env: Env) -> Reply | None:
        """When every window of the campaign has passed: say so (a 2022 campaign in 2026)."""
        if campaign_id not in self.catalog:
            return None
        campaign = self.catalog.get(campaign_id)
        last = _last(env.reads.windows(campaign_id))
        if last is None or last.end >= env.ctx.today:
            return None
        return Reply(
            render(
                "campaign_closed", label=last.label, end=last.end.isoformat(), strict=last.strict,
                contact=campaign.contact,
            )
        )  # fmt: skip

    def _kinds_for(self, env: Env) -> tuple[str, ...]:
        actor = env.actor()
        if actor is not None and actor.role is Role.OFFICIAL:
            return REMINDER_KINDS
        return (
            (KIND_WINDOW, KIND_DEADLINE)
            if actor is not None and actor.role is Role.CLERK
            else (KIND_WINDOW,)
        )


def _last(windows: list[Window]) -> Window | None:
    return max(windows, key=lambda w: w.end) if windows else None


def in_force(campaign: Campaign, windows: list[Window]) -> Campaign:
    """The campaign with its windows as in force (an admin moved one): what the verdict shows."""
    return (
        campaign
        if windows == campaign.windows
        else campaign.model_copy(update={"windows": windows})
    )


__all__ = ["Reminding", "in_force"]
