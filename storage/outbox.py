"""The outbox: notifications written with the change that causes them, delivered later, once.

A status change and the notifications it causes commit together or not at all: `enqueue` inserts
into the CALLER's transaction (`store.transaction()`, or `tx.connection` of a conversation step).
Each message carries an idempotency key (e.g. f"{nomination_id}:{status_change_id}:{recipient}");
a key already in the outbox is ignored, so enqueueing twice never sends twice.

Delivery (`notifications.outbox.Dispatcher`) is claim, then mark in flight, then send:

1. `claim` moves due `pending` rows to `sending` — with the worker's id, a lease
   (`claimed_until`) and `attempts + 1` — and COMMITS that before anything is sent. PostgreSQL
   picks the rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint
   batches without waiting for each other; SQLite runs the claim under `BEGIN IMMEDIATE`, which
   serializes claims. Either way no row is handed to two workers. A claimed row whose text
   cannot be opened (sealed with a key no longer configured, damaged) is quarantined in the same
   transaction — `failed` with `QUARANTINED`, its text kept sealed — and the rest is delivered
   (issue 8: one such row used to roll every claim back, forever).
2. Just before ITS send, the worker marks the one row in flight with `mark_started`: its own
   short transaction, committed before the send, applied only while the claim still holds (same
   worker, same attempt, lease not over). If it returns False the claim was lost and the worker
   does not send. So at any moment a worker has at most one row whose send may have begun and
   is not yet recorded.
3. The worker records the outcome with `mark_delivered` / `mark_retry` / `mark_failed`, or gives
   a row it did not send back with `give_back`. A mark applies only to the claim it names; a
   worker whose lease was recovered meanwhile cannot undo what recovery decided — except that a
   late `mark_delivered` still records the truth that the message went out.

A worker killed (kill -9) leaves its claimed rows in `sending`. After the lease,
`recover_expired` tells them apart by `started_at` (issue 8):
- never started: back to `pending`, the attempt not counted, no error recorded — nothing went
  out, so nothing is uncertain;
- started (the one row per worker that may have gone out): if the channel's sender is idempotent
  (it, or the platform behind it, drops a second send with the same key), back to `pending`
  and retried with the SAME key; otherwise `failed` with `UNKNOWN_OUTCOME` — at most once,
  recorded where an operator sees it, never silently dropped.
Hence the guarantee: each crash of a worker leaves at most ONE message of unknown outcome, and
no message is ever sent twice on a channel that does not deduplicate. `release` (a worker
stopping gracefully) settles its rows the same way, at once instead of after the lease.

Message texts name people, so they are sealed at rest with the store's `Sealer` and opened only
when claimed. Reprs of the value objects here leave the text out, so logging one is safe.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.crypto import Sealer, SealError
from storage.prepared import Statements, insert_ignoring_conflicts
from storage.store import Store
from storage.tables import outbox

# Recorded on a row whose send had begun when its worker died or stopped (non-idempotent
# channel): it may or may not have gone out.
UNKNOWN_OUTCOME = (
    "投递结果未知：发送后进程中断，为避免重复发送不再重试 "
    "(delivery outcome unknown: interrupted after send; not retried to avoid a duplicate)"
)
# Recorded on a row of an idempotent channel put back to `pending` after its lease expired.
LEASE_EXPIRED_RETRY = (
    "租约过期：发送进程中断，使用同一幂等键重试 "
    "(lease expired: the sender was interrupted; retried with the same idempotency key)"
)
# Recorded on a row of an idempotent channel whose send was in flight when its worker stopped.
RELEASED_RETRY = (
    "发送进程停止时发送未完成，使用同一幂等键重试 "
    "(the sender stopped during the send; retried with the same idempotency key)"
)
# Recorded on a row quarantined by `claim`: no text and no key in it (issue 8).
QUARANTINED = (
    "已隔离：通知内容无法解密（密钥已不在 AWARDBOT_SECRET_KEY 中，或数据损坏），未发送 "
    "(quarantined: the text cannot be opened - sealed with a key not in AWARDBOT_SECRET_KEY,"
    " or damaged; not sent)"
)


class OutboxStatus(StrEnum):
    """Where a message is in its delivery."""

    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a worker until claimed_until; may have gone out
    DELIVERED = "delivered"  # the sender accepted it
    FAILED = "failed"  # given up; last_error says why


# A step's replies, stored with it (bot.runtime); every other kind is a notice.
REPLY_KIND = "reply"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A notification to enqueue: who gets what on which channel, under which idempotency key."""

    idempotency_key: str
    channel: str
    recipient_id: str
    text: str = field(repr=False)  # names people: kept out of reprs and logs
    kind: str = "notice"  # or "reply": a step's replies, as JSON (see bot.runtime)
    delay: timedelta = timedelta(0)  # due this long after `now`


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
    kind: str = "notice"


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
    kind: str = "notice"


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `recover_expired` (or `release`) did with a worker's rows left in `sending`."""

    requeued: int = 0  # send had begun, idempotent channel: back to pending, same key
    failed: int = 0  # send had begun, outcome unknown (or attempts used up): failed, reason kept
    returned: int = 0  # never started: back to pending, the attempt not counted

    @property
    def total(self) -> int:
        return self.requeued + self.failed + self.returned


