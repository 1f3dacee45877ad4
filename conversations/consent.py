"""Personal data (PIPL, issue 11): the nominee's own consent, and `/forget`.

**The nominee's consent.** A nomination of a person does not leave the unit (the submit and
resubmit moves, `lifecycle.SUBMIT_ACTIONS`) until the nominee has consented to the processing of
their personal information — the clerk may not consent for them. The nominee consents in chat,
on any channel, with the tracking code the unit gave them: `/track CODE` shows what is collected,
why, who sees it and how long it is kept, and the next message `同意` records the consent
(`RecordConsent`, applied and audited by the writer; the clerk and the nominee get a notice).
`撤回同意` after `/track CODE` revokes it while the nomination is still in the unit's hands,
which puts it back to waiting. Instead, the clerk may upload the signed consent form (the
material `nominee_consent`, 被推荐人个人信息处理同意书). A collective (a unit) has no nominee
person to consent; its nominations are not held.

The `同意` is only read as consent in the message right after `/track CODE`: the step that
showed the notice keeps the nomination's id in the session (`PENDING`); every flow rebuilds its
state from its own model, so the mark lasts one message.

**/forget.** A person deletes their own self-check results, reminder settings and tracking
subscriptions at once, after confirming (`确认删除`); the self-check in progress is cleared
too. Their bindings, the nominations a clerk filed and the audit trail stay.

**Retention.** `last_stage` is the day a campaign's last stage ends: the end of its last window
(as in force: an admin may have moved one), or its `as_of` date when that is later or it has no
windows. Drafts never submitted, self-check answers and subscriptions are deleted
`retention_days` after it (storage.privacy.purge); this module says so in the consent notice.

Pure, like the other flows: reads through `Env.reads`, writes nothing itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from conversations.answers import normalise
from conversations.campaign import Campaign, Catalog, Window
from conversations.effects import Audience, Audit, Forget, Notify, RecordConsent, Replan, Scope
from conversations.engine import Reply, Step
from conversations.forms import FormKind, form_for
from conversations.identity import LEVEL_NAMES, Actor, Role
from conversations.lifecycle import Lifecycle, StatusKind
from conversations.policy import guessing_refused, may_edit
from conversations.reads import Env, NominationDetail
from conversations.reminders import local
from conversations.texts import render_text

DEFAULT_RETENTION_DAYS = 180  # AWARDBOT_RETENTION_DAYS (bot.settings)
PENDING = "consent_for"  # session key: the nomination a `同意` in the next message is about
FORGETTING = "forget_asked"  # session key: `/forget` asked to be confirmed

AGREE = frozenset({"同意", "我同意", "确认同意", "本人同意"})
REVOKE = frozenset({"撤回同意", "撤销同意", "取消同意", "我撤回同意", "不同意"})
CONFIRM_FORGET = frozenset({"确认删除"})

ThenAsk = Callable[[dict[str, Any] | None, list[Reply], Env], Step]

MISSING = (
    "被推荐人尚未确认同意（/track 跟踪码 后回复“同意”），或上传签字的个人信息处理同意书"
    "（附件“{{ name }}”：在这项推荐中选择“补充附件”上传）。"
)
NOTICE = (
    "【个人信息处理告知】{{ nominee }} · {{ category }}（跟踪码 {{ code }}）\n"
    "本推荐由单位经办人填报，须被推荐人本人同意后才能报送。\n"
    "收集的信息：{{ fields | join('、') }}"
    "{% if files %}；附件 {{ files }} 项（身份证复印件等证明材料）{% endif %}。"
    "{% if sensitive %}其中{{ sensitive | join('、') }}为敏感个人信息，加密保存，"
    "聊天中只显示部分内容。{% endif %}\n"
    "用途：{{ purpose }}的推荐、审核、公示和表彰，不作他用。\n"
    "谁能看到：本单位经办人；{{ levels | join('、') }}评选表彰工作领导小组办公室（逐级审核）；"
    "公示期间按通知要求公开推荐对象的基本情况。\n"
    "保存多久：报送后，推荐材料和办理记录作为评选表彰档案保存（谁推荐、谁负责）；"
    "未报送的草稿在活动最后阶段结束（{{ last }}）{{ days }} 天后删除。\n"
    "{% if consented %}您已于 {{ consented }} 确认同意。"
    "{% if revocable %}报送前如需撤回，请回复“撤回同意”。{% endif %}"
    "{% else %}如您同意，请回复“同意”。"
    "{% if revocable %}报送前可随时发送 /track 跟踪码 后回复“撤回同意”撤回。{% endif %}"
    "{% endif %}"
)
CLERK_NOTE = (
    "您是本单位经办人，不能代替被推荐人同意：请被推荐人本人用跟踪码 {{ code }} 确认同意，"
    "或上传签字的个人信息处理同意书。"
)
AGREED = (
    "已记录您的同意（{{ at }}），单位经办人会收到通知。"
    "{% if revocable %}报送前如需撤回，请发送 /track {{ code }} 后回复“撤回同意”。{% endif %}"
)
AGREED_BEFORE = "您已于 {{ at }} 确认同意，无需重复。"
REVOKED = (
    "已撤回您的同意。推荐在您重新同意（或单位上传签字的同意书）之前不能报送，"
    "单位经办人会收到通知。"
)
NOTHING_TO_REVOKE = "这项推荐没有在聊天中记录过同意，无需撤回。"
TOO_LATE = "推荐已报出本单位，不能在此撤回同意；如需撤回推荐，请联系单位经办人。"
NOT_NOW = "这项推荐已办结，不再需要确认同意。"
GONE = "这项推荐已无法查看，未记录您的回复。"
NOTICE_GIVEN = "推荐（跟踪码 {{ code }}）的被推荐人已确认同意个人信息处理（{{ at }}）。"
NOTICE_REVOKED = (
    "推荐（跟踪码 {{ code }}）的被推荐人已撤回个人信息处理同意（{{ at }}）："
    "重新同意或上传签字的同意书之前不能报送。"
)
FORGET_NONE = "没有可删除的个人数据：您没有自检记录、提醒设置或关注的推荐。"
FORGET_ASK = """将删除您的以下数据：{{ items | join('、') }}。
删除后不能恢复；身份绑定、单位填报的推荐和办理记录不受影响。
回复“确认删除”删除，回复其他内容则不删除。"""
FORGET_DONE = "已删除：{{ items | join('、') }}。"
FORGET_KEPT = "未删除任何数据。"


# ----- the gate and the writer's re-check ---------------------------------------------------


def needs_consent(campaign: Campaign, detail: NominationDetail) -> bool:
    """Only a person is asked: a unit form's nominee is a unit."""
    form = form_for(campaign, detail.view.category)
    return form is not None and form.kind is FormKind.PERSON


