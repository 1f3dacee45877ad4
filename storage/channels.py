"""What chat channels keep between requests and share between workers.

- `inbound_deliveries`: every platform delivery (Telegram update_id, WeChat MsgId or
  FromUserName+CreateTime) a step has taken, so a retry or a duplicate is answered once.
  `first_delivery` inserts into the step's own transaction: the step and the record of its
  delivery commit together or not at all.
- `platform_tokens`: API access tokens (WeChat access_token, WeCom access_token) shared by every
  worker. A new WeChat token invalidates the old one after 5 minutes, so only one worker may
  fetch at a time: `refresh_token` fetches while holding the token's row lock, and a worker that
  waited on the lock finds the fresh token and does not fetch again.
- `send_log` (+ `send_keys` to lock on): messages sent to one recipient, for a platform limit
  per recipient that every worker must share (WeCom: 30 a minute per member, excess silently
  dropped). `reserve_sends` counts and records under the recipient's lock.
- `reply_windows`: the WeChat customer-service window a user's action opens (DESIGN §6): a
  message opens 5 sends within 48 h, a menu click / follow 3 sends within 1 minute.
  `take_window_slot` counts a send against it atomically across workers.

Tokens are sealed at rest like every other secret the store keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage.prepared import Statements, insert_ignoring_conflicts
from storage.store import Store
from storage.tables import (
    inbound_deliveries,
    platform_tokens,
    push_nonces,
    reply_windows,
    send_keys,
    send_log,
)


def _insert(conn: Connection, table: sa.Table) -> sa.Insert:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)  # type: ignore[no-any-return]


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")


# ----- deliveries ---------------------------------------------------------------------------


# Every webhook step records its delivery: compiled once (storage.prepared).
_HOT = Statements(
    {
        "first_delivery": lambda d: (
            insert_ignoring_conflicts(inbound_deliveries, d)
            .values(
                channel=sa.bindparam("channel"),
                delivery_id=sa.bindparam("delivery_id"),
                received_at=sa.bindparam(
                    "received_at", type_=inbound_deliveries.c.received_at.type
                ),
            )
            .on_conflict_do_nothing(index_elements=["channel", "delivery_id"])
            .returning(inbound_deliveries.c.delivery_id)
        )
    }
)


def first_delivery(conn: Connection, channel: str, delivery_id: str, *, now: datetime) -> bool:
    """Record this delivery in the caller's transaction; False if it was recorded before."""
    _aware(now, "now")
    recorded = _HOT(conn, "first_delivery").one(
        conn, channel=channel, delivery_id=delivery_id, received_at=now
    )
    return recorded is not None


def delivery_answer(conn: Connection, channel: str, delivery_id: str) -> str | None:
    """The sealed answer kept with a delivery (None: none kept, or no such delivery)."""
    answer: str | None = conn.execute(
        sa.select(inbound_deliveries.c.answer).where(
            inbound_deliveries.c.channel == channel,
            inbound_deliveries.c.delivery_id == delivery_id,
        )
    ).scalar_one_or_none()
    return answer


def keep_delivery_answer(conn: Connection, channel: str, delivery_id: str, sealed: str) -> None:
    """Keep the (sealed) answer a delivery got, in the step's transaction, for its retries."""
    conn.execute(
        sa.update(inbound_deliveries)
        .where(
            inbound_deliveries.c.channel == channel,
            inbound_deliveries.c.delivery_id == delivery_id,
        )
        .values(answer=sealed)
    )


def prune_deliveries(store: Store, *, before: datetime) -> int:
    """Forget deliveries received before `before` (platforms stop retrying within a day)."""
    _aware(before, "before")
    with store.transaction() as conn:
        result = conn.execute(
            sa.delete(inbound_deliveries).where(inbound_deliveries.c.received_at < before)
        )
    return int(result.rowcount)


# ----- signed pushes' nonces ----------------------------------------------------------------


class PushSeen(StrEnum):
    """What `seen_push` found for a signed push's nonce."""

    NEW = "new"  # first time: go on
    RETRY = "retry"  # the same signed request again, soon after: the platform retrying
    REPLAY = "replay"  # the nonce with another signature, or the same one too late: refuse


