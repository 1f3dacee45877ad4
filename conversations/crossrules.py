"""Rules across nominations (DESIGN §2.3): checked when a clerk submits, shown to officials.

Pure: the caller loads the campaign's other nominations and the region's quota and passes them
in. A finding either blocks the submission or warns (the notices' "原则上" rules warn).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from conversations.campaign import Campaign

# Statuses after which a nomination no longer counts against anything.
INACTIVE_STATUSES = frozenset({"withdrawn", "rejected", "revoked"})


class Severity(StrEnum):
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
    nominee_digest: str | None  # keyed hash of the ID number (people) or USCC (units)
    county_division: bool = False  # 县处级 (admin_rank == county_division)
    status: str = "draft"
    submitted: bool = False  # has left the unit (counts toward quotas and the cap)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    clause: str
    message: str  # plain Chinese, with the numbers that decided it


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    """Per-campaign parameters of the rules, from the campaign's notice."""

    places: Mapping[str, int] = field(default_factory=dict)  # category -> awards
    county_division_share: float | None = None  # 0.2 for the employment campaign
    quota_ratio: tuple[float, float] | None = None  # (1.5, 2.0): nominations per quota place
    one_kind_per_unit: bool = False  # 原则上同一单位不同时推荐先进集体和先进个人
    clauses: Mapping[str, str] = field(default_factory=dict)  # rule -> clause of the notice


class CrossRulesSpec(BaseModel):
    """The `cross_rules:` section of a campaign YAML: the notice's limits across nominations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    county_division_share: float | None = Field(default=None, gt=0, le=1)
    quota_ratio: tuple[float, float] | None = None
    one_kind_per_unit: bool = False
    clauses: dict[str, str] = Field(default_factory=dict)


def limits_for(campaign: Campaign) -> CampaignLimits:
    """The limits of a campaign: its places per category and its `cross_rules:` section."""
    spec = campaign.cross_rules or CrossRulesSpec()
    return CampaignLimits(
        places={c.id: c.places for c in campaign.categories if c.places is not None},
        county_division_share=spec.county_division_share,
        quota_ratio=spec.quota_ratio,
        one_kind_per_unit=spec.one_kind_per_unit,
        clauses=dict(spec.clauses),
    )


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
        and n.status not in INACTIVE_STATUSES
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
                    severity=Severity.BLOCK,
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
                    severity=Severity.WARN,
                    clause=limits.clauses.get("unit_collective_and_individual", ""),
                    message="原则上同一单位不同时推荐先进集体和先进个人：本单位已有另一类推荐。",
                )
            )
    if limits.county_division_share is not None and candidate.county_division:
        total = sum(limits.places.values())
        cap = math.floor(total * limits.county_division_share)
        counted = sum(1 for n in active if n.county_division and n.submitted) + 1
        if counted > cap:
            share = f"{limits.county_division_share:.0%}"
            findings.append(
                Finding(
                    rule="county_division_cap",
                    severity=Severity.WARN,
                    clause=limits.clauses.get("county_division_cap", ""),
                    message=(
                        f"县处级干部比例应控制在评选总数的{share}以内"
                        f"（{total} 的{share}为 {cap} 名），计入本推荐后为 {counted} 名。"
                    ),
                )
            )
    if limits.quota_ratio is not None and quota is not None:
        low, high = limits.quota_ratio
        mine = [
            n
            for n in active
            if n.region == candidate.region and n.category == candidate.category and n.submitted
        ]
        count = len(mine) + 1
        head = f"申报数量应为分配名额的{low:.0%}-{high:.0%}：本地区本类别名额 {quota} 名，"
        most, least = math.floor(quota * high), math.ceil(quota * low)
        if count > most:
            findings.append(
                Finding(
                    rule="quota_ratio_high",
                    severity=Severity.BLOCK,
                    clause=limits.clauses.get("quota_ratio", ""),
                    message=(f"{head}最多推荐 {most} 名，计入本推荐后为 {count} 名。"),
                )
            )
        elif count < least:
            findings.append(
                Finding(
                    rule="quota_ratio_low",
                    severity=Severity.WARN,
                    clause=limits.clauses.get("quota_ratio", ""),
                    message=(f"{head}至少应推荐 {least} 名，目前为 {count} 名。"),
                )
            )
    return findings