def consent_given(campaign: Campaign, detail: NominationDetail) -> bool:
    """The nominee consented in chat, or the clerk uploaded the signed form."""
    if not needs_consent(campaign, detail) or detail.consent_at is not None:
        return True
    form = form_for(campaign, detail.view.category)
    signed = form.consent_material() if form is not None else None
    return signed is not None and signed.key in detail.uploaded


def consent_missing(campaign: Campaign, detail: NominationDetail) -> str | None:
    """What the move out of the unit lacks (Chinese, naming it), or None."""
    if consent_given(campaign, detail):
        return None
    form = form_for(campaign, detail.view.category)
    signed = form.consent_material() if form is not None else None
    return render_text(MISSING, name=signed.name if signed else "被推荐人个人信息处理同意书")


def at_unit(lifecycle: Lifecycle, status: str) -> bool:
    """Whether the nomination is in the unit's hands: no office's queue holds it, not over."""
    if not lifecycle.has_status(status):
        return False
    found = lifecycle.status(status)
    return found.queue_level is None and found.kind is not StatusKind.FINAL


def consent_refusal(
    campaign: Campaign,
    detail: NominationDetail,
    actor: Actor | None,
    follows: bool,
    *,
    given: bool,
) -> str | None:
    """Why this caller may not give (or revoke) the nominee's consent now, or None. For the
    audit trail and the writer (not user text): the flow words each case itself."""
    lifecycle = campaign.lifecycle
    if lifecycle is None or not needs_consent(campaign, detail):
        return "collective"
    if actor is not None and actor.role is not Role.APPLICANT:
        # A clerk would be consenting for the nominee; an official reviews the nominee.
        return "clerk" if may_edit(actor, detail.view) else "bound"
    if not follows:
        return "not following"
    status = lifecycle.status(detail.view.status) if lifecycle.has_status(detail.view.status) \
        else None  # fmt: skip
    if status is None or status.kind is StatusKind.FINAL:
        return "over"
    if not given and not at_unit(lifecycle, detail.view.status):
        return "left the unit"
    return None


# ----- retention ----------------------------------------------------------------------------


def last_stage(campaign: Campaign, windows: Iterable[Window]) -> dt.date:
    """The day the campaign's last stage ends: its last window's end, or `as_of` if later."""
    return max([campaign.as_of, *(w.end for w in windows)])


def retention_ends(campaign: Campaign, windows: Iterable[Window], days: int) -> dt.date:
    """The first day its drafts, self-check answers and subscriptions may be deleted."""
    return last_stage(campaign, windows) + dt.timedelta(days=days)


