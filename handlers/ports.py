"""What a channel's edge needs from outside it: a token cache, a reply window, a send budget.

DESIGN §5: edges get small protocols, never the store. Each is shared by every `serve` worker
(the implementations, in `bot.edges`, keep them in the database), so they serialize what the
platforms need serialized: one token fetch at a time, one count per customer-service window,
one per-member send count.

An implementation raises `handlers.base.Unavailable` when what backs it is unreachable or busy
(a retry may pass: a webhook answers 503) and `EdgeError` for any other failure; nothing else
of its own. The data it exchanges is defined here, so an adapter imports nothing of storage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class EdgeError(Exception):
    """A token cache, reply window or send budget failed, and a retry will not fix it."""


# ----- access tokens ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """A platform access token and when it stops working."""

    value: str
    expires_at: datetime

    def __repr__(self) -> str:  # the token is a credential
        return f"Token(expires_at={self.expires_at.isoformat()})"


Fetch = Callable[[], tuple[str, int]]  # -> (token, expires_in seconds); raises on failure


class TokenCache(Protocol):
    """Access tokens shared by every worker (a new WeChat token invalidates the old one)."""

    def cached(self, name: str, *, now: datetime, margin: timedelta) -> Token | None:
        """The kept token if it is valid for `margin` more, else None; takes no lock."""
        ...

    def refresh(
        self,
        name: str,
        fetch: Fetch,
        *,
        now: Callable[[], datetime],
        margin: timedelta,
        stale: str | None = None,
    ) -> Token:
        """A valid token, fetched by at most one worker at a time.

        A kept token valid for `margin` more and not `stale` (one the platform just refused)
        is returned without fetching; otherwise `fetch()` runs and its token is kept.
        `fetch` raising leaves the kept token and its exception reaches the caller.
        """
        ...


# ----- customer-service windows (WeChat) ----------------------------------------------------


class WindowOpener(StrEnum):
    """What the user did, which decides how many messages may follow and for how long."""

    MESSAGE = "message"  # the user sent a message: 5 messages within 48 hours
    EVENT = "event"  # clicked a menu, followed, scanned: 3 messages within 1 minute


class Slot(StrEnum):
    """The answer of `ReplyWindow.take`."""

    TAKEN = "taken"  # counted; send now
    CLOSED = "closed"  # no window open (WeChat would answer 45015)
    USED_UP = "used_up"  # window open, its quota used (WeChat would answer 45047)


class ReplyWindow(Protocol):
    """The customer-service window a user's action opens (DESIGN §6), counted across workers."""

    def open(self, channel: str, user_id: str, opener: WindowOpener, *, now: datetime) -> None:
        """The user acted: open a fresh window, unless the open one lasts longer with more
        left."""
        ...

    def take(self, channel: str, user_id: str, *, now: datetime) -> Slot:
        """Count one send against the user's open window, if it has room."""
        ...

    def close(self, channel: str, user_id: str, *, used_up: bool) -> None:
        """The platform said the window is closed (45015) or used up (45047): believe it."""
        ...


# ----- per-recipient send limits (WeCom) ----------------------------------------------------


class SendBudget(Protocol):
    """A platform's limit of sends per recipient, one count for every worker."""

    def reserve(
        self,
        channel: str,
        recipient_id: str,
        *,
        count: int,
        limit: int,
        window: timedelta,
        now: datetime,
    ) -> timedelta | None:
        """Record `count` sends now and return None, or record none and return how long until
        they would fit in `limit` per `window`. `count` outside 1..limit: ValueError."""
        ...


# ----- stored attachments (reviewers open them) ---------------------------------------------


class AttachmentMissing(EdgeError):
    """No stored attachment has this id (deleted with its nomination, or never stored)."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An attachment as a channel hands it out: its name, its kind, its plain bytes."""

    filename: str
    kind: str  # jpg | png | pdf | docx
    data: bytes

    def __repr__(self) -> str:  # the content is personal data
        return f"StoredFile(kind={self.kind!r}, size={len(self.data)})"


class Attachments(Protocol):
    """The attachments the core names in `Reply.files` (it already checked who may see them).

    Blocking: call from a worker thread (`Gateway.run`). Raises `AttachmentMissing` for an
    unknown id, `Unavailable` / `EdgeError` as every edge does.
    """

    def size(self, attachment_id: int) -> int:
        """The content's length in bytes, without reading the file."""
        ...

    def read(self, attachment_id: int) -> StoredFile: ...


class LinkSigner(Protocol):
    """HMAC-SHA256 signatures (hex) of a download link's payload under a key derived from
    AWARDBOT_SECRET_KEY for this purpose: one per configured key, newest first (the first
    signs; any verifies, so a rotated key's links last until they expire)."""

    def signatures(self, payload: bytes) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class ReplyTicket:
    """The stored replies of one step, taken by the channel to send now."""

    key: str
    handle: object  # the store's claim, given back to `ReplyLedger.settle`


class ReplyLedger(Protocol):
    """A step's replies stored with it (`Gateway.handle(store_replies=True)`): the channel takes
    them before sending and settles them after, so a process that dies after the commit leaves
    them to the dispatcher, and two workers never both send them. Blocking: worker thread."""

    def take(self, channel: str, delivery_id: str) -> ReplyTicket | None:
        """Claim and mark in flight; None if someone else has them (or there are none)."""

    def settle(
        self, ticket: ReplyTicket, *, sent: int, error: str | None, retryable: bool
    ) -> None:
        """After the send: `sent` messages went out; `error` why the rest did not."""
