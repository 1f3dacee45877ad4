"""Rules across nominations (DESIGN §2.3): checked when a clerk submits, shown to officials.

Pure: the caller loads the campaign's other nominations and the region's quota and passes them
in. A finding either blocks the submission or warns (the notices' "原则上" rules warn).

What the rules rely on is declared by the campaign, never assumed here: which statuses still
count (`lifecycle.statuses[].counts`), which form field identifies a nominee
(`forms[].fields[].identifies`, read by conversations.policy.nominee_key) and which nominees
the share cap covers (`cross_rules.cap`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from conversations.lifecycle import Counts

if TYPE_CHECKING:
    from conversations.campaign import Campaign

# The rules, by the names `cross_rules.clauses` gives their clauses under.
RULES = (
    "duplicate_nominee",
    "both_awards",
    "unit_collective_and_individual",
    "share_cap",
    "quota_ratio",
)


class CrossRuleSeverity(StrEnum):
    BLOCK = "block"  # the clerk cannot submit
    WARN = "warn"  # submit allowed; officials see it


@dataclass(frozen=True, slots=True)
class NominationFacts:
    """What the rules need to know about one nomination (no names: only keyed digests)."""

    id: int | None  # None for the one being checked before it is stored
    campaign: str
    category: str
    kind: str  # "individual" or "collective"
    unit_id: int
    region: str  # the nominating region's code (the quota holder)
    nominee_digest: str | None  # the value of the form's `identifies` field (policy.nominee_key)
    status: str  # what it counts toward is the campaign's (CampaignLimits.not_nominee/not_places)
    capped: bool = False  # a nominee the share cap covers (cross_rules.cap; is_capped)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: CrossRuleSeverity
    clause: str
    message: str  # plain Chinese, with the numbers that decided it


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    """Per-campaign parameters of the rules, from the campaign's notice."""

    places: Mapping[str, int] = field(default_factory=dict)  # category -> awards
    cap_share: float | None = None  # 0.2 of all awards for 县处级干部 (employment campaign)
    cap_label: str = ""  # who the cap covers, as the finding says it: 县处级干部
    # Statuses (lifecycle.statuses[].counts) whose nominations hold no nominee / use no place.
    not_nominee: frozenset[str] = frozenset()
    not_places: frozenset[str] = frozenset()
    quota_ratio: tuple[float, float] | None = None  # (1.5, 2.0): nominations per quota place
    one_kind_per_unit: bool = False  # 原则上同一单位不同时推荐先进集体和先进个人
    clauses: Mapping[str, str] = field(default_factory=dict)  # rule -> clause of the notice


class CapSpec(BaseModel):
    """`cross_rules.cap`: nominees whose self-check fact `fact` is `value` may be at most
    `share` of all awards (the loader checks the fact is an enum with that choice)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact: str
    value: str
    share: float = Field(gt=0, le=1)
    label: str  # who they are, as the finding names them: 县处级干部


class CrossRulesSpec(BaseModel):
    """The `cross_rules:` section of a campaign YAML: the notice's limits across nominations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cap: CapSpec | None = None
    quota_ratio: tuple[float, float] | None = None
    one_kind_per_unit: bool = False
    clauses: dict[str, str] = Field(default_factory=dict)  # rule (RULES) -> clause

    def check(self, where: str = "cross_rules") -> None:
        for rule in self.clauses:
            if rule not in RULES:
                raise ValueError(
                    f"{where}.clauses.{rule}: no such rule (rules: {', '.join(RULES)})"
                )


def limits_for(campaign: Campaign) -> CampaignLimits:
    """The limits of a campaign: its places per category, its `cross_rules:` section and what
    its statuses count toward."""
    spec = campaign.cross_rules or CrossRulesSpec()
    lifecycle = campaign.lifecycle
    return CampaignLimits(
        places={c.id: c.places for c in campaign.categories if c.places is not None},
        cap_share=spec.cap.share if spec.cap is not None else None,
        cap_label=spec.cap.label if spec.cap is not None else "",
        not_nominee=lifecycle.not_counting(Counts.NOMINEE) if lifecycle else frozenset(),
        not_places=lifecycle.not_counting(Counts.PLACES) if lifecycle else frozenset(),
        quota_ratio=spec.quota_ratio,
        one_kind_per_unit=spec.one_kind_per_unit,
        clauses=dict(spec.clauses),
    )


