"""The front door of every conversation: commands about who you are and what you follow,
then the self-check, filing and review flows for everything else.

`resume(session, inbound, reads, ctx) -> Step(session, replies, effects)`: pure like the
engine. It reads through `reads` (memoised for the step) and returns what must be written as
effects; when the writer refuses one (`reads.Refusal`), `refused` gives the step's answer.

Every question asked is stamped with the turn it was asked in (`Reply.asks`, kept in the session
as `asking`): a button carries it back, and an answer meant for another question — a double
tap, a keyboard of an earlier turn, a press on another worker after a restart — changes
nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from conversations.campaign import Catalog
from conversations.consent import DEFAULT_RETENTION_DAYS, Consent
from conversations.effects import Audit, Bind, Replan, Scope, SetReminders, Subscribe
from conversations.engine import Engine, Inbound, Reply, Step
from conversations.filing import Filing, Upload
from conversations.help import help_text, is_command
from conversations.identity import LEVEL_SHORT_NAMES, Actor, Level, Role, bind_refusal_text
from conversations.overview import Overview, in_overview
from conversations.policy import GUESS_ATTEMPTS, guessing_refused, may_see
from conversations.reads import Context, Env, PortRefusal, Reads, Refusal, RefusalKind
from conversations.reminders import KIND_WINDOW
from conversations.reminding import Reminding, in_force
from conversations.review import ContinueDraft, Leave, Review
from conversations.texts import render

# Commands the self-check engine answers itself (conversations.engine) beyond those of /help.
ENGINE_ONLY = frozenset({"/start", "/continue"})


class Assistant:
    """Routes one inbound message: identity and tracking commands here, the rest to the flow."""

    def __init__(
        self, catalog: Catalog, engine: Engine, *, retention_days: int = DEFAULT_RETENTION_DAYS
    ) -> None:
        self.catalog = catalog
        self.consent = Consent(catalog, retention_days)  # the nominee's consent, /forget
        self.engine = engine
        self.filing = Filing(engine)
        self.review = Review(catalog)
        self.overview = Overview(catalog, self.review)  # /documents /rank /region /quota
        self.reminding = Reminding(catalog)

    def start(self, saved: dict[str, Any] | None, reads: Reads, ctx: Context) -> Step:
        env = Env.of(reads, ctx)
        inner = _outside_review(saved)
        if _in_filing(inner):
            step = self.filing.ask(inner or {}, env)
            step = Step(step.state, [Reply(render("resume")), *step.replies])
        else:
            step = self.engine.start(inner)
        return _stamped(saved, step, env)

    def resume(
        self,
        saved: dict[str, Any] | None,
        inbound: Inbound,
        reads: Reads,
        ctx: Context,
        upload: Upload | None = None,
    ) -> Step:
        env = Env.of(reads, ctx)
        if inbound.answers is not None and _turn(inbound.answers) != _turn(
            (saved or {}).get("asking")
        ):
            # A button of another question: a double tap, an old keyboard. Nothing changes and
            # nothing is said (the channel tells the presser the button is out of date).
            return Step(dict(saved or {}), [])
        try:
            step = self._route(saved, inbound, env, upload)
            step = self._timely(saved, step, env)
        except PortRefusal as exc:
            # The outside world could not answer (an unknown calendar year): say why, ask again.
            env.effects.clear()
            step = self._then_ask(saved, [Reply(str(exc))], env)
        return _stamped(saved, step, env)

    def _timely(self, saved: dict[str, Any] | None, step: Step, env: Env) -> Step:
        """What time changes in a step: a campaign just chosen whose windows have all passed is
        said to be closed (a 2022 campaign does not look current in 2026); a verdict offers the
        window reminders while a window is ahead."""
        before, after = _campaign_of(_outside_review(saved)), _campaign_of(step.state)
        replies = list(step.replies)
        if after is not None and after != before:
            note = self.reminding.closed(after, env)
            if note is not None:
                replies.insert(max(len(replies) - 1, 0), note)
        for i, reply in enumerate(replies):
            if reply.verdict is not None and after is not None:
                offer = self.reminding.offer(after, env)
                if offer is not None and reply.verdict != "ineligible":
                    replies.insert(i + 1, offer)
                break
        return Step(step.state, replies, step.effects)

    def refused(
        self, saved: dict[str, Any] | None, refusal: Refusal, reads: Reads, ctx: Context
    ) -> Step:
        """The writer refused an effect of the step that ran on `saved`; nothing of it was
        written. Say why (the texts live here, not in storage), audit it, ask again."""
        env = Env.of(reads, ctx)
        action = {RefusalKind.BIND: "bind"}.get(refusal.kind, "move")
        env.add(Audit(action, False, refusal.nomination, {"why": str(refusal)}))
        if refusal.kind is RefusalKind.BIND:
            step = self._then_ask(saved, [Reply(render(bind_refusal_text(refusal.detail)))], env)
        elif in_overview(saved):
            previous, replies = self.overview.refused(saved or {})
            step = self._then_ask(previous, replies, env)
        elif refusal.kind is RefusalKind.NOT_YOURS:
            step = self._then_ask(saved, [Reply(render("not_your_unit"))], env)
        elif _in_review(saved):
            outcome = self.review.stale(saved or {}, env)
            step = (
                outcome
                if isinstance(outcome, Step)
                else self._then_ask(outcome.previous, outcome.replies, env)
            )
        else:
            step = self._then_ask(saved, [Reply(render("move_refused_stale"))], env)
        return _stamped(saved, step, env)

    def _route(
        self,
        saved: dict[str, Any] | None,
        inbound: Inbound,
        env: Env,
        upload: Upload | None,
    ) -> Step:
        words = inbound.text.strip().split()
        command = words[0].lower() if words and words[0].startswith("/") else None
        argument = " ".join(words[1:])
        if command == "/new":
            step = self.filing.start(env)
            return step if step.state else self._then_ask(saved, step.replies, env)
        if _in_filing(saved) and (
            command == "/restart"
            or (command == "/cancel" and (saved or {}).get("stage") != "wait_file")
        ):
            fresh = self.engine.ask(None)
            return Step(fresh.state, [Reply(render("filing_left")), *fresh.replies])
        if command == "/bind":
            return self._then_ask(saved, self._bind(argument, env), env)
        if command == "/track":
            step = self._then_ask(saved, self._track(argument, env), env)
            return self.consent.tracked(step, argument, env)
        if command == "/forget":
            return self.consent.forget(saved, env, self._then_ask)
        if command == "/mine":
            return self._listing(saved, self.review.mine(_outside_review(saved), env), env)
        if command == "/queue":
            return self._listing(saved, self.review.queue(_outside_review(saved), env), env)
        if command == "/reminders":
            return self._then_ask(saved, self.reminding.show(env), env)
        if command in ("/subscribe", "/unsubscribe"):
            current = _campaign_of(_outside_review(saved))
            replies = self.reminding.change(argument, command == "/subscribe", env, current)
            return self._then_ask(saved, replies, env)
        if command == "/whoami":
            text = render("whoami", who=self._who(env.actor(), env))
            return self._then_ask(saved, [Reply(text)], env)
        if command == "/help":
            return self._then_ask(saved, [Reply(help_text(env.actor()))], env)
        if command in ("/documents", "/rank", "/region", "/quota"):
            outer = _outside_review(saved)
            opened = self.overview.start(command, argument, outer, env, _campaign_of(outer))
            return self._left(opened, env)
        if in_overview(saved):
            if command is None or command in ("/cancel", "/back"):
                return self._left(self.overview.resume(saved or {}, inbound.text, env), env)
            saved = _outside_review(saved)  # another command leaves the overview
        if command is None and (
            said := self.consent.answer(saved, inbound.text, env, self._then_ask)
        ):
            return said  # 同意 / 撤回同意 after /track CODE, 确认删除 after /forget
        if _in_review(saved):
            outcome = self.review.resume(saved or {}, inbound.text, env)
            if isinstance(outcome, Leave):
                return self._then_ask(outcome.previous, outcome.replies, env)
            if isinstance(outcome, ContinueDraft):
                intro = Reply(render("draft_resumed", line=self.review.line(outcome.detail.view)))
                return self.filing.continue_draft(outcome.detail, env, intro)
            return outcome
        if _in_filing(saved):
            return self.filing.resume(saved or {}, inbound, env, upload)
        if upload is not None:
            return self._then_ask(saved, [Reply(render("filing_file_unexpected"))], env)
        if command == "/cancel":
            return self._then_ask(saved, [Reply(render("nothing_to_cancel"))], env)
        if saved and command and not is_command(command) and command not in ENGINE_ONLY:
            # The help after an unknown command is the person's own, as /help's is.
            shown = command if len(command) <= 20 else command[:20] + "…"
            text = render("unknown_command", command=shown) + "\n" + help_text(env.actor())
            return self._then_ask(saved, [Reply(text)], env)
        return self._engine_for(saved, env).resume(saved, inbound)

    def _engine_for(self, saved: dict[str, Any] | None, env: Env) -> Engine:
        """The self-check engine, over the campaign's windows as in force (an admin may have
        moved one: the verdict shows the dates that hold)."""
        campaign_id = _campaign_of(saved)
        if campaign_id is None or campaign_id not in self.catalog:
            return self.engine
        campaign = self.catalog.get(campaign_id)
        current = in_force(campaign, env.reads.windows(campaign_id))
        if current is campaign:
            return self.engine
        others = [c for c in self.catalog if c.id != campaign_id]
        return Engine(Catalog([*others, current]), self.engine.clock)

    # ----- commands -----------------------------------------------------------------------

    def _bind(self, code: str, env: Env) -> list[Reply]:
        if not code:
            return [Reply(render("bind_usage"))]
        if guessing_refused(env.reads, "bind", env.ctx.now):
            env.add(Audit("bind", False, detail={"why": "too many wrong codes"}))
            return [Reply(render("guessed_bind", n=GUESS_ATTEMPTS))]
        invite = env.reads.invite(code)
        state = invite.state if invite is not None else "invalid"
        if invite is None or state not in ("valid", "mine"):
            env.add(Audit("bind", False, detail={"why": state}))
            return [Reply(render(bind_refusal_text(state)))]
        if state == "valid":
            env.add(Bind(code))
            # What a clerk or an official receives of every campaign, planned with the bind.
            env.add(*(Replan(Scope(c.id), mine=True) for c in self.catalog))
        actor = Actor(
            role=Role(invite.role),
            region=invite.region,
            level=Level(invite.level) if invite.level else None,
            unit_id=invite.unit_id,
        )
        return [Reply(render("bound", who=self._who(actor, env)))]

    def _track(self, code: str, env: Env) -> list[Reply]:
        if not code:
            views = env.reads.tracked()
            if not views:
                return [Reply(render("tracked_none"))]
            return [Reply(render("tracked_list", lines=[self.review.line(v) for v in views]))]
        if guessing_refused(env.reads, "track", env.ctx.now):
            env.add(Audit("track", False, detail={"why": "too many wrong codes"}))
            return [Reply(render("guessed_track", n=GUESS_ATTEMPTS))]
        detail = env.reads.nomination(code) if any(c.isalnum() for c in code) else None
        if detail is None:
            env.add(Audit("track", False, detail={"why": "unknown tracking code"}))
            shown = code if len(code) <= 20 else code[:20] + "…"
            return [Reply(render("track_unknown", code=shown))]
        if not env.reads.follows(detail.view.id):
            env.add(Subscribe(detail.view.id))
        replies = [Reply(render("tracking", line=self.review.line(detail.view)))]
        campaign = detail.view.campaign
        if campaign in self.catalog and not env.reads.reminder_settings(campaign)[KIND_WINDOW]:
            # Following a nomination is asking for its campaign's windows too (issue 10).
            offer = self.reminding.offer(campaign, env)
            if offer is not None:
                env.add(SetReminders(campaign, KIND_WINDOW, True))
                env.add(Replan(Scope(campaign), mine=True))
                replies.append(Reply(render("reminders_tracking")))
        return replies

    def _left(self, outcome: Step | Leave, env: Env) -> Step:
        """An overview's next question, or (it is over) its replies and the question before."""
        if isinstance(outcome, Leave):
            return self._then_ask(outcome.previous, outcome.replies, env)
        return outcome

    def _listing(
        self, saved: dict[str, Any] | None, outcome: Step | list[Reply], env: Env
    ) -> Step:
        """A review list to choose from, or (nothing to list / refused) replies, then re-ask."""
        if isinstance(outcome, Step):
            return outcome
        return self._then_ask(_outside_review(saved), outcome, env)

    # ----- texts --------------------------------------------------------------------------

    def _who(self, actor: Actor | None, env: Env) -> str:
        if actor is None or actor.role is Role.APPLICANT:
            return render("who_applicant")
        region = env.reads.region_name(actor.region) if actor.region else ""
        if actor.role is Role.CLERK:
            unit = env.reads.unit_title(actor.unit_id) if actor.unit_id is not None else None
            return render("who_clerk", region=region, unit=unit or "（单位未登记）")
        level = LEVEL_SHORT_NAMES.get(actor.level, "") if actor.level else ""
        return render("who_official", region=region, level=level)

    def _then_ask(self, saved: dict[str, Any] | None, replies: list[Reply], env: Env) -> Step:
        """The command's replies, then the question the conversation is waiting for."""
        saved = _outside_review(saved)
        step = self.filing.ask(saved or {}, env) if _in_filing(saved) else self.engine.ask(saved)
        return Step(step.state, [*replies, *step.replies], step.effects)


