"""aiogram 3 as the adapter's `BotClient`: updates in, Bot API calls out.

Every update goes through one outer middleware on `dp.update`, which hands it to the shared
logic (no routers, no filters: what an update means is decided in `core`). `TelegramAPIError`
and its family become `DeliveryError` at this edge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pydantic
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    GetMe,
    GetUpdates,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetWebhook,
)
from aiogram.methods.base import Response
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
)

from handlers.config import TelegramMode, TelegramSettings
from handlers.telegram.core import ALLOWED_UPDATES, POLLING_TIMEOUT, FileTooBig, OnUpdate
from handlers.telegram.render import Outgoing, read_update
from notifications.senders import DeliveryError

# aiogram parses every answer as `Response[<the method's result type>]`, a pydantic generic that
# pydantic caches only weakly: between two calls it is often collected and built again (~230
# rebuilds in a 300-user benchmark, each several ms). Holding the ones this adapter uses keeps
# them built (found by benchmarks/bench_library.py's profile).
_RESPONSE_TYPES = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (
        AnswerCallbackQuery, DeleteWebhook, EditMessageReplyMarkup, EditMessageText, GetFile,
        GetMe, GetUpdates, SendDocument, SendMessage, SendPhoto, SetWebhook,
    )
)  # fmt: skip


def translate(exc: AiogramError) -> DeliveryError:
    """aiogram's exception as our own: retryable unless the recipient cannot be reached."""
    name = type(exc).__name__
    message = getattr(exc, "message", "") or str(exc)
    if isinstance(exc, TelegramRetryAfter):
        wait = timedelta(seconds=exc.retry_after)
        return DeliveryError(
            f"telegram 429: retry after {exc.retry_after} s", retryable=True, retry_after=wait
        )
    if isinstance(
        exc,
        TelegramForbiddenError
        | TelegramBadRequest
        | TelegramNotFound
        | TelegramUnauthorizedError
        | TelegramMigrateToChat,
    ):
        return DeliveryError(f"telegram {name}: {message}", retryable=False)
    return DeliveryError(f"telegram {name}: {message}", retryable=True)


@asynccontextmanager
async def _edge() -> AsyncIterator[None]:
    try:
        yield
    except AiogramError as exc:
        raise translate(exc) from None


def _markup(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.keyboard:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=b.data) for b in row]
            for row in message.keyboard
        ]
    )


def _bot(settings: TelegramSettings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.api_base))
    return Bot(settings.token, session=session)


class AiogramClient:
    """The Bot API through aiogram's `Bot` and `Dispatcher`."""

    def __init__(
        self, settings: TelegramSettings, *, polling_timeout: int = POLLING_TIMEOUT
    ) -> None:
        self._polling = settings.mode is TelegramMode.POLLING
        self._polling_timeout = polling_timeout
        self.bot = _bot(settings)
        self.dispatcher = Dispatcher()
        self.dispatcher.update.outer_middleware(self._middleware)
        self._on_update: OnUpdate | None = None
        self._poller: asyncio.Task[None] | None = None

    async def _middleware(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> None:
        assert self._on_update is not None
        if isinstance(event, Update):
            await self._on_update(read_update(event, Message))

    async def start(self, on_update: OnUpdate) -> None:
        self._on_update = on_update
        async with _edge():
            await self.bot.get_me()
            if self._polling:
                await self.bot.delete_webhook()  # getUpdates is refused while one is set
        if self._polling:
            self._poller = asyncio.get_running_loop().create_task(
                self.dispatcher.start_polling(
                    self.bot,
                    polling_timeout=self._polling_timeout,
                    handle_as_tasks=False,  # one update after the other: replies stay in order
                    allowed_updates=list(ALLOWED_UPDATES),
                    handle_signals=False,
                    close_bot_session=False,
                )
            )

    async def stop(self) -> None:
        poller, self._poller = self._poller, None
        if poller is None:
            return
        if not poller.done():
            with contextlib.suppress(RuntimeError):  # not polling (yet)
                await self.dispatcher.stop_polling()
        try:
            await asyncio.wait_for(poller, timeout=self._polling_timeout + 5)
        except TimeoutError:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def close(self) -> None:
        await self.bot.session.close()

    async def feed(self, data: dict[str, Any]) -> None:
        try:
            update = Update.model_validate(data, context={"bot": self.bot})
        except pydantic.ValidationError as exc:
            raise ValueError(f"not a Telegram update: {exc.error_count()} errors") from None
        except Exception as exc:  # noqa: BLE001 - whatever else parsing raises: malformed
            raise ValueError(f"not a Telegram update: {type(exc).__name__}") from None
        await self.dispatcher.feed_update(self.bot, update)

    async def send_message(self, chat_id: int | str, message: Outgoing) -> int:
        async with _edge():
            sent = await self.bot.send_message(
                chat_id=chat_id, text=message.text, reply_markup=_markup(message)
            )
        return sent.message_id

    async def send_photo(self, chat_id: int | str, filename: str, data: bytes) -> int:
        async with _edge():
            sent = await self.bot.send_photo(
                chat_id=chat_id,
                photo=BufferedInputFile(data, filename=filename),
                caption=filename,
            )
        return sent.message_id

    async def send_document(self, chat_id: int | str, filename: str, data: bytes) -> int:
        async with _edge():
            sent = await self.bot.send_document(
                chat_id=chat_id, document=BufferedInputFile(data, filename=filename)
            )
        return sent.message_id

    async def edit_text(self, chat_id: int, message_id: int, text: str) -> None:
        async with _edge():
            await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id)

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
            if file.file_path is None:
                raise DeliveryError("telegram getFile: no file_path", retryable=False)
            buffer = await self.bot.download_file(file.file_path)
        assert buffer is not None
        return buffer.read()


async def set_webhook(settings: TelegramSettings, url: str) -> None:
    """Register `url` (with the secret header) for message and callback_query updates."""
    bot = _bot(settings)
    try:
        async with _edge():
            await bot.set_webhook(
                url,
                secret_token=settings.webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
            )
    finally:
        await bot.session.close()


async def delete_webhook(settings: TelegramSettings) -> None:
    bot = _bot(settings)
    try:
        async with _edge():
            await bot.delete_webhook()
    finally:
        await bot.session.close()
