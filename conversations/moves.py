"""A nomination's moves, decided once for both sides: the flow that offers them and the writer
that re-checks them.

`plan` turns an actor's choice into the effects of a move (the move itself and who is told), or
says why not: the lifecycle (`decide`), then the gate every entry move passes. `recheck` is what
the writer runs on the row as it is when the effect is applied — the same two checks, plus the
row's status and version against what the core saw.

The gate: every move out of the unit's desk (starting the unit publicity, submitting,
resubmitting — whatever path leads there: the filing summary, `/mine`, a returned nomination)
checks the filing's required materials, the rules between fields, and the rules across
nominations. One function, so no path skips it.

The requirements: beyond the lifecycle and the gate, any move may need more, each a
`Requirement` of `REQUIREMENTS` that `plan` and `recheck` both run — the materials of a later
stage, which the moves out of the unit need (conversations.material_stages). A refusal names
what is missing; a new condition of a move is one more entry there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conversations.campaign import Campaign, Window
from conversations.consent import consent_missing
from conversations.consistency import Filer, Severity, form_disagreements
from conversations.crossrules import CrossRuleSeverity, NominationFacts, check, limits_for
from conversations.effects import Effect, Move, Notify, Replan, Scope
from conversations.form_parse import cross_field_errors
from conversations.forms import form_for
from conversations.identity import Actor, Role
from conversations.lifecycle import (
    SUBMIT_ACTIONS,
    Action,
    Lifecycle,
    NominationRef,
    StatusKind,
    Transition,
    decide,
    missing_opinions,
    opinion_facts,
)
from conversations.material_stages import filing_missing, missing_for
from conversations.policy import filed_audience, move_audience, nominee_key, rules_inputs
from conversations.reads import NominationDetail, Reads
from conversations.texts import render

# Moves that take a nomination off the unit's desk: each passes the gate.
ENTRY_ACTIONS = frozenset({Action.START_PUBLICITY, Action.SUBMIT, Action.RESUBMIT})


def lifecycle_of(campaign: Campaign) -> Lifecycle:
    if campaign.lifecycle is None:
        raise RuntimeError(f"campaign {campaign.id} has no lifecycle")
    return campaign.lifecycle


def nominee_facts(detail: NominationDetail) -> dict[str, Any]:
    """What the `opinions` rules test about the nominee, from the form first, then the answers."""
    return opinion_facts(detail.kind, detail.fields, detail.facts)


def ref_of(lifecycle: Lifecycle, detail: NominationDetail, reads: Reads) -> NominationRef:
    return NominationRef(
        status=detail.view.status,
        unit_id=detail.view.unit_id,
        region=detail.view.region,
        publicity_ends=detail.publicity[1] if detail.publicity else None,
        opinions_done=not missing_opinions(lifecycle, nominee_facts(detail), detail.opinions),
        entry_level=reads.entry_level(detail.view.region),
        offices=reads.offices(detail.view.region),
    )


def is_entry(lifecycle: Lifecycle, transition: Transition) -> bool:
    """Whether a move takes the nomination off the unit's desk (from a draft or a return)."""
    return transition.action in ENTRY_ACTIONS and any(
        s == lifecycle.initial or lifecycle.status(s).kind is StatusKind.SIDE
        for s in transition.from_
    )


