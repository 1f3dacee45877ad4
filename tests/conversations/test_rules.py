"""Eligibility rules of every campaign under campaigns/, table-driven (fixtures/rule_cases.yaml).

The fixture format is described at the top of the fixture. `test_every_rule_has_cases` is the
registry-driven completeness check (goflow's TestActionTypes): a rule added to a campaign without a
passing and a failing case for each category it applies to, or a category without an eligible base,
fails it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from support.rule_cases import (
    BASES,
    CASES,
    Case,
    campaign_rule,
    campaigns,
    fixture,
    stored_answers,
)

from conversations.campaign import Campaign, RuleSeverity
from conversations.conditions import facts_in
from conversations.eligibility import (
    Outcome,
    assess,
    effective_facts,
    is_relevant,
    judge,
)


def material_names(campaign: Campaign, category_id: str, listed: list[str]) -> list[str]:
    """Map the material lines of an assessment back to the material names of the YAML."""
    lines = {
        (f"{m.name}（{m.note}）" if m.note else m.name): m.name
        for m in campaign.category(category_id).materials
    }
    return [lines.get(line, line) for line in listed]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case) -> None:
    campaign = campaigns()[case.campaign]
    answers = stored_answers(campaign, case.answers)
    result = assess(campaign, case.category, answers)
    facts = effective_facts(campaign, case.category, answers)

    actual: dict[str, Any] = {
        "verdict": result.verdict.value,
        "failing": [
            r.rule.id for r in result.reasons if r.outcome in (Outcome.FAILED, Outcome.REVIEW)
        ],
        "missing": result.missing,
    }
    expected: dict[str, Any] = {
        "verdict": case.verdict,
        "failing": case.failing,
        "missing": case.missing,
    }
    if case.rule is not None:
        # The rule under test must itself pass or fail here, not merely not apply.
        rule = campaign_rule(campaign, case.rule)
        reason = judge(campaign, rule, facts)
        actual["rule"] = (rule.id, reason.outcome.value if reason else "does not apply")
        if case.expect == "pass":
            want = Outcome.PASSED
        else:
            want = Outcome.FAILED if rule.severity is RuleSeverity.HARD else Outcome.REVIEW
        expected["rule"] = (rule.id, want.value)
    if case.ignored is not None:
        actual["ignored"] = [k for k in case.ignored if k in answers and k not in facts]
        expected["ignored"] = case.ignored
    if case.materials is not None:
        actual["materials"] = material_names(campaign, case.category, result.materials)
        expected["materials"] = case.materials
    if case.self_declared is not None:
        actual["self_declared"] = [r.id for r in result.self_declared]
        expected["self_declared"] = case.self_declared
    assert actual == expected


@pytest.mark.parametrize(
    ("campaign_id", "category_id", "name", "written"),
    BASES,
    ids=[f"{c}/{k}/{n}" for c, k, n, _ in BASES],
)
def test_base_is_complete_and_eligible(
    campaign_id: str, category_id: str, name: str, written: Mapping[str, Any]
) -> None:
    campaign = campaigns()[campaign_id]
    answers = stored_answers(campaign, written)
    result = assess(campaign, category_id, answers)
    facts = effective_facts(campaign, category_id, answers)
    questions = [campaign.fact(k) for k in campaign.category(category_id).questions]
    actual = {
        "verdict": result.verdict.value,
        "missing": result.missing,
        "unanswered relevant questions": [
            f.key for f in questions if f.key not in answers and is_relevant(campaign, f, facts)
        ],
        "answers that do not count": [k for k in answers if k not in facts],
    }
    expected = {
        "verdict": "eligible",
        "missing": [],
        "unanswered relevant questions": [],
        "answers that do not count": [],
    }
    assert actual == expected


def test_every_rule_has_cases() -> None:
    """Every category has a base; every rule a pass and a fail case in each of its categories."""
    cases = fixture()
    loaded = campaigns()
    problems = [
        f"{cid}: cases for a campaign that does not exist" for cid in cases if cid not in loaded
    ]
    for campaign in loaded.values():
        by_category = cases.get(campaign.id) or {}
        known = {c.id for c in campaign.categories}
        problems += [
            f"{campaign.id}/{cat}: cases for a category that does not exist"
            for cat in by_category
            if cat not in known
        ]
        for category in campaign.categories:
            where = f"{campaign.id}/{category.id}"
            entry = by_category.get(category.id) or {}
            if not entry.get("bases"):
                problems.append(f"{where}: no eligible base")
            rule_cases = entry.get("rules") or {}
            applying = [r.id for r in campaign.rules_for(category.id)]
            for rule_id in applying:
                for expect in ("pass", "fail"):
                    if not (rule_cases.get(rule_id) or {}).get(expect):
                        problems.append(f"{where}: rule {rule_id} has no {expect} case")
            problems += [
                f"{where}: cases for rule {rule_id}, which does not apply to the category"
                for rule_id in rule_cases
                if rule_id not in applying
            ]
    assert problems == []


def test_campaigns_are_found() -> None:
    assert sorted(campaigns()) == ["jl-employment-2022", "jl-skills-2022"]


@pytest.mark.parametrize("campaign_id", ["jl-employment-2022", "jl-skills-2022"])
def test_rules_only_use_facts_the_category_asks(campaign_id: str) -> None:
    """A rule whose fact is never asked in its category could never be decided."""
    campaign = campaigns()[campaign_id]
    problems = []
    for rule in campaign.rules:
        used = set(facts_in(rule.require)) | (set(facts_in(rule.when)) if rule.when else set())
        for category_id in rule.categories:
            asked = set(campaign.category(category_id).questions)
            for key in sorted(used):
                fact = campaign.fact(key)
                sources = set(fact.derived.sources) if fact.derived else {key}
                if not sources & asked:
                    problems.append(f"{rule.id} in {category_id}: '{key}' is never asked")
    assert problems == []


@pytest.mark.parametrize("campaign_id", ["jl-employment-2022", "jl-skills-2022"])
def test_self_declared_rules_name_their_evidence(campaign_id: str) -> None:
    campaign = campaigns()[campaign_id]
    assert [r.id for r in campaign.rules if r.self_declared and not r.evidence] == []
