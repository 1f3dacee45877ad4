"""Who is bound to what, and taking a binding away (`awardbot member list|remove`, issue 11).

A member is a chat identity (`users`, one per channel and platform id) with a current role
binding (`memberships`, made by `storage.invites.bind`). `remove_member` takes one binding away
in the caller's transaction and leaves the identity an applicant:

- its pending notices in the outbox are cancelled (`failed`, with CANCELLED: kept where an
  operator sees them, never sent); a step's own replies are left to go out, and a notice some
  worker is sending at that moment cannot be called back (`Removed.in_flight` counts them);
- its pending reminders are skipped with `storage.reminders.UNBOUND`, and its reminder settings
  go with the binding, so the next re-plan plans nothing for it; a later bind plans them again;
- the removal is audited (`audit_log`, action `member_remove`, role `admin`): who removed it
  (the operator), when, why, whose binding it was and what was cancelled. The removed user is
  named in the sealed detail (`subject`), not in `user_id`, which is always the actor.

Every function works on a `Connection` inside the caller's transaction and commits nothing.
`MemberError` is for the admin: one line, Chinese first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from conversations.identity import Level, Role
from conversations.keys import Channel
from conversations.validators import ValidationError, parse_uscc
from storage import nominations as noms
from storage.crypto import Sealer
from storage.outbox import OutboxStatus
from storage.regions import Regions
from storage.reminders import UNBOUND, ReminderStatus
from storage.tables import (
    invites,
    memberships,
    outbox,
    reminder_prefs,
    reminders,
    require_aware,
    units,
    users,
)

REMOVE_ACTION = "member_remove"  # the audit row's action
CANCELLED = (
    "已取消：管理员解除了该用户的绑定，不再发送 "
    "(cancelled: an admin removed the user's binding; not sent)"
)
REPLY_KIND = "reply"  # outbox rows that answer the user's own message (bot.runtime)


class MemberError(ValueError):
    """An admin request this module refuses (nobody by that id, not bound); one line."""


@dataclass(frozen=True, slots=True)
class Member:
    """A chat identity and its current binding."""

    user_id: int
    channel: str
    external_id: str  # the platform's id: personal, shown masked (bot.admin.shown_identity)
    role: Role
    region_code: str
    level: Level | None
    unit_id: int | None
    unit_name: str | None
    unit_uscc: str | None
    bound_at: datetime
    invite_id: int
    invite_hint: str


@dataclass(frozen=True, slots=True)
class Identity:
    """A chat identity that has talked to the bot, bound or not."""

    user_id: int
    channel: str
    external_id: str


@dataclass(frozen=True, slots=True)
class Removed:
    """What `remove_member` did."""

    member: Member
    notices: int  # pending outbox notices cancelled
    reminders: int  # pending reminders skipped
    in_flight: int  # notices being sent at that moment: not called back
    audit_id: int


def _query() -> sa.Select[Any]:
    return (
        sa.select(
            memberships,
            users.c.channel,
            users.c.external_id,
            units.c.name.label("unit_title"),
            units.c.uscc.label("unit_uscc"),
            invites.c.code_hint,
        )
        .join(users, users.c.id == memberships.c.user_id)
        .join(units, units.c.id == memberships.c.unit_id, isouter=True)
        .join(invites, invites.c.id == memberships.c.invite_id)
    )


def _member(row: sa.Row[Any]) -> Member:
    m = row._mapping
    return Member(
        user_id=m["user_id"],
        channel=m["channel"],
        external_id=m["external_id"],
        role=Role(m["role"]),
        region_code=m["region_code"],
        level=None if m["level"] is None else Level(m["level"]),
        unit_id=m["unit_id"],
        unit_name=m["unit_title"],
        unit_uscc=m["unit_uscc"],
        bound_at=m["bound_at"],
        invite_id=m["invite_id"],
        invite_hint=m["code_hint"],
    )


def unit_ids(conn: Connection, unit: str) -> list[int]:
    """The units `unit` names: a unified social credit code, a unit number (单位编号, as
    /whoami shows it) or a part of the name. MemberError when none does."""
    text = unit.strip()
    found: list[int] = []
    if text:
        try:
            where = units.c.uscc == parse_uscc(text)
        except ValidationError:
            where = (
                units.c.id == int(text)
                if text.isdigit() and len(text) <= 9  # an INTEGER column
                else units.c.name.contains(text, autoescape=True)
            )
        found = list(
            conn.execute(sa.select(units.c.id).where(where).order_by(units.c.id)).scalars()
        )
    if not found:
        raise MemberError(
            f"--unit: 没有单位 {unit!r}，请写统一社会信用代码、单位编号或单位名称的一部分 "
            f"(no unit {unit!r}: give its USCC, number or part of its name)"
        )
    return found


def members(
    conn: Connection,
    regions: Regions,
    *,
    region: str | None = None,
    unit: str | None = None,
    role: Role | None = None,
) -> list[Member]:
    """Current bindings, by region code, role and time of binding; only those in `region`
    (itself and the regions inside it), of `unit` (see `unit_ids`) or with `role` if given."""
    query = _query().order_by(
        memberships.c.region_code, memberships.c.role, memberships.c.bound_at, users.c.id
    )
    if unit is not None:
        query = query.where(memberships.c.unit_id.in_(unit_ids(conn, unit)))
    if role is not None:
        query = query.where(memberships.c.role == role.value)
    found = [_member(row) for row in conn.execute(query)]
    if region is not None:
        found = [m for m in found if regions.contains(region, m.region_code)]
    return found


def member(conn: Connection, user_id: int) -> Member | None:
    """The user's current binding, None when they have none."""
    row = conn.execute(_query().where(memberships.c.user_id == user_id)).one_or_none()
    return None if row is None else _member(row)