@dataclass(frozen=True, slots=True)
class Claim:
    """What `claim` took: the messages to send (in order), and the rows it quarantined.

    Iterating a Claim iterates its messages.
    """

    messages: tuple[ClaimedMessage, ...] = ()
    quarantined: tuple[int, ...] = ()  # ids of rows failed with QUARANTINED

    def __iter__(self) -> Iterator[ClaimedMessage]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)


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
            "next_attempt_at": now + m.delay,
            "created_at": now,
            "kind": m.kind,
        }
        for m in messages
    ]
    if not rows:
        return 0
    for row in rows:
        for name in ("idempotency_key", "channel", "recipient_id"):
            if not row[name]:
                raise ValueError(f"outbox message without {name}")
    # One compiled statement per row (storage.prepared): a step stores its replies here.
    insert = _HOT(conn, "insert")
    return sum(len(insert.rows(conn, **row)) for row in rows)


def claim(
    store: Store,
    worker_id: str,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    recipient: tuple[str, str] | None = None,
    channels: Collection[str] | None = None,
    keys: Collection[str] | None = None,
    started: bool = False,
    kinds: Collection[str] | None = None,
) -> Claim:
    """Claim up to `limit` due pending messages for `worker_id`, oldest due first.

    `keys` claims those messages (by idempotency key) if still pending, due or not: a channel
    delivering the replies its step just stored, ahead of the dispatcher that would otherwise
    deliver them once due (after a crash, say).

    `recipient` (channel, recipient id) claims only that person's messages: the console, where
    one process serves one user, delivers what is waiting for them when they are there.
    `channels` claims only messages of those channels (the ones this worker can send on); the
    rest wait for a worker that can. `kinds` claims only rows of those kinds (a standby `serve`
    worker: `("reply",)`, see bot.server).

    Runs in its own short transaction, committed before this returns: the rows are `sending`,
    leased to `worker_id` until `now + lease`, their attempt counted, none marked in flight yet.
    A row whose text cannot be opened is quarantined in that same transaction (`failed` with
    `QUARANTINED`) and listed in `Claim.quarantined` instead. `worker_id` must be unique per
    running dispatcher (e.g. host, pid and a random suffix).

    A step's replies (`step_of`) are claimed in their order: one is not claimable while an
    earlier reply of the same step is pending or `sending` under another claim (a channel's
    take, another worker), so no two workers send one step's replies at once. Within one claim
    the next reply becomes claimable once the one before it is taken; the messages come in an
    order that keeps each step's replies in sequence.
    """
    _require_aware(now, "now")
    if not worker_id:
        raise ValueError("worker_id must not be empty")
    if lease <= timedelta(0):
        raise ValueError("lease must be positive")
    if limit < 1:
        return Claim()
    claimed_until = now + lease
    with store.transaction() as conn:
        rows: list[sa.Row[Any]] = []
        claimed: list[int] = []
        # Rounds within the one transaction: a step's next reply becomes claimable once the
        # reply before it is claimed here (see `_earlier_reply_holds`), so a batch may carry
        # several replies of one step, each after the one before it.
        while len(claimed) < limit:
            due = sa.select(outbox.c.id).where(
                outbox.c.status == OutboxStatus.PENDING, ~_earlier_reply_holds(claimed)
            )
            if keys is not None:
                due = due.where(outbox.c.idempotency_key.in_(list(keys)))
            else:
                due = due.where(outbox.c.next_attempt_at <= now)
            if recipient is not None:
                due = due.where(
                    outbox.c.channel == recipient[0], outbox.c.recipient_id == recipient[1]
                )
            if channels is not None:
                due = due.where(outbox.c.channel.in_(list(channels)))
            if kinds is not None:
                due = due.where(outbox.c.kind.in_(list(kinds)))
            due = (
                due.order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(limit - len(claimed))
                # PostgreSQL: rows another worker is claiming are skipped, not waited for.
                # SQLite renders nothing: the transaction's BEGIN IMMEDIATE excludes others.
                .with_for_update(skip_locked=True)
            )
            ids = list(conn.execute(due).scalars())
            if not ids:
                break
            taken = conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_(ids), outbox.c.status == OutboxStatus.PENDING)
                .values(
                    status=OutboxStatus.SENDING,
                    claimed_by=worker_id,
                    claimed_until=claimed_until,
                    attempts=outbox.c.attempts + 1,
                    # `started`: claimed and marked in flight at once (take), so a worker
                    # killed after this commit leaves a row of known state: its send may
                    # have begun.
                    started_at=now if started else None,
                )
                .returning(
                    outbox.c.id,
                    outbox.c.idempotency_key,
                    outbox.c.channel,
                    outbox.c.recipient_id,
                    outbox.c.text,
                    outbox.c.attempts,
                    outbox.c.kind,
                )
            ).all()
            order = {id_: i for i, id_ in enumerate(ids)}
            rows.extend(sorted(taken, key=lambda r: order[r.id]))
            claimed.extend(ids)
            if not any(step_of(r.kind, r.idempotency_key) for r in taken):
                break  # only a step's reply can have made another row claimable
        if not rows:
            return Claim()
        messages: list[ClaimedMessage] = []
        quarantined: list[int] = []
        for row in rows:
            try:
                text = store.sealer.open(row.text)
            except (SealError, ValueError):  # ValueError: opened, but not UTF-8 (damaged)
                quarantined.append(row.id)
                continue
            messages.append(
                ClaimedMessage(
                    id=row.id,
                    idempotency_key=row.idempotency_key,
                    channel=row.channel,
                    recipient_id=row.recipient_id,
                    text=text,
                    attempts=row.attempts,
                    claimed_by=worker_id,
                    claimed_until=claimed_until,
                    kind=row.kind,
                )
            )
        if quarantined:
            # Failed here, in the claim's transaction, so the row is never claimed again and
            # cannot hold the others back. Its sealed text stays: an operator who still has the
            # old key can read it and send it by hand.
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_(quarantined))
                .values(status=OutboxStatus.FAILED, claimed_until=None, last_error=QUARANTINED)
            )
    return Claim(tuple(messages), tuple(quarantined))