def gate(
    campaign: Campaign, detail: NominationDetail, reads: Reads, today: dt.date
) -> tuple[list[str], list[str]]:
    """(problems that block an entry move, warnings to show): materials, fields, answers that
    disagree (conversations.consistency), cross rules."""
    form = form_for(campaign, detail.view.category)
    if form is None:
        return [], []
    values = dict(detail.fields)
    # The filing's own materials: a later stage's are a requirement of that stage's moves.
    missing = filing_missing(campaign, form, set(detail.uploaded), values, detail.facts)
    if missing:
        return [render("filing_missing", names="、".join(m.name for m in missing))], []
    errors = cross_field_errors(form, values)
    if errors:
        return list(errors.values()), []
    filer = Filer(detail.view.unit_id, detail.view.region, detail.view.tracking_code)
    found = form_disagreements(
        campaign, form, values, detail.facts, today=today, filer=filer, reads=reads
    )
    refused = [d.message for d in found if d.severity is Severity.REFUSE]
    if refused:
        return [render("filing_blocked", lines=refused)], []
    said = [d.message for d in found if d.severity is Severity.WARN]
    inputs = rules_inputs(reads, campaign.id, detail.view.category, detail.view.region)
    findings = check(
        facts_of(campaign, detail, region=inputs.region),
        inputs.others,
        limits_for(campaign),
        quota=inputs.quota,
    )
    lines = {f: f"「{f.clause}」{f.message}" if f.clause else f.message for f in findings}
    blocks = [line for f, line in lines.items() if f.severity is CrossRuleSeverity.BLOCK]
    if blocks:
        return [render("filing_blocked", lines=blocks)], []
    warned = [line for f, line in lines.items() if f.severity is CrossRuleSeverity.WARN]
    return [], [*said, *warned]


def facts_of(campaign: Campaign, detail: NominationDetail, *, region: str) -> NominationFacts:
    """The nomination as the rules across nominations see it (its own status does not matter
    to them: the one being checked always counts)."""
    form = form_for(campaign, detail.view.category)
    return NominationFacts(
        id=detail.view.id,
        campaign=campaign.id,
        category=detail.view.category,
        kind=detail.kind,
        unit_id=detail.view.unit_id,
        region=region,
        nominee_digest=nominee_key(form, detail.fields),
        capped=detail.county_division,
        status=detail.view.status,
    )


@dataclass(frozen=True, slots=True)
class Requirement:
    """Something a move needs besides what the lifecycle decides (who, from where, the
    opinions recorded, the publicity over) and the entry gate: `unmet` says in Chinese what is
    missing, naming it, or None. `tag` names it in the audit trail and the writer's refusal."""

    tag: str
    unmet: Callable[[Campaign, NominationDetail, Transition], str | None]


def stage_materials(
    campaign: Campaign, detail: NominationDetail, transition: Transition
) -> str | None:
    """The materials of a later stage that this move ends (conversations.material_stages):
    the publicity proof and the opinions, which the move out of the unit needs."""
    missing = missing_for(campaign, detail, transition)
    if not missing:
        return None
    names = "、".join(m.name for m in missing)
    return render("stage_missing", move=transition.label, names=names)


def nominee_consent(
    campaign: Campaign, detail: NominationDetail, transition: Transition
) -> str | None:
    """Out of the unit only with the nominee's own consent, in chat or signed (PIPL, issue 11;
    conversations.consent)."""
    return consent_missing(campaign, detail) if transition.action in SUBMIT_ACTIONS else None


# What `plan` checks on every move and the writer's `recheck` again, in this order; a new
# condition of a move is one more entry here, and both sides follow.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("materials", stage_materials),
    Requirement("consent", nominee_consent),
)


def unmet(
    campaign: Campaign, detail: NominationDetail, transition: Transition
) -> list[tuple[str, str]]:
    """(tag, what is missing) of each requirement `transition` does not meet, in order."""
    found = ((r.tag, r.unmet(campaign, detail, transition)) for r in REQUIREMENTS)
    return [(tag, why) for tag, why in found if why is not None]


@dataclass(frozen=True, slots=True)
class Planned:
    """A move the core decided: its effects, and what to tell the mover."""

    effects: list[Effect]
    done: str
    warnings: list[str]
    to_label: str
    publicity: tuple[dt.date, dt.date] | None
    workdays: int | None = None


@dataclass(frozen=True, slots=True)
class NotPlanned:
    why: str  # Chinese, for the actor
    audit_why: str  # for the audit trail


