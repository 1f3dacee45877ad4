"""The outbox: notifications written with the change that causes them, delivered later, once.

A status change and the notifications it causes commit together or not at all: `enqueue` inserts
into the CALLER's transaction (`store.transaction()`, or `tx.connection` of a conversation step).
Each message carries an idempotency key (e.g. f"{nomination_id}:{status_change_id}:{recipient}");
a key already in the outbox is ignored, so enqueueing twice never sends twice.

Delivery (`notifications.outbox.Dispatcher`) is claim-before-send:

1. `claim` moves due `pending` rows to `sending` — with the worker's id, a lease
   (`claimed_until`) and `attempts + 1` — and COMMITS that before anything is sent. PostgreSQL
   picks the rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint
   batches without waiting for each other; SQLite runs the claim under `BEGIN IMMEDIATE`, which
   serializes claims. Either way no row is handed to two workers.
2. The worker sends, then records the outcome with `mark_delivered` / `mark_retry` /
   `mark_failed`. A mark applies only to the claim it names (same worker, same attempt number);
   a worker whose lease was recovered meanwhile cannot undo what recovery decided — except that
   a late `mark_delivered` still records the truth that the message went out.

A worker killed between send and mark leaves its rows in `sending`. Nothing can tell whether
such a message went out, so `recover_expired` (after the lease) decides by channel:
- the channel's sender is idempotent (it, or the platform behind it, drops a second send with
  the same idempotency key): the row goes back to `pending` and is retried with the SAME key;
- otherwise it is marked `failed` with `UNKNOWN_OUTCOME` — at most once, and recorded where an
  operator sees it, never silently dropped. Rows claimed but not yet sent when the worker died end
  the same way (they cannot be told apart), which is why dispatchers claim small batches.

Message texts name people, so they are sealed at rest with the store's `Sealer` and opened only
when claimed. Reprs of the value objects here leave the text out, so logging one is safe.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from storage.crypto import Sealer, SealError
from storage.store import Store, StoreError
from storage.tables import UTCDateTime

# Recorded on a row whose lease expired after it may have been sent (non-idempotent channel).
UNKNOWN_OUTCOME = (
    "投递结果未知：发送后进程中断，为避免重复发送不再重试 "
    "(delivery outcome unknown: interrupted after send; not retried to avoid a duplicate)"
)
# Recorded on a row of an idempotent channel put back to `pending` after its lease expired.
LEASE_EXPIRED_RETRY = (
    "租约过期：发送进程中断，使用同一幂等键重试 "
    "(lease expired: the sender was interrupted; retried with the same idempotency key)"
)


class OutboxStatus(StrEnum):
    """Where a message is in its delivery."""

    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a worker until claimed_until; may have gone out
    DELIVERED = "delivered"  # the sender accepted it
    FAILED = "failed"  # given up; last_error says why


# The current table (storage.migrations step 2 builds it; the contract tests compare the two).
outbox = sa.Table(
    "outbox",
    SQLModel.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String, nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("recipient_id", sa.String, nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # sealed
    sa.Column("status", sa.String, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.String, nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),  # its send began (outcome uncertain)
    sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    sa.CheckConstraint(
        "status IN ('pending', 'sending', 'delivered', 'failed')", name="ck_outbox_status"
    ),
    sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A notification to enqueue: who gets what on which channel, under which idempotency key."""

    idempotency_key: str
    channel: str
    recipient_id: str
    text: str = field(repr=False)  # names people: kept out of reprs and logs


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message claimed for sending, its text opened; pass it back to a `mark_*` function.

    `claimed_by` and `attempts` identify the claim: a mark applies only while they still match.
    """

    id: int
    idempotency_key: str
    channel: str
    recipient_id: str
    text: str = field(repr=False)
    attempts: int  # including this one
    claimed_by: str
    claimed_until: datetime


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A row as stored, without its text: for inspection, tests and operators."""

    id: int
    idempotency_key: str
    channel: str
    recipient_id: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    started_at: datetime | None


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `recover_expired` did with rows whose lease had expired."""

    requeued: int = 0  # idempotent channel: back to pending, same idempotency key
    failed: int = 0  # outcome unknown (or attempts used up): failed, reason recorded


def enqueue(
    conn: Connection, sealer: Sealer, messages: Iterable[OutboxMessage], *, now: datetime
) -> int:
    """Insert messages as `pending`, due at `now`, in the caller's transaction.

    The caller commits (or rolls back) them together with whatever caused them. A message whose
    idempotency key is already in the outbox — sent or not — is ignored. Returns how many were
    new.
    """
    _require_aware(now, "now")
    rows = [
        {
            "idempotency_key": m.idempotency_key,
            "channel": m.channel,
            "recipient_id": m.recipient_id,
            "text": sealer.seal(m.text),
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    if not rows:
        return 0
    for row in rows:
        for name in ("idempotency_key", "channel", "recipient_id"):
            if not row[name]:
                raise ValueError(f"outbox message without {name}")
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(outbox)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        # Count what was inserted by what comes back: rowcount of an INSERT is not reliable
        # across drivers (psycopg reports -1 here).
        .returning(outbox.c.id)
    )
    return len(conn.execute(statement).all())


def claim(
    store: Store,
    worker_id: str,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    recipient: tuple[str, str] | None = None,
    channels: Collection[str] | None = None,
) -> list[ClaimedMessage]:
    """Claim up to `limit` due pending messages for `worker_id`, oldest due first.

    `recipient` (channel, recipient id) claims only that person's messages: the console, where
    one process serves one user, delivers what is waiting for them when they are there.
    `channels` claims only messages of those channels (the ones this worker can send on); the
    rest wait for a worker that can.

    Runs in its own short transaction, committed before this returns: the rows are `sending`,
    leased to `worker_id` until `now + lease`, their attempt counted. `worker_id` must be unique
    per running dispatcher (e.g. host, pid and a random suffix).
    """
    _require_aware(now, "now")
    if not worker_id:
        raise ValueError("worker_id must not be empty")
    if lease <= timedelta(0):
        raise ValueError("lease must be positive")
    if limit < 1:
        return []
    claimed_until = now + lease
    with store.transaction() as conn:
        due = sa.select(outbox.c.id).where(
            outbox.c.status == OutboxStatus.PENDING, outbox.c.next_attempt_at <= now
        )
        if recipient is not None:
            due = due.where(
                outbox.c.channel == recipient[0], outbox.c.recipient_id == recipient[1]
            )
        if channels is not None:
            due = due.where(outbox.c.channel.in_(list(channels)))
        due = (
            due.order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            # PostgreSQL: rows another worker is claiming are skipped, not waited for. SQLite
            # renders nothing here: the transaction's BEGIN IMMEDIATE already excludes others.
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(due).scalars())
        if not ids:
            return []
        rows = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(ids), outbox.c.status == OutboxStatus.PENDING)
            .values(
                status=OutboxStatus.SENDING,
                claimed_by=worker_id,
                claimed_until=claimed_until,
                attempts=outbox.c.attempts + 1,
            )
            .returning(
                outbox.c.id,
                outbox.c.idempotency_key,
                outbox.c.channel,
                outbox.c.recipient_id,
                outbox.c.text,
                outbox.c.attempts,
            )
        ).all()
        order = {id_: i for i, id_ in enumerate(ids)}
        try:
            # Opened inside the transaction: a wrong key rolls the claim back (rows stay pending).
            return [
                ClaimedMessage(
                    id=row.id,
                    idempotency_key=row.idempotency_key,
                    channel=row.channel,
                    recipient_id=row.recipient_id,
                    text=store.sealer.open(row.text),
                    attempts=row.attempts,
                    claimed_by=worker_id,
                    claimed_until=claimed_until,
                )
                for row in sorted(rows, key=lambda r: order[r.id])
            ]
        except SealError as exc:
            raise StoreError(str(exc)) from None


def mark_delivered(store: Store, message: ClaimedMessage, *, now: datetime) -> bool:
    """Record that the sender accepted the message; False if the claim was not found.

    Applies even after recovery marked the row failed or put it back to pending, as long as no
    other worker has claimed it since: the message did go out, and the record should say so.
    """
    _require_aware(now, "now")
    return _mark(
        store,
        message,
        {"status": OutboxStatus.DELIVERED, "delivered_at": now, "claimed_until": None},
        outbox.c.status != OutboxStatus.DELIVERED,
    )


def mark_retry(
    store: Store, message: ClaimedMessage, *, error: str, next_attempt_at: datetime
) -> bool:
    """Put the message back to pending, due at `next_attempt_at`; False if the claim was lost."""
    _require_aware(next_attempt_at, "next_attempt_at")
    return _mark(
        store,
        message,
        {
            "status": OutboxStatus.PENDING,
            "next_attempt_at": next_attempt_at,
            "claimed_until": None,
            "last_error": _one_line(error),
        },
        outbox.c.status == OutboxStatus.SENDING,
    )


def mark_failed(store: Store, message: ClaimedMessage, *, error: str) -> bool:
    """Give the message up, recording why; False if the claim was lost."""
    return _mark(
        store,
        message,
        {"status": OutboxStatus.FAILED, "claimed_until": None, "last_error": _one_line(error)},
        outbox.c.status == OutboxStatus.SENDING,
    )


def recover_expired(
    store: Store,
    *,
    now: datetime,
    idempotent_channels: Collection[str],
    max_attempts: int | None = None,
) -> Recovery:
    """Settle rows left in `sending` by a worker whose lease ended before `now`.

    On a channel in `idempotent_channels` a row goes back to pending, due now, to be sent again
    with the same idempotency key (unless `max_attempts` are used up: then it fails). On any
    other channel it may already have been sent, so it is marked failed with `UNKNOWN_OUTCOME`.
    """
    _require_aware(now, "now")
    expired = sa.and_(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_until < now)
    idempotent: sa.ColumnElement[bool] = outbox.c.channel.in_(list(idempotent_channels))
    with store.transaction() as conn:
        retry_ok = idempotent
        if max_attempts is not None:
            retry_ok = sa.and_(idempotent, outbox.c.attempts < max_attempts)
        requeued = conn.execute(
            sa.update(outbox)
            .where(expired, retry_ok)
            .values(
                status=OutboxStatus.PENDING,
                next_attempt_at=now,
                claimed_until=None,
                last_error=LEASE_EXPIRED_RETRY,
            )
        ).rowcount
        exhausted = 0
        if max_attempts is not None:
            exhausted = conn.execute(
                sa.update(outbox)
                .where(expired, idempotent)
                .values(
                    status=OutboxStatus.FAILED,
                    claimed_until=None,
                    last_error=(
                        f"租约过期且已尝试 {max_attempts} 次，不再重试 "
                        f"(lease expired after {max_attempts} attempts; not retried)"
                    ),
                )
            ).rowcount
        unknown = conn.execute(
            sa.update(outbox)
            .where(expired)
            .values(status=OutboxStatus.FAILED, claimed_until=None, last_error=UNKNOWN_OUTCOME)
        ).rowcount
    return Recovery(requeued=requeued, failed=exhausted + unknown)


def release(store: Store, worker_id: str) -> int:
    """A stopping worker gives back what it claimed and did not send: pending again, the
    attempt not counted. Call it only once the worker has stopped sending (graceful shutdown).
    """
    with store.transaction() as conn:
        result = conn.execute(
            sa.update(outbox)
            .where(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_by == worker_id)
            .values(
                status=OutboxStatus.PENDING,
                claimed_by=None,
                claimed_until=None,
                attempts=outbox.c.attempts - 1,
            )
        )
    return int(result.rowcount)


def depth(store: Store) -> int:
    """How many messages are pending (due or not): the backlog, for /metrics."""
    with store.reading() as conn:
        query = sa.select(sa.func.count()).where(outbox.c.status == OutboxStatus.PENDING)
        return int(conn.execute(query.select_from(outbox)).scalar_one())


def find(store: Store, idempotency_key: str) -> OutboxEntry | None:
    """The row with this idempotency key, without its text; None if there is none."""
    columns = [c for c in outbox.columns if c.name != "text"]
    with store.reading() as conn:
        row = (
            conn.execute(sa.select(*columns).where(outbox.c.idempotency_key == idempotency_key))
            .mappings()
            .one_or_none()
        )
    if row is None:
        return None
    return OutboxEntry(**{**row, "status": OutboxStatus(row["status"])})


def _mark(
    store: Store,
    message: ClaimedMessage,
    values: dict[str, object],
    status_ok: sa.ColumnElement[bool],
) -> bool:
    with store.transaction() as conn:
        result = conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.id == message.id,
                # The claim: same worker, same attempt. Another claim since (after recovery)
                # has a higher attempt number, so a stale worker's mark changes nothing.
                outbox.c.claimed_by == message.claimed_by,
                outbox.c.attempts == message.attempts,
                status_ok,
            )
            .values(**values)
        )
    return result.rowcount == 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