_COLUMNS = (
    "idempotency_key", "channel", "recipient_id", "text", "status", "attempts",
    "next_attempt_at", "created_at", "kind",
)  # fmt: skip
_HOT = Statements(
    {
        # Count what was inserted by what comes back: rowcount of an INSERT is not reliable
        # across drivers (psycopg reports -1 here).
        "insert": lambda d: (
            insert_ignoring_conflicts(outbox, d)
            .values({c: sa.bindparam(c, type_=outbox.c[c].type) for c in _COLUMNS})
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(outbox.c.id)
        ),
        # A channel taking a reply its step just stored: claimed and in flight at once. The
        # status test is re-checked after a wait for the row's lock (PostgreSQL), so of two
        # takers one gets it.
        "take": lambda _: (
            sa.update(outbox)
            .where(outbox.c.idempotency_key == sa.bindparam("key"))
            .where(outbox.c.status == OutboxStatus.PENDING.value)
            .where(~_earlier_reply_holds(()))  # the step's replies in order, as `claim`
            .values(
                status=OutboxStatus.SENDING.value,
                claimed_by=sa.bindparam("worker"),
                claimed_until=sa.bindparam("until", type_=outbox.c.claimed_until.type),
                attempts=outbox.c.attempts + 1,
                started_at=sa.bindparam("now", type_=outbox.c.started_at.type),
            )
            .returning(
                outbox.c.id,
                outbox.c.channel,
                outbox.c.recipient_id,
                outbox.c.text,
                outbox.c.attempts,
                outbox.c.kind,
            )
        ),  # fmt: skip
        "delivered": lambda _: (
            sa.update(outbox)
            .where(outbox.c.id == sa.bindparam("id"))
            .where(outbox.c.claimed_by == sa.bindparam("worker"))
            .where(outbox.c.attempts == sa.bindparam("attempts"))
            .where(outbox.c.status != OutboxStatus.DELIVERED.value)
            .values(
                status=OutboxStatus.DELIVERED.value,
                delivered_at=sa.bindparam("now", type_=outbox.c.delivered_at.type),
                claimed_until=None,
            )
        ),
    }
)