def plan(
    campaign: Campaign,
    detail: NominationDetail,
    actor: Actor,
    transition: Transition,
    reason: str | None,
    reads: Reads,
    today: dt.date,
) -> Planned | NotPlanned:
    lifecycle = lifecycle_of(campaign)
    decision = decide(
        lifecycle, ref_of(lifecycle, detail, reads), actor, transition.action, today=today,
        reason=reason,
    )  # fmt: skip
    if not decision.allowed or decision.to is None or decision.transition is None:
        return NotPlanned(decision.why, decision.why)
    chosen = decision.transition
    closed = outside_window(chosen, reads.windows(campaign.id), today)
    if closed is not None:
        return NotPlanned(
            render(
                "window_refused", clause=closed.clause or "", label=closed.label,
                start=closed.start.isoformat(), end=closed.end.isoformat(), note=closed.note,
                today=today.isoformat(), move=chosen.label,
            ),
            f"window: {closed.key} {closed.start}..{closed.end}",
        )  # fmt: skip
    warnings: list[str] = []
    problems: list[str] = []
    if is_entry(lifecycle, chosen):
        problems, warnings = gate(campaign, detail, reads, today)
    problems += [why for _, why in unmet(campaign, detail, chosen)]
    if problems:
        return NotPlanned("\n".join(problems), "gate: " + problems[0][:80])
    to = lifecycle.status(decision.to)
    publicity = None
    if to.publicity_workdays:
        publicity = (today, reads.workday_end(today, to.publicity_workdays))
    start = publicity[0].isoformat() if publicity else None
    end = publicity[1].isoformat() if publicity else None
    key = f"{detail.view.id}:{detail.view.version}:{to.key}"
    if chosen.action is Action.START_PUBLICITY and actor.role is Role.CLERK:
        notice = render(
            "notice_status", code=detail.view.tracking_code, status=to.label, start=start, end=end
        )
        audience = filed_audience(detail.view.id)
    else:
        notice = render(
            "notice_move", code=detail.view.tracking_code, status=to.label, move=chosen.label,
            reason=reason, start=start, end=end,
        )  # fmt: skip
        audience = move_audience(detail.view.id, to.queue_level.value if to.queue_level else None)
    effects: list[Effect] = [
        Move(
            detail.view.id,
            chosen.id,
            expected_status=detail.view.status,
            expected_version=detail.view.version,
            to_status=to.key,
            reason=reason,
            publicity=publicity,
        ),
        Notify(audience, notice, key),
        Replan(Scope(campaign.id, nomination=detail.view.id)),  # its deadlines follow its stage
    ]
    done = render("move_done", move=chosen.label, status=to.label, start=start, end=end)
    return Planned(effects, done, warnings, to.label, publicity, to.publicity_workdays)


def recheck(
    campaign: Campaign,
    detail: NominationDetail,
    actor: Actor,
    move: Move,
    reads: Reads,
    today: dt.date,
) -> str | None:
    """Why the writer must refuse `move` on the row as it is now, or None to apply it."""
    if detail.view.status != move.expected_status or detail.view.version != move.expected_version:
        return "stale"
    lifecycle = lifecycle_of(campaign)
    chosen = next((t for t in lifecycle.transitions if t.id == move.transition), None)
    if chosen is None or chosen.to != move.to_status:
        return "no such move"
    decision = decide(
        lifecycle, ref_of(lifecycle, detail, reads), actor, chosen.action, today=today,
        reason=move.reason,
    )  # fmt: skip
    if not decision.allowed or decision.transition is None or decision.transition.id != chosen.id:
        return decision.why
    if outside_window(chosen, reads.windows(campaign.id), today) is not None:
        return "window"
    if is_entry(lifecycle, chosen) and gate(campaign, detail, reads, today)[0]:
        return "gate"
    if lacking := unmet(campaign, detail, chosen):
        return lacking[0][0]
    return None


def outside_window(transition: Transition, windows: list[Window], today: dt.date) -> Window | None:
    """The strict window `transition` delivers in, if today is outside it (seed 001 三、（三）:
    提前或逾期报送均不予受理); None when the move may be made today."""
    if transition.window is None:
        return None
    window = next((w for w in windows if w.key == transition.window), None)
    if window is None or not window.strict or window.is_open(today):
        return None
    return window
