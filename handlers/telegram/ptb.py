"""python-telegram-bot as the adapter's `BotClient`: updates in, Bot API calls out.

Thin on purpose: it converts PTB's `Update` into `Incoming`, makes the calls `core` asks for, and
turns `telegram.error.*` into `DeliveryError` at this edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

# PTB 22 deprecates int time periods and warns on every RetryAfter unless this opt-in is set;
# we read `retry_after` only, and take either type.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram import error as tg
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from handlers.config import TelegramMode, TelegramSettings
from handlers.telegram.core import ALLOWED_UPDATES, POLLING_TIMEOUT, FileTooBig, OnUpdate
from handlers.telegram.render import Outgoing, read_update
from notifications.senders import DeliveryError

log = logging.getLogger(__name__)


def _retry_after(exc: tg.RetryAfter) -> timedelta:
    with warnings.catch_warnings():  # int seconds are deprecated in 22.x; either is fine here
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def translate(exc: tg.TelegramError) -> DeliveryError:
    """PTB's exception as our own: retryable unless the recipient cannot be reached."""
    name = type(exc).__name__
    if isinstance(exc, tg.RetryAfter):
        wait = _retry_after(exc)
        return DeliveryError(
            f"telegram 429: retry after {wait.total_seconds():g} s",
            retryable=True,
            retry_after=wait,
        )
    if isinstance(exc, tg.Forbidden | tg.InvalidToken | tg.ChatMigrated):
        return DeliveryError(f"telegram {name}: {exc.message}", retryable=False)
    if isinstance(exc, tg.BadRequest):  # before NetworkError: BadRequest is one of them
        return DeliveryError(f"telegram BadRequest: {exc.message}", retryable=False)
    return DeliveryError(f"telegram {name}: {exc.message}", retryable=True)


@asynccontextmanager
async def _edge() -> AsyncIterator[None]:
    try:
        yield
    except tg.TelegramError as exc:
        raise translate(exc) from None


def _markup(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
            for row in message.keyboard
        ]
    )


def _polling_failed(exc: tg.TelegramError) -> None:
    log.warning("telegram getUpdates failed (retrying): %s", translate(exc).reason)


class PtbClient:
    """The Bot API through python-telegram-bot's `Application`."""

    def __init__(
        self, settings: TelegramSettings, *, polling_timeout: int = POLLING_TIMEOUT
    ) -> None:
        self._polling = settings.mode is TelegramMode.POLLING
        self._polling_timeout = polling_timeout
        builder = (
            ApplicationBuilder()
            .token(settings.token)
            .base_url(f"{settings.api_base}/bot")
            .base_file_url(f"{settings.api_base}/file/bot")
            # PTB's default pool is 256 connections, and httpx scans its pool on every
            # request: with replies sent concurrently ~100 stayed open and each send paid for
            # them (benchmarks/bench_http.py's profile). The flood limit keeps sends to 30/s;
            # 8 connections carry that, and a send waits for one rather than failing.
            .request(HTTPXRequest(connection_pool_size=8, pool_timeout=30.0))
        )
        # No PTB Updater in either mode: webhook updates come from our own route, and polling is
        # our own loop (`_poll`), because the Updater confirms an update to Telegram as soon as
        # it has queued it, before its step committed: a kill -9 in between lost the answer
        # (issue 8, found by tests/reliability/test_kill_conversations.py).
        builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._handle))
        self._on_update: OnUpdate | None = None
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    @property
    def bot(self) -> Bot:
        bot: Bot = self.application.bot
        return bot

    async def _handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert self._on_update is not None
        await self._on_update(read_update(update, Message))

    async def start(self, on_update: OnUpdate) -> None:
        self._on_update = on_update
        async with _edge():
            await self.application.initialize()  # getMe
            if self._polling:
                await self.bot.delete_webhook()  # getUpdates is refused while one is set
            await self.application.start()
        if self._polling:
            self._stopping.clear()
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """getUpdates; each update handled to its end, in order; then the next getUpdates,
        whose offset tells Telegram those updates are done. An update whose step had not
        committed when the process died is therefore sent again (and deduplicated by its
        update_id if it had)."""
        offset: int | None = None
        delay = 1.0
        while not self._stopping.is_set():
            fetch = asyncio.ensure_future(
                self.bot.get_updates(
                    offset=offset,
                    timeout=timedelta(seconds=self._polling_timeout),
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            )
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not fetch.done():  # stopping: what this call would return stays unconfirmed
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, tg.TelegramError):
                    await fetch
                return
            try:
                updates = fetch.result()
            except tg.TelegramError as exc:
                _polling_failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            for update in updates:
                await self.application.process_update(update)
                offset = update.update_id + 1
                if self._stopping.is_set():
                    return  # the rest of the batch stays unconfirmed for the next process

    async def stop(self) -> None:
        self._stopping.set()
        poller, self._poller = self._poller, None
        if poller is not None:
            await poller
        if self.application.running:
            await self.application.stop()

    async def close(self) -> None:
        await self.application.shutdown()

    async def feed(self, data: dict[str, Any]) -> None:
        try:
            update = Update.de_json(data, self.bot)
        except Exception as exc:  # noqa: BLE001 - TypeError, KeyError, OverflowError...: malformed
            raise ValueError(f"not a Telegram update: {type(exc).__name__}") from None
        await self.application.process_update(update)

    async def send_message(self, chat_id: int | str, message: Outgoing) -> int:
        async with _edge():
            sent = await self.bot.send_message(
                chat_id, message.text, reply_markup=_markup(message)
            )
        return sent.message_id

    async def send_photo(self, chat_id: int | str, filename: str, data: bytes) -> int:
        async with _edge():
            sent = await self.bot.send_photo(
                chat_id, InputFile(data, filename=filename), caption=filename
            )
        return sent.message_id

    async def send_document(self, chat_id: int | str, filename: str, data: bytes) -> int:
        async with _edge():
            sent = await self.bot.send_document(chat_id, InputFile(data, filename=filename))
        return sent.message_id

    async def edit_text(self, chat_id: int, message_id: int, text: str) -> None:
        async with _edge():
            await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)

    async def remove_keyboard(self, chat_id: int, message_id: int) -> None:
        async with _edge():
            await self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id)

    async def answer_callback(self, callback_id: str, text: str | None) -> None:
        async with _edge():
            await self.bot.answer_callback_query(callback_id, text=text)

    async def download(self, file_id: str, limit: int) -> bytes:
        async with _edge():
            file = await self.bot.get_file(file_id)
            if file.file_size is not None and file.file_size > limit:
                raise FileTooBig(file.file_size)
            return bytes(await file.download_as_bytearray())


async def set_webhook(settings: TelegramSettings, url: str) -> None:
    """Register `url` (with the secret header) for message and callback_query updates."""
    async with _edge(), _bare_bot(settings) as bot:
        await bot.set_webhook(
            url,
            secret_token=settings.webhook_secret,
            allowed_updates=list(ALLOWED_UPDATES),
        )


async def delete_webhook(settings: TelegramSettings) -> None:
    async with _edge(), _bare_bot(settings) as bot:
        await bot.delete_webhook()


def _bare_bot(settings: TelegramSettings) -> Bot:
    return Bot(
        settings.token,
        base_url=f"{settings.api_base}/bot",
        base_file_url=f"{settings.api_base}/file/bot",
    )
