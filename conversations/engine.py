"""The self-check conversation: (session state, inbound text) -> (new state, replies, events).

Pure: no I/O, no clock of its own (the caller injects one), no knowledge of channels or storage.
The caller must save `Step.state` and apply `Step.effects` in one transaction, then render
`Step.replies` on the user's channel (STYLE.md, "Core in, effects out").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversations.answers import (
    AnswerError,
    clean_input,
    matches_label,
    normalise,
    parse_answer,
)
from conversations.campaign import Campaign, Catalog, Fact, FactType
from conversations.conditions import evaluate, facts_in
from conversations.consistency import (
    Severity,
    answer_disagreements,
    birth_date_problem,
    birth_sources,
    involving,
)
from conversations.effects import Effect, SelfCheckCompleted
from conversations.eligibility import (
    Assessment,
    Reason,
    assess,
    effective_facts,
    failed_hard_rules,
    is_relevant,
)
from conversations.help import help_text
from conversations.texts import VERDICT_LABELS, render

Clock = Callable[[], dt.datetime]

CONTINUE, RESTART, FINISH, CONFIRM = "continue", "restart", "finish", "confirm"
AGREE, DISAGREE = "agree", "disagree"
EDIT_PREFIX = "edit:"
# What people answer a yes/no consent question with, besides the options' numbers and labels
# (issue 11: 是 / 好 / 可以 / 行 / 嗯 were refused). Checked after the options, so 1 and 2 stay
# the options' numbers.
AGREE_WORDS = frozenset(
    {"同意", "是", "是的", "好", "好的", "可以", "行", "嗯", "嗯嗯", "对", "ok", "y", "yes"}
)
DISAGREE_WORDS = frozenset(
    {"不同意", "否", "不", "不是", "不好", "不可以", "不行", "不要", "拒绝", "no", "n"}
)


class SelfCheckStage(StrEnum):
    CAMPAIGN = "campaign"  # choosing a campaign
    CATEGORY = "category"  # choosing a category
    QUESTION = "question"  # asking `SessionState.question`
    CONSENT = "consent"  # before the first sensitive question (PIPL: separate consent)
    STOPPED = "stopped"  # a hard rule failed: continue, restart or finish?
    SUMMARY = "summary"  # all answered: confirm or change one answer
    DONE = "done"  # verdict given


class SessionState(BaseModel):
    """What is saved between two messages; JSON-ready via `model_dump(mode="json")`."""

    flow: str = "selfcheck"
    stage: SelfCheckStage = SelfCheckStage.CAMPAIGN
    campaign: str | None = None
    category: str | None = None
    question: str | None = None
    answers: dict[str, Any] = Field(default_factory=dict)
    acknowledged: list[str] = Field(default_factory=list)  # hard failures the user went past
    consented: bool = False  # to answering the sensitive questions (disciplinary, ...)
    declined: bool = False  # consent refused: the sensitive questions are skipped, not the rest
    verdict: str | None = None
    started_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


# What a step computed from the answers as they were: a step asks "which questions apply"
# several times over the same answers. One dict per step (set by `Engine.resume`), per thread
# and task (a context variable), never saved.
_STEP_MEMO: ContextVar[dict[Any, Any] | None] = ContextVar("step_memo", default=None)


def _memo(state: SessionState, kind: str, compute: Callable[[], Any]) -> Any:
    """`compute()` once per step for the state's answers as they are now."""
    kept = _STEP_MEMO.get()
    if kept is None:
        return compute()
    try:
        key = (kind, state.campaign, state.category, tuple(state.answers.items()))
        hash(key)
    except TypeError:  # a list answer (a multiple choice): not kept, computed each time
        return compute()
    if key not in kept:
        kept[key] = compute()
    return kept[key]


@dataclass(frozen=True, slots=True)
class Inbound:
    """What the user sent: typed text, or the value of a button they pressed (then `answers`
    is the `Reply.asks` of the question the button belonged to)."""

    text: str
    answers: str | None = None