def _stamped(saved: dict[str, Any] | None, step: Step, env: Env) -> Step:
    """The step with its effects, its question stamped with this turn (see the module doc)."""
    turn = int((saved or {}).get("turn", 0)) + 1
    replies = list(step.replies)
    asking = None
    for i in range(len(replies) - 1, -1, -1):
        if replies[i].key is not None:
            asking = f"{replies[i].key}#{turn}"
            replies[i] = dataclasses.replace(replies[i], asks=asking)
            break
    state = {**step.state, "turn": turn, "asking": asking}
    return Step(state, replies, [*env.effects, *step.effects])


def _turn(asks: object) -> str | None:
    """The turn a question was asked in (`key#7` → `7`): what a button's answer is matched by."""
    return asks.rpartition("#")[2] if isinstance(asks, str) and "#" in asks else None


def _in_review(saved: dict[str, Any] | None) -> bool:
    return saved is not None and saved.get("flow") == "review"


def _outside_review(saved: dict[str, Any] | None) -> dict[str, Any] | None:
    """The conversation under a review listing or an overview (a new one replaces the old)."""
    while _in_review(saved) or in_overview(saved):
        saved = (saved or {}).get("previous")
    return saved


def _campaign_of(state: dict[str, Any] | None) -> str | None:
    """The campaign a self-check or a filing is about, once chosen."""
    if not state:
        return None
    found = state.get("campaign") or (state.get("check") or {}).get("campaign")
    return found if isinstance(found, str) else None


def _in_filing(saved: dict[str, Any] | None) -> bool:
    return saved is not None and saved.get("flow") == "filing"


__all__ = ["Assistant", "may_see"]
