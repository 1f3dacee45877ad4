"""Eligibility verdicts from facts: which rules pass, fail or lack an answer, and why (§2.2)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from conversations.campaign import Campaign, Fact, FactType, Rule, RuleSeverity
from conversations.conditions import evaluate, facts_in
from conversations.idnumber import age_at


class Verdict(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    NEEDS_REVIEW = "needs_review"
    INCOMPLETE = "incomplete"


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # a hard rule failed: refused
    REVIEW = "review"  # a soft rule failed: a reviewer decides
    MISSING = "missing"  # an answer the rule needs is not given


@dataclass(frozen=True, slots=True)
class Reason:
    rule: Rule
    outcome: Outcome
    fact: str | None
    value: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "clause": self.rule.clause,
            "message": self.rule.message,
            "fact": self.fact,
            "value": self.value,
            "rule": self.rule.id,
            "outcome": self.outcome.value,
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    campaign: Campaign
    category: str
    verdict: Verdict
    reasons: list[Reason]
    missing: list[str]
    materials: list[str]
    self_declared: list[Rule] = field(default_factory=list)  # merits the bot cannot verify

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign.id,
            "category": self.category,
            "verdict": self.verdict.value,
            "reasons": [r.as_json() for r in self.reasons],
            "missing": self.missing,
            "materials": self.materials,
            "self_declared": [
                {"clause": r.clause, "message": r.message, "evidence": r.evidence}
                for r in self.self_declared
            ],
        }


def effective_facts(
    campaign: Campaign, category_id: str, answers: Mapping[str, Any]
) -> dict[str, Any]:
    """The answers that count for this category, plus derived facts.

    An answer to a question that is no longer relevant (the person type changed, say) is kept in
    the session but does not count.
    """
    category = campaign.category(category_id)
    asked = category.asked
    facts: dict[str, Any] = {k: v for k, v in answers.items() if k not in asked and v is not None}
    for key in category.questions:
        if answers.get(key) is not None and is_relevant(campaign, campaign.fact(key), facts):
            facts[key] = answers[key]
    for fact in campaign.derived_facts:
        value = derive(campaign, fact, facts)
        if value is not None:
            facts[fact.key] = value
    return facts


def is_relevant(campaign: Campaign, fact: Fact, facts: Mapping[str, Any]) -> bool:
    """Whether to ask `fact` given the answers so far; unknown counts as not (yet) relevant."""
    if fact.relevant is None:
        return True
    return evaluate(fact.relevant, facts, campaign.ordinal).value is True


def derive(campaign: Campaign, fact: Fact, facts: Mapping[str, Any]) -> Any:
    assert fact.derived is not None
    for source in fact.derived.sources:
        value = facts.get(source)
        if value is None:
            continue
        src = campaign.fact(source)
        if src.type is FactType.DATE:
            born = dt.date.fromisoformat(value)
        elif src.type is FactType.ID_NUMBER:
            born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
        else:
            continue
        return age_at(born, campaign.as_of)
    return None


def judge(campaign: Campaign, rule: Rule, facts: Mapping[str, Any]) -> Reason | None:
    """One rule's outcome on `facts`; None when the rule does not apply."""
    applies = evaluate(rule.when, facts, campaign.ordinal).value if rule.when is not None else True
    if applies is False:
        return None
    out = evaluate(rule.require, facts, campaign.ordinal)
    if out.value is True:
        return Reason(rule, Outcome.PASSED, out.fact, facts.get(out.fact) if out.fact else None)
    if out.value is None or applies is None:
        return Reason(rule, Outcome.MISSING, out.fact, None)
    failed = Outcome.FAILED if rule.severity is RuleSeverity.HARD else Outcome.REVIEW
    return Reason(rule, failed, out.fact, facts.get(out.fact) if out.fact else None)


def assess(campaign: Campaign, category_id: str, answers: Mapping[str, Any]) -> Assessment:
    """The verdict for one category, with its reasons, missing facts and materials to prepare."""
    facts = effective_facts(campaign, category_id, answers)
    judged = [judge(campaign, rule, facts) for rule in campaign.rules_for(category_id)]
    reasons = [r for r in judged if r is not None]
    by = {o: [r for r in reasons if r.outcome is o] for o in Outcome}
    missing = _missing(campaign, category_id, by[Outcome.MISSING], facts)
    if by[Outcome.FAILED]:
        verdict, shown = Verdict.INELIGIBLE, by[Outcome.FAILED] + by[Outcome.REVIEW]
    elif missing:
        verdict, shown = Verdict.INCOMPLETE, by[Outcome.MISSING] + by[Outcome.REVIEW]
    elif by[Outcome.REVIEW]:
        verdict, shown = Verdict.NEEDS_REVIEW, by[Outcome.REVIEW]
    else:
        verdict, shown = Verdict.ELIGIBLE, by[Outcome.PASSED]
    declared = [r.rule for r in by[Outcome.PASSED] if r.rule.self_declared]
    return Assessment(
        campaign=campaign,
        category=category_id,
        verdict=verdict,
        reasons=shown,
        missing=missing,
        materials=materials_for(campaign, category_id, facts),
        self_declared=declared,
    )


def hard_failures(
    campaign: Campaign, category_id: str, answers: Mapping[str, Any]
) -> list[Reason]:
    """Hard rules already failed by the answers so far (to stop a self-check early)."""
    facts = effective_facts(campaign, category_id, answers)
    return failed_hard_rules(campaign, category_id, facts)


def failed_hard_rules(
    campaign: Campaign, category_id: str, facts: Mapping[str, Any]
) -> list[Reason]:
    """`hard_failures` on facts already made effective (the engine keeps them for the step)."""
    out = []
    for rule in campaign.hard_rules_for(category_id):
        reason = judge(campaign, rule, facts)
        if reason is not None and reason.outcome is Outcome.FAILED:
            out.append(reason)
    return out


def _missing(
    campaign: Campaign, category_id: str, reasons: list[Reason], facts: Mapping[str, Any]
) -> list[str]:
    """Unanswered facts the undecided rules need, as askable keys, in question order."""
    needed: set[str] = set()
    for reason in reasons:
        conds = [reason.rule.require] + ([reason.rule.when] if reason.rule.when else [])
        for cond in conds:
            for key in facts_in(cond):
                if facts.get(key) is None:
                    fact = campaign.fact(key)
                    needed.update(fact.derived.sources[:1] if fact.derived else [key])
    order = campaign.category(category_id).questions
    return sorted(needed, key=lambda k: (order.index(k) if k in order else len(order), k))


def materials_for(campaign: Campaign, category_id: str, facts: Mapping[str, Any]) -> list[str]:
    out = []
    for m in campaign.category(category_id).materials:
        if m.when is None or evaluate(m.when, facts, campaign.ordinal).value is not False:
            out.append(f"{m.name}（{m.note}）" if m.note else m.name)
    return out
