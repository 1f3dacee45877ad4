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

from aiohttp import web
from fakes.telegram_api import FakeTelegram

from bot.runtime import Runtime
from bot.wiring import workday_end_from
from conversations.assistant import Assistant
from conversations.engine import Engine
from handlers.base import Gateway
from handlers.config import TelegramLibrary, TelegramMode, TelegramSettings
from handlers.telegram import RateLimiter, TelegramAdapter, make_adapter
from notifications.calendar import WorkdayCalendar
from storage.files import FileStore
from storage.store import Store
from support.console_harness import CAMPAIGNS, FIXED_NOW, SHARED_FILES, catalog, regions

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


def build_runtime(
    store: Store, files_dir: Path, clock: Callable[[], dt.datetime] | None = None
) -> Runtime:
    engine = Engine(catalog(), clock=clock or (lambda: FIXED_NOW))
    return Runtime(
        Assistant(catalog(), engine),
        store,
        regions(),
        files=FileStore(files_dir, store.sealer),
        workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
    )


@asynccontextmanager
async def serve_app(routes: Any) -> AsyncIterator[str]:
    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.add_routes(routes)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


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
) -> AsyncIterator[TelegramBot]:
    """A whole bot on 127.0.0.1 against the fake Bot API (webhook registered in webhook mode)."""
    async with _fake(fake) as tg:
        settings = TelegramSettings(
            tg.token, TelegramLibrary(library), TelegramMode(mode), tg.url, SECRET
        )
        runtime = build_runtime(store, files_dir or SHARED_FILES, clock)
        gateway = Gateway(runtime)
        adapter = make_adapter(
            settings,
            gateway,
            clock=clock or (lambda: FIXED_NOW),
            limiter=limiter or fast_limiter(),
            polling_timeout=1,
        )
        try:
            async with serve_app(adapter.routes()) as url:
                if settings.mode is TelegramMode.WEBHOOK:
                    tg.webhook = {"url": f"{url}/telegram", "secret_token": SECRET}
                await adapter.start()
                try:
                    yield TelegramBot(tg, adapter, gateway, runtime, settings, url)
                finally:
                    await adapter.stop()
        finally:
            gateway.shutdown()


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
