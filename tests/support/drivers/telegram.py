"""Drive the Telegram channel like a user: the real adapter, a real library, the fake Bot API.

`TelegramDriver` is the user plus Telegram's servers: it sends updates (getUpdates queue in
polling mode, a POST with the secret header in webhook mode), presses inline buttons when the
input matches one, and renders what the bot sent like `handlers.base.render_text`.
`telegram_bot(...)` builds a whole bot for a test: fake API, runtime over the store, gateway,
adapter and an aiohttp app with its routes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakes.telegram_api import FakeTelegram

from bot.edges import StoreReplyLedger
from bot.runtime import Runtime
from bot.settings import Settings
from handlers.base import ChannelAdapter, Gateway, Steps
from handlers.config import TelegramMode, TelegramSettings
from handlers.telegram import RateLimiter, TelegramAdapter, make_adapter
from storage.store import Store
from support.serving import serving

SECRET = "test-secret_0123456789"
CHAT = 424242
LIBRARIES = ["ptb", "aiogram"]
MODES = ["webhook", "polling"]
SETUPS = [(lib, mode) for lib in LIBRARIES for mode in MODES]


def fast_limiter() -> RateLimiter:
    """Flood limits out of the way for conversation tests (limits have their own tests)."""
    return RateLimiter(per_second=10_000, per_chat_per_second=10_000, chat_burst=1000)


def render_message(message: dict[str, Any]) -> str:
    lines = [message.get("text", "")]
    for number, button in enumerate(buttons(message), start=1):
        lines.append(f"{number}. {button['text']}")
    return "\n".join(lines)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


class TelegramDriver:
    """One private chat with the bot.

    `settled(update_id)` waits until the bot handled an update and sent its answer
    (`TelegramAdapter.settled`); without it the driver waits for the fake to go quiet.
    """

    def __init__(
        self,
        fake: FakeTelegram,
        *,
        mode: str,
        chat_id: int = CHAT,
        settled: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.fake = fake
        self.mode = TelegramMode(mode)
        self.chat_id = chat_id
        self._settled = settled
        self._seen = 0  # the highest message id already shown
        self._keyboard: dict[str, Any] | None = None  # the last message with buttons
        self._files = 0
        self.last = ""

    async def __aenter__(self) -> TelegramDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, text: str) -> str:
        """Type `text`, or press the button whose data or number it is."""
        press = self._button_for(text)
        if press is not None:
            update = self.fake.callback_update(self.chat_id, self._current(), press)
        else:
            update = self.fake.text_update(self.chat_id, text)
        return await self._deliver(update)

    async def upload(self, filename: str, data: bytes) -> str:
        """Send a file as a document (photos: `fake.photo_update`)."""
        self._files += 1
        file_id = f"doc{self.chat_id}-{self._files}"
        self.fake.add_file(file_id, data, path=f"documents/{file_id}_{filename}")
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return await self._deliver(
            self.fake.document_update(self.chat_id, file_id, filename, mime)
        )

    def _button_for(self, text: str) -> str | None:
        if self._keyboard is None:
            return None
        shown = buttons(self._keyboard)
        for button in shown:
            if button.get("callback_data") == text:
                return str(button["callback_data"])
        if text.strip().isdigit() and 1 <= int(text) <= len(shown):
            return str(shown[int(text) - 1]["callback_data"])
        return None

    def _current(self) -> dict[str, Any]:
        assert self._keyboard is not None
        return self.fake.messages[self.chat_id][self._keyboard["message_id"]]

    async def _deliver(self, update: dict[str, Any]) -> str:
        if self.mode is TelegramMode.WEBHOOK:
            status = await self.fake.post_webhook(update)
            assert status == 200, f"webhook answered {status}"
        else:
            self.fake.push_update(update)
        if self._settled is not None:
            await self._settled(update["update_id"])
        else:
            await self._quiet()
        return self._collect()

    async def _quiet(self, period: float = 0.3) -> None:
        count = -1
        while count != len(self.fake.calls):
            count = len(self.fake.calls)
            await asyncio.sleep(period)

    def _collect(self) -> str:
        new = [m for m in self.fake.sent(self.chat_id) if m["message_id"] > self._seen]
        if new:
            self._seen = max(m["message_id"] for m in new)
            with_buttons = [m for m in new if buttons(m)]
            if with_buttons:
                self._keyboard = with_buttons[-1]
            else:
                self._keyboard = None
        self.last = "\n\n".join(render_message(m) for m in new)
        return self.last


@dataclass
class TelegramBot:
    fake: FakeTelegram
    adapter: TelegramAdapter
    gateway: Gateway
    runtime: Runtime
    settings: TelegramSettings
    url: str  # our HTTP server

    def driver(self, chat_id: int = CHAT) -> TelegramDriver:
        return TelegramDriver(
            self.fake,
            mode=self.settings.mode.value,
            chat_id=chat_id,
            settled=self.adapter.settled,
        )


@asynccontextmanager
async def telegram_bot(
    store: Store,
    *,
    library: str,
    mode: str,
    files_dir: Path | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    limiter: RateLimiter | None = None,
    fake: FakeTelegram | None = None,
    wrap_steps: Callable[[Steps], Steps] | None = None,
    store_retry: tuple[float, float, float] | None = None,
) -> AsyncIterator[TelegramBot]:
    """A whole bot: `awardbot serve` (tests/support/serving.py) configured like a user would
    (AWARDBOT_TELEGRAM_*) against the fake Bot API; the webhook registered in webhook mode.

    Only the flood limiter and the poll timeout are the test's own: a scripted user answers
    at once, and the real 1 message/s per chat would make every test wait. `wrap_steps`
    wraps the runtime as the gateway sees it (a store that fails, a slow step);
    `store_retry` shortens polling's wait for the store (first, longest, total seconds).
    """
    async with _fake(fake) as tg:
        env = telegram_env(tg, library=library, mode=mode)
        adapters = adapter_factory(limiter=limiter, wrap_steps=wrap_steps, store_retry=store_retry)
        async with serving(
            store, env, clock=clock, files_dir=files_dir, adapters=adapters
        ) as server:
            settings = server.settings.telegram
            assert settings is not None
            adapter = server.adapters[0]
            assert isinstance(adapter, TelegramAdapter)
            if settings.mode is TelegramMode.WEBHOOK:
                tg.webhook = {"url": f"{server.url}/telegram", "secret_token": SECRET}
            yield TelegramBot(tg, adapter, server.gateway, server.runtime, settings, server.url)


def telegram_env(fake: FakeTelegram, *, library: str, mode: str) -> dict[str, str]:
    """The channel's settings as a user writes them in .env, pointed at the fake Bot API."""
    return {
        "AWARDBOT_TELEGRAM_TOKEN": fake.token,
        "AWARDBOT_TELEGRAM_LIBRARY": library,
        "AWARDBOT_TELEGRAM_MODE": mode,
        "AWARDBOT_TELEGRAM_API_BASE": fake.url,
        "AWARDBOT_TELEGRAM_WEBHOOK_SECRET": SECRET,
    }