def identities(conn: Connection, who: str) -> list[Identity]:
    """The chat identities `who` names: `CHANNEL:ID` (one), or a bare platform ID (one per
    channel it is known on), as `awardbot reminders` takes them."""
    channel, sep, external = who.partition(":")
    query = sa.select(users.c.id, users.c.channel, users.c.external_id)
    if sep and channel in {c.value for c in Channel}:
        query = query.where(users.c.channel == channel, users.c.external_id == external)
    else:
        query = query.where(users.c.external_id == who)
    return [Identity(r.id, r.channel, r.external_id) for r in conn.execute(query.order_by("id"))]


def identity(conn: Connection, user_id: int) -> Identity | None:
    row = conn.execute(
        sa.select(users.c.id, users.c.channel, users.c.external_id).where(users.c.id == user_id)
    ).one_or_none()
    return None if row is None else Identity(row.id, row.channel, row.external_id)


def remove_member(
    conn: Connection,
    sealer: Sealer,
    user_id: int,
    *,
    reason: str,
    operator: str,
    now: datetime,
) -> Removed:
    """Take the user's binding away, cancel what waits for them and audit it (module
    docstring). MemberError when they have no binding (nothing is written then)."""
    require_aware(now)
    reason = " ".join(reason.split())
    if not reason:
        raise MemberError("--reason: 请写明解除绑定的原因 (give the reason for the removal)")
    # The user's row first, as `bind` locks it: a bind and a removal of one user queue.
    if (
        conn.execute(
            sa.select(users.c.id).where(users.c.id == user_id).with_for_update()
        ).scalar_one_or_none()
        is None
    ):
        raise MemberError(f"没有编号为 {user_id} 的用户 (no user {user_id})")
    found = member(conn, user_id)
    if found is None:
        raise MemberError(f"用户 {user_id} 没有绑定身份 (user {user_id} has no binding)")
    conn.execute(sa.delete(memberships).where(memberships.c.user_id == user_id))
    conn.execute(sa.delete(reminder_prefs).where(reminder_prefs.c.user_id == user_id))
    theirs = [
        outbox.c.channel == found.channel,
        outbox.c.recipient_id == found.external_id,
        outbox.c.kind != REPLY_KIND,
    ]
    notices = conn.execute(
        sa.update(outbox)
        .where(*theirs, outbox.c.status == OutboxStatus.PENDING.value)
        .values(status=OutboxStatus.FAILED.value, last_error=CANCELLED)
    ).rowcount
    in_flight = int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(*theirs, outbox.c.status == OutboxStatus.SENDING.value)
        ).scalar_one()
    )
    skipped = conn.execute(
        sa.update(reminders)
        .where(
            reminders.c.user_id == user_id,
            reminders.c.status == ReminderStatus.PENDING.value,
        )
        .values(status=ReminderStatus.SKIPPED.value, reason=UNBOUND, settled_at=now)
    ).rowcount
    audit_id = noms.audit(
        conn,
        sealer,
        user_id=None,  # the actor: an admin on the command line, who has no chat identity
        role=Role.ADMIN.value,
        action=REMOVE_ACTION,
        allowed=True,
        now=now,
        detail={
            "subject": user_id,
            "identity": f"{found.channel}:{found.external_id}",
            "binding": {
                "role": found.role.value,
                "region": found.region_code,
                "level": None if found.level is None else found.level.value,
                "unit_id": found.unit_id,
                "unit": found.unit_name,
                "invite_id": found.invite_id,
                "bound_at": found.bound_at.isoformat(),
            },
            "reason": reason,
            "operator": operator,
            "cancelled": {"notices": notices, "reminders": skipped, "in_flight": in_flight},
        },
    )
    return Removed(found, notices, skipped, in_flight, audit_id)


__all__ = [
    "CANCELLED",
    "REMOVE_ACTION",
    "Identity",
    "Member",
    "MemberError",
    "Removed",
    "identities",
    "identity",
    "member",
    "members",
    "remove_member",
    "unit_ids",
]