def take(
    store: Store, key: str, worker_id: str, *, now: datetime, lease: timedelta
) -> ClaimedMessage | None:
    """Claim the pending message `key` and mark it in flight, in one transaction, to send it
    now; None if it is not pending (already taken: by the dispatcher once due, or a second
    delivery of a step).

    One transaction, not a claim and then a mark: a worker killed between the two used to
    leave the row claimed and not started, so nobody sent it until the lease ended — a reply
    minutes late, or (the kill suite) after the user had moved on. Now a kill after the commit
    leaves a row whose send may have begun: of unknown outcome, recorded as such, never sent
    twice; before the commit, the row is still pending and the dispatcher sends it."""
    _require_aware(now, "now")
    if not worker_id:
        raise ValueError("worker_id must not be empty")
    claimed_until = now + lease
    with store.transaction() as conn:
        row = _HOT(conn, "take").one(conn, key=key, worker=worker_id, until=claimed_until, now=now)
    if row is None:
        return None
    id_, channel, recipient_id, sealed, attempts, kind = row
    try:
        text = store.sealer.open(sealed)
    except (SealError, ValueError):  # as `claim` does: failed, never taken again
        with store.transaction() as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == id_)
                .values(status=OutboxStatus.FAILED, claimed_until=None, last_error=QUARANTINED)
            )
        return None
    return ClaimedMessage(
        id=id_, idempotency_key=key, channel=channel, recipient_id=recipient_id, text=text,
        attempts=attempts, claimed_by=worker_id, claimed_until=claimed_until, kind=kind,
    )  # fmt: skip


def mark_started(store: Store, message: ClaimedMessage, *, now: datetime) -> bool:
    """Mark the message in flight: call it just before its send, and send only if it is True.

    Its own short transaction, committed before this returns, so that after a crash only this
    row is of unknown outcome. Applies only while the claim holds — same worker and attempt,
    still `sending`, not marked before, lease not over at `now`. False means the claim was lost
    (recovered by another worker, or the lease is over): do not send. On a StoreError it is
    unknown whether the mark landed: do not send either, and `give_back` the message.
    """
    _require_aware(now, "now")
    return _mark(
        store,
        message,
        {"started_at": now},
        sa.and_(
            outbox.c.status == OutboxStatus.SENDING,
            outbox.c.started_at.is_(None),
            outbox.c.claimed_until > now,
        ),
    )


def mark_delivered(store: Store, message: ClaimedMessage, *, now: datetime) -> bool:
    """Record that the sender accepted the message; False if the claim was not found.

    Applies even after recovery marked the row failed or put it back to pending, as long as no
    other worker has claimed it since: the message did go out, and the record should say so.
    Safe to call again after a StoreError (it may have landed; then this returns False).
    """
    _require_aware(now, "now")
    with store.transaction() as conn:  # every send ends here: compiled once
        count = _HOT(conn, "delivered").run(
            conn, id=message.id, worker=message.claimed_by, attempts=message.attempts, now=now
        )
    return count == 1


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
            "started_at": None,
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


