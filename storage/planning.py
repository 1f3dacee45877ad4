"""Re-planning reminders from the state: what the planner is given, and the digest composed
when it is due (the rows themselves: storage.reminders).

`Planning.replan(conn, sealer, scope, now=…)` reads the state `scope` covers (`plan_facts`), asks
the core's pure planner (conversations.reminders.plan) for the reminders it calls for, and stores
them (storage.reminders.apply_plan) in the CALLER's transaction: the writer does it for a step's
`Replan` effect, so a stage change and its new plan commit together; the admin CLI does it for a
moved window; the ticker for every campaign when it starts leading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from conversations.campaign import Campaign, Catalog
from conversations.effects import Scope
from conversations.identity import Level, Role
from conversations.lifecycle import missing_opinions
from conversations.moves import nominee_facts
from conversations.reminders import (
    KIND_DIGEST,
    KIND_WINDOW,
    DigestItem,
    DigestReader,
    PlanFacts,
    PlanNomination,
    Workdays,
    compose_digest,
    digest_body,
    plan,
)
from storage import nominations as noms
from storage.crypto import Sealer
from storage.reads import StoreReads
from storage.regions import Regions
from storage.reminders import PlanChange, apply_plan, wanted, windows_in_force
from storage.tables import memberships

# ----- the plan's inputs, read from the state --------------------------------------------------


class _SystemTx:
    """What storage.reads.StoreReads needs of a transaction, for reads on nobody's behalf."""

    def __init__(self, conn: Connection) -> None:
        self.connection = conn
        self.user_id = 0


def plan_facts(
    conn: Connection,
    sealer: Sealer,
    catalog: Catalog,
    regions: Regions,
    campaign: Campaign,
    *,
    now: dt.datetime,
    waiting_workdays: int,
    nomination: int | None = None,
) -> PlanFacts:
    windows, versions = windows_in_force(conn, campaign)
    prefs = wanted(conn, campaign.id)
    members = conn.execute(sa.select(memberships)).all()
    window_audience = frozenset(u for u, kinds in prefs.items() if kinds[KIND_WINDOW])
    digest_audience = {
        m.user_id: DigestReader(
            Level(m.level), m.region_code, _region_name(regions, m.region_code)
        )
        for m in members
        if m.role == Role.OFFICIAL.value and m.level and prefs.get(m.user_id, {}).get(KIND_DIGEST)
    }
    off = {
        u: frozenset(k for k, on in kinds.items() if not on and k != KIND_WINDOW)
        for u, kinds in prefs.items()
    }
    reads = StoreReads(
        _SystemTx(conn), sealer, regions, catalog=catalog, now=now,  # type: ignore[arg-type]
        workday_end=_no_workday_end,
    )  # fmt: skip
    lifecycle = campaign.lifecycle
    records = (
        [r for r in [noms.get(conn, sealer, nomination)] if r is not None]
        if nomination is not None
        else list(noms.in_campaign(conn, sealer, campaign.id))
    )
    planned = []
    for record in records:
        if record.campaign != campaign.id:
            continue
        detail = reads.nomination(record.id)
        if detail is None or lifecycle is None:
            continue
        last = detail.last_return
        planned.append(
            PlanNomination(
                id=record.id,
                version=record.version,
                category=record.category,
                status=record.status,
                since=record.status_changed_at,
                tracking_code=record.tracking_code,
                nominee=detail.view.nominee,
                publicity=detail.publicity,
                missing_opinions=tuple(
                    missing_opinions(lifecycle, nominee_facts(detail), detail.opinions)
                ),
                return_reason=last.reason if last else None,
                clerks=frozenset(
                    m.user_id
                    for m in members
                    if m.role == Role.CLERK.value and m.unit_id == record.unit_id
                ),  # fmt: skip
                officials=_officials_over(members, regions, record.region),
            )
        )
    return PlanFacts(
        campaign=campaign,
        windows=windows,
        window_versions=versions,
        now=now,
        window_audience=window_audience,
        digest_audience=digest_audience,
        off=off,
        nominations=tuple(planned),
        waiting_workdays=waiting_workdays,
    )


def _no_workday_end(start: dt.date, workdays: int) -> dt.date:
    raise RuntimeError("planning reads no publicity end: the planner has its own calendar")


def _officials_over(
    members: Iterable[Any], regions: Regions, region: str
) -> dict[str, frozenset[int]]:
    found: dict[str, set[int]] = {}
    for m in members:
        if m.role == Role.OFFICIAL.value and m.level and _contains(regions, m.region_code, region):
            found.setdefault(m.level, set()).add(m.user_id)
    return {level: frozenset(ids) for level, ids in found.items()}


