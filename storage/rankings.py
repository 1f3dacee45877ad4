"""The ranking (推荐排序) a clerk sets for their unit, or an office for its region, with /rank.

A scope is `unit:<id>` or `region:<code>:<level>`; position 1 is the best. Setting a ranking
replaces the scope's whole order for the campaign in the caller's transaction. The writer
decides which ids the caller may rank (storage.writer); this module only keeps the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from conversations.identity import Actor, Role
from storage.tables import rankings


def scope_of(actor: Actor) -> str | None:
    """The scope `actor` ranks in: their unit, or their office's region and level."""
    if actor.role is Role.CLERK and actor.unit_id is not None:
        return f"unit:{actor.unit_id}"
    if actor.role is Role.OFFICIAL and actor.region and actor.level is not None:
        return f"region:{actor.region}:{actor.level.value}"
    return None


def set_ranking(
    conn: Connection,
    *,
    campaign: str,
    scope: str,
    order: Sequence[int],
    user_id: int | None,
    now: datetime,
) -> None:
    """Replace the scope's order: `order[0]` gets position 1 (each id once: the key)."""
    conn.execute(
        sa.delete(rankings).where(rankings.c.campaign == campaign, rankings.c.scope == scope)
    )
    if order:
        conn.execute(
            sa.insert(rankings),
            [
                {
                    "campaign": campaign,
                    "scope": scope,
                    "nomination_id": nomination_id,
                    "position": position,
                    "set_by": user_id,
                    "set_at": now,
                }
                for position, nomination_id in enumerate(order, 1)
            ],
        )


def ranking(conn: Connection, *, campaign: str, scope: str) -> dict[int, int]:
    """nomination id -> position (1 is the best) in the scope's ranking."""
    rows = conn.execute(
        sa.select(rankings.c.nomination_id, rankings.c.position).where(
            rankings.c.campaign == campaign, rankings.c.scope == scope
        )
    )
    return {int(n): int(p) for n, p in rows}


__all__ = ["ranking", "scope_of", "set_ranking"]
