"""Rules across nominations (DESIGN §2.3), one case per rule and boundary."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conversations.crossrules import CampaignLimits, CrossRuleSeverity, NominationFacts, check

EMPLOYMENT = CampaignLimits(
    places={"employment_collective": 65, "migrant_collective": 35,
            "employment_individual": 130, "migrant_individual": 70},
    cap_share=0.2,
    cap_label="县处级干部",
    not_nominee=frozenset({"withdrawn", "rejected", "revoked"}),  # counts: []
    not_places=frozenset({"withdrawn", "rejected", "revoked", "draft"}),  # draft: [nominee]
    quota_ratio=(1.5, 2.0),
    one_kind_per_unit=True,
    clauses={"duplicate_nominee": "四、（三）", "unit_collective_and_individual": "一、",
             "share_cap": "四、（四）", "quota_ratio": "四、（五）"},
)  # fmt: skip
SKILLS = CampaignLimits(
    places={"skills_grand_award": 10, "technical_expert": 50},
    clauses={"both_awards": "一、（一）"},
)

PERSON = NominationFacts(
    id=None,
    campaign="jl-employment-2022",
    category="employment_individual",
    kind="individual",
    unit_id=1,
    region="220100",
    nominee_digest="d-1",
    status="county_review",
)


def rules(findings: list) -> list[tuple[str, CrossRuleSeverity]]:  # type: ignore[type-arg]
    return [(f.rule, f.severity) for f in findings]


def test_nothing_to_say_about_a_lone_nomination() -> None:
    assert check(PERSON, [], EMPLOYMENT) == []


def test_same_person_twice_in_a_category_is_blocked() -> None:
    other = replace(PERSON, id=7, unit_id=2)
    [finding] = check(PERSON, [other], EMPLOYMENT)
    assert (finding.rule, finding.severity, finding.clause) == (
        "duplicate_nominee",
        CrossRuleSeverity.BLOCK,
        "四、（三）",
    )


def test_same_person_for_both_skills_awards_is_blocked() -> None:
    grand = replace(PERSON, campaign="jl-skills-2022", category="skills_grand_award", id=3)
    expert = replace(grand, id=None, category="technical_expert")
    [finding] = check(expert, [grand], SKILLS)
    assert (finding.rule, finding.clause) == ("both_awards", "一、（一）")


@pytest.mark.parametrize("status", ["withdrawn", "rejected", "revoked"])
def test_inactive_nominations_do_not_count(status: str) -> None:
    other = replace(PERSON, id=7, status=status)
    assert check(PERSON, [other], EMPLOYMENT) == []


def test_another_campaign_does_not_count() -> None:
    other = replace(PERSON, id=7, campaign="jl-skills-2022")
    assert check(PERSON, [other], EMPLOYMENT) == []


def test_checking_a_stored_nomination_ignores_itself() -> None:
    stored = replace(PERSON, id=5)
    assert check(stored, [stored], EMPLOYMENT) == []


def test_unit_with_a_collective_and_an_individual_is_warned() -> None:
    collective = replace(
        PERSON, id=9, kind="collective", category="employment_collective", nominee_digest="u-1"
    )
    assert rules(check(PERSON, [collective], EMPLOYMENT)) == [
        ("unit_collective_and_individual", CrossRuleSeverity.WARN)
    ]


def test_county_division_cap_is_twenty_percent_of_all_awards() -> None:
    # 65 + 35 + 130 + 70 = 300 awards; 20 % is 60 county-division nominees.
    leader = replace(PERSON, capped=True)
    others = [replace(leader, id=i, nominee_digest=f"x{i}", unit_id=100 + i) for i in range(59)]
    assert check(leader, others, EMPLOYMENT) == []  # the 60th is within the cap
    others.append(replace(leader, id=99, nominee_digest="x99", unit_id=199))
    [finding] = check(leader, others, EMPLOYMENT)
    assert finding.rule == "share_cap"
    assert "300 的20%为 60 名" in finding.message
    assert "61 名" in finding.message


def test_drafts_do_not_count_toward_the_cap_or_quota() -> None:
    leader = replace(PERSON, capped=True)
    drafts = [
        replace(leader, id=i, nominee_digest=f"x{i}", unit_id=100 + i, status="draft")
        for i in range(80)
    ]
    assert check(leader, drafts, EMPLOYMENT) == []


@pytest.mark.parametrize(
    ("already", "quota", "expected"),
    [
        (0, 4, [("quota_ratio_low", CrossRuleSeverity.WARN)]),  # 1 < 6 = 150 % of 4
        (5, 4, []),  # the 6th is 150 %
        (7, 4, []),  # the 8th is 200 %
        (8, 4, [("quota_ratio_high", CrossRuleSeverity.BLOCK)]),  # the 9th is over 200 %
    ],
)
def test_region_quota_ratio(already: int, quota: int, expected: list) -> None:  # type: ignore[type-arg]
    others = [
        replace(PERSON, id=i, nominee_digest=f"q{i}", unit_id=200 + i) for i in range(already)
    ]
    findings = check(PERSON, others, replace(EMPLOYMENT, one_kind_per_unit=False), quota=quota)
    assert rules(findings) == expected


def test_quota_messages_give_the_numbers() -> None:
    others = [replace(PERSON, id=i, nominee_digest=f"q{i}", unit_id=200 + i) for i in range(2)]
    [low] = check(PERSON, others, EMPLOYMENT, quota=3)  # 150 % of 3 is 4.5: at least 5
    assert "名额 3 名，至少应推荐 5 名，目前为 3 名" in low.message
    many = [replace(PERSON, id=i, nominee_digest=f"q{i}", unit_id=200 + i) for i in range(6)]
    [high] = check(PERSON, many, EMPLOYMENT, quota=3)
    assert "最多推荐 6 名，计入本推荐后为 7 名" in high.message


def test_other_regions_and_categories_do_not_fill_a_quota() -> None:
    elsewhere = [
        replace(PERSON, id=1, nominee_digest="a", region="220200"),
        replace(PERSON, id=2, nominee_digest="b", category="migrant_individual"),
    ]
    [finding] = check(PERSON, elsewhere, EMPLOYMENT, quota=1)
    assert "目前为 1 名" in finding.message  # only this nomination counts
