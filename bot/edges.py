"""The channels' small protocols (`handlers.ports`) on the store, shared by every worker.

The one place where the edges' token cache, reply window, send budget, the attachments
reviewers open and the signer of their download links meet `storage`: the
storage types are turned into the handlers' ones, and the store's errors into the edge's
(`StoreUnavailable` → `handlers.base.Unavailable`, so a webhook answers 503 and the platform
retries; any other `StoreError` → `handlers.ports.EdgeError`). An adapter never sees either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from handlers.base import Unavailable, reply_key
from handlers.ports import (
    AttachmentMissing,
    EdgeError,
    Fetch,
    ReplyTicket,
    Slot,
    StoredFile,
    Token,
    WindowOpener,
)
from notifications.notice import NOTICE_KINDS, Notice
from storage import channels, outbox
from storage import nominations as noms
from storage.crypto import Sealer, SealError
from storage.files import FileStore, FileStoreError
from storage.store import Store, StoreError, StoreUnavailable
from storage.tables import generated_files
from storage.tables import outbox as outbox_table


@contextmanager
def _edge_errors() -> Iterator[None]:
    """The store's errors as the edge's; the message (one line, no user data) is kept."""
    try:
        yield
    except StoreUnavailable as exc:
        raise Unavailable(str(exc)) from None
    except StoreError as exc:
        raise EdgeError(str(exc)) from None


def _token(token: channels.Token) -> Token:
    return Token(token.value, token.expires_at)


class StoreTokenCache:
    """`handlers.ports.TokenCache` in `platform_tokens`: one fetch at a time, under a row lock."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def cached(self, name: str, *, now: dt.datetime, margin: dt.timedelta) -> Token | None:
        with _edge_errors():
            token = channels.cached_token(self._store, name, now=now, margin=margin)
        return None if token is None else _token(token)

    def refresh(
        self,
        name: str,
        fetch: Fetch,
        *,
        now: Callable[[], dt.datetime],
        margin: dt.timedelta,
        stale: str | None = None,
    ) -> Token:
        with _edge_errors():  # what `fetch` raises is the platform's: it passes as it is
            token = channels.refresh_token(
                self._store, name, fetch, now=now, margin=margin, stale=stale
            )
        return _token(token)


class StoreReplyWindow:
    """`handlers.ports.ReplyWindow` in `reply_windows`, counted atomically across workers."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def open(self, channel: str, user_id: str, opener: WindowOpener, *, now: dt.datetime) -> None:
        with _edge_errors():
            channels.open_window(
                self._store, channel, user_id, channels.WindowOpener(opener.value), now=now
            )

    def take(self, channel: str, user_id: str, *, now: dt.datetime) -> Slot:
        with _edge_errors():
            slot = channels.take_window_slot(self._store, channel, user_id, now=now)
        return Slot(slot.value)

    def close(self, channel: str, user_id: str, *, used_up: bool) -> None:
        with _edge_errors():
            channels.close_window(self._store, channel, user_id, used_up=used_up)


class StoreSendBudget:
    """`handlers.ports.SendBudget` in `send_log`, serialized per recipient across workers."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def reserve(
        self,
        channel: str,
        recipient_id: str,
        *,
        count: int,
        limit: int,
        window: dt.timedelta,
        now: dt.datetime,
    ) -> dt.timedelta | None:
        with _edge_errors():
            return channels.reserve_sends(
                self._store,
                channel,
                recipient_id,
                count=count,
                limit=limit,
                window=window,
                now=now,
            )


