"""Moving nominations through the levels: an official's queue, a clerk's next steps.

`/queue` (officials) and `/mine` (clerks) list nominations; a number opens one: its details
(ID numbers in full for officials only — one audit row per screen that showed them), the
self-check it was filed under, who returned it and why, its attachments (each can be opened),
and the moves this person may make now (conversations.lifecycle via conversations.moves). A
move that needs a reason asks for it, naming the move. In the 征求意见 stage the clerk ticks off
the departments consulted. After a move, or `返回`, the conversation goes back to where it was.

Every screen of a nomination remembers the version it showed: an answer to choices whose
nomination has moved since is answered with what happened and the fresh choices, and does
nothing else. The writer re-checks each move once more against the row (conversations.moves).

Pure: reads through `Env.reads`, writes nothing — moves, opinions and audit rows are effects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversations.answers import AnswerError, clean_input, normalise
from conversations.campaign import Catalog
from conversations.crossrules import check, limits_for
from conversations.effects import Audit, RecordOpinion, Replan, Scope
from conversations.eligibility import assess
from conversations.engine import FileOut, Option, Reply, Step, pick
from conversations.form_display import display
from conversations.forms import FieldType, form_for
from conversations.identity import LEVEL_NAMES, Actor, Role
from conversations.lifecycle import (
    CONFIRM_ACTIONS,
    DESTRUCTIVE_ACTIONS,
    MIN_REASON_LETTERS,
    ROLE_NAMES,
    Action,
    StatusKind,
    Transition,
    actions_for,
    is_sentence,
    missing_opinions,
    opinion_departments,
)
from conversations.material_stages import later_materials, later_missing
from conversations.moves import NotPlanned, facts_of, lifecycle_of, nominee_facts, plan, ref_of
from conversations.policy import may_edit, may_see, read_audit, rules_inputs, shows_personal_data
from conversations.reads import Env, MoveRecord, NominationDetail, NominationView
from conversations.texts import VERDICT_LABELS, render

BACK = "back"
CONFIRM = "confirm"
CONTINUE = "continue_draft"
MOVE = "move:"
OPINION = "opinion:"
OPEN = "open:"
FILE = "file:"


class ReviewStage(StrEnum):
    LIST = "list"
    DETAIL = "detail"
    REASON = "reason"
    CONFIRM = "confirm"  # a move that ends the nomination, its reason given: sure?


@dataclass(frozen=True, slots=True)
class ContinueDraft:
    """The clerk chose to edit a draft or a returned nomination: filing takes it from here."""

    detail: NominationDetail


@dataclass(frozen=True, slots=True)
class Leave:
    """Review is over: go back to `previous`, after these replies."""

    previous: dict[str, Any] | None
    replies: list[Reply]


class ReviewState(BaseModel):
    flow: str = "review"
    stage: ReviewStage = ReviewStage.LIST
    items: list[int] = Field(default_factory=list)
    nomination: int | None = None
    version: int | None = None  # of the nomination as its screen showed it
    transition: str | None = None
    reason: str | None = None  # given for the move awaiting confirmation
    previous: dict[str, Any] | None = None  # the conversation to go back to


class Review:
    """Lists, details and moves; `leave` hands back to the previous conversation."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ----- entry points -------------------------------------------------------------------

    def queue(self, saved: dict[str, Any] | None, env: Env) -> Step | list[Reply]:
        """An official's queue, or the refusal replies for anyone else."""
        actor = env.actor()
        if actor is None or actor.role is not Role.OFFICIAL or actor.level is None:
            env.add(Audit("queue", False, detail={"why": "not an official"}))
            return [Reply(render("queue_refused"))]
        statuses = tuple(
            sorted(
                {
                    s.key
                    for c in self.catalog
                    if c.lifecycle is not None
                    for s in c.lifecycle.statuses
                    if s.queue_level == actor.level
                }
            )
        )
        region = actor.region or ""
        views = [
            v
            for v in env.reads.in_statuses(statuses, region)
            if env.reads.contains(region, v.region)
        ]
        if not views:
            return [Reply(render("queue_none"))]
        state = ReviewState(items=[v.id for v in views], previous=saved)
        return self._step(state, [Reply(render("queue_intro", n=len(views)))], env, views=views)

    def mine(self, saved: dict[str, Any] | None, env: Env) -> Step | list[Reply]:
        actor = env.actor()
        if actor is None or actor.role is not Role.CLERK or actor.unit_id is None:
            env.add(Audit("mine", False, detail={"why": "not a clerk of a unit"}))
            return [Reply(render("mine_refused"))]
        views = env.reads.unit_nominations(actor.unit_id)
        if not views:
            return [Reply(render("mine_none"))]
        state = ReviewState(items=[v.id for v in views], previous=saved)
        return self._step(state, [Reply(render("mine_intro", n=len(views)))], env, views=views)

    def resume(self, saved: dict[str, Any], text: str, env: Env) -> Step | Leave | ContinueDraft:
        """One message; Leave means: back to `previous` (the caller re-asks it)."""
        state = ReviewState.model_validate(saved)
        if text.strip() in ("/cancel", "/back") and state.stage in _ASKING_MOVE:
            state.stage, state.transition, state.reason = ReviewStage.DETAIL, None, None
            return self._step(state, [], env)
        if state.stage is not ReviewStage.LIST:
            detail = self._detail(state, env)
            if detail is None:
                return Leave(state.previous, [Reply(render("nomination_gone"))])
            if state.version is not None and detail.view.version != state.version:
                return self._stale(state, detail, env)
        if state.stage is ReviewStage.REASON:
            return self._on_reason(state, text, env)
        if state.stage is ReviewStage.CONFIRM:
            return self._on_confirm(state, text, env)
        options = self._options(state, env)
        value = pick(text, options)
        if value == BACK or text.strip() in ("/cancel", "/back"):
            if state.stage is ReviewStage.DETAIL and len(state.items) > 1:
                state.stage, state.nomination, state.version = ReviewStage.LIST, None, None
                return self._step(state, [], env)
            return Leave(state.previous, [])
        if value is None and state.stage is ReviewStage.DETAIL:
            # A move this person was not offered, typed by its name: decide() says why not,
            # and the refusal is audited like any other.
            detail = self._detail(state, env)
            named = self._named_move(detail, text) if detail is not None else None
            if detail is not None and named is not None:
                return self._move(state, detail, named, None, env)
        if value is None:
            return self._step(state, [Reply(render("bad_choice", count=len(options)))], env)
        if value.startswith(OPEN):
            state.stage, state.nomination = ReviewStage.DETAIL, int(value.removeprefix(OPEN))
            state.version = None
            return self._step(state, [], env)
        detail = self._detail(state, env)
        if detail is None:
            return Leave(state.previous, [Reply(render("nomination_gone"))])
        if value == CONTINUE:
            return ContinueDraft(detail)
        if value.startswith(FILE):
            return self._open_file(state, detail, int(value.removeprefix(FILE)), env)
        if value.startswith(OPINION):
            env.add(
                RecordOpinion(detail.view.id, value.removeprefix(OPINION), detail.view.version),
                Replan(Scope(detail.view.campaign, nomination=detail.view.id)),
            )
            # The screen after the tick shows it ticked: the version the writer gives it.
            state.version = detail.view.version + 1
            return self._step(state, [], env, ticked=value.removeprefix(OPINION))
        move = self._transition(detail, value.removeprefix(MOVE))
        if move.reason_required:
            state.stage, state.transition = ReviewStage.REASON, move.id
            return self._step(state, [], env)
        return self._move(state, detail, move, None, env)

    def stale(self, saved: dict[str, Any], env: Env) -> Step | Leave:
        """The writer found the nomination moved under this step: say so, show it afresh."""
        state = ReviewState.model_validate(saved)
        detail = self._detail(state, env)
        if detail is None:
            return Leave(state.previous, [Reply(render("nomination_gone"))])
        return self._stale(state, detail, env)

    # ----- stages -------------------------------------------------------------------------

    def _stale(self, state: ReviewState, detail: NominationDetail, env: Env) -> Step:
        lifecycle = lifecycle_of(self.catalog.get(detail.view.campaign))
        label = (
            lifecycle.status(detail.view.status).label
            if lifecycle.has_status(detail.view.status)
            else detail.view.status
        )
        state.stage, state.transition, state.version = ReviewStage.DETAIL, None, None
        state.reason = None
        return self._step(state, [Reply(render("move_stale", status=label))], env)

    def _on_reason(self, state: ReviewState, text: str, env: Env) -> Step | Leave:
        try:
            reason = clean_input(text)
        except AnswerError as exc:
            return self._step(state, [Reply(str(exc))], env)
        detail = self._detail(state, env)
        if detail is None:
            return Leave(state.previous, [Reply(render("nomination_gone"))])
        move = self._transition(detail, _req(state.transition))
        if not is_sentence(reason):
            # 👍 or "1" tells the clerk nothing: say what is wanted, ask again.
            short = render("reason_too_short", move=move.label, n=MIN_REASON_LETTERS)
            return self._step(state, [Reply(short)], env)
        if move.action in CONFIRM_ACTIONS:
            state.stage, state.reason = ReviewStage.CONFIRM, reason
            return self._step(state, [], env)
        return self._move(state, detail, move, reason, env)

    def _on_confirm(self, state: ReviewState, text: str, env: Env) -> Step | Leave:
        detail = self._detail(state, env)
        if detail is None:
            return Leave(state.previous, [Reply(render("nomination_gone"))])
        move = self._transition(detail, _req(state.transition))
        options = _confirm_options(move)
        value = pick(text, options)
        if value == CONFIRM:
            return self._move(state, detail, move, _req(state.reason), env)
        if value == BACK or normalise(text) in ("返回", "取消", "否", "不"):
            state.stage, state.transition, state.reason = ReviewStage.DETAIL, None, None
            return self._step(state, [Reply(render("move_not_made", move=move.label))], env)
        return self._step(state, [Reply(render("bad_choice", count=len(options)))], env)

    def _move(
        self,
        state: ReviewState,
        detail: NominationDetail,
        move: Transition,
        reason: str | None,
        env: Env,
    ) -> Step | Leave:
        campaign = self.catalog.get(detail.view.campaign)
        actor = env.actor() or Actor(role=Role.APPLICANT)
        planned = plan(campaign, detail, actor, move, reason, env.reads, env.ctx.today)
        if isinstance(planned, NotPlanned):
            env.add(Audit(move.action.value, False, detail.view.id, {"why": planned.audit_why}))
            state.stage, state.transition, state.reason = ReviewStage.DETAIL, None, None
            return self._step(state, [Reply(planned.why)], env)
        env.add(*planned.effects)
        return Leave(state.previous, [Reply(planned.done)])

    def _open_file(
        self, state: ReviewState, detail: NominationDetail, attachment: int, env: Env
    ) -> Step:
        found = next((a for a in detail.attachments if a.id == attachment), None)
        if found is None:
            return self._step(state, [Reply(render("nomination_gone"))], env)
        form = form_for(self.catalog.get(detail.view.campaign), detail.view.category)
        name = next((m.name for m in form.materials if m.key == found.material), found.material) \
            if form else found.material  # fmt: skip
        env.add(Audit("open_attachment", True, detail.view.id, {"material": found.material}))
        sent = Reply(
            render("file_sent", material=name, filename=found.filename),
            files=(FileOut(found.id, found.filename, found.kind),),
        )
        return self._step(state, [sent], env)

    # ----- what to show -------------------------------------------------------------------

    def _step(
        self,
        state: ReviewState,
        replies: list[Reply],
        env: Env,
        *,
        views: list[NominationView] | None = None,
        ticked: str | None = None,
    ) -> Step:
        question = self._question(state, env, views, ticked)
        return Step(state.model_dump(mode="json"), [*replies, question])

    def _question(
        self,
        state: ReviewState,
        env: Env,
        views: list[NominationView] | None,
        ticked: str | None = None,
    ) -> Reply:
        if state.stage in _ASKING_MOVE:
            detail = self._detail(state, env)
            if detail is None:
                return Reply(
                    render("nomination_gone"), key="nomination", options=(Option("返回", BACK),)
                )
            move = self._transition(detail, _req(state.transition))
            if state.stage is ReviewStage.CONFIRM:
                lifecycle = lifecycle_of(self.catalog.get(detail.view.campaign))
                text = render(
                    "move_confirm", move=move.label, line=self.line(detail.view),
                    reason=state.reason, status=lifecycle.status(move.to).label,
                )  # fmt: skip
                return Reply(text, key="confirm", options=_confirm_options(move))
            # An office's move is read by the unit; the unit's own (withdraw) by its followers.
            actor = env.actor()
            official = actor is not None and actor.role is Role.OFFICIAL
            told = "单位经办人" if official else "关注这项推荐的人"
            return Reply(render("move_reason", move=move.label, told=told), key="reason")
        if state.stage is ReviewStage.LIST:
            listed = views if views is not None else self._views(state, env)
            options = tuple(Option(self.line(v), OPEN + str(v.id)) for v in listed)
            return Reply(render("pick_nomination"), key="nomination",
                         options=(*options, Option("返回", BACK)))  # fmt: skip
        detail = self._detail(state, env)
        if detail is None:
            return Reply(
                render("nomination_gone"), key="nomination", options=(Option("返回", BACK),)
            )
        if state.version is None:
            state.version = detail.view.version
        return Reply(self._detail_text(detail, env, ticked), key="action",
                     options=self._options(state, env, ticked))  # fmt: skip

    def _options(
        self, state: ReviewState, env: Env, ticked: str | None = None
    ) -> tuple[Option, ...]:
        if state.stage is ReviewStage.LIST:
            listed = self._views(state, env)
            return (
                *(Option(self.line(v), OPEN + str(v.id)) for v in listed),
                Option("返回", BACK),
            )
        detail = self._detail(state, env)
        if detail is None:
            return (Option("返回", BACK),)
        campaign = self.catalog.get(detail.view.campaign)
        lifecycle = lifecycle_of(campaign)
        actor = env.actor() or Actor(role=Role.APPLICANT)
        opinions = _ticked(detail.opinions, ticked)
        ref = ref_of(lifecycle, detail, env.reads)
        if ticked is not None:
            done = not missing_opinions(lifecycle, nominee_facts(detail), opinions)
            ref = replace(ref, opinions_done=done)
        moves = actions_for(lifecycle, ref, actor, today=env.ctx.today)
        # The order keeps numbers where they were when a choice comes or goes (issue 11): what
        # a status always offers first, then the moves (one appears when the opinions are all
        # ticked, or on a publicity's last day: nothing above it moves), the attachments, 返回;
        # and the moves that end a nomination last of all, so that no stray "1" ends one.
        out: list[Option] = []
        status = lifecycle.status(detail.view.status)
        editable = detail.view.status == lifecycle.initial or status.kind is StatusKind.SIDE
        if editable and may_edit(actor, detail.view):
            key = "continue_draft" if detail.view.status == lifecycle.initial else "edit_returned"
            out.append(Option(render(key), CONTINUE))
        form = form_for(campaign, detail.view.category)
        if form and may_edit(actor, detail.view) and later_materials(lifecycle, form, status.key):
            # Filed, still in the unit: the publicity proof and the opinions are attached now
            # (conversations.material_stages); the filing flow takes the upload.
            due = later_missing(campaign, form, set(detail.uploaded), detail.fields, detail.facts)
            out.append(Option(render("attach_later", n=len(due)), CONTINUE))
        if status.opinions and may_edit(actor, detail.view):
            for department in opinion_departments(lifecycle, nominee_facts(detail)):
                mark = "✓" if department in opinions else "未记录"
                out.append(Option(f"已征求{department}意见（{mark}）", OPINION + department))
        out += [Option(t.label, MOVE + t.id) for t in moves if not _ends(t)]
        if actor.role is Role.OFFICIAL or may_edit(actor, detail.view):
            form = form_for(campaign, detail.view.category)
            names = {m.key: m.name for m in form.materials} if form else {}
            for a in detail.attachments:
                name = names.get(a.material, a.material)
                out.append(Option(f"查看附件：{name}（{a.filename}）", FILE + str(a.id)))
        out.append(Option("返回", BACK))
        out += [Option(t.label, MOVE + t.id) for t in moves if _ends(t)]
        return tuple(out)

    def _detail_text(self, detail: NominationDetail, env: Env, ticked: str | None) -> str:
        campaign = self.catalog.get(detail.view.campaign)
        lifecycle = lifecycle_of(campaign)
        form = form_for(campaign, detail.view.category)
        actor = env.actor()
        full = shows_personal_data(actor)
        lines, personal = [], False
        if form is not None:
            for field in form.fields:
                value = detail.fields.get(field.key)
                if value is None or field.type is FieldType.LIST and not value:
                    continue
                personal = personal or field.sensitive
                lines.append(f"{field.label}：{display(field, value, full=full)}")
        if full and personal:
            # Officials see ID numbers and phones in full: one audit row per screen that did.
            env.add(read_audit(detail))
        findings = self._findings(detail, env) if full else []
        status = lifecycle.status(detail.view.status)
        back = detail.last_return
        returned = None
        if back is not None:
            level = None
            if back.from_status and lifecycle.has_status(back.from_status):
                level = lifecycle.status(back.from_status).queue_level
            returned = {
                "what": _what(lifecycle.transitions, back),
                "by": (LEVEL_NAMES[level] if level else "") + _who(back.role),
                "at": back.at.date().isoformat(),
                "reason": back.reason,
            }
        opinions = _ticked(detail.opinions, ticked)
        return render(
            "nomination_detail",
            findings=findings,
            line=self.line(detail.view),
            status=status.label,
            region=env.reads.region_name(detail.view.region),
            publicity=detail.publicity,
            fields=lines,
            returned=returned,
            selfcheck=self._selfcheck(detail),
            files=[
                m.name
                for m in (form.materials if form is not None else [])
                if m.key in detail.uploaded
            ],
            missing=missing_opinions(lifecycle, nominee_facts(detail), opinions)
            if status.opinions
            else [],
        )

    def _selfcheck(self, detail: NominationDetail) -> dict[str, Any] | None:
        """The eligibility answers it was filed under, as the verdict explained them."""
        if not detail.facts:
            return None
        campaign = self.catalog.get(detail.view.campaign)
        result = assess(campaign, detail.view.category, detail.facts)
        reasons = []
        for r in result.reasons:
            answer = None
            if r.fact is not None and r.value is not None:
                answer = campaign.fact(r.fact).label_of(r.value)
            mark = {"passed": "✓", "failed": "✗", "review": "？"}[r.outcome.value]
            clause = f"「{r.rule.clause}」" if r.rule.clause else ""
            reasons.append(
                f"{mark} {clause}{r.rule.message}" + (f"（{answer}）" if answer else "")
            )
        verdict = detail.verdict or result.verdict.value
        return {"verdict": VERDICT_LABELS.get(verdict, verdict), "reasons": reasons}

    def _findings(self, detail: NominationDetail, env: Env) -> list[str]:
        """The rules across nominations, as officials must see them (DESIGN §2.3)."""
        campaign = self.catalog.get(detail.view.campaign)
        inputs = rules_inputs(env.reads, campaign.id, detail.view.category, detail.view.region)
        me = facts_of(campaign, detail, region=inputs.region)
        return [
            f"「{f.clause}」{f.message}" if f.clause else f.message
            for f in check(me, inputs.others, limits_for(campaign), quota=inputs.quota)
        ]

    def line(self, view: NominationView) -> str:
        """One nomination as a list shows it; a campaign file changed since keeps its keys."""
        category, status = view.category, view.status
        if view.campaign in self.catalog:
            campaign = self.catalog.get(view.campaign)
            if any(c.id == view.category for c in campaign.categories):
                category = campaign.category(view.category).name
            if campaign.lifecycle is not None and campaign.lifecycle.has_status(view.status):
                status = campaign.lifecycle.status(view.status).label
        return render(
            "nomination_line",
            nominee=view.nominee,
            category=category,
            status=status,
            code=view.tracking_code,
        )

    # ----- plumbing -----------------------------------------------------------------------

    def _views(self, state: ReviewState, env: Env) -> list[NominationView]:
        actor = env.actor()
        out = []
        for nomination_id in state.items:
            detail = env.reads.nomination(nomination_id)
            if detail is not None and may_see(actor, detail.view, env.reads):
                out.append(detail.view)
        return out

    def _detail(self, state: ReviewState, env: Env) -> NominationDetail | None:
        if state.nomination is None:
            return None
        detail = env.reads.nomination(state.nomination)
        if detail is None or not may_see(env.actor(), detail.view, env.reads):
            refused = Audit("open", False, state.nomination, {"why": "not visible to this user"})
            if refused not in env.effects:
                env.add(refused)
            return None
        return detail

    def _named_move(self, detail: NominationDetail, text: str) -> Transition | None:
        """The move from the nomination's status that `text` names (label or id), if any."""
        lifecycle = lifecycle_of(self.catalog.get(detail.view.campaign))
        word = normalise(text)
        for t in lifecycle.transitions_from(detail.view.status):
            if word in (t.id, normalise(t.label)):
                return t
        return None

    def _transition(self, detail: NominationDetail, transition_id: str) -> Transition:
        lifecycle = lifecycle_of(self.catalog.get(detail.view.campaign))
        for t in lifecycle.transitions:
            if t.id == transition_id:
                return t
        raise KeyError(transition_id)


