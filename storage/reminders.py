"""Reminders at rest: the plan as stored, what users asked for, windows admins moved, and the
hand-off of due reminders to the outbox (DESIGN §4; the planner is conversations.reminders,
re-planning from the state is storage.planning).

- `apply_plan`: a pending row the new plan no longer yields is superseded (skipped, with the
  reason) — nothing stale is ever sent; a row it still yields is kept as it is; a new key is
  inserted. A key already sent is never sent again (its key is the outbox's idempotency key).
- `hand_off_due(store, now=…)`: one tick. Claims due pending rows (PostgreSQL: `FOR UPDATE
  SKIP LOCKED`; SQLite: the transaction's `BEGIN IMMEDIATE`) and, in the same transaction,
  either enqueues each in the outbox (kind window|deadline|digest, under the reminder's key) and
  marks it sent, or skips it with the reason: its deadline passed while nobody was running,
  the user turned it off since, a digest with nothing to say. A row due in quiet hours (a
  restart at 23:00) waits until 08:00 if its deadline allows. The outbox then delivers it once,
  with its channel's limits and retries.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from conversations.campaign import Campaign, Window
from conversations.effects import Scope
from conversations.identity import Role
from conversations.reminders import (
    ALL_KINDS,
    KIND_DEADLINE,
    KIND_DIGEST,
    KIND_WINDOW,
    REMINDER_KINDS,
    SHANGHAI,
    Plan,
    kind_of,
    out_of_quiet_hours,
)
from storage import outbox
from storage.crypto import Sealer
from storage.prepared import Statements
from storage.store import Store
from storage.tables import (
    campaign_windows,
    memberships,
    reminder_prefs,
    reminders,
    users,
)
from storage.tables import outbox as outbox_rows

EVERY_CAMPAIGN = "*"

SUPERSEDED = (
    "已重新计划，不再发送 (superseded by a re-plan: the state it was planned from changed)"
)
TURNED_OFF = "用户已退订该类提醒 (the user turned these reminders off)"
NOTHING_TO_SAY = "今日无事项，未发送汇总 (nothing to report today: digest not sent)"
NO_USER = "用户已不存在 (the user no longer exists)"
# `awardbot member remove` (storage.members): never sent to the identity it unbound; planned
# again, like a superseded one, if a new binding calls for it.
UNBOUND = "管理员已解除该用户的绑定，不再发送 (an admin removed the user's binding; not sent)"


def missed(deadline: dt.datetime) -> str:
    shown = deadline.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return (
        f"错过：截止 {shown} 前机器人未运行，已无意义，未发送 "
        f"(missed: the bot was not running before its deadline {shown}; not sent)"
    )


class ReminderStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"  # handed to the outbox (which delivers it once)
    SKIPPED = "skipped"  # never sent; `reason` says why


# ----- windows an admin moved -----------------------------------------------------------------


_MOVED = Statements(
    {
        "moved": lambda _: sa.select(
            campaign_windows.c.window_key,
            campaign_windows.c.start,
            campaign_windows.c.end,
            campaign_windows.c.version,
        ).where(campaign_windows.c.campaign == sa.bindparam("campaign"))
    }
)


def windows_in_force(
    conn: Connection, campaign: Campaign
) -> tuple[tuple[Window, ...], dict[str, int]]:
    """The campaign's windows with an admin's moves applied, and each window's version."""
    # Every conversation step of a campaign reads this: compiled once (storage.prepared).
    moved = {
        key: (start, end, version)
        for key, start, end, version in _MOVED(conn, "moved").rows(conn, campaign=campaign.id)
    }
    windows = []
    versions: dict[str, int] = {}
    for w in campaign.windows:
        row = moved.get(w.key)
        if row is None:
            windows.append(w)
            versions[w.key] = 0
        else:
            windows.append(w.model_copy(update={"start": row[0], "end": row[1]}))
            versions[w.key] = row[2]
    return tuple(windows), versions