class StoreAttachments:
    """`handlers.ports.Attachments` over the `attachments` table and the sealed `FileStore`.

    Only what the core put in `Reply.files` reaches here: it has checked who may see the
    nomination and audited the opening; this reads, nothing more."""

    def __init__(self, store: Store, files: FileStore) -> None:
        self._store = store
        self._files = files

    def _row(self, attachment_id: int) -> sa.RowMapping:
        # A negative id names a file the bot generated (bot.exports: a document, a chart).
        table = noms.attachments if attachment_id > 0 else generated_files
        attachment_id = abs(attachment_id)
        with _edge_errors(), self._store.reading() as conn:
            row = (
                conn.execute(
                    sa.select(
                        table.c.file_ref, table.c.media_type, table.c.size, table.c.filename
                    ).where(table.c.id == attachment_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise AttachmentMissing(f"no attachment {attachment_id}")
        return row

    def size(self, attachment_id: int) -> int:
        return int(self._row(attachment_id)["size"])

    def read(self, attachment_id: int) -> StoredFile:
        row = self._row(attachment_id)
        try:
            filename = self._store.sealer.open(row["filename"])
            data = self._files.get(row["file_ref"])
        except (SealError, FileStoreError) as exc:
            raise EdgeError(str(exc)) from None
        return StoredFile(filename, row["media_type"], data)


LINK_PURPOSE = "file-link"  # the derived key signs download links and nothing else


class SealerLinkSigner:
    """`handlers.ports.LinkSigner`: HMAC-SHA256 under a key HKDF-derived from each
    AWARDBOT_SECRET_KEY for download links (`Sealer.keyed_names`), newest first."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def signatures(self, payload: bytes) -> list[str]:
        return self._sealer.keyed_names(payload, LINK_PURPOSE)


class StoreReplyLedger:
    """`ReplyLedger` over the outbox: a step's stored replies are outbox rows of kind `reply`,
    taken (claimed and marked in flight) by the channel that sends them at once; a row nobody
    takes is the dispatcher's once due (bot.runtime.REPLY_GRACE)."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        *,
        clock: Callable[[], dt.datetime],
        # Long enough for one reply's send with all its retries (the flood limit's wait comes
        # before the take). A step's later replies wait for an earlier one in flight: after a
        # kill -9 mid-send they go out once this lease has ended. 30 s was too short: the kill
        # suite then saw replies sent twice and late (a live worker still sending).
        lease: dt.timedelta = dt.timedelta(minutes=2),
    ) -> None:
        self._store = store
        self._worker = worker_id
        self._clock = clock
        self._lease = lease

    def take(self, channel: str, delivery_id: str) -> ReplyTicket | None:
        key = reply_key(channel, delivery_id)
        with _edge_errors():
            taken = outbox.take(self._store, key, self._worker, now=self._clock(),
                                lease=self._lease)  # fmt: skip
        return None if taken is None else ReplyTicket(key, taken)

    def settle(
        self, ticket: ReplyTicket, *, sent: int, error: str | None, retryable: bool
    ) -> None:
        message = ticket.handle
        assert isinstance(message, outbox.ClaimedMessage)
        with _edge_errors():
            if error is None:
                outbox.mark_delivered(self._store, message, now=self._clock())
            elif sent == 0 and retryable:
                # Nothing went out: the dispatcher sends them all again, after a pause.
                outbox.mark_retry(
                    self._store, message, error=error,
                    next_attempt_at=self._clock() + dt.timedelta(seconds=30),
                )  # fmt: skip
            else:
                # Some went out: sending them all again would double those; the rest are lost,
                # with the reason kept for the operator.
                outbox.mark_failed(self._store, message, error=f"{sent} sent; {error}")


NOTICE_LINK_PURPOSE = "notice-link"  # the derived key signs notice detail links only


class StoreNoticePages:
    """`handlers.wechat.notices.NoticeReader` over the outbox (the notice a row holds, opened
    with the store's sealer), and the `LinkSigner` of those pages' links (HMAC-SHA256 under a
    key HKDF-derived from each AWARDBOT_SECRET_KEY for notice links only, newest first)."""

    def __init__(self, store: Store, channel: str = "wechat") -> None:
        self._store = store
        self._channel = channel

    def signatures(self, payload: bytes) -> list[str]:
        return self._store.sealer.keyed_names(payload, NOTICE_LINK_PURPOSE)

    def notice(self, idempotency_key: str) -> Notice | None:
        table = outbox_table
        with _edge_errors(), self._store.reading() as conn:
            row = (
                conn.execute(
                    sa.select(table.c.channel, table.c.kind, table.c.text).where(
                        table.c.idempotency_key == idempotency_key
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["channel"] != self._channel or row["kind"] not in NOTICE_KINDS:
            return None  # a step's stored replies, or another channel's row: not shown
        try:
            return Notice.of_row(row["kind"], self._store.sealer.open(row["text"]))
        except SealError as exc:
            raise EdgeError(str(exc)) from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise EdgeError("the notice cannot be read") from None