def unsubmitted_statuses(lifecycle: Lifecycle) -> frozenset[str]:
    """The statuses a nomination that never left the unit can be in: the unit's own (draft,
    unit publicity, opinions, returned) and the final ones reached only from them (withdrawn
    by the unit). Whether it ever left is the audit trail's (a submit move); see
    storage.privacy."""
    own = {s.key for s in lifecycle.statuses if at_unit(lifecycle, s.key)}
    finals = {
        s.key
        for s in lifecycle.statuses
        if s.kind is StatusKind.FINAL
        and all(set(t.from_) <= own for t in lifecycle.transitions if t.to == s.key)
        and any(t.to == s.key for t in lifecycle.transitions)
    }
    return frozenset(own | finals)


# ----- the conversation ---------------------------------------------------------------------


class Consent:
    """`/track CODE` then 同意 / 撤回同意, and `/forget`."""

    def __init__(self, catalog: Catalog, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
        self.catalog = catalog
        self.retention_days = retention_days

    def tracked(self, step: Step, code: str, env: Env) -> Step:
        """After `/track CODE` (step: its answer): show the notice and wait for 同意."""
        detail = self._tracked_detail(code, env)
        lifecycle = self._lifecycle(detail) if detail is not None else None
        if detail is None or lifecycle is None:
            return step
        campaign = self.catalog.get(detail.view.campaign)
        if not needs_consent(campaign, detail):
            return step
        actor = env.actor()
        if actor is not None and actor.role is Role.OFFICIAL:
            return step
        if actor is not None and actor.role is Role.CLERK:
            if not may_edit(actor, detail.view) or consent_given(campaign, detail):
                return step
            note = Reply(render_text(CLERK_NOTE, code=detail.view.tracking_code))
            return _before_question(step, [note])
        status = detail.view.status
        if not lifecycle.has_status(status) or lifecycle.status(status).kind is StatusKind.FINAL:
            return step
        notice = Reply(self._notice(detail, lifecycle, env))
        marked = _before_question(step, [notice])
        marked.state[PENDING] = detail.view.id
        return marked

    def answer(
        self, saved: dict[str, Any] | None, text: str, env: Env, then_ask: ThenAsk
    ) -> Step | None:
        """The message after the notice (同意 / 撤回同意) or after `/forget`; None: not an answer
        to either, route it as usual."""
        if saved is None:
            return None
        if saved.get(FORGETTING):
            return self._confirm_forget(saved, text, env, then_ask)
        pending = saved.get(PENDING)
        word = normalise(text)
        if not isinstance(pending, int) or word not in AGREE | REVOKE:
            return None
        return then_ask(saved, self._on_answer(pending, word in AGREE, env), env)

    def forget(self, saved: dict[str, Any] | None, env: Env, then_ask: ThenAsk) -> Step:
        """`/forget`: say what would be deleted and ask to confirm."""
        items = self._forgettable(saved, env)
        if not items:
            return then_ask(saved, [Reply(render_text(FORGET_NONE))], env)
        step = then_ask(saved, [Reply(render_text(FORGET_ASK, items=items))], env)
        step.state[FORGETTING] = True
        return step

    # ----- consent ------------------------------------------------------------------------

    def _on_answer(self, nomination: int, given: bool, env: Env) -> list[Reply]:
        detail = env.reads.nomination(nomination)
        if detail is None or (lifecycle := self._lifecycle(detail)) is None:
            return [Reply(render_text(GONE))]
        campaign = self.catalog.get(detail.view.campaign)
        follows = env.reads.follows(detail.view.id)
        why = consent_refusal(campaign, detail, env.actor(), follows, given=given)
        code = detail.view.tracking_code
        if given and detail.consent_at is not None:
            return [Reply(render_text(AGREED_BEFORE, at=_shown(detail.consent_at)))]
        if not given and detail.consent_at is None and why is None:
            return [Reply(render_text(NOTHING_TO_REVOKE))]
        if why is not None:
            env.add(Audit("nominee_consent", False, detail.view.id, {"why": why}))
            text = {"left the unit": TOO_LATE, "over": NOT_NOW}.get(why, GONE)
            if why == "clerk":
                text = render_text(CLERK_NOTE, code=code)
            return [Reply(render_text(text))]
        at = _shown(env.ctx.now)
        env.add(
            RecordConsent(detail.view.id, given),
            Notify(
                Audience(detail.view.id, unit=True, not_the_caller=False, caller=True),
                render_text(NOTICE_GIVEN if given else NOTICE_REVOKED, code=code, at=at),
                f"{detail.view.id}:consent-{'given' if given else 'taken-back'}:"
                f"{env.ctx.now.isoformat()}",
            ),
        )
        if not given:
            return [Reply(render_text(REVOKED))]
        revocable = at_unit(lifecycle, detail.view.status)
        return [Reply(render_text(AGREED, at=at, code=code, revocable=revocable))]

    def _notice(self, detail: NominationDetail, lifecycle: Lifecycle, env: Env) -> str:
        campaign = self.catalog.get(detail.view.campaign)
        form = form_for(campaign, detail.view.category)
        fields = [f.label for f in form.fields] if form is not None else []
        sensitive = [f.label for f in form.fields if f.sensitive] if form is not None else []
        files = len([m for m in form.materials if not m.consent]) if form else 0
        levels: list[str] = []
        for status in lifecycle.statuses:
            name = LEVEL_NAMES[status.queue_level] if status.queue_level else None
            if name is not None and name not in levels:
                levels.append(name)
        category = next(
            (c.name for c in campaign.categories if c.id == detail.view.category),
            detail.view.category,
        )
        windows = env.reads.windows(campaign.id)
        return render_text(
            NOTICE,
            nominee=detail.view.nominee,
            category=category,
            code=detail.view.tracking_code,
            fields=[*fields, "资格自检回答"],
            files=files,
            sensitive=sensitive,
            purpose=f"“{campaign.title}”",
            levels=levels,
            last=last_stage(campaign, windows).isoformat(),
            days=self.retention_days,
            consented=_shown(detail.consent_at) if detail.consent_at else None,
            revocable=at_unit(lifecycle, detail.view.status),
        )

    def _tracked_detail(self, code: str, env: Env) -> NominationDetail | None:
        """The nomination `/track CODE` just showed, as `Assistant._track` found it."""
        if not code or guessing_refused(env.reads, "track", env.ctx.now):
            return None
        if not any(c.isalnum() for c in code):
            return None
        return env.reads.nomination(code)

    def _lifecycle(self, detail: NominationDetail) -> Lifecycle | None:
        if detail.view.campaign not in self.catalog:
            return None
        return self.catalog.get(detail.view.campaign).lifecycle

    # ----- forget -------------------------------------------------------------------------

    def _forgettable(self, saved: dict[str, Any] | None, env: Env) -> list[str]:
        mine = env.reads.my_data()
        items = []
        if mine.selfchecks:
            items.append(f"自检记录 {mine.selfchecks} 条")
        if _selfcheck_answers(saved):
            items.append("正在进行的自检回答")
        if mine.reminder_settings:
            items.append(f"提醒设置 {mine.reminder_settings} 项")
        if mine.tracked:
            items.append(f"关注的推荐 {mine.tracked} 项")
        return items

    def _confirm_forget(
        self, saved: dict[str, Any], text: str, env: Env, then_ask: ThenAsk
    ) -> Step:
        if normalise(text) not in CONFIRM_FORGET:
            return then_ask(saved, [Reply(render_text(FORGET_KEPT))], env)
        items = self._forgettable(saved, env)
        if not items:
            return then_ask(saved, [Reply(render_text(FORGET_NONE))], env)
        mine = env.reads.my_data()
        env.add(
            Forget(),
            Audit(
                "forget",
                True,
                detail={
                    "selfchecks": mine.selfchecks,
                    "reminder_settings": mine.reminder_settings,
                    "tracked": mine.tracked,
                },
            ),
            # What they will still receive (a clerk's defaults), planned again without them.
            *(Replan(Scope(c.id), mine=True) for c in self.catalog),
        )
        done = [Reply(render_text(FORGET_DONE, items=items))]
        return then_ask(None if _selfcheck_answers(saved) else saved, done, env)


def _selfcheck_answers(saved: dict[str, Any] | None) -> bool:
    """Whether the conversation is a self-check holding answers."""
    while saved is not None and saved.get("flow") == "review":
        saved = saved.get("previous")
    return bool(saved and saved.get("flow", "selfcheck") == "selfcheck" and saved.get("answers"))


def _before_question(step: Step, replies: list[Reply]) -> Step:
    """`replies` inserted before the question the step re-asks (its last reply)."""
    out = list(step.replies)
    at = len(out) - 1 if out and out[-1].key is not None else len(out)
    out[at:at] = replies
    return Step(dict(step.state), out, list(step.effects))


def _shown(moment: dt.datetime) -> str:
    """Local time (Asia/Shanghai), to the minute."""
    return local(moment).strftime("%Y-%m-%d %H:%M")


__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "Consent",
    "at_unit",
    "consent_given",
    "consent_missing",
    "consent_refusal",
    "last_stage",
    "retention_ends",
    "unsubmitted_statuses",
]