@dataclass(frozen=True, slots=True)
class Option:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class FileOut:
    """A stored attachment to hand to the user with a reply (the channel decides how: a
    document, a file message, a signed link, a folder)."""

    attachment_id: int
    filename: str
    kind: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to the user. `key` is set when it asks something; `options` are its choices.

    `asks` names the question (and the turn it was asked in) that the options answer: a button
    carries it, and an answer meant for another question is refused (Assistant.resume).
    """

    text: str
    key: str | None = None
    hint: str | None = None
    options: tuple[Option, ...] = ()
    verdict: str | None = None
    files: tuple[FileOut, ...] = ()
    asks: str | None = None


@dataclass(slots=True)
class Step:
    """A step's outcome: the state to save, the replies to send, the effects to apply."""

    state: dict[str, Any]
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


class Engine:
    """Runs self-check conversations over a catalog of campaigns."""

    def __init__(self, catalog: Catalog, clock: Clock) -> None:
        self.catalog = catalog
        self.clock = clock

    # ----- entry points -------------------------------------------------------------------

    def start(self, saved: dict[str, Any] | None) -> Step:
        """Open a conversation: greet a new user, or re-ask the pending question of a saved one."""
        if saved is None:
            state = self._new_state()
            return self._step(state, [Reply(render("welcome"))], ask=True)
        state = self._load(saved)
        return self._step(state, [Reply(render("resume"))], ask=True)

    def ask(self, saved: dict[str, Any] | None) -> Step:
        """Re-ask what the conversation waits for, after a command handled outside it."""
        state = self._new_state() if saved is None else self._load(saved)
        return self._step(state, [], ask=True)

    def resume(self, saved: dict[str, Any] | None, inbound: Inbound) -> Step:
        """Take one message from the user and move the conversation on."""
        token = _STEP_MEMO.set({})
        try:
            return self._resume(saved, inbound)
        finally:
            _STEP_MEMO.reset(token)

    def _resume(self, saved: dict[str, Any] | None, inbound: Inbound) -> Step:
        if saved is None:
            return self.start(None) if _is_command(inbound.text, "start") else self._first(inbound)
        state = self._load(saved)
        text = inbound.text.strip()
        if text.startswith("/"):
            return self._command(state, text)
        try:
            clean_input(inbound.text)
        except AnswerError as exc:
            return self._step(state, [Reply(str(exc))], ask=True)
        handler = {
            SelfCheckStage.CAMPAIGN: self._on_campaign,
            SelfCheckStage.CATEGORY: self._on_category,
            SelfCheckStage.QUESTION: self._on_answer,
            SelfCheckStage.CONSENT: self._on_consent,
            SelfCheckStage.STOPPED: self._on_stopped,
            SelfCheckStage.SUMMARY: self._on_summary,
            SelfCheckStage.DONE: self._on_done,
        }[state.stage]
        return handler(state, inbound.text)

    # ----- stages -------------------------------------------------------------------------

    def _first(self, inbound: Inbound) -> Step:
        """A first message that is not /start: greet, then treat it as the campaign answer."""
        step = self.start(None)
        if inbound.text.strip().startswith("/") or not inbound.text.strip():
            return step
        state = self._load(step.state)
        follow = self._on_campaign(state, inbound.text, quiet_error=True)
        if follow.state.get("stage") == SelfCheckStage.CAMPAIGN:
            return step
        return Step(follow.state, [step.replies[0], *follow.replies], follow.effects)

    def _on_campaign(self, state: SessionState, text: str, *, quiet_error: bool = False) -> Step:
        options = self._campaign_options()
        value = pick(text, options)
        if value is None:
            reply = [] if quiet_error else [Reply(render("bad_choice", count=len(options)))]
            return self._step(state, reply, ask=True)
        state.campaign, state.category, state.stage = value, None, SelfCheckStage.CATEGORY
        return self._step(state, [], ask=True)

    def _on_category(self, state: SessionState, text: str) -> Step:
        options = self._category_options(state)
        value = pick(text, options)
        if value is None:
            return self._step(state, [Reply(render("bad_choice", count=len(options)))], ask=True)
        state.category = value
        campaign, category = self._campaign(state), self._campaign(state).category(value)
        intro = render(
            "category_chosen",
            campaign=campaign.short_title,
            category=category.name,
            total=len(self._possible_questions(state)),
        )
        return self._advance(state, [Reply(intro)])

    def _on_answer(self, state: SessionState, text: str) -> Step:
        assert state.question is not None
        campaign, category = self._campaign(state), _req(state.category)
        fact = campaign.question_fact(category, state.question)
        today = self.clock().date()
        try:
            value = parse_answer(fact, text, today=today)
        except AnswerError as exc:
            return self._step(state, [Reply(str(exc))], ask=True)
        problem = birth_date_problem(campaign, fact.key, value, today=today)
        if problem is not None:
            return self._step(state, [Reply(problem.message)], ask=True)
        order = campaign.category(category).questions
        changed = fact.key in state.answers and state.answers[fact.key] != value
        # An answer that disagrees with an earlier one is refused (both are named); one that
        # disagrees with a later answer kept from before a /back replaces it: that one is
        # asked again.
        trial = {**state.answers, fact.key: value}
        found = involving(answer_disagreements(campaign, trial, today=today), fact=fact.key)
        cleared: list[str] = []
        replies = []
        for d in found:
            if d.severity is Severity.WARN:
                replies.append(Reply(d.message))
                continue
            others = [k for k in d.facts if k != fact.key]
            later = [k for k in others if k in order and order.index(k) > order.index(fact.key)]
            if not others or len(later) < len(others):
                return self._step(state, [Reply(d.message)], ask=True)
            cleared.extend(k for k in later if k not in cleared)
        state.answers[fact.key] = value
        for key in cleared:
            shown = campaign.fact(key).label_of(state.answers.pop(key, None))
            label = campaign.fact(key).label
            reason = next(d.message for d in found if key in d.facts)
            replies.append(Reply(render("answer_cleared", label=label, answer=shown,
                                        reason=reason)))  # fmt: skip
        relevant = self._relevant_questions(state)
        after = relevant[relevant.index(fact.key) + 1 :] if fact.key in relevant else []
        kept = [k for k in after if k in state.answers]
        failures = failed_hard_rules(campaign, category, self._facts(state))
        new = [r for r in failures if r.rule.id not in state.acknowledged]
        again: list[Reason] = []
        if changed and kept:
            # After /back and a changed answer, the answers kept further on are not asked
            # again: say them, and say again the hard failures they cause (issue 11).
            again = [r for r in failures if r not in new and self._about(state, r, kept)]
            if self._pending_questions(state):
                items = [
                    render("summary_item", label=campaign.fact(k).label, answer=_shown(
                        campaign.fact(k), state)) for k in kept
                ]  # fmt: skip
                label = campaign.fact(fact.key).label
                replies.append(Reply(render("kept_answers", label=label, items=items)))
        if new or again:
            state.stage = SelfCheckStage.STOPPED
            state.acknowledged.extend(r.rule.id for r in new)
            reasons = [self._reason_view(state, r) for r in [*new, *again]]
            replies.append(Reply(render("stopped", reasons=reasons)))
            return self._step(state, replies, ask=True)
        return self._advance(state, replies)

    def _about(self, state: SessionState, reason: Reason, keys: list[str]) -> bool:
        """Whether a rule's outcome rests on one of `keys` (a derived fact on its sources)."""
        campaign = self._campaign(state)
        rule = reason.rule
        used = set(facts_in(rule.require)) | (set(facts_in(rule.when)) if rule.when else set())
        for key in list(used):
            if campaign.has_fact(key) and (derived := campaign.fact(key).derived) is not None:
                used.update(derived.sources)
        return bool(used & set(keys))

    def _on_consent(self, state: SessionState, text: str) -> Step:
        value = consent_choice(text, self._consent_options())
        if value == AGREE:
            state.consented, state.declined = True, False
            return self._advance(state, [])
        if value == DISAGREE:
            # Only the sensitive questions are skipped: the others (merits after them) are still
            # asked, and the verdict names the skipped ones, to be checked by the unit.
            state.declined = True
            return self._advance(state, [Reply(render("consent_declined"))])
        return self._step(state, [Reply(render("bad_choice", count=2))], ask=True)

    def _on_stopped(self, state: SessionState, text: str) -> Step:
        value = pick(text, self._stopped_options())
        if value == CONTINUE:
            return self._advance(state, [])
        if value == RESTART:
            return self._restart()
        if value == FINISH:
            return self._finish(state)
        count = len(self._stopped_options())
        return self._step(state, [Reply(render("bad_choice", count=count))], ask=True)

    def _on_summary(self, state: SessionState, text: str) -> Step:
        options = self._summary_options(state)
        value = pick(text, options)
        if value == CONFIRM:
            return self._finish(state)
        if value is not None and value.startswith(EDIT_PREFIX):
            state.stage, state.question = SelfCheckStage.QUESTION, value.removeprefix(EDIT_PREFIX)
            return self._step(state, [], ask=True)
        return self._step(state, [Reply(render("bad_choice", count=len(options)))], ask=True)

    def _on_done(self, state: SessionState, text: str) -> Step:
        label = VERDICT_LABELS.get(state.verdict or "", "")
        return self._step(state, [Reply(render("done_again", verdict_label=label))], ask=False)

    # ----- commands -----------------------------------------------------------------------

    def _command(self, state: SessionState, text: str) -> Step:
        command = text.split()[0].lower()
        if command in ("/start", "/continue"):
            return self._step(state, [], ask=True)
        if command == "/restart":
            return self._restart()
        if command == "/help":
            return self._step(state, [Reply(help_text())], ask=True)
        if command == "/status":
            return self._step(state, [Reply(self._status_text(state))], ask=True)
        if command == "/back":
            return self._back(state)
        shown = command if len(command) <= 20 else command[:20] + "…"
        reply = Reply(render("unknown_command", command=shown) + "\n" + help_text())
        return self._step(state, [reply], ask=True)

    def _restart(self) -> Step:
        return self._step(self._new_state(), [Reply(render("restarted"))], ask=True)

    def _back(self, state: SessionState) -> Step:
        """Go to the question before the current one (its answer is kept until replaced)."""
        if state.stage is SelfCheckStage.CAMPAIGN:
            return self._step(state, [Reply(render("back_at_start"))], ask=True)
        if state.stage is SelfCheckStage.CATEGORY:
            state.stage, state.campaign = SelfCheckStage.CAMPAIGN, None
            return self._step(state, [], ask=True)
        relevant = self._relevant_questions(state)
        if (
            state.stage in (SelfCheckStage.QUESTION, SelfCheckStage.CONSENT)
            and state.question in relevant
        ):
            earlier = relevant[: relevant.index(state.question)]
        elif state.stage is SelfCheckStage.STOPPED and state.question in relevant:
            earlier = relevant[: relevant.index(state.question) + 1]
        else:  # summary or done: back to the last question
            earlier = relevant
        if not earlier:
            state.stage, state.question, state.category = SelfCheckStage.CATEGORY, None, None
            return self._step(state, [], ask=True)
        state.stage, state.question, state.verdict = SelfCheckStage.QUESTION, earlier[-1], None
        if not state.consented and self._campaign(state).fact(earlier[-1]).sensitive:
            state.stage = SelfCheckStage.CONSENT  # declined before: ask again, do not assume
        return self._step(state, [], ask=True)

    # ----- moving on ----------------------------------------------------------------------

    def _advance(self, state: SessionState, replies: list[Reply]) -> Step:
        """Ask the next unanswered relevant question, or show the summary when none is left."""
        pending = self._pending_questions(state)
        campaign = self._campaign(state) if pending else None
        if campaign is not None and self._needs_consent(state, pending[0]):
            state.stage, state.question = SelfCheckStage.CONSENT, pending[0]
        elif pending:
            state.stage, state.question = SelfCheckStage.QUESTION, pending[0]
        else:
            state.stage, state.question = SelfCheckStage.SUMMARY, None
        return self._step(state, replies, ask=True)

    def _needs_consent(self, state: SessionState, key: str) -> bool:
        return (
            not state.consented
            and not state.declined
            and self._campaign(state).fact(key).sensitive
        )

    def _finish(self, state: SessionState, before: list[Reply] | None = None) -> Step:
        campaign = self._campaign(state)
        result = assess(campaign, _req(state.category), state.answers)
        state.stage, state.question, state.verdict = (
            SelfCheckStage.DONE,
            None,
            result.verdict.value,
        )
        event = SelfCheckCompleted(
            campaign=campaign.id,
            category=result.category,
            verdict=result.verdict.value,
            # The answers too, sealed at rest with the rest: filing can reuse them.
            result={**result.as_json(), "answers": dict(state.answers)},
            completed_at=self.clock(),
        )
        replies = [
            *(before or []),
            Reply(self._verdict_text(state, result), verdict=result.verdict.value),
            Reply(render("after_verdict")),
        ]
        step = self._step(state, replies, ask=False)
        step.effects.append(event)
        return step

    # ----- what to ask --------------------------------------------------------------------

    def _question(self, state: SessionState) -> Reply:
        """The reply that asks what the conversation is waiting for."""
        match state.stage:
            case SelfCheckStage.CAMPAIGN:
                return Reply(
                    render("campaign_question"), key="campaign", options=self._campaign_options()
                )
            case SelfCheckStage.CATEGORY:
                text = render("category_question", campaign=self._campaign(state).short_title)
                return Reply(text, key="category", options=self._category_options(state))
            case SelfCheckStage.QUESTION:
                campaign, category = self._campaign(state), _req(state.category)
                fact = campaign.question_fact(category, _req(state.question))
                return self._fact_question(state, fact)
            case SelfCheckStage.STOPPED:
                return Reply(
                    render("stopped_question"), key="next", options=self._stopped_options()
                )
            case SelfCheckStage.CONSENT:
                return Reply(
                    render("consent_selfcheck"), key="consent", options=self._consent_options()
                )
            case SelfCheckStage.SUMMARY:
                return Reply(
                    render("summary_question"), key="summary", options=self._summary_options(state)
                )
            case _:
                label = VERDICT_LABELS.get(state.verdict or "", "")
                return Reply(render("done_again", verdict_label=label))

    def _fact_question(self, state: SessionState, fact: Fact) -> Reply:
        hints = [fact.help] if fact.help else []
        if fact.type is FactType.DATE:
            hints.append("格式如 1990-03-15 或 1990年3月15日。")
        if fact.key in state.answers:
            hints.append(render("current_answer", answer=fact.label_of(state.answers[fact.key])))
        if fact.type is FactType.BOOL:
            options: tuple[Option, ...] = (Option("是", "true"), Option("否", "false"))
        else:
            options = tuple(Option(c.label, c.value) for c in fact.choices)
        return Reply(
            _req(fact.question), key=fact.key, hint="\n".join(hints) or None, options=options
        )

    def _campaign_options(self) -> tuple[Option, ...]:
        return tuple(Option(c.short_title, c.id) for c in self.catalog)

    def _category_options(self, state: SessionState) -> tuple[Option, ...]:
        out = []
        for c in self._campaign(state).categories:
            places = f"（名额{c.places_note or ''}{c.places}）" if c.places else ""
            out.append(Option(f"{c.name}{places}", c.id))
        return tuple(out)

    @staticmethod
    def _consent_options() -> tuple[Option, ...]:
        return (Option("同意", AGREE), Option("不同意", DISAGREE))

    @staticmethod
    def _stopped_options() -> tuple[Option, ...]:
        return (
            Option("继续回答其余问题", CONTINUE),
            Option("重新开始", RESTART),
            Option("到此为止，查看结论", FINISH),
        )

    def _summary_options(self, state: SessionState) -> tuple[Option, ...]:
        campaign = self._campaign(state)
        out = [Option(render("confirm_choice"), CONFIRM)]
        for key in self._relevant_questions(state):
            if key in state.answers:
                fact = campaign.fact(key)
                label = render("summary_item", label=fact.label, answer=_shown(fact, state))
                out.append(Option(label, EDIT_PREFIX + key))
        return tuple(out)

    def _relevant_questions(self, state: SessionState) -> list[str]:
        """Questions of the category that apply given the answers so far, in order."""
        campaign = self._campaign(state)

        def relevant() -> tuple[str, ...]:
            facts = self._facts(state)
            return tuple(
                key
                for key in campaign.category(_req(state.category)).questions
                if is_relevant(campaign, campaign.fact(key), facts)
            )

        return list(_memo(state, "relevant", relevant))

    def _facts(self, state: SessionState) -> Mapping[str, Any]:
        """The effective facts of the answers as they are now (kept for the step)."""
        campaign, category = self._campaign(state), _req(state.category)
        facts: Mapping[str, Any] = _memo(
            state, "facts", lambda: effective_facts(campaign, category, state.answers)
        )
        return facts

    def _possible_questions(self, state: SessionState) -> list[str]:
        """Questions that apply or may apply once earlier ones are answered (for estimates)."""
        campaign = self._campaign(state)
        facts = self._facts(state)
        return [
            key
            for key in campaign.category(_req(state.category)).questions
            if (f := campaign.fact(key)).relevant is None
            or evaluate(f.relevant, facts, campaign.ordinal).value is not False
        ]

    def _pending_questions(self, state: SessionState) -> list[str]:
        skipped = self._skipped(state)
        return [
            k
            for k in self._relevant_questions(state)
            if k not in state.answers and k not in skipped
        ]

    def _skipped(self, state: SessionState) -> list[str]:
        """The sensitive questions consent was refused for, unanswered, in question order."""
        if not state.declined:
            return []
        campaign = self._campaign(state)
        return [
            k
            for k in self._relevant_questions(state)
            if campaign.fact(k).sensitive and k not in state.answers
        ]

    # ----- texts --------------------------------------------------------------------------

    def _status_text(self, state: SessionState) -> str:
        campaign = self.catalog.get(state.campaign) if state.campaign else None
        category = campaign.category(state.category) if campaign and state.category else None
        answered = remaining = 0
        if category is not None:
            answered = sum(1 for k in self._relevant_questions(state) if k in state.answers)
            skipped = self._skipped(state)
            remaining = sum(
                1
                for k in self._possible_questions(state)
                if k not in state.answers and k not in skipped
            )
        return render(
            "status",
            campaign=campaign.short_title if campaign else None,
            category=category.name if category else None,
            answered=answered,
            remaining=remaining,
        )

    def _reason_view(self, state: SessionState, reason: Reason) -> dict[str, Any]:
        campaign = self._campaign(state)
        answer = None
        if reason.fact is not None and reason.value is not None:
            answer = campaign.fact(reason.fact).label_of(reason.value)
        return {"clause": reason.rule.clause, "message": reason.rule.message, "answer": answer}

    def _verdict_text(self, state: SessionState, result: Assessment) -> str:
        campaign = self._campaign(state)
        skipped = self._skipped(state)
        return render(
            "verdict",
            verdict=result.verdict.value,
            verdict_label=VERDICT_LABELS[result.verdict.value],
            campaign=campaign.short_title,
            category=campaign.category(result.category).name,
            reasons=[self._reason_view(state, r) for r in result.reasons],
            missing=[campaign.fact(k).label for k in result.missing if k not in skipped],
            declined=[campaign.fact(k).label for k in skipped],
            age_as_of=_age_as_of(campaign, result.category),
            declared=result.self_declared,
            materials=result.materials,
            windows=campaign.windows,
            contact=campaign.contact,
        )

    # ----- plumbing -----------------------------------------------------------------------

    def _new_state(self) -> SessionState:
        now = self.clock()
        return SessionState(started_at=now, updated_at=now)

    def _load(self, saved: dict[str, Any]) -> SessionState:
        """The saved state, made to fit the campaigns as they are now.

        Campaign files can change while conversations are open (a question removed, a category
        renamed): the conversation then goes on from the nearest point that still exists, with
        every answer kept.
        """
        state = SessionState.model_validate(saved)
        if state.campaign is not None and state.campaign not in self.catalog:
            return self._new_state()  # the answers belonged to a campaign that no longer exists
        if state.campaign is None:
            state.stage = SelfCheckStage.CAMPAIGN
            return state
        campaign = self._campaign(state)
        if state.category not in {c.id for c in campaign.categories}:
            state.stage, state.category, state.question = SelfCheckStage.CATEGORY, None, None
            return state
        asked = campaign.category(_req(state.category)).questions
        if (
            state.stage in (SelfCheckStage.QUESTION, SelfCheckStage.STOPPED)
            and state.question not in asked
        ):
            pending = self._pending_questions(state)
            state.stage = SelfCheckStage.QUESTION if pending else SelfCheckStage.SUMMARY
            state.question = pending[0] if pending else None
        return state

    def _campaign(self, state: SessionState) -> Campaign:
        return self.catalog.get(_req(state.campaign))

    def _step(self, state: SessionState, replies: list[Reply], *, ask: bool) -> Step:
        state.updated_at = self.clock()
        out = list(replies)
        if ask:
            out.append(self._question(state))
        return Step(state=state.model_dump(mode="json"), replies=out)