def adapter_factory(
    *,
    limiter: RateLimiter | None = None,
    wrap_steps: Callable[[Steps], Steps] | None = None,
    store_retry: tuple[float, float, float] | None = None,
) -> Callable[..., list[ChannelAdapter]]:
    """`Server(adapters=...)`: the Telegram adapter from the settings, with the test's limiter
    and short poll timeout; `wrap_steps` wraps what the gateway runs."""

    def adapters(
        settings: Settings, gateway: Gateway, store: Store, *, clock: Any
    ) -> list[ChannelAdapter]:
        assert settings.telegram is not None
        if wrap_steps is not None:
            gateway.steps = wrap_steps(gateway.steps)
        retry = {} if store_retry is None else {"store_retry": store_retry}
        adapter = make_adapter(
            settings.telegram,
            gateway,
            clock=clock,
            limiter=limiter or fast_limiter(),
            polling_timeout=1,
            # as `serve` wires it: a step's replies stored with it, taken from the outbox
            replies=StoreReplyLedger(store, "replies:test", clock=clock),
            **retry,
        )
        return [adapter]

    return adapters


@asynccontextmanager
async def _fake(fake: FakeTelegram | None) -> AsyncIterator[FakeTelegram]:
    if fake is not None:
        yield fake
        return
    async with FakeTelegram() as tg:
        yield tg


@asynccontextmanager
async def telegram_driver(
    store: Store,
    *,
    library: str,
    mode: str,
    files_dir: Path | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> AsyncIterator[TelegramDriver]:
    """A user's chat with a whole bot (`telegram_bot`), for the cross-channel golden test."""
    async with telegram_bot(
        store, library=library, mode=mode, files_dir=files_dir, clock=clock
    ) as bot:
        yield bot.driver()
