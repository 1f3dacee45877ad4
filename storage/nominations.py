"""Nominations, their attachments, subscriptions and the audit trail (issue 3, storage half).

A nomination's answers and form values are personal data: they are one sealed JSON payload. What
queues and rules need in clear is kept beside it — campaign, category, unit, region, status,
whether the nominee is 县处级 — never a name, ID number or phone.

Every status change goes through `move`, which checks the status it expects (two officials
acting at once cannot both move it), updates it and writes the audit record in the caller's
transaction; the caller enqueues the notifications (storage.outbox) in that same transaction, so
the move, its audit record and its notifications commit together or not at all.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.crypto import Sealer
from storage.tables import attachments, audit_log, dumps_json, nominations, subscriptions

# Tracking codes are read aloud and typed on phones: no 0/O, 1/I/L.
TRACKING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
TRACKING_LENGTH = 10


class NominationConflict(Exception):
    """The nomination is no longer in the status the caller saw (someone else moved it).

    Typed, with no text for the user: the caller decides what to tell whom.
    """

    def __init__(self, nomination_id: int, expected_status: str) -> None:
        super().__init__(nomination_id, expected_status)
        self.nomination_id = nomination_id
        self.expected_status = expected_status


@dataclass(frozen=True, slots=True)
class NominationRecord:
    id: int
    campaign: str
    category: str
    kind: str
    unit_id: int
    region: str
    status: str
    tracking_code: str
    payload: dict[str, Any]
    county_division: bool
    publicity_started_on: date | None
    publicity_ends_on: date | None
    created_by: int
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    id: int
    nomination_id: int
    material_key: str
    file_ref: str
    media_type: str
    size: int
    filename: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    user_id: int | None
    role: str
    action: str
    allowed: bool
    nomination_id: int | None
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any] | None


def new_tracking_code() -> str:
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_LENGTH))


def normalise_tracking_code(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())


def create_draft(
    conn: Connection,
    sealer: Sealer,
    *,
    campaign: str,
    category: str,
    kind: str,
    unit_id: int,
    region: str,
    created_by: int,
    payload: Mapping[str, Any],
    now: datetime,
    initial_status: str,
    code: str | None = None,
) -> NominationRecord:
    """A new draft in `initial_status` (the campaign's `lifecycle.initial`), in the caller's
    transaction, under `code` (the core's, from its context) or a fresh tracking code."""
    given = code is not None
    for _ in range(1 if given else 5):
        code = normalise_tracking_code(code) if code is not None else new_tracking_code()
        taken = conn.execute(
            sa.select(nominations.c.id).where(nominations.c.tracking_code == code)
        ).first()
        if taken is None:
            break
        code = None
    else:  # pragma: no cover - 31^10 codes: a collision fails the step, which the user resends
        raise RuntimeError("could not find a free tracking code")
    new_id = conn.execute(
        sa.insert(nominations)
        .values(
            campaign=campaign,
            category=category,
            kind=kind,
            unit_id=unit_id,
            region_code=region,
            status=initial_status,
            tracking_code=code,
            payload=sealer.seal(dumps_json(dict(payload))),
            county_division=False,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            status_changed_at=now,
            version=1,
        )
        .returning(nominations.c.id)
    ).scalar_one()
    record = get(conn, sealer, new_id)
    assert record is not None
    return record


def save_payload(
    conn: Connection,
    sealer: Sealer,
    nomination_id: int,
    payload: Mapping[str, Any],
    *,
    county_division: bool,
    now: datetime,
) -> None:
    """Replace the nomination's answers and form values."""
    conn.execute(
        sa.update(nominations)
        .where(nominations.c.id == nomination_id)
        .values(
            payload=sealer.seal(dumps_json(dict(payload))),
            county_division=county_division,
            updated_at=now,
            version=nominations.c.version + 1,
        )
    )


def get(conn: Connection, sealer: Sealer, nomination_id: int) -> NominationRecord | None:
    row = conn.execute(sa.select(nominations).where(nominations.c.id == nomination_id)).first()
    return None if row is None else _record(row, sealer)


def by_tracking_code(conn: Connection, sealer: Sealer, code: str) -> NominationRecord | None:
    normalised = normalise_tracking_code(code)
    row = conn.execute(
        sa.select(nominations).where(nominations.c.tracking_code == normalised)
    ).first()
    return None if row is None else _record(row, sealer)


def for_unit(
    conn: Connection, sealer: Sealer, unit_id: int, *, campaign: str | None = None
) -> list[NominationRecord]:
    """A unit's nominations, oldest first."""
    query = sa.select(nominations).where(nominations.c.unit_id == unit_id)
    if campaign is not None:
        query = query.where(nominations.c.campaign == campaign)
    rows = conn.execute(query.order_by(nominations.c.id)).all()
    return [_record(r, sealer) for r in rows]


def in_statuses(
    conn: Connection,
    sealer: Sealer,
    statuses: Iterable[str],
    *,
    region_prefix: str,
    campaign: str | None = None,
) -> list[NominationRecord]:
    """Nominations in any of `statuses` from regions whose code starts with `region_prefix`."""
    query = sa.select(nominations).where(
        nominations.c.status.in_(list(statuses)),
        nominations.c.region_code.startswith(region_prefix, autoescape=True),
    )
    if campaign is not None:
        query = query.where(nominations.c.campaign == campaign)
    rows = conn.execute(query.order_by(nominations.c.status_changed_at, nominations.c.id)).all()
    return [_record(r, sealer) for r in rows]


def in_campaign(conn: Connection, sealer: Sealer, campaign: str) -> list[NominationRecord]:
    """Every nomination of a campaign (for the rules across nominations)."""
    rows = conn.execute(
        sa.select(nominations).where(nominations.c.campaign == campaign).order_by(nominations.c.id)
    ).all()
    return [_record(r, sealer) for r in rows]


def move(
    conn: Connection,
    sealer: Sealer,
    *,
    nomination_id: int,
    expected_status: str,
    to_status: str,
    user_id: int | None,
    role: str,
    action: str,
    reason: str | None,
    now: datetime,
    publicity: tuple[date, date] | None = None,
    expected_version: int | None = None,
) -> int:
    """Change the status if it is still `expected_status` (and `expected_version`, when
    given), and audit it; returns the audit id.

    Raises NominationConflict when another move got there first: nothing is written then.
    """
    values: dict[str, Any] = {
        "status": to_status,
        "status_changed_at": now,
        "updated_at": now,
        "version": nominations.c.version + 1,
    }
    if publicity is not None:
        values["publicity_started_on"], values["publicity_ends_on"] = publicity
    where = [nominations.c.id == nomination_id, nominations.c.status == expected_status]
    if expected_version is not None:
        where.append(nominations.c.version == expected_version)
    result = conn.execute(sa.update(nominations).where(*where).values(**values))
    if result.rowcount != 1:
        raise NominationConflict(nomination_id, expected_status)
    return audit(
        conn,
        sealer,
        user_id=user_id,
        role=role,
        action=action,
        allowed=True,
        nomination_id=nomination_id,
        from_status=expected_status,
        to_status=to_status,
        detail={"reason": reason} if reason else None,
        now=now,
    )


def audit(
    conn: Connection,
    sealer: Sealer,
    *,
    user_id: int | None,
    role: str,
    action: str,
    allowed: bool,
    now: datetime,
    nomination_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Write one audit record: a move, a refused attempt, a read of a full ID number."""
    sealed = None if detail is None else sealer.seal(dumps_json(dict(detail)))
    audit_id: int = conn.execute(
        sa.insert(audit_log)
        .values(
            at=now,
            user_id=user_id,
            role=role,
            action=action,
            allowed=allowed,
            nomination_id=nomination_id,
            from_status=from_status,
            to_status=to_status,
            detail=sealed,
        )
        .returning(audit_log.c.id)
    ).scalar_one()
    return audit_id


def audit_trail(
    conn: Connection, sealer: Sealer, *, nomination_id: int | None = None
) -> list[AuditRecord]:
    query = sa.select(audit_log).order_by(audit_log.c.id)
    if nomination_id is not None:
        query = query.where(audit_log.c.nomination_id == nomination_id)
    out = []
    for row in conn.execute(query).mappings():
        detail = None if row["detail"] is None else json.loads(sealer.open(row["detail"]))
        out.append(AuditRecord(**{**row, "detail": detail}))
    return out


def add_attachment(
    conn: Connection,
    sealer: Sealer,
    *,
    nomination_id: int,
    material_key: str,
    file_ref: str,
    media_type: str,
    size: int,
    filename: str,
    now: datetime,
) -> None:
    """Record a stored file against a material of the checklist (the same file twice: once)."""
    insert = _insert_ignore(conn)
    conn.execute(
        insert(attachments)
        .values(
            nomination_id=nomination_id,
            material_key=material_key,
            file_ref=file_ref,
            media_type=media_type,
            size=size,
            filename=sealer.seal(filename),
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["nomination_id", "material_key", "file_ref"])
    )


def attachments_of(conn: Connection, sealer: Sealer, nomination_id: int) -> list[AttachmentRecord]:
    rows = conn.execute(
        sa.select(attachments)
        .where(attachments.c.nomination_id == nomination_id)
        .order_by(attachments.c.id)
    ).mappings()
    return [AttachmentRecord(**{**r, "filename": sealer.open(r["filename"])}) for r in rows]


def subscribe(conn: Connection, *, user_id: int, nomination_id: int, now: datetime) -> None:
    insert = _insert_ignore(conn)
    conn.execute(
        insert(subscriptions)
        .values(user_id=user_id, nomination_id=nomination_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id", "nomination_id"])
    )


def subscribers(conn: Connection, nomination_id: int) -> list[int]:
    return list(
        conn.execute(
            sa.select(subscriptions.c.user_id)
            .where(subscriptions.c.nomination_id == nomination_id)
            .order_by(subscriptions.c.created_at, subscriptions.c.user_id)
        ).scalars()
    )


def record_of(row: Any, sealer: Sealer) -> NominationRecord:
    """A `nominations` row (selected with any extra columns) as a record, its payload opened."""
    return _record(row, sealer)


def _insert_ignore(conn: Connection) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _record(row: Any, sealer: Sealer) -> NominationRecord:
    m = row._mapping
    return NominationRecord(
        id=m["id"],
        campaign=m["campaign"],
        category=m["category"],
        kind=m["kind"],
        unit_id=m["unit_id"],
        region=m["region_code"],
        status=m["status"],
        tracking_code=m["tracking_code"],
        payload=json.loads(sealer.open(m["payload"])),
        county_division=m["county_division"],
        publicity_started_on=m["publicity_started_on"],
        publicity_ends_on=m["publicity_ends_on"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        status_changed_at=m["status_changed_at"],
        version=m["version"],
    )