def move_window(
    conn: Connection,
    campaign: Campaign,
    key: str,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime,
) -> int:
    """Move a window (the caller re-plans the campaign in the same transaction); its version."""
    if key not in {w.key for w in campaign.windows}:
        raise KeyError(key)
    if end < start:
        raise ValueError("end before start")
    current = conn.execute(
        sa.select(campaign_windows.c.version).where(
            campaign_windows.c.campaign == campaign.id, campaign_windows.c.window_key == key
        )
    ).scalar_one_or_none()
    if current is None:
        conn.execute(
            sa.insert(campaign_windows).values(
                campaign=campaign.id, window_key=key, start=start, end=end, version=1,
                updated_at=now,
            )
        )  # fmt: skip
        return 1
    conn.execute(
        sa.update(campaign_windows)
        .where(campaign_windows.c.campaign == campaign.id, campaign_windows.c.window_key == key)
        .values(start=start, end=end, version=current + 1, updated_at=now)
    )
    return int(current) + 1


# ----- what users asked for -------------------------------------------------------------------


def set_pref(
    conn: Connection, user_id: int, campaign: str | None, kind: str, enabled: bool, *,
    now: dt.datetime,
) -> None:  # fmt: skip
    if kind not in (*REMINDER_KINDS, ALL_KINDS):
        raise ValueError(f"unknown reminder kind {kind!r}")
    where = campaign or EVERY_CAMPAIGN
    values = {"user_id": user_id, "campaign": where, "kind": kind, "enabled": enabled,
              "updated_at": now}  # fmt: skip
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(reminder_prefs)
        .values(values)
        .on_conflict_do_update(
            index_elements=["user_id", "campaign", "kind"],
            set_={"enabled": enabled, "updated_at": now},
        )
    )
    # The newest word wins: what was said before for a part of what this covers goes ("all"
    # replaces each kind; every campaign replaces each campaign).
    narrower = [reminder_prefs.c.user_id == user_id]
    if where != EVERY_CAMPAIGN:
        narrower.append(reminder_prefs.c.campaign == where)
    if kind != ALL_KINDS:
        narrower.append(reminder_prefs.c.kind == kind)
    conn.execute(
        sa.delete(reminder_prefs).where(
            *narrower,
            sa.not_(sa.and_(reminder_prefs.c.campaign == where, reminder_prefs.c.kind == kind)),
        )
    )


def _default(role: str | None, kind: str) -> bool:
    """What a user gets without having said: clerks windows and deadlines, officials deadline
    alerts and the digest, applicants nothing until they ask."""
    if role == Role.CLERK.value:
        return kind in (KIND_WINDOW, KIND_DEADLINE)
    if role == Role.OFFICIAL.value:
        return kind in (KIND_DEADLINE, KIND_DIGEST)
    return False


def wanted(
    conn: Connection, campaign: str, user_ids: Iterable[int] | None = None
) -> dict[int, dict[str, bool]]:
    """Per user (every user with a membership or a preference, or those given): kind → on."""
    only = sorted(set(user_ids)) if user_ids is not None else None
    members = sa.select(memberships.c.user_id, memberships.c.role)
    query = sa.select(reminder_prefs).where(
        reminder_prefs.c.campaign.in_([campaign, EVERY_CAMPAIGN])
    )
    if only is not None:  # a few users (a step's caller, a tick's batch): read only theirs
        members = members.where(memberships.c.user_id.in_(only))
        query = query.where(reminder_prefs.c.user_id.in_(only))
    roles = {r.user_id: r.role for r in conn.execute(members)}
    prefs: dict[int, dict[tuple[str, str], bool]] = {}
    for p in conn.execute(query):
        prefs.setdefault(p.user_id, {})[(p.campaign, p.kind)] = p.enabled
    ids = set(only) if only is not None else set(roles) | set(prefs)
    out: dict[int, dict[str, bool]] = {}
    for user in ids:
        said = prefs.get(user, {})
        out[user] = {}
        for kind in REMINDER_KINDS:
            for where in ((campaign, kind), (campaign, ALL_KINDS), (EVERY_CAMPAIGN, kind),
                          (EVERY_CAMPAIGN, ALL_KINDS)):  # fmt: skip
                if where in said:
                    out[user][kind] = said[where]
                    break
            else:
                out[user][kind] = _default(roles.get(user), kind)
    return out


