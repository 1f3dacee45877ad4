"""Moving nominations through the levels: an official's queue, a clerk's next steps.

`/queue` (officials) and `/mine` (clerks) list nominations; a number opens one: its details
(ID numbers in full for officials only — every such read is audited by the port), its
attachments and the moves this person may make now (conversations.lifecycle). A move that needs
a reason asks for it. In the 征求意见 stage the clerk ticks off the departments consulted.
After a move, or `返回`, the conversation goes back to where it was.

Pure: the nominations, the working-day calendar and the notifications are reached through
`Ports`, on the step's own transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from conversations.answers import AnswerError, clean_input, normalise
from conversations.campaign import Campaign, Catalog
from conversations.crossrules import NominationFacts, check, limits_for
from conversations.engine import Option, Reply, Step, pick
from conversations.forms import FieldType, display, form_for
from conversations.identity import Actor, Role
from conversations.lifecycle import (
    Lifecycle,
    NominationRef,
    Transition,
    actions_for,
    decide,
    missing_opinions,
    opinion_departments,
)
from conversations.ports import NominationDetail, NominationView, Ports
from conversations.texts import render

BACK = "back"
CONTINUE = "continue_draft"
MOVE = "move:"
OPINION = "opinion:"
OPEN = "open:"


class Stage(StrEnum):
    LIST = "list"
    DETAIL = "detail"
    REASON = "reason"


@dataclass(frozen=True, slots=True)
class ContinueDraft:
    """The clerk chose to go on filling in a draft: the filing flow takes it from here."""

    detail: NominationDetail


@dataclass(frozen=True, slots=True)
class Leave:
    """Review is over: go back to `previous`, after these replies."""

    previous: dict[str, Any] | None
    replies: list[Reply]


class ReviewState(BaseModel):
    flow: str = "review"
    stage: Stage = Stage.LIST
    items: list[int] = Field(default_factory=list)
    nomination: int | None = None
    transition: str | None = None
    previous: dict[str, Any] | None = None  # the conversation to go back to


class Review:
    """Lists, details and moves; `leave` hands back to the previous conversation."""

    def __init__(self, catalog: Catalog, today: Any) -> None:
        self.catalog = catalog
        self.today = today  # () -> date, the engine's clock

    # ----- entry points -------------------------------------------------------------------

    def queue(self, saved: dict[str, Any] | None, ports: Ports) -> Step | list[Reply]:
        """An official's queue, or the refusal replies for anyone else."""
        actor = ports.actor()
        if actor is None or actor.role is not Role.OFFICIAL or actor.level is None:
            ports.refused("queue", "not an official")
            return [Reply(render("queue_refused"))]
        statuses = sorted(
            {
                s.key
                for c in self.catalog
                if c.lifecycle is not None
                for s in c.lifecycle.statuses
                if s.queue_level == actor.level
            }
        )
        views = ports.queue(statuses)
        if not views:
            return [Reply(render("queue_none"))]
        state = ReviewState(items=[v.id for v in views], previous=saved)
        return self._step(state, [Reply(render("queue_intro", n=len(views)))], views=views)

    def mine(self, saved: dict[str, Any] | None, ports: Ports) -> Step | list[Reply]:
        actor = ports.actor()
        if actor is None or actor.role is not Role.CLERK or actor.unit_id is None:
            ports.refused("mine", "not a clerk of a unit")
            return [Reply(render("mine_refused"))]
        views = ports.unit_nominations(actor.unit_id)
        if not views:
            return [Reply(render("mine_none"))]
        state = ReviewState(items=[v.id for v in views], previous=saved)
        return self._step(state, [Reply(render("mine_intro", n=len(views)))], views=views)

    def resume(
        self, saved: dict[str, Any], text: str, ports: Ports
    ) -> Step | Leave | ContinueDraft:
        """One message; Leave means: back to `previous` (the caller re-asks it)."""
        state = ReviewState.model_validate(saved)
        if state.stage is Stage.REASON:
            return self._on_reason(state, text, ports)
        options = self._options(state, ports)
        value = pick(text, options)
        if value == BACK or text.strip() in ("/cancel", "/back"):
            if state.stage is Stage.DETAIL and len(state.items) > 1:
                state.stage, state.nomination = Stage.LIST, None
                return self._step(state, [], ports=ports)
            return Leave(state.previous, [])
        if value is None and state.stage is Stage.DETAIL:
            # A move this person was not offered, typed by its name: decide() says why not,
            # and the refusal is audited like any other.
            detail = self._detail(state, ports)
            named = self._named_move(detail, text) if detail is not None else None
            if detail is not None and named is not None:
                return self._move(state, detail, named, None, ports)
        if value is None:
            return self._step(
                state, [Reply(render("bad_choice", count=len(options)))], ports=ports
            )
        if value == CONTINUE:
            detail = self._detail(state, ports)
            if detail is None:
                return Leave(state.previous, [Reply(render("nomination_gone"))])
            return ContinueDraft(detail)
        if value.startswith(OPEN):
            state.stage, state.nomination = Stage.DETAIL, int(value.removeprefix(OPEN))
            return self._step(state, [], ports=ports)
        if value.startswith(OPINION):
            detail = self._detail(state, ports)
            if detail is None:
                return Leave(state.previous, [Reply(render("nomination_gone"))])
            ports.record_opinion(detail.view.id, value.removeprefix(OPINION))
            return self._step(state, [], ports=ports)
        transition = value.removeprefix(MOVE)
        detail = self._detail(state, ports)
        if detail is None:
            return Leave(state.previous, [Reply(render("nomination_gone"))])
        move = self._transition(detail, transition)
        if move.reason_required:
            state.stage, state.transition = Stage.REASON, move.id
            return self._step(state, [], ports=ports)
        return self._move(state, detail, move, None, ports)

    # ----- stages -------------------------------------------------------------------------

    def _on_reason(self, state: ReviewState, text: str, ports: Ports) -> Step | Leave:
        if text.strip() in ("/cancel", "/back"):
            state.stage, state.transition = Stage.DETAIL, None
            return self._step(state, [], ports=ports)
        try:
            reason = normalise(clean_input(text))
        except AnswerError as exc:
            return self._step(state, [Reply(str(exc))], ports=ports)
        detail = self._detail(state, ports)
        if detail is None:
            return Leave(state.previous, [Reply(render("nomination_gone"))])
        return self._move(state, detail, self._transition(detail, _req(state.transition)), reason,
                          ports)  # fmt: skip

    def _move(
        self,
        state: ReviewState,
        detail: NominationDetail,
        move: Transition,
        reason: str | None,
        ports: Ports,
    ) -> Step | Leave:
        campaign = self.catalog.get(detail.view.campaign)
        lifecycle = _lifecycle(campaign)
        actor = ports.actor()
        today: dt.date = self.today()
        decision = decide(
            lifecycle,
            self._ref(lifecycle, detail),
            actor or Actor(role=Role.APPLICANT),
            move.action,
            today=today,
            reason=reason,
        )
        if not decision.allowed or decision.to is None:
            ports.refused(move.action.value, decision.why, nomination_id=detail.view.id)
            state.stage, state.transition = Stage.DETAIL, None
            return self._step(state, [Reply(decision.why)], ports=ports)
        to = lifecycle.status(decision.to)
        publicity = None
        if to.publicity_workdays:
            publicity = (today, ports.workday_end(today, to.publicity_workdays))
        notice = render(
            "notice_move",
            code=detail.view.tracking_code,
            status=to.label,
            move=move.label,
            reason=reason,
            start=publicity[0].isoformat() if publicity else None,
            end=publicity[1].isoformat() if publicity else None,
        )
        ports.move(
            detail.view.id,
            expected=detail.view.status,
            to_status=to.key,
            action=move.action.value,
            reason=reason,
            publicity=publicity,
            notice=notice,
            next_level=to.queue_level.value if to.queue_level else None,
        )
        done = render(
            "move_done",
            move=move.label,
            status=to.label,
            start=publicity[0].isoformat() if publicity else None,
            end=publicity[1].isoformat() if publicity else None,
        )
        return Leave(state.previous, [Reply(done)])

    # ----- what to show -------------------------------------------------------------------

    def _step(
        self,
        state: ReviewState,
        replies: list[Reply],
        *,
        ports: Ports | None = None,
        views: list[NominationView] | None = None,
    ) -> Step:
        question = self._question(state, ports, views)
        return Step(state.model_dump(mode="json"), [*replies, question])

    def _question(
        self, state: ReviewState, ports: Ports | None, views: list[NominationView] | None
    ) -> Reply:
        if state.stage is Stage.REASON:
            return Reply(render("move_reason"), key="reason")
        if state.stage is Stage.LIST:
            assert ports is not None or views is not None
            listed = views if views is not None else self._views(state, _ports(ports))
            options = tuple(Option(self.line(v), OPEN + str(v.id)) for v in listed)
            return Reply(render("pick_nomination"), key="nomination",
                         options=(*options, Option("返回", BACK)))  # fmt: skip
        detail = self._detail(state, _ports(ports))
        if detail is None:
            return Reply(
                render("nomination_gone"), key="nomination", options=(Option("返回", BACK),)
            )
        return Reply(self._detail_text(detail, _ports(ports)), key="action",
                     options=self._options(state, _ports(ports)))  # fmt: skip

    def _options(self, state: ReviewState, ports: Ports) -> tuple[Option, ...]:
        if state.stage is Stage.LIST:
            listed = self._views(state, ports)
            return (
                *(Option(self.line(v), OPEN + str(v.id)) for v in listed),
                Option("返回", BACK),
            )
        detail = self._detail(state, ports)
        if detail is None:
            return (Option("返回", BACK),)
        campaign = self.catalog.get(detail.view.campaign)
        lifecycle = _lifecycle(campaign)
        actor = ports.actor() or Actor(role=Role.APPLICANT)
        out = [
            Option(t.label, MOVE + t.id)
            for t in actions_for(lifecycle, self._ref(lifecycle, detail), actor,
                                 today=self.today())
        ]  # fmt: skip
        status = lifecycle.status(detail.view.status)
        if detail.view.status == lifecycle.initial and actor.role is Role.CLERK:
            out.insert(0, Option(render("continue_draft"), CONTINUE))
        if status.opinions and actor.role is Role.CLERK:
            for department in opinion_departments(lifecycle, self._nominee(detail)):
                mark = "✓" if department in detail.opinions else "未记录"
                out.append(Option(f"已征求{department}意见（{mark}）", OPINION + department))
        out.append(Option("返回", BACK))
        return tuple(out)

    def _detail_text(self, detail: NominationDetail, ports: Ports) -> str:
        campaign = self.catalog.get(detail.view.campaign)
        lifecycle = _lifecycle(campaign)
        form = form_for(campaign, detail.view.category)
        actor = ports.actor()
        full = actor is not None and actor.role is Role.OFFICIAL
        lines = []
        if form is not None:
            for field in form.fields:
                value = detail.fields.get(field.key)
                if value is None or field.type is FieldType.LIST and not value:
                    continue
                lines.append(f"{field.label}：{display(field, value, full=full)}")
        findings = self._findings(detail, ports) if full else []
        return render(
            "nomination_detail",
            findings=findings,
            line=self.line(detail.view),
            status=lifecycle.status(detail.view.status).label,
            region=ports.region_name(detail.view.region),
            publicity=detail.publicity,
            fields=lines,
            files=[
                m.name
                for m in (form.materials if form is not None else [])
                if m.key in detail.uploaded
            ],
            missing=missing_opinions(lifecycle, self._nominee(detail), detail.opinions)
            if lifecycle.status(detail.view.status).opinions
            else [],
        )

    def _findings(self, detail: NominationDetail, ports: Ports) -> list[str]:
        """The rules across nominations, as officials must see them (DESIGN §2.3)."""
        campaign = self.catalog.get(detail.view.campaign)
        inputs = ports.rules_inputs(campaign.id, detail.view.category, detail.view.region)
        identity_key = detail.fields.get("id_number") or detail.fields.get("uscc")
        me = NominationFacts(
            id=detail.view.id,
            campaign=campaign.id,
            category=detail.view.category,
            kind=detail.kind,
            unit_id=detail.view.unit_id,
            region=inputs.region,
            nominee_digest=str(identity_key) if identity_key else None,
            county_division=detail.facts.get("admin_rank") == "county_division",
            status=detail.view.status,
            submitted=detail.view.status != _lifecycle(campaign).initial,
        )
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

    def _views(self, state: ReviewState, ports: Ports) -> list[NominationView]:
        out = []
        for nomination_id in state.items:
            detail = ports.open_nomination(nomination_id, audit=False)
            if detail is not None:
                out.append(detail.view)
        return out

    def _detail(self, state: ReviewState, ports: Ports) -> NominationDetail | None:
        return None if state.nomination is None else ports.open_nomination(state.nomination)

    def _ref(self, lifecycle: Lifecycle, detail: NominationDetail) -> NominationRef:
        return NominationRef(
            status=detail.view.status,
            unit_id=detail.view.unit_id,
            region=detail.view.region,
            publicity_ends=detail.publicity[1] if detail.publicity else None,
            opinions_done=not missing_opinions(lifecycle, self._nominee(detail), detail.opinions),
            entry_level=detail.entry_level,
            offices=detail.offices,
        )

    @staticmethod
    def _nominee(detail: NominationDetail) -> dict[str, Any]:
        facts = detail.facts
        return {
            "nominee_kind": detail.kind,
            "unit_type": detail.fields.get("unit_type") or facts.get("unit_type"),
        }

    def _named_move(self, detail: NominationDetail, text: str) -> Transition | None:
        """The move from the nomination's status that `text` names (label or id), if any."""
        lifecycle = _lifecycle(self.catalog.get(detail.view.campaign))
        word = normalise(text)
        for t in lifecycle.transitions_from(detail.view.status):
            if word in (t.id, normalise(t.label)):
                return t
        return None

    def _transition(self, detail: NominationDetail, transition_id: str) -> Transition:
        lifecycle = _lifecycle(self.catalog.get(detail.view.campaign))
        for t in lifecycle.transitions:
            if t.id == transition_id:
                return t
        raise KeyError(transition_id)


def _lifecycle(campaign: Campaign) -> Lifecycle:
    if campaign.lifecycle is None:
        raise RuntimeError(f"campaign {campaign.id} has no lifecycle")
    return campaign.lifecycle


def _ports(ports: Ports | None) -> Ports:
    if ports is None:
        raise RuntimeError("ports are needed to show a nomination")
    return ports


def _req(value: str | None) -> str:
    if value is None:
        raise RuntimeError("review state is missing a value its stage requires")
    return value
