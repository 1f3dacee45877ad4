"""The audit trail as an operator reads it (`awardbot audit`, issue 11): each row with who
acted — their chat identity and the binding they held at that moment — and the nomination.

Rows are written by `storage.nominations.audit` (moves, reads of full personal data, opened
attachments, refused attempts: the writer's `Audit` effects) and by
`storage.members.remove_member`. An audit row keeps the actor's role; the unit and region of
that role are the binding in force at the row's time, rebuilt from the invitations the user
bound (`invites.used_by_user_id`, `used_at`) and the removals of their bindings — a user bound
elsewhere since is shown as they were then.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.crypto import Sealer
from storage.members import REMOVE_ACTION
from storage.tables import audit_log, invites, nominations, units, users


@dataclass(frozen=True, slots=True)
class Held:
    """A binding as it was at one moment."""

    role: str
    region_code: str
    level: str | None
    unit_name: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    user_id: int | None  # who acted; None for an admin on the command line
    channel: str | None
    external_id: str | None
    role: str  # as recorded
    held: Held | None  # the actor's binding at `at` (None: an applicant, an admin)
    action: str
    allowed: bool
    nomination_id: int | None
    tracking_code: str | None
    campaign: str | None
    category: str | None
    from_status: str | None
    to_status: str | None
    detail: Mapping[str, Any] | None


def trail(
    conn: Connection,
    sealer: Sealer,
    *,
    nomination_id: int | None = None,
    user_ids: Collection[int] | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """Audit rows in the order written: of one nomination, or acted by `user_ids` — together
    with the removals of their bindings, which an admin made — or every row."""
    query = (
        sa.select(
            audit_log,
            users.c.channel,
            users.c.external_id,
            nominations.c.tracking_code,
            nominations.c.campaign,
            nominations.c.category,
        )
        .join(users, users.c.id == audit_log.c.user_id, isouter=True)
        .join(nominations, nominations.c.id == audit_log.c.nomination_id, isouter=True)
        .order_by(audit_log.c.id)
    )
    if nomination_id is not None:
        query = query.where(audit_log.c.nomination_id == nomination_id)
    if user_ids is not None:
        ids = list(user_ids)
        query = query.where(
            sa.or_(audit_log.c.user_id.in_(ids), audit_log.c.action == REMOVE_ACTION)
        )
    if action is not None:
        query = query.where(audit_log.c.action == action)
    rows = []
    for row in conn.execute(query).mappings():
        detail = None if row["detail"] is None else json.loads(sealer.open(row["detail"]))
        if (
            user_ids is not None
            and row["user_id"] not in user_ids
            and (detail or {}).get("subject") not in user_ids
        ):
            continue  # another user's removal
        rows.append((row, detail))
    history = _history(conn, sealer, {r["user_id"] for r, _ in rows if r["user_id"] is not None})
    out = []
    for row, detail in rows:
        user = row["user_id"]
        out.append(
            AuditEntry(
                id=row["id"], at=row["at"], user_id=user, channel=row["channel"],
                external_id=row["external_id"], role=row["role"],
                held=None if user is None else _held_at(history.get(user, ([], [])), row["at"]),
                action=row["action"], allowed=row["allowed"],
                nomination_id=row["nomination_id"], tracking_code=row["tracking_code"],
                campaign=row["campaign"], category=row["category"],
                from_status=row["from_status"], to_status=row["to_status"], detail=detail,
            )
        )  # fmt: skip
    return out


_History = tuple[list[datetime], list[Held | None]]


def _history(conn: Connection, sealer: Sealer, user_ids: set[int]) -> dict[int, _History]:
    """Per user, the times their binding changed and what it became (None: removed)."""
    if not user_ids:
        return {}
    events: dict[int, list[tuple[datetime, int, Held | None]]] = {}
    bound = (
        sa.select(invites, units.c.name.label("unit_title"))
        .join(units, units.c.id == invites.c.unit_id, isouter=True)
        .where(invites.c.used_by_user_id.in_(sorted(user_ids)))
    )
    for r in conn.execute(bound).mappings():
        held = Held(r["role"], r["region_code"], r["level"], r["unit_title"])
        events.setdefault(r["used_by_user_id"], []).append((r["used_at"], 0, held))
    removals = sa.select(audit_log.c.at, audit_log.c.detail).where(
        audit_log.c.action == REMOVE_ACTION
    )
    for at, sealed in conn.execute(removals):
        subject = json.loads(sealer.open(sealed)).get("subject") if sealed else None
        if subject in user_ids:
            events.setdefault(subject, []).append((at, 1, None))
    out: dict[int, _History] = {}
    for user, changes in events.items():
        changes.sort(key=lambda e: (e[0], e[1]))
        out[user] = ([c[0] for c in changes], [c[2] for c in changes])
    return out


def _held_at(history: _History, at: datetime) -> Held | None:
    times, held = history
    i = bisect.bisect_right(times, at)
    return held[i - 1] if i else None


__all__ = ["AuditEntry", "Held", "trail"]