def consent_choice(text: str, options: tuple[Option, ...]) -> str | None:
    """AGREE, DISAGREE or None: an option by number or label, else a word for yes or no."""
    value = pick(text, options)
    if value is not None:
        return value
    word = normalise(text).lower()
    if word in AGREE_WORDS:
        return AGREE
    if word in DISAGREE_WORDS:
        return DISAGREE
    return None


def _age_as_of(campaign: Campaign, category: str) -> str | None:
    """The day the category's age rule counts the age on (its as_of), when it has one."""
    derived = {f.key for f in campaign.facts if f.derived is not None}
    births = {f.key for f in birth_sources(campaign)}
    for rule in campaign.rules_for(category):
        used = set(facts_in(rule.require)) | (set(facts_in(rule.when)) if rule.when else set())
        if used & derived and births:
            return campaign.as_of.isoformat()
    return None


def pick(text: str, options: tuple[Option, ...]) -> str | None:
    """The value of the option the user chose by number, label or value; None if none matches."""
    word = normalise(text)
    if word.isdigit() and 1 <= int(word) <= len(options):
        return options[int(word) - 1].value
    for option in options:
        if matches_label(word, option.value, option.label):
            return option.value
    return None


def _shown(fact: Fact, state: SessionState) -> str:
    return fact.label_of(state.answers.get(fact.key))


def _is_command(text: str, name: str) -> bool:
    return text.strip().split(maxsplit=1)[:1] == [f"/{name}"]


def _req(value: str | None) -> str:
    """A value the current stage guarantees; a None here is a bug in the stage logic."""
    if value is None:
        raise RuntimeError("conversation state is missing a value its stage requires")
    return value