def _contains(regions: Regions, outer: str, inner: str) -> bool:
    return outer in regions and inner in regions and regions.contains(outer, inner)


def _region_name(regions: Regions, code: str) -> str:
    return regions.full_name(code) if code in regions else code


def replan(
    conn: Connection,
    sealer: Sealer,
    catalog: Catalog,
    regions: Regions,
    workdays: Workdays,
    scope: Scope,
    *,
    now: dt.datetime,
    waiting_workdays: int,
) -> PlanChange:
    """Plan `scope` again from the state as it is in `conn` and store it (same transaction)."""
    if scope.campaign not in catalog:
        return PlanChange()
    campaign = catalog.get(scope.campaign)
    nomination = scope.nomination if isinstance(scope.nomination, int) else None
    facts = plan_facts(
        conn, sealer, catalog, regions, campaign, now=now, waiting_workdays=waiting_workdays,
        nomination=nomination,
    )  # fmt: skip

    def wants(user: int, kind: str) -> bool:
        if kind == KIND_WINDOW:
            return user in facts.window_audience
        return kind not in facts.off.get(user, frozenset())

    return apply_plan(conn, sealer, scope, plan(facts, workdays, scope), now=now, wants=wants)


@dataclass(frozen=True, slots=True)
class Planning:
    """What re-planning needs beside the transaction: the campaigns, the regions, the calendar."""

    catalog: Catalog
    regions: Regions
    workdays: Workdays
    waiting_workdays: int = 5  # officials are alerted past this many working days at their level

    def replan(
        self, conn: Connection, sealer: Sealer, scope: Scope, *, now: dt.datetime
    ) -> PlanChange:
        return replan(
            conn, sealer, self.catalog, self.regions, self.workdays, scope, now=now,
            waiting_workdays=self.waiting_workdays,
        )  # fmt: skip

    def replan_all(self, conn: Connection, sealer: Sealer, *, now: dt.datetime) -> PlanChange:
        """Every campaign's whole plan (at start: the YAML may have changed while down)."""
        total = PlanChange()
        for campaign in self.catalog:
            change = self.replan(conn, sealer, Scope(campaign.id), now=now)
            total = PlanChange(
                total.added + change.added, total.kept + change.kept,
                total.superseded + change.superseded, total.unplanned + change.unplanned,
                total.missed + change.missed,
            )  # fmt: skip
        return total


class Digests:
    """Composes an official's digest when it is due, from the state as it is then."""

    def __init__(self, sealer: Sealer, catalog: Catalog, regions: Regions) -> None:
        self._sealer = sealer
        self._catalog = catalog
        self._regions = regions

    def __call__(
        self, conn: Connection, user_id: int, campaign_id: str, today: dt.date
    ) -> str | None:
        if campaign_id not in self._catalog:
            return None
        campaign = self._catalog.get(campaign_id)
        member = conn.execute(
            sa.select(memberships).where(memberships.c.user_id == user_id)
        ).one_or_none()
        if member is None or member.role != Role.OFFICIAL.value or not member.level:
            return None
        reader = DigestReader(
            Level(member.level),
            member.region_code,
            _region_name(self._regions, member.region_code),
        )
        lifecycle = campaign.lifecycle
        if lifecycle is None:
            return None
        at_level = tuple(s.key for s in lifecycle.statuses if s.queue_level is reader.level)
        region = reader.region
        records = [
            r for r in noms.in_campaign(conn, self._sealer, campaign.id)
            if _contains(self._regions, region, r.region)
        ]  # fmt: skip
        items = [
            DigestItem(r.category, r.status, r.publicity_ends_on)
            for r in records if r.status in at_level
        ]  # fmt: skip
        reads = StoreReads(
            _SystemTx(conn), self._sealer, self._regions, catalog=self._catalog,  # type: ignore[arg-type]
            now=dt.datetime.now(dt.UTC), workday_end=_no_workday_end,
        )  # fmt: skip
        facts = [
            f
            for f in reads.campaign_facts(campaign.id)
            if _contains(self._regions, region, f.region)
        ]
        quotas = {
            c.id: [
                q
                for q in reads.quotas(campaign.id, c.id)
                if _contains(self._regions, region, q.region)
            ]
            for c in campaign.categories
        }
        lines = compose_digest(campaign, reader, today, items, facts, quotas)
        return digest_body(campaign, reader, today, lines) if lines else None


__all__ = ["Digests", "Planning", "plan_facts", "replan"]
