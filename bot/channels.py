"""Which chat channels `awardbot serve` runs: one adapter per channel configured in `.env`."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from bot.edges import (
    SealerLinkSigner,
    StoreAttachments,
    StoreNoticePages,
    StoreReplyLedger,
    StoreReplyWindow,
    StoreSendBudget,
    StoreTokenCache,
)
from bot.settings import Settings
from handlers.base import ChannelAdapter, Gateway, PushSeen, Unavailable
from handlers.files import FileLinks, LinkSettings
from handlers.pushes import RETRY_SPAN
from storage import channels
from storage.files import FileStore
from storage.store import Store, StoreUnavailable


class StorePushLedger:
    """`handlers.base.PushLedger` on the store: every worker sees every nonce."""

    def __init__(self, store: Store, retry_span: dt.timedelta = RETRY_SPAN) -> None:
        self._store = store
        self._retry_span = retry_span

    def seen(self, channel: str, nonce: str, signature: str, *, now: dt.datetime) -> PushSeen:
        try:
            found = channels.seen_push(
                self._store, channel, nonce, signature, now=now, retry_span=self._retry_span
            )
        except StoreUnavailable as exc:
            raise Unavailable(str(exc)) from None  # answered 503: the platform retries
        return PushSeen(found.value)


def attachments_for(settings: Settings, store: Store) -> StoreAttachments:
    """What the channels read the attachments reviewers open through."""
    return StoreAttachments(store, FileStore(Path(settings.attachments_dir), store.sealer))


def file_links(settings: Settings, store: Store, *, clock: Callable[[], dt.datetime]) -> FileLinks:
    """WeChat's signed download links, as `serve` makes and checks them."""
    return FileLinks(
        LinkSettings(
            settings.public_url,
            minutes=settings.file_link_minutes,
            max_bytes=settings.file_link_max_bytes,
        ),
        SealerLinkSigner(store.sealer),
        clock=clock,
    )


def build_adapters(
    settings: Settings,
    gateway: Gateway,
    store: Store,
    *,
    clock: Callable[[], dt.datetime],
) -> list[ChannelAdapter]:
    """An adapter for every configured channel (settings.off says why the others are off).

    Imports are local: a channel that is off never loads its SDK.
    """
    adapters: list[ChannelAdapter] = []
    attachments = attachments_for(settings, store)
    if settings.telegram is not None:
        from handlers.telegram import make_adapter as telegram

        # A step's replies are stored with it and taken from the outbox by this worker; what a
        # killed worker never took, the dispatcher delivers (issue 9).
        ledger = StoreReplyLedger(store, f"replies:{socket.gethostname()}:{os.getpid()}:"
                                  f"{secrets.token_hex(3)}", clock=clock)  # fmt: skip
        adapters.append(
            telegram(
                settings.telegram, gateway, clock=clock, attachments=attachments, replies=ledger
            )
        )
    if settings.wechat is not None:
        from handlers.wechat import make_adapter as wechat
        from handlers.wechat.notices import NoticeLinks

        # The whole text of a notice sent as a template message is behind its link (issue 10).
        pages = StoreNoticePages(store)
        notices = (
            None
            if settings.public_url is None
            else NoticeLinks(
                settings.public_url, pages, clock=clock, days=settings.wechat.notice_link_days
            )
        )
        adapters.append(
            wechat(
                settings.wechat,
                gateway,
                tokens=StoreTokenCache(store),
                windows=StoreReplyWindow(store),
                clock=clock,
                pushes=StorePushLedger(store),
                attachments=attachments,
                links=file_links(settings, store, clock=clock),
                notice_links=notices,
                notices=pages,
            )
        )
    if settings.wecom is not None:
        from handlers.wecom import make_adapter as wecom

        adapters.append(
            wecom(
                settings.wecom,
                gateway,
                tokens=StoreTokenCache(store),
                sends=StoreSendBudget(store),
                clock=clock,
                pushes=StorePushLedger(store),
                attachments=attachments,
            )
        )
    return adapters