def give_back(store: Store, message: ClaimedMessage) -> bool:
    """Return a claimed message this worker did NOT send: pending again, the attempt not counted.

    For a send that never began — the rest of a batch cut short by a database error, or a row
    whose `mark_started` failed (whether that mark landed is unknown, so it is cleared here).
    False if the claim was lost meanwhile.
    """
    return _mark(
        store,
        message,
        {
            "status": OutboxStatus.PENDING,
            "claimed_by": None,
            "claimed_until": None,
            "started_at": None,
            "attempts": outbox.c.attempts - 1,
        },
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

    A row whose send never started goes back to pending as it was (the attempt not counted).
    A row whose send started may have gone out: on a channel in `idempotent_channels` it goes
    back to pending, due now, to be sent again with the same idempotency key (unless
    `max_attempts` are used up: then it fails); on any other channel it is marked failed with
    `UNKNOWN_OUTCOME`.
    """
    _require_aware(now, "now")
    expired = sa.and_(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_until < now)
    idempotent: sa.ColumnElement[bool] = outbox.c.channel.in_(list(idempotent_channels))
    with store.transaction() as conn:
        returned = _return_unstarted(conn, expired)
        # What is left of `expired` had started.
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
                started_at=None,
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
    return Recovery(requeued=requeued, failed=exhausted + unknown, returned=returned)


def release(
    store: Store, worker_id: str, *, idempotent_channels: Collection[str] = ()
) -> Recovery:
    """A stopping worker settles what it still holds, as recovery would after its lease.

    Rows whose send never started go back to pending, the attempt not counted. A row whose send
    started and whose outcome was never recorded may have gone out: requeued with the same key
    on an idempotent channel, failed with `UNKNOWN_OUTCOME` otherwise. Call it only once the
    worker has stopped sending (graceful shutdown).
    """
    mine = sa.and_(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_by == worker_id)
    with store.transaction() as conn:
        returned = _return_unstarted(conn, mine)
        requeued = conn.execute(
            sa.update(outbox)
            .where(mine, outbox.c.channel.in_(list(idempotent_channels)))
            .values(
                status=OutboxStatus.PENDING,
                claimed_until=None,
                started_at=None,
                last_error=RELEASED_RETRY,
            )
        ).rowcount
        unknown = conn.execute(
            sa.update(outbox)
            .where(mine)
            .values(status=OutboxStatus.FAILED, claimed_until=None, last_error=UNKNOWN_OUTCOME)
        ).rowcount
    return Recovery(requeued=requeued, failed=unknown, returned=returned)


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


STEP_REPLY_PREFIX = "reply:"  # handlers.base.reply_key: "reply:<channel>:<delivery>:<nnn>"


def step_of(kind: str, idempotency_key: str) -> str | None:
    """The step a reply row belongs to: its key without the 3-digit index (the keys of
    `handlers.base.reply_key(channel, reply_part(delivery_id, index))`); None for any other
    row (a notice, the documents a job made)."""
    key = idempotency_key
    if kind != "reply" or not key.startswith(STEP_REPLY_PREFIX) or len(key) < 4:
        return None
    if key[-4] != ":" or not key[-3:].isdigit():
        return None
    return key[:-3]


def _earlier_reply_holds(claimed: Collection[int]) -> sa.ColumnElement[bool]:
    """True for a step's reply row (`step_of`) while an earlier reply of the same step — same
    channel, recipient and key but for a lower index — is pending, or `sending` under any claim
    but this one (`claimed`: the ids this claim took already). Such a row is not claimable: the
    replies of one step go out one after the other, whoever sends them (issue 13: a dispatcher
    sent a step's later reply while the channel still sent the earlier ones).

    The same-step test is exact (`substr` of the key, and the same length); the range on the
    key only lets the unique index of `idempotency_key` find the candidates. With the same
    prefix the keys differ in their zero-padded digits only, which every collation orders as
    numbers.
    """
    earlier = outbox.alias("earlier")
    key = outbox.c.idempotency_key
    step = sa.func.substr(key, 1, sa.func.length(key) - 3)
    other = earlier.c.idempotency_key
    in_flight = earlier.c.status == OutboxStatus.SENDING.value
    if claimed:
        in_flight = sa.and_(in_flight, earlier.c.id.not_in(list(claimed)))
    return sa.and_(
        outbox.c.kind == "reply",
        key.startswith(STEP_REPLY_PREFIX, autoescape=True),
        sa.func.substr(key, sa.func.length(key) - 3, 1) == ":",
        sa.exists().where(
            earlier.c.kind == "reply",
            earlier.c.channel == outbox.c.channel,
            earlier.c.recipient_id == outbox.c.recipient_id,
            other >= step,
            other < key,
            sa.func.length(other) == sa.func.length(key),
            sa.func.substr(other, 1, sa.func.length(other) - 3) == step,
            sa.or_(earlier.c.status == OutboxStatus.PENDING.value, in_flight),
        ),
    )


def _return_unstarted(conn: Connection, held: sa.ColumnElement[bool]) -> int:
    """Rows of `held` whose send never began: pending again, as if never claimed."""
    result = conn.execute(
        sa.update(outbox)
        .where(held, outbox.c.started_at.is_(None))
        .values(
            status=OutboxStatus.PENDING,
            claimed_by=None,
            claimed_until=None,
            attempts=outbox.c.attempts - 1,
        )
    )
    return int(result.rowcount)


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
                # has a higher attempt number or another worker, so a stale mark changes nothing.
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