# ----- storing a plan ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanChange:
    added: int = 0
    kept: int = 0
    superseded: int = 0
    unplanned: int = 0
    missed: int = 0  # pending rows whose deadline passed before anyone sent them


def _scoped(scope: Scope) -> list[sa.ColumnElement[bool]]:
    where = [reminders.c.campaign == scope.campaign]
    if scope.nomination is not None:
        where.append(reminders.c.nomination_id == scope.nomination)
    if scope.user is not None:
        where.append(reminders.c.user_id == scope.user)
    return where


def _text(title: str, body: str, when: str | None, kind: str) -> str:
    """A notifications.notice.Notice as JSON (the outbox row's text for this kind)."""
    return json.dumps(
        {"kind": kind, "title": title, "body": body, "when": when}, ensure_ascii=False
    )


def apply_plan(
    conn: Connection,
    sealer: Sealer,
    scope: Scope,
    new: Plan,
    *,
    now: dt.datetime,
    wants: Callable[[int, str], bool] | None = None,
) -> PlanChange:
    """Store `new` as the plan within `scope` (see the module docstring). `wants(user, kind)`
    tells a reminder dropped because its user turned that kind off (said so in its reason)."""
    found = conn.execute(
        sa.select(
            reminders.c.key,
            reminders.c.id,
            reminders.c.deadline_at,
            reminders.c.user_id,
            reminders.c.kind,
        ).where(reminders.c.status == ReminderStatus.PENDING, *_scoped(scope))
    ).all()
    pending = {r.key: r.id for r in found}
    wanted_keys = {r.key for r in new.reminders}
    stale: dict[str, list[int]] = {}
    for r in found:
        if r.key in wanted_keys:
            continue
        # Not planned any more: because its time is over (nobody ran before its deadline), or
        # because what it was planned from changed.
        over = r.deadline_at is not None and r.deadline_at <= now
        if over:
            reason = missed(r.deadline_at)
        elif wants is not None and not wants(r.user_id, r.kind):
            reason = TURNED_OFF
        else:
            reason = SUPERSEDED
        stale.setdefault(reason, []).append(r.id)
    for reason, ids in stale.items():
        for chunk in _chunks(ids):
            conn.execute(
                sa.update(reminders)
                .where(reminders.c.id.in_(chunk))
                .values(status=ReminderStatus.SKIPPED, reason=reason, settled_at=now)
            )
    superseded = len(stale.get(SUPERSEDED, [])) + len(stale.get(TURNED_OFF, []))
    dropped = sum(len(ids) for ids in stale.values())
    known: dict[str, Any] = {}
    for chunk in _chunks(sorted(wanted_keys - set(pending))):
        for row in conn.execute(
            sa.select(reminders.c.key, reminders.c.status, reminders.c.reason).where(
                reminders.c.key.in_(chunk)
            )
        ):
            known[row.key] = row
    added = 0
    rows = []
    for r in new.reminders:
        if r.key in pending:
            continue
        row = known.get(r.key)
        values = {
            "due_at": r.due,
            "deadline_at": r.deadline,
            "status": ReminderStatus.PENDING.value,
            "reason": None,
            "text": sealer.seal(_text(r.title, r.body, r.when, r.kind)),
            "settled_at": None,
        }
        if row is None:
            rows.append({"key": r.key, "campaign": r.campaign, "topic": r.topic.value,
                         "kind": r.kind, "user_id": r.user_id, "nomination_id": r.nomination,
                         "created_at": now, **values})  # fmt: skip
            added += 1
        elif row.status == ReminderStatus.SKIPPED and row.reason in (
            SUPERSEDED, TURNED_OFF, UNBOUND
        ):  # fmt: skip
            # Never sent, and the state calls for it again (a window moved back, turned on,
            # the user bound again).
            conn.execute(sa.update(reminders).where(reminders.c.key == r.key).values(values))
            added += 1
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for chunk in _chunks(rows):
        # Another worker's re-plan may store the same key at the same moment (the leader's
        # re-plan of every campaign beside a step's): the key is the reminder, once is enough.
        conn.execute(insert(reminders).on_conflict_do_nothing(index_elements=["key"]), chunk)
    for u in new.unplanned:
        existing = conn.execute(
            sa.select(reminders.c.id).where(reminders.c.key == u.key)
        ).scalar_one_or_none()
        values = {"status": ReminderStatus.SKIPPED.value, "reason": u.reason, "settled_at": now}
        if existing is None:
            conn.execute(
                sa.insert(reminders).values(
                    key=u.key, campaign=u.campaign, topic=u.topic.value, kind=kind_of(u.topic),
                    user_id=u.user_id, nomination_id=u.nomination, due_at=now, deadline_at=None,
                    text=sealer.seal(_text("", "", None, kind_of(u.topic))), created_at=now,
                    **values,
                )
            )  # fmt: skip
        else:
            conn.execute(sa.update(reminders).where(reminders.c.id == existing).values(values))
    return PlanChange(
        added, len(pending) - dropped, superseded, len(new.unplanned), dropped - superseded
    )


