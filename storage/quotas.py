"""Regional quotas: the nominations a region may send per category (附件3, DESIGN §2.3).

Works on a `Connection` inside the caller's transaction and commits nothing itself; the table
is `storage.tables.quotas`. `QuotaError` is for the admin (one line, Chinese first).
`put_forward` counts what each region has nominated against its quota, as the submission check
(conversations.policy.rules_inputs) counts it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from conversations.policy import quota_holder
from storage import tables
from storage.regions import Region, Regions
from storage.tables import require_aware, utcnow


class QuotaError(ValueError):
    """A quota this module refuses (places not 0 or more); one line."""


@dataclass(frozen=True, slots=True)
class QuotaRecord:
    campaign: str
    category: str
    region_code: str
    places: int
    updated_at: datetime


def set_quota(
    conn: Connection,
    *,
    campaign: str,
    category: str,
    region: Region,
    places: int,
    now: datetime | None = None,
) -> QuotaRecord:
    """Set (or replace) a region's quota in one category; the caller checks the catalog."""
    if isinstance(places, bool) or not isinstance(places, int) or places < 0:
        raise QuotaError(f"名额须为 0 或正整数 (places must be 0 or more, got {places})")
    when = utcnow() if now is None else now
    require_aware(when)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(tables.quotas).values(
        campaign=campaign,
        category=category,
        region_code=region.code,
        places=places,
        updated_at=when,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["campaign", "category", "region_code"],
            set_={
                "places": statement.excluded.places,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )
    return QuotaRecord(campaign, category, region.code, places, when)


def quotas(conn: Connection, campaign: str, category: str | None = None) -> list[QuotaRecord]:
    """The campaign's quotas (of one category if given), by category then region code."""
    query = sa.select(tables.quotas).where(tables.quotas.c.campaign == campaign)
    if category is not None:
        query = query.where(tables.quotas.c.category == category)
    query = query.order_by(tables.quotas.c.category, tables.quotas.c.region_code)
    return [
        QuotaRecord(r.campaign, r.category, r.region_code, r.places, r.updated_at)
        for r in conn.execute(query)
    ]


def put_forward(
    conn: Connection,
    campaign: str,
    regions: Regions,
    *,
    not_places: Collection[str],
    category: str | None = None,
) -> Counter[tuple[str, str]]:
    """(category, quota holder) → the nominations that use a place (status not in
    `not_places`: drafts, withdrawn, rejected... as the campaign's lifecycle declares).

    A nomination counts against the quota of the most specific region that has one in its
    category and contains the nomination's region; with no such quota, against its own region
    (conversations.policy.quota_holder, the submission check's rule).
    """
    n = tables.nominations
    query = (
        sa.select(n.c.category, n.c.region_code, sa.func.count().label("count"))
        .where(n.c.campaign == campaign, n.c.status.not_in(list(not_places)))
        .group_by(n.c.category, n.c.region_code)
    )
    if category is not None:
        query = query.where(n.c.category == category)
    holders: dict[str, list[str]] = {}
    for q in quotas(conn, campaign, category):
        holders.setdefault(q.category, []).append(q.region_code)
    out: Counter[tuple[str, str]] = Counter()
    for row in conn.execute(query):
        # The submission check's own rule; it asks its reads only `contains`, which Regions has.
        holder = quota_holder(row.region_code, holders.get(row.category, []), regions)  # type: ignore[arg-type]
        out[(row.category, holder)] += row.count
    return out
