"""The Telegram channel: python-telegram-bot (default) or aiogram, one behaviour.

`make_adapter` picks the library from the settings; everything the user sees is decided in
`core` and `render`, shared by both (DESIGN §5: adapters are thin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from handlers.base import Gateway
from handlers.config import TelegramLibrary, TelegramSettings
from handlers.ports import Attachments, ReplyLedger
from handlers.telegram.core import POLLING_TIMEOUT, BotClient, TelegramAdapter
from handlers.telegram.limits import RateLimiter

__all__ = ["RateLimiter", "TelegramAdapter", "make_adapter", "make_client"]


def make_client(
    settings: TelegramSettings, *, polling_timeout: int = POLLING_TIMEOUT
) -> BotClient:
    """The library-specific half; its SDK is imported only when chosen."""
    if settings.library is TelegramLibrary.AIOGRAM:
        from handlers.telegram.aiogram_adapter import AiogramClient

        return AiogramClient(settings, polling_timeout=polling_timeout)
    from handlers.telegram.ptb import PtbClient

    return PtbClient(settings, polling_timeout=polling_timeout)


def make_adapter(
    settings: TelegramSettings,
    gateway: Gateway,
    *,
    clock: Callable[[], dt.datetime],
    limiter: RateLimiter | None = None,
    polling_timeout: int = POLLING_TIMEOUT,
    store_retry: tuple[float, float, float] | None = None,
    attachments: Attachments | None = None,
    replies: ReplyLedger | None = None,
) -> TelegramAdapter:
    """The adapter `awardbot serve` runs (see `handlers.base.ChannelAdapter`).

    `clock` is the engine's; the flood limits keep their own monotonic time. Tests pass a fast
    `limiter`, a short `polling_timeout`, and a short `store_retry` (first wait, longest wait,
    total seconds of polling's retries while the store is down). `attachments` reads the
    files reviewers open (`handlers.telegram.files`); `replies` is where a step's replies
    are stored with it (`handlers.ports.ReplyLedger`).
    """
    del clock  # nothing here reads wall-clock time
    client = make_client(settings, polling_timeout=polling_timeout)
    if store_retry is None:
        return TelegramAdapter(
            settings, gateway, client, limiter=limiter, attachments=attachments, replies=replies
        )
    return TelegramAdapter(
        settings,
        gateway,
        client,
        limiter=limiter,
        store_retry=store_retry,
        attachments=attachments,
        replies=replies,
    )