def quota_band(places: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """The fewest and most nominations a quota of `places` calls for (按照名额的150%-200%推荐:
    4 places, 6 to 8 nominations); the submission check and `awardbot quota list` both use it."""
    low, high = ratio
    return math.ceil(places * low), math.floor(places * high)


def is_capped(campaign: Campaign, facts: Mapping[str, Any]) -> bool:
    """Whether the share cap covers a nominee with these self-check answers."""
    cap = campaign.cross_rules.cap if campaign.cross_rules is not None else None
    return cap is not None and facts.get(cap.fact) == cap.value


def check(
    candidate: NominationFacts,
    others: Iterable[NominationFacts],
    limits: CampaignLimits,
    *,
    quota: int | None = None,
) -> list[Finding]:
    """Findings for `candidate` against the campaign's other active nominations."""
    active = [
        n
        for n in others
        if n.campaign == candidate.campaign
        and n.status not in limits.not_nominee
        and (candidate.id is None or n.id != candidate.id)
    ]
    findings: list[Finding] = []
    if candidate.nominee_digest is not None:
        for other in active:
            if other.nominee_digest != candidate.nominee_digest:
                continue
            same = other.category == candidate.category
            findings.append(
                Finding(
                    rule="duplicate_nominee" if same else "both_awards",
                    severity=CrossRuleSeverity.BLOCK,
                    clause=limits.clauses.get("duplicate_nominee" if same else "both_awards", ""),
                    message=(
                        "同一推荐对象在本次活动的同一类别中已被推荐，不能重复推荐。"
                        if same
                        else "同一推荐对象不得同时申报本次活动的两个奖项（已在另一类别中被推荐）。"
                    ),
                )
            )
            break
    if limits.one_kind_per_unit:
        other_kinds = {n.kind for n in active if n.unit_id == candidate.unit_id}
        if other_kinds - {candidate.kind}:
            findings.append(
                Finding(
                    rule="unit_collective_and_individual",
                    severity=CrossRuleSeverity.WARN,
                    clause=limits.clauses.get("unit_collective_and_individual", ""),
                    message="原则上同一单位不同时推荐先进集体和先进个人：本单位已有另一类推荐。",
                )
            )
    if limits.cap_share is not None and candidate.capped:
        total = sum(limits.places.values())
        cap = math.floor(total * limits.cap_share)
        counted = sum(1 for n in active if n.capped and n.status not in limits.not_places) + 1
        if counted > cap:
            share = f"{limits.cap_share:.0%}"
            findings.append(
                Finding(
                    rule="share_cap",
                    severity=CrossRuleSeverity.WARN,
                    clause=limits.clauses.get("share_cap", ""),
                    message=(
                        f"{limits.cap_label}比例应控制在评选总数的{share}以内"
                        f"（{total} 的{share}为 {cap} 名），计入本推荐后为 {counted} 名。"
                    ),
                )
            )
    if limits.quota_ratio is not None and quota is not None:
        low, high = limits.quota_ratio
        mine = [
            n
            for n in active
            if n.region == candidate.region
            and n.category == candidate.category
            and n.status not in limits.not_places
        ]
        count = len(mine) + 1
        head = f"申报数量应为分配名额的{low:.0%}-{high:.0%}：本地区本类别名额 {quota} 名，"
        least, most = quota_band(quota, limits.quota_ratio)
        if count > most:
            findings.append(
                Finding(
                    rule="quota_ratio_high",
                    severity=CrossRuleSeverity.BLOCK,
                    clause=limits.clauses.get("quota_ratio", ""),
                    message=(f"{head}最多推荐 {most} 名，计入本推荐后为 {count} 名。"),
                )
            )
        elif count < least:
            findings.append(
                Finding(
                    rule="quota_ratio_low",
                    severity=CrossRuleSeverity.WARN,
                    clause=limits.clauses.get("quota_ratio", ""),
                    message=(f"{head}至少应推荐 {least} 名，目前为 {count} 名。"),
                )
            )
    return findings