_ASKING_MOVE = (ReviewStage.REASON, ReviewStage.CONFIRM)


def _ends(transition: Transition) -> bool:
    """Whether a move ends the nomination (withdraw, reject, revoke)."""
    return transition.action in DESTRUCTIVE_ACTIONS


def _confirm_options(move: Transition) -> tuple[Option, ...]:
    return (
        Option(render("move_confirm_yes", move=move.label), CONFIRM),
        Option(render("move_confirm_no", move=move.label), BACK),
    )


def _ticked(opinions: list[str], ticked: str | None) -> list[str]:
    """The opinions as they will be once this step's tick is applied."""
    if ticked is None:
        return opinions
    return [o for o in opinions if o != ticked] if ticked in opinions else [*opinions, ticked]


# How a detail names the move that brought a nomination where it stands, with its reason.
_SHORT_VERBS = {Action.RETURN: "退回", Action.WITHDRAW: "撤回"}


def _what(transitions: list[Transition], move: MoveRecord) -> str:
    """退回, 撤回, or the campaign's name of the move (不予推荐, 撤销称号)."""
    for t in transitions:
        if t.action.value == move.action and t.to == move.to_status:
            return _SHORT_VERBS.get(t.action, t.label)
    return move.action


def _who(role: str) -> str:
    try:
        return ROLE_NAMES[Role(role)]
    except ValueError:
        return role


def _req(value: str | None) -> str:
    if value is None:
        raise RuntimeError("review state is missing a value its stage requires")
    return value