def _chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ----- handing due reminders to the outbox -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandOff:
    sent: int = 0
    skipped: int = 0
    deferred: int = 0  # due in quiet hours: moved to 08:00
    reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.sent + self.skipped + self.deferred


# The digest's text for (connection, user, campaign, today), or None: nothing to say
# (storage.planning.Digests).
DigestBody = Callable[[Connection, int, str, dt.date], str | None]


def hand_off_due(
    store: Store,
    *,
    now: dt.datetime,
    digest: DigestBody,
    limit: int = 500,
) -> HandOff:
    """One tick: the due pending reminders, each sent to the outbox or skipped (see above)."""
    sent = skipped = deferred = 0
    reasons: dict[str, int] = {}
    with store.transaction() as conn:
        rows = conn.execute(
            sa.select(reminders)
            .where(reminders.c.status == ReminderStatus.PENDING, reminders.c.due_at <= now)
            .order_by(reminders.c.due_at, reminders.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return HandOff()
        people = {
            u.id: u
            for u in conn.execute(
                sa.select(users.c.id, users.c.channel, users.c.external_id).where(
                    users.c.id.in_({r.user_id for r in rows})
                )
            )
        }
        prefs: dict[str, dict[int, dict[str, bool]]] = {}
        messages = []
        settled: dict[str, list[int]] = {}

        def skip(row: Any, reason: str) -> None:
            settled.setdefault(reason, []).append(row.id)

        for row in rows:
            if row.deadline_at is not None and now > row.deadline_at:
                skip(row, missed(row.deadline_at))
                continue
            later = out_of_quiet_hours(now)
            if later != now:
                if row.deadline_at is not None and later > row.deadline_at:
                    skip(row, missed(row.deadline_at))
                else:
                    conn.execute(
                        sa.update(reminders).where(reminders.c.id == row.id).values(due_at=later)
                    )
                    deferred += 1
                continue
            if row.campaign not in prefs:
                prefs[row.campaign] = wanted(conn, row.campaign, {r.user_id for r in rows})
            if not prefs[row.campaign].get(row.user_id, {}).get(row.kind, False):
                skip(row, TURNED_OFF)
                continue
            person = people.get(row.user_id)
            if person is None:
                skip(row, NO_USER)
                continue
            text = store.sealer.open(row.text)
            if row.kind == KIND_DIGEST:
                body = digest(conn, row.user_id, row.campaign, now.astimezone(SHANGHAI).date())
                if body is None:
                    skip(row, NOTHING_TO_SAY)
                    continue
                text = json.dumps({**json.loads(text), "body": body}, ensure_ascii=False)
            messages.append(
                outbox.OutboxMessage(
                    idempotency_key=f"reminder:{row.key}",
                    channel=person.channel,
                    recipient_id=person.external_id,
                    text=text,
                    kind=row.kind,
                )
            )
            settled.setdefault("", []).append(row.id)
            sent += 1
        outbox.enqueue(conn, store.sealer, messages, now=now)
        for reason, ids in settled.items():
            status = ReminderStatus.SENT if reason == "" else ReminderStatus.SKIPPED
            conn.execute(
                sa.update(reminders)
                .where(reminders.c.id.in_(ids), reminders.c.status == ReminderStatus.PENDING)
                .values(status=status, reason=reason or None, settled_at=now)
            )
            if reason:
                skipped += len(ids)
                reasons[reason] = len(ids)
    return HandOff(sent, skipped, deferred, reasons)


# ----- reading the plan back ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReminderEntry:
    """A stored reminder as operators and `/reminders` see it (its text opened)."""

    id: int
    key: str
    campaign: str
    topic: str
    kind: str
    user_id: int
    channel: str
    recipient_id: str
    nomination_id: int | None
    due_at: dt.datetime
    deadline_at: dt.datetime | None
    status: str  # pending | sent | skipped | failed (sent, and the outbox gave up)
    reason: str | None
    title: str
    body: str = field(repr=False)


def entries(
    conn: Connection,
    sealer: Sealer,
    *,
    status: str | None = None,
    user_id: int | None = None,
    campaign: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int | None = None,
) -> list[ReminderEntry]:
    """Stored reminders, in due order; `status` `failed` means sent but not delivered."""
    query = (
        sa.select(
            reminders,
            users.c.channel,
            users.c.external_id,
            outbox_rows.c.status.label("delivery"),
            outbox_rows.c.last_error.label("delivery_error"),
        )  # fmt: skip
        .join(users, users.c.id == reminders.c.user_id)
        .outerjoin(
            outbox_rows,
            outbox_rows.c.idempotency_key == sa.literal("reminder:") + reminders.c.key,
        )
        .order_by(reminders.c.due_at, reminders.c.id)
    )
    if status == "failed":
        query = query.where(outbox_rows.c.status == outbox.OutboxStatus.FAILED)
    elif status == ReminderStatus.SENT:
        query = query.where(
            reminders.c.status == status,
            sa.or_(outbox_rows.c.status.is_(None),
                   outbox_rows.c.status != outbox.OutboxStatus.FAILED),
        )  # fmt: skip
    elif status is not None:
        query = query.where(reminders.c.status == status)
    if user_id is not None:
        query = query.where(reminders.c.user_id == user_id)
    if campaign is not None:
        query = query.where(reminders.c.campaign == campaign)
    if since is not None:
        query = query.where(reminders.c.due_at >= since)
    if until is not None:
        query = query.where(reminders.c.due_at < until)
    if limit is not None:
        query = query.limit(limit)
    out = []
    for row in conn.execute(query):
        data = json.loads(sealer.open(row.text))
        failed = row.delivery == outbox.OutboxStatus.FAILED
        out.append(
            ReminderEntry(
                id=row.id, key=row.key, campaign=row.campaign, topic=row.topic, kind=row.kind,
                user_id=row.user_id, channel=row.channel, recipient_id=row.external_id,
                nomination_id=row.nomination_id, due_at=row.due_at, deadline_at=row.deadline_at,
                status="failed" if failed else row.status,
                reason=row.delivery_error if failed else row.reason,
                title=data.get("title", ""), body=data.get("body", ""),
            )
        )  # fmt: skip
    return out


__all__ = [
    "EVERY_CAMPAIGN",
    "HandOff",
    "PlanChange",
    "ReminderEntry",
    "ReminderStatus",
    "apply_plan",
    "entries",
    "hand_off_due",
    "move_window",
    "set_pref",
    "wanted",
    "windows_in_force",
]
