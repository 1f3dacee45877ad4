"""Regional quotas: the nominations a region may send per category (附件3, DESIGN §2.3).

Works on a `Connection` inside the caller's transaction and commits nothing itself; the table
is `storage.tables.quotas`. `QuotaError` is for the admin (one line, Chinese first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage import tables
from storage.regions import Region
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