def seen_push(
    store: Store,
    channel: str,
    nonce: str,
    signature: str,
    *,
    now: datetime,
    retry_span: timedelta,
) -> PushSeen:
    """Record a verified push's nonce; tell a platform retry from a replay (any worker).

    WeChat and WeCom retry an unanswered push within seconds; a request identical in its
    signature within `retry_span` is such a retry (the delivery dedupe then answers it with the
    kept answer). The same nonce under another signature, or later, is a replay.
    """
    _aware(now, "now")
    with store.transaction() as conn:
        inserted = conn.execute(
            _insert(conn, push_nonces)
            .values(channel=channel, nonce=nonce, signature=signature, seen_at=now)
            .on_conflict_do_nothing(index_elements=["channel", "nonce"])
            .returning(push_nonces.c.nonce)
        ).first()
        if inserted is not None:
            return PushSeen.NEW
        row = conn.execute(
            sa.select(push_nonces.c.signature, push_nonces.c.seen_at).where(
                push_nonces.c.channel == channel, push_nonces.c.nonce == nonce
            )
        ).one()
    if row.signature == signature and now - row.seen_at <= retry_span:
        return PushSeen.RETRY
    return PushSeen.REPLAY


def prune_pushes(store: Store, *, before: datetime) -> int:
    """Forget nonces seen before `before` (older timestamps are refused by their age)."""
    _aware(before, "before")
    with store.transaction() as conn:
        result = conn.execute(sa.delete(push_nonces).where(push_nonces.c.seen_at < before))
    return int(result.rowcount)


# ----- access tokens ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_at: datetime

    def __repr__(self) -> str:  # the token is a credential
        return f"Token(expires_at={self.expires_at.isoformat()})"


Fetch = Callable[[], tuple[str, int]]  # -> (token, expires_in seconds); raises on failure


def cached_token(store: Store, name: str, *, now: datetime, margin: timedelta) -> Token | None:
    """The stored token if it is valid for `margin` more; no lock taken."""
    _aware(now, "now")
    with store.reading() as conn:
        row = conn.execute(
            sa.select(platform_tokens.c.token, platform_tokens.c.expires_at).where(
                platform_tokens.c.name == name
            )
        ).one_or_none()
    if row is None or row.token is None or row.expires_at is None:
        return None
    if row.expires_at - margin <= now:
        return None
    return Token(store.sealer.open(row.token), row.expires_at)


