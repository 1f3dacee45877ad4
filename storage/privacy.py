"""Personal data at rest (PIPL, issue 11): the nominee's consent, `/forget`, and the purge.

- **Consent.** `nominee_consents` holds one row per nomination whose nominee consented in chat
  (conversations.consent); `set_consent` writes or deletes it and the audit row in the caller's
  transaction (the writer's, after its re-check).
- **Forget.** `forget` deletes one user's self-check results, reminder settings, tracking
  subscriptions and the reminders already settled whose time is over (pending ones are left to
  the writer's re-plan, which skips them; a settled one still in its time would be planned and
  sent again if its row went).
- **Purge.** `purge` deletes, once the campaign's retention has run out
  (conversations.consent.retention_ends: the end of its last stage + AWARDBOT_RETENTION_DAYS),
  its drafts that never left the unit (with their files, consents, subscriptions and
  reminders), every self-check result, the conversations still holding a self-check or filing
  of it, its reminder settings, every tracking subscription to its nominations and its
  reminders whose time is over. Submitted nominations and the whole audit trail are kept: the
  notice's 谁推荐、谁负责 needs them. A dry run counts and deletes nothing. The purge is audited.

No user-facing text here: the CLI (bot.privacy_cli) and the core word the results.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from conversations.campaign import Campaign, Catalog
from conversations.consent import last_stage, retention_ends, unsubmitted_statuses
from conversations.lifecycle import SUBMIT_ACTIONS
from conversations.reads import MyDataView
from storage import nominations as noms
from storage.crypto import Sealer, SealError
from storage.files import FileStore
from storage.reminders import windows_in_force
from storage.store import Store
from storage.tables import (
    attachments,
    audit_log,
    conversation_sessions,
    nominations,
    nominee_consents,
    reminder_prefs,
    reminders,
    selfcheck_results,
    subscriptions,
)

CONSENT_GIVEN = "nominee_consent"  # audit actions
CONSENT_REVOKED = "nominee_consent_revoked"
PURGE = "privacy_purge"
SYSTEM = "system"  # the audit role of the purge (the CLI's operator or the scheduler)


# ----- consent -----------------------------------------------------------------------------


def consent_at(conn: Connection, nomination_id: int) -> dt.datetime | None:
    """When the nominee consented in chat, None if they have not (or revoked it)."""
    at: dt.datetime | None = conn.execute(
        sa.select(nominee_consents.c.given_at).where(
            nominee_consents.c.nomination_id == nomination_id
        )
    ).scalar_one_or_none()
    return at


def set_consent(
    conn: Connection,
    sealer: Sealer,
    *,
    nomination_id: int,
    user_id: int,
    role: str,
    given: bool,
    now: dt.datetime,
) -> None:
    """Record (or revoke) the consent and audit it; the caller has re-checked it."""
    if given:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(nominee_consents)
            .values(nomination_id=nomination_id, user_id=user_id, given_at=now)
            .on_conflict_do_nothing(index_elements=["nomination_id"])
        )
    else:
        conn.execute(
            sa.delete(nominee_consents).where(nominee_consents.c.nomination_id == nomination_id)
        )
    noms.audit(
        conn,
        sealer,
        user_id=user_id,
        role=role,
        action=CONSENT_GIVEN if given else CONSENT_REVOKED,
        allowed=True,
        nomination_id=nomination_id,
        detail={"channel": "chat"},
        now=now,
    )


# ----- one person's own data (/forget) -----------------------------------------------------


def my_data(conn: Connection, user_id: int) -> MyDataView:
    def count(table: sa.Table) -> int:
        n: int = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.user_id == user_id)
        ).scalar_one()
        return n

    return MyDataView(
        selfchecks=count(selfcheck_results),
        reminder_settings=count(reminder_prefs),
        tracked=count(subscriptions),
    )


@dataclass(frozen=True, slots=True)
class Forgotten:
    selfchecks: int
    reminder_settings: int
    subscriptions: int
    reminders: int


def forget(conn: Connection, user_id: int, *, now: dt.datetime) -> Forgotten:
    """Delete one user's self-check results, reminder settings and subscriptions."""

    def delete(table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
        return conn.execute(sa.delete(table).where(table.c.user_id == user_id, *where)).rowcount

    return Forgotten(
        selfchecks=delete(selfcheck_results),
        reminder_settings=delete(reminder_prefs),
        subscriptions=delete(subscriptions),
        reminders=delete(reminders, *_over(now)),
    )


def _over(now: dt.datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """Reminders no re-plan can bring back: their deadline has passed (a plan drops a reminder
    due after its deadline), or they never had one."""
    return (sa.or_(reminders.c.deadline_at.is_(None), reminders.c.deadline_at <= now),)


# ----- the purge ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """What a purge deletes, by kind (the CLI prints them in this order)."""

    drafts: int = 0  # nominations that never left the unit
    attachments: int = 0  # their files
    selfchecks: int = 0  # completed self-check results
    sessions: int = 0  # conversations holding a self-check or a filing of the campaign
    reminder_settings: int = 0
    subscriptions: int = 0  # tracking subscriptions (/track)
    reminders: int = 0  # planned reminders whose time is over

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.items())


@dataclass(frozen=True, slots=True)
class PurgeReport:
    campaign: str
    last_stage: dt.date  # the end of the campaign's last stage
    due: dt.date  # the first day its data may be deleted
    counts: Counts  # deleted (or, not yet due or a dry run, what would be)
    deleted: bool  # whether anything was deleted (False: a dry run, or not due yet)


def retention(conn: Connection, campaign: Campaign, days: int) -> tuple[dt.date, dt.date]:
    """(the end of the campaign's last stage, the first day its data may go), with the
    windows as in force (an admin may have moved one)."""
    windows = windows_in_force(conn, campaign)[0]
    return last_stage(campaign, windows), retention_ends(campaign, windows, days)


def purge(
    store: Store,
    campaign: Campaign,
    *,
    days: int,
    now: dt.datetime,
    today: dt.date,
    files: FileStore | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Delete the campaign's personal data past retention (see the module docstring); one
    transaction. `today` is the local date; before the due day nothing is deleted and the
    counts say what would be. Files no attachment refers to any more are removed after the
    commit."""
    with store.transaction() as conn:
        ended, due = retention(conn, campaign, days)
        targets = _targets(conn, store.sealer, campaign, now)
        counts = targets.counts()
        delete = not dry_run and today >= due and counts.total > 0
        if delete:
            _delete(conn, targets)
            noms.audit(
                conn, store.sealer, user_id=None, role=SYSTEM, action=PURGE, allowed=True,
                detail={"campaign": campaign.id, "days": days, **dict(counts.items())},
                now=now,
            )  # fmt: skip
    if delete and files is not None:
        with store.reading() as conn:
            kept = set(
                conn.execute(
                    sa.select(attachments.c.file_ref).where(
                        attachments.c.file_ref.in_(sorted(targets.file_refs))
                    )
                ).scalars()
            )
        for name in sorted(targets.file_refs - kept):
            files.remove(name)
    return PurgeReport(campaign.id, ended, due, counts, delete)


def purge_due(
    store: Store,
    catalog: Catalog,
    *,
    days: int,
    now: dt.datetime,
    today: dt.date,
    files: FileStore | None = None,
) -> list[PurgeReport]:
    """The scheduler's daily round: purge every campaign whose retention has run out."""
    return [
        purge(store, campaign, days=days, now=now, today=today, files=files)
        for campaign in catalog
    ]


@dataclass(slots=True)
class _Targets:
    drafts: list[int]
    attachments: list[int]
    file_refs: set[str]
    selfchecks: list[int]
    sessions: list[tuple[int, int]]  # (user, version): deleted only if unchanged since read
    prefs: list[tuple[int, str, str]]
    subscriptions: list[tuple[int, int]]
    reminders: list[int]

    def counts(self) -> Counts:
        return Counts(
            drafts=len(self.drafts),
            attachments=len(self.attachments),
            selfchecks=len(self.selfchecks),
            sessions=len(self.sessions),
            reminder_settings=len(self.prefs),
            subscriptions=len(self.subscriptions),
            reminders=len(self.reminders),
        )


def _targets(conn: Connection, sealer: Sealer, campaign: Campaign, now: dt.datetime) -> _Targets:
    ids = list(
        conn.execute(
            sa.select(nominations.c.id).where(nominations.c.campaign == campaign.id)
        ).scalars()
    )
    drafts = _drafts(conn, campaign)
    files = conn.execute(
        sa.select(attachments.c.id, attachments.c.file_ref).where(
            attachments.c.nomination_id.in_(drafts)
        )
    ).all()
    subs = conn.execute(
        sa.select(subscriptions.c.user_id, subscriptions.c.nomination_id).where(
            subscriptions.c.nomination_id.in_(ids)
        )
    ).all()
    prefs = conn.execute(
        sa.select(reminder_prefs.c.user_id, reminder_prefs.c.campaign, reminder_prefs.c.kind)
        .where(reminder_prefs.c.campaign == campaign.id)
    ).all()  # fmt: skip
    planned = sa.select(reminders.c.id).where(
        reminders.c.campaign == campaign.id,
        sa.or_(*_over(now), reminders.c.nomination_id.in_(drafts)),
    )
    return _Targets(
        drafts=drafts,
        attachments=[f.id for f in files],
        file_refs={f.file_ref for f in files},
        selfchecks=list(
            conn.execute(
                sa.select(selfcheck_results.c.id).where(
                    selfcheck_results.c.campaign == campaign.id
                )
            ).scalars()
        ),
        sessions=list(_sessions(conn, sealer, campaign.id)),
        prefs=[(p.user_id, p.campaign, p.kind) for p in prefs],
        subscriptions=[(s.user_id, s.nomination_id) for s in subs],
        reminders=list(conn.execute(planned.order_by(reminders.c.id)).scalars()),
    )


def _drafts(conn: Connection, campaign: Campaign) -> list[int]:
    """The campaign's nominations that never left the unit: in a status of the unit's (or a
    final one only the unit reaches), with no submit move in the audit trail."""
    if campaign.lifecycle is None:
        return []
    statuses = sorted(unsubmitted_statuses(campaign.lifecycle))
    submitted = (
        sa.select(audit_log.c.nomination_id)
        .where(
            audit_log.c.allowed.is_(True),
            audit_log.c.action.in_(sorted(a.value for a in SUBMIT_ACTIONS)),
            audit_log.c.nomination_id.is_not(None),
        )
        .scalar_subquery()
    )
    return list(
        conn.execute(
            sa.select(nominations.c.id)
            .where(
                nominations.c.campaign == campaign.id,
                nominations.c.status.in_(statuses),
                nominations.c.id.not_in(submitted),
            )
            .order_by(nominations.c.id)
        ).scalars()
    )


def _sessions(conn: Connection, sealer: Sealer, campaign: str) -> Iterator[tuple[int, int]]:
    """Conversations whose state is about `campaign` (a self-check or a filing of it)."""
    rows = conn.execute(
        sa.select(
            conversation_sessions.c.user_id,
            conversation_sessions.c.version,
            conversation_sessions.c.state,
        )
    )
    for row in rows:
        try:
            state = json.loads(sealer.open(row.state))
        except (SealError, ValueError):
            continue  # a state this key cannot open is not this purge's to judge
        if campaign in _campaigns_of(state):
            yield row.user_id, row.version


def _campaigns_of(state: Any) -> set[str]:
    """The campaigns a saved conversation is about, under any review listing above it."""
    found: set[str] = set()
    while isinstance(state, dict):
        for value in (state.get("campaign"), (state.get("check") or {}).get("campaign")):
            if isinstance(value, str):
                found.add(value)
        state = state.get("previous")
    return found


def _delete(conn: Connection, t: _Targets) -> None:
    for chunk in _chunks(t.drafts):
        conn.execute(sa.delete(attachments).where(attachments.c.nomination_id.in_(chunk)))
        conn.execute(
            sa.delete(nominee_consents).where(nominee_consents.c.nomination_id.in_(chunk))
        )
    for user, nomination in t.subscriptions:
        conn.execute(
            sa.delete(subscriptions).where(
                subscriptions.c.user_id == user, subscriptions.c.nomination_id == nomination
            )
        )
    for chunk in _chunks(t.drafts):
        conn.execute(sa.delete(nominations).where(nominations.c.id.in_(chunk)))
    for chunk in _chunks(t.selfchecks):
        conn.execute(sa.delete(selfcheck_results).where(selfcheck_results.c.id.in_(chunk)))
    for user, campaign, kind in t.prefs:
        conn.execute(
            sa.delete(reminder_prefs).where(
                reminder_prefs.c.user_id == user,
                reminder_prefs.c.campaign == campaign,
                reminder_prefs.c.kind == kind,
            )
        )
    for chunk in _chunks(t.reminders):
        conn.execute(sa.delete(reminders).where(reminders.c.id.in_(chunk)))
    for user, version in t.sessions:
        # Only if no step changed it since it was read (a step holds the user's lock).
        conn.execute(
            sa.delete(conversation_sessions).where(
                conversation_sessions.c.user_id == user,
                conversation_sessions.c.version == version,
            )
        )


def _chunks(items: Iterable[Any], size: int = 500) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = [
    "Counts",
    "Forgotten",
    "PurgeReport",
    "consent_at",
    "forget",
    "my_data",
    "purge",
    "purge_due",
    "retention",
    "set_consent",
]