def refresh_token(
    store: Store,
    name: str,
    fetch: Fetch,
    *,
    now: Callable[[], datetime],
    margin: timedelta,
    stale: str | None = None,
) -> Token:
    """A valid token, fetched by at most one worker at a time.

    Under the token row's lock: if the stored token is valid for `margin` more and is not
    `stale` (a token the platform just refused), it is returned and nothing is fetched;
    otherwise `fetch()` runs and its token is stored. `fetch` raising leaves the old row.
    """
    with store.transaction() as conn:
        conn.execute(
            _insert(conn, platform_tokens)
            .values(name=name, token=None, expires_at=None, updated_at=now())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        row = conn.execute(
            sa.select(platform_tokens.c.token, platform_tokens.c.expires_at)
            .where(platform_tokens.c.name == name)
            .with_for_update()  # PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes
        ).one()
        current = now()
        if row.token is not None and row.expires_at is not None:
            value = store.sealer.open(row.token)
            if row.expires_at - margin > current and value != stale:
                return Token(value, row.expires_at)
        value, expires_in = fetch()
        fetched_at = now()
        expires_at = fetched_at + timedelta(seconds=max(int(expires_in), 0))
        conn.execute(
            sa.update(platform_tokens)
            .where(platform_tokens.c.name == name)
            .values(token=store.sealer.seal(value), expires_at=expires_at, updated_at=fetched_at)
        )
    return Token(value, expires_at)


# ----- per-recipient send limits ------------------------------------------------------------


def reserve_sends(
    store: Store,
    channel: str,
    recipient_id: str,
    *,
    count: int,
    limit: int,
    window: timedelta,
    now: datetime,
) -> timedelta | None:
    """Record `count` sends to the recipient now and return None, or record none and return
    how long until they would fit in `limit` per `window`. Serialized per recipient across
    workers (the recipient's `send_keys` row is locked)."""
    _aware(now, "now")
    if not 1 <= count <= limit:
        raise ValueError(f"count must be 1..{limit}, got {count}")
    where = (send_log.c.channel == channel, send_log.c.recipient_id == recipient_id)
    with store.transaction() as conn:
        conn.execute(
            _insert(conn, send_keys)
            .values(channel=channel, recipient_id=recipient_id)
            .on_conflict_do_nothing(index_elements=["channel", "recipient_id"])
        )
        conn.execute(
            sa.select(send_keys.c.channel)
            .where(send_keys.c.channel == channel, send_keys.c.recipient_id == recipient_id)
            .with_for_update()
        ).one()
        conn.execute(sa.delete(send_log).where(*where, send_log.c.sent_at <= now - window))
        recent = list(
            conn.execute(
                sa.select(send_log.c.sent_at).where(*where).order_by(send_log.c.sent_at)
            ).scalars()
        )
        room = limit - len(recent)
        if count > room:
            # the (count - room)-th oldest send must leave the window first
            wait: timedelta = recent[count - room - 1] + window - now
            return wait
        conn.execute(
            sa.insert(send_log),
            [{"channel": channel, "recipient_id": recipient_id, "sent_at": now}] * count,
        )
    return None


# ----- customer-service windows ------------------------------------------------------------


class WindowOpener(StrEnum):
    """What the user did, which decides how many messages may follow and for how long."""

    MESSAGE = "message"  # the user sent a message: 5 messages within 48 hours
    EVENT = "event"  # clicked a menu, followed, scanned: 3 messages within 1 minute


WINDOW_RULES: dict[WindowOpener, tuple[timedelta, int]] = {
    WindowOpener.MESSAGE: (timedelta(hours=48), 5),
    WindowOpener.EVENT: (timedelta(minutes=1), 3),
}


class Slot(StrEnum):
    """The answer of `take_window_slot`."""

    TAKEN = "taken"  # counted; send now
    CLOSED = "closed"  # no window open (WeChat would answer 45015)
    USED_UP = "used_up"  # window open, its quota used (WeChat would answer 45047)


def open_window(
    store: Store, channel: str, user_id: str, opener: WindowOpener, *, now: datetime
) -> None:
    """The user acted: open a fresh window, unless the open one lasts longer with more left."""
    _aware(now, "now")
    span, quota = WINDOW_RULES[opener]
    closes_at = now + span
    with store.transaction() as conn:
        row = conn.execute(
            sa.select(reply_windows.c.closes_at, reply_windows.c.quota, reply_windows.c.used)
            .where(reply_windows.c.channel == channel, reply_windows.c.user_id == user_id)
            .with_for_update()
        ).one_or_none()
        if row is None:
            conn.execute(
                sa.insert(reply_windows).values(
                    channel=channel,
                    user_id=user_id,
                    opened_at=now,
                    closes_at=closes_at,
                    quota=quota,
                    used=0,
                )
            )
            return
        if row.closes_at > closes_at and row.quota - row.used >= quota:
            return  # a message window still open beats a click's minute
        conn.execute(
            sa.update(reply_windows)
            .where(reply_windows.c.channel == channel, reply_windows.c.user_id == user_id)
            .values(opened_at=now, closes_at=closes_at, quota=quota, used=0)
        )


def take_window_slot(store: Store, channel: str, user_id: str, *, now: datetime) -> Slot:
    """Count one send against the user's open window, if it has room."""
    _aware(now, "now")
    with store.transaction() as conn:
        row = conn.execute(
            sa.select(reply_windows.c.closes_at, reply_windows.c.quota, reply_windows.c.used)
            .where(reply_windows.c.channel == channel, reply_windows.c.user_id == user_id)
            .with_for_update()
        ).one_or_none()
        if row is None or row.closes_at <= now:
            return Slot.CLOSED
        if row.used >= row.quota:
            return Slot.USED_UP
        conn.execute(
            sa.update(reply_windows)
            .where(reply_windows.c.channel == channel, reply_windows.c.user_id == user_id)
            .values(used=reply_windows.c.used + 1)
        )
    return Slot.TAKEN


def close_window(store: Store, channel: str, user_id: str, *, used_up: bool) -> None:
    """The platform said the window is closed (45015) or used up (45047): believe it."""
    values = (
        {"used": reply_windows.c.quota} if used_up else {"closes_at": reply_windows.c.opened_at}
    )
    with store.transaction() as conn:
        conn.execute(
            sa.update(reply_windows)
            .where(reply_windows.c.channel == channel, reply_windows.c.user_id == user_id)
            .values(**values)
        )
