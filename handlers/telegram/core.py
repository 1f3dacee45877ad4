"""The Telegram adapter: one behaviour, whichever library talks to the Bot API.

`TelegramAdapter` owns everything the user can notice — the webhook route and its secret, what
each kind of update means, the replies and their order, files, limits and retries. The library
modules (`ptb`, `aiogram_adapter`) are a `BotClient`: they receive updates (webhook feed or
their own polling), turn them into `Incoming` values, and make the Bot API calls asked of them,
raising only `DeliveryError` / `FileTooBig` (their SDK exceptions are translated there).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import functools
import hmac
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import timedelta
from typing import Any, Protocol

from aiohttp import web

from conversations.engine import Reply
from conversations.filing import Upload
from conversations.texts import render
from handlers.base import MAX_FILE, Gateway, Unavailable, load_replies, note_outcome, reply_part
from handlers.config import TelegramMode, TelegramSettings
from handlers.ports import Attachments, ReplyLedger
from handlers.telegram import shape
from handlers.telegram.files import FileSender, OutgoingFile, files_of
from handlers.telegram.limits import RateLimiter
from handlers.telegram.render import (
    DOWNLOAD_FAILED,
    PRIVATE_ONLY,
    STALE_BUTTON,
    TOO_BIG,
    UNSUPPORTED,
    Incoming,
    Kind,
    Outgoing,
    chosen_text,
    command_text,
    render_notification,
    render_reply,
    too_big,
)
from notifications.senders import DeliveryError

log = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
REPLY_ATTEMPTS = 5  # a reply survives this many retryable failures (429s, timeouts)
SEND_TIMEOUT = 60.0  # seconds an outbox send may take, waits for the rate limit included
POLLING_TIMEOUT = 25  # seconds of getUpdates long polling
REMEMBERED_UPDATES = 2048
# Polling has no HTTP answer to make Telegram send an update again: while the store is down the
# step is retried here, backing off, for about a minute, before the user is asked to resend.
STORE_RETRY_FOR = 60.0  # seconds
STORE_RETRY_FIRST = 1.0  # the first wait; doubled after each failure...
STORE_RETRY_CAP = 10.0  # ...up to this


class _Outcome:
    """What became of the webhook update being fed, carried back from `_on_update` past the
    library (PTB's `process_update` and aiogram's `feed_update` swallow handler errors)."""

    __slots__ = ("malformed", "unavailable")

    def __init__(self) -> None:
        self.unavailable = False  # the store was down: nothing recorded, answer 503
        self.malformed = False  # a field read was not what the Bot API says: answer 400


# Set by `_webhook` around `client.feed`; the library runs the handler in the same task (or a
# copy of its context), so `_on_update` finds it. None in polling mode.
_FEEDING: contextvars.ContextVar[_Outcome | None] = contextvars.ContextVar(
    "telegram_feeding", default=None
)


class FileTooBig(Exception):
    """getFile said the file is larger than we accept; nothing was downloaded."""


OnUpdate = Callable[[Incoming], Awaitable[None]]


class BotClient(Protocol):
    """What a library module does for the adapter (all errors as DeliveryError)."""

    async def start(self, on_update: OnUpdate) -> None:
        """Initialise (getMe); in polling mode start the library's polling."""

    async def stop(self) -> None:
        """Stop polling (no new updates); the client still sends."""

    async def close(self) -> None:
        """Close the HTTP session."""

    async def feed(self, data: dict[str, Any]) -> None:
        """A webhook update, through the library to `on_update`; ValueError if malformed."""

    async def send_message(self, chat_id: int | str, message: Outgoing) -> int:
        """Send; returns the new message id."""

    async def send_photo(self, chat_id: int | str, filename: str, data: bytes) -> int:
        """sendPhoto (multipart), the name as its caption; returns the new message id."""

    async def send_document(self, chat_id: int | str, filename: str, data: bytes) -> int:
        """sendDocument (multipart) under `filename`; returns the new message id."""

    async def edit_text(self, chat_id: int, message_id: int, text: str) -> None:
        """Replace a message's text (its inline keyboard goes)."""

    async def remove_keyboard(self, chat_id: int, message_id: int) -> None: ...

    async def answer_callback(self, callback_id: str, text: str | None) -> None: ...

    async def download(self, file_id: str, limit: int) -> bytes:
        """getFile then the file's bytes; FileTooBig above `limit`."""


def chat_target(recipient_id: str) -> int | str:
    """Chat ids are integers; `@channelname` stays a string."""
    try:
        return int(recipient_id)
    except ValueError:
        return recipient_id


class TelegramAdapter:
    """One bot inside `awardbot serve` (see `handlers.base.ChannelAdapter`)."""

    channel = CHANNEL

    def __init__(
        self,
        settings: TelegramSettings,
        gateway: Gateway,
        client: BotClient,
        *,
        limiter: RateLimiter | None = None,
        reply_attempts: int = REPLY_ATTEMPTS,
        send_timeout: float = SEND_TIMEOUT,
        store_retry: tuple[float, float, float] = (
            STORE_RETRY_FIRST,
            STORE_RETRY_CAP,
            STORE_RETRY_FOR,
        ),
        attachments: Attachments | None = None,
        replies: ReplyLedger | None = None,
    ) -> None:
        self.settings = settings
        # With a ledger, a step's replies are stored with it and taken from there to send: a
        # process that dies after the commit leaves them to the dispatcher (issue 9).
        self._ledger = replies
        self.gateway = gateway
        self.client = client
        self.limiter = limiter or RateLimiter()
        self._files = FileSender(client, attachments, gateway)  # what reviewers open
        self._attempts = reply_attempts
        self._send_timeout = send_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._done: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._changed = asyncio.Event()  # replaced by a new one at each settle
        self._store_retry = store_retry  # first wait, longest wait, total (polling mode)
        self._ready = False  # the client started: the webhook takes updates (issue 8)
        self._stopping = asyncio.Event()  # cuts a polling retry short at shutdown

    # ----- ChannelAdapter ---------------------------------------------------------------

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        if self.settings.mode is TelegramMode.WEBHOOK:
            return [web.post("/telegram", self._webhook)]
        return []

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        await self.client.start(self._on_update)
        # Only now: `serve` listens before the channels start, and python-telegram-bot cannot
        # process an update before `Application.initialize()` has finished (issue 8).
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        self._stopping.set()  # a polling update waiting for the store gives up now
        await self.client.stop()  # no new updates from polling
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._send_timeout)
        self._loop = None
        await self.client.close()

    def sender(self) -> TelegramSender:
        return TelegramSender(self)

    # ----- inbound ----------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        """Telegram's POST: 503 while not ready (it retries), 403 without the secret, 400 for
        anything that is not a well-formed update (nothing recorded), else 200."""
        if self.gateway.closing:
            return web.Response(status=503, text="shutting down")
        if not self._ready:
            note_outcome("unavailable", "starting")  # like shutdown: retried
            return web.Response(status=503, text="starting")
        secret = (self.settings.webhook_secret or "").encode()
        # aiohttp hands undecodable header bytes over as surrogates: encode them back as such.
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not secret or not hmac.compare_digest(given, secret):
            self.gateway.metrics.inc("awardbot_errors_total", channel=CHANNEL, kind="bad_secret")
            note_outcome("refused", "bad_secret")
            return web.Response(status=403, text="forbidden")
        try:
            data = shape.parse_update(await request.read())
        except shape.Malformed as exc:
            return self._refuse(exc.reason, str(exc))
        outcome = _Outcome()
        feeding = _FEEDING.set(outcome)
        try:
            await self.client.feed(data)
        except ValueError:  # the library's own parsing refused it
            return self._refuse(shape.SHAPE, "bad update")
        finally:
            _FEEDING.reset(feeding)
        if outcome.unavailable:
            # Nothing was recorded and nothing sent: Telegram sends the update again later.
            note_outcome("unavailable", "store")
            return web.Response(status=503, text="temporarily unavailable, retry")
        if outcome.malformed:
            return self._refuse(shape.SHAPE, "bad update")
        return web.Response(text="ok")

    def _refuse(self, reason: str, text: str) -> web.Response:
        self.gateway.metrics.inc("awardbot_errors_total", channel=CHANNEL, kind="bad_update")
        note_outcome("refused", reason)
        return web.Response(status=400, text=text)

    async def _on_update(self, update: Incoming) -> None:
        """Every update of both modes and libraries; never raises (logged, counted)."""
        try:
            if update.update_id in self._done:
                # A repeat this process has just handled (the store dedupes the rest).
                self.gateway.metrics.inc("awardbot_updates_duplicate_total", channel=CHANNEL)
                note_outcome("duplicate")
                return
            await self._dispatch(update)
        except Unavailable:
            self._unavailable(update)
        except Exception as exc:  # noqa: BLE001 - one bad update must not stop the others
            self.gateway.metrics.inc("awardbot_errors_total", channel=CHANNEL, kind="update")
            log.error("telegram update failed: %s", type(exc).__name__)
            self._settle(update.update_id)

    def _unavailable(self, update: Incoming) -> None:
        """The step could not run: the store is down (nothing was recorded)."""
        self.gateway.metrics.inc(
            "awardbot_errors_total", channel=CHANNEL, kind="store_unavailable"
        )
        outcome = _FEEDING.get()
        if outcome is not None:
            # Webhook: a 503, and Telegram sends the update again. Not settled, so the retry
            # is not taken for a repeat; nothing is sent to the user.
            outcome.unavailable = True
            return
        # Polling: `_step` kept trying for about a minute (or the bot is stopping); the library
        # takes the next update once this one returns, so the user is asked to send it again.
        log.warning("telegram update %s given up: the store stayed unavailable", update.update_id)
        if update.chat_id is None:
            self._settle(update.update_id)
            return
        self._note(update.update_id, update.chat_id, render("step_failed"))

    async def _dispatch(self, update: Incoming) -> None:
        if update.kind is Kind.MALFORMED:
            outcome = _FEEDING.get()
            if outcome is not None:
                # The webhook answers 400 and counts it. Not settled: a real update with this
                # id is still new (a 400 records nothing, here as in the store).
                outcome.malformed = True
                return
            self.gateway.metrics.inc("awardbot_errors_total", channel=CHANNEL, kind="bad_update")
            log.warning("telegram update %s not understood: ignored", update.update_id)
            self._settle(update.update_id)
            return
        if update.kind is Kind.IGNORED or update.chat_id is None:
            note_outcome("ignored")  # a service message, an edit...: no step, nothing sent
            self._settle(update.update_id)
            return
        chat = update.chat_id
        if update.kind is Kind.CALLBACK:
            await self._on_press(update, chat)
            return
        if not update.private:
            self._note(update.update_id, chat, PRIVATE_ONLY)
            return
        if update.kind is Kind.TEXT:
            replies = await self._step(update, command_text(update.text))
            self._deliver_replies(update.update_id, chat, replies)
        elif update.kind is Kind.FILE:
            replies = await self._on_file(update, chat)
            if replies is not None:
                self._deliver_replies(update.update_id, chat, replies)
        else:
            self._note(update.update_id, chat, UNSUPPORTED)

    async def _step(
        self, update: Incoming, text: str, upload: Upload | None = None
    ) -> list[Reply] | None:
        """(Also: the update's id orders it within its chat; a button says which question
        it answers; with a ledger the replies are stored with the step.)"""
        """The step; Unavailable when the store is down — at once in a webhook request (the
        503 makes Telegram retry), after about a minute of retries in polling mode (the chat's
        next update waits: both libraries hand updates over one after the other)."""
        assert update.chat_id is not None
        first, cap, total = self._store_retry
        loop = asyncio.get_running_loop()
        deadline = loop.time() + total
        wait = first
        while True:
            try:
                return await self.gateway.handle(
                    CHANNEL,
                    str(update.chat_id),
                    text,
                    upload,
                    delivery_id=str(update.update_id),
                    answers=update.answers,
                    sequence=update.update_id,
                    store_replies=self._ledger is not None,
                )
            except Unavailable:
                if _FEEDING.get() is not None or self._stopping.is_set():
                    raise
                if loop.time() + wait > deadline:
                    raise
                log.warning("telegram step waits for the store: retrying in %gs", wait)
                with contextlib.suppress(TimeoutError):  # waited, or stopping: try once more
                    await asyncio.wait_for(self._stopping.wait(), wait)
                wait = min(wait * 2, cap)

    async def _on_press(self, update: Incoming, chat: int) -> None:
        # Whether the button still answers the current question is the core's to say (the
        # turn in its callback_data), on whatever worker, after whatever restart.
        stale = not update.private or not update.text
        replies = None if stale else await self._step(update, update.text)
        # No replies from a step: the core refused a press meant for another question.
        out_of_date = stale or replies == []
        try:
            await self.client.answer_callback(
                update.callback_id or "", STALE_BUTTON if out_of_date and update.text else None
            )
        except DeliveryError as exc:
            self._error("answer_callback", exc)
        if out_of_date:
            if stale:
                note_outcome("ignored")  # answered by the adapter, no step
            if update.message_id is not None and update.text:
                await self._quietly(self.client.remove_keyboard(chat, update.message_id))
            self._settle(update.update_id)
            return
        if replies is None:
            self._settle(update.update_id)
            return
        edit = None
        if update.message_id is not None:
            shown = chosen_text(update.message_text or "", update.pressed_label or update.text)
            message_id = update.message_id
            edit = (
                self.client.edit_text(chat, message_id, shown)
                if shown is not None and update.message_text
                else self.client.remove_keyboard(chat, message_id)
            )
        self._deliver_replies(update.update_id, chat, replies, before=edit)

    async def _on_file(self, update: Incoming, chat: int) -> list[Reply] | None:
        """The step with the file; None when a note was sent instead (the step did not run)."""
        if update.file_size is not None and update.file_size > MAX_FILE:
            self._note(update.update_id, chat, too_big(update.file_size))
            return None
        try:
            data = await self.client.download(update.file_id or "", MAX_FILE)
        except FileTooBig:
            data = None
        except DeliveryError as exc:
            self._error("download", exc)
            self._note(update.update_id, chat, DOWNLOAD_FAILED)
            return None
        if data is None or len(data) > MAX_FILE:
            self._note(update.update_id, chat, TOO_BIG)
            return None
        replies = await self._step(update, "", Upload(update.filename or "file", data))
        if replies is None:
            self._settle(update.update_id)
        return replies

    # ----- outbound ---------------------------------------------------------------------

    def _deliver_replies(
        self,
        update_id: int,
        chat: int,
        replies: list[Reply] | None,
        *,
        before: Awaitable[None] | None = None,
    ) -> None:
        if replies is None:  # a repeat delivery: answered the first time
            self._settle(update_id)
            return
        groups = [[*render_reply(r), *files_of(r)] for r in replies]
        if self._ledger is None:
            self._deliver(update_id, chat, [m for g in groups for m in g], before=before)
            return
        self._deliver_stored(update_id, chat, groups, before=before)

    def _note(self, update_id: int, chat: int, text: str) -> None:
        """A word from the adapter itself; the conversation and its keyboard stay as they were
        (for /metrics the request was "ignored": answered without a step)."""
        note_outcome("ignored")
        self._deliver(update_id, chat, [Outgoing(text)])

    def _deliver(
        self,
        update_id: int,
        chat: int,
        messages: list[Outgoing | OutgoingFile],
        *,
        before: Awaitable[None] | None = None,
    ) -> None:
        """Send in the background (the webhook answers now), in order, within the limits."""

        async def run() -> None:
            try:
                if before is not None:
                    await self._quietly(before)
                await self._send_replies(chat, messages)
            finally:
                self._settle(update_id)

        self._background(run())

    def _deliver_stored(
        self,
        update_id: int,
        chat: int,
        groups: list[list[Outgoing | OutgoingFile]],
        *,
        before: Awaitable[None] | None = None,
    ) -> None:
        """A step's replies, stored with it one row per reply: each is taken from the ledger
        just before it is sent and settled after, so a kill leaves at most the one in flight
        uncertain; the rest wait for the dispatcher (None: someone else has it)."""
        ledger = self._ledger
        assert ledger is not None

        async def run() -> None:
            try:
                if before is not None:  # the pressed keyboard's edit comes first
                    await self._quietly(before)
                for index, messages in enumerate(groups):
                    # The flood limit's wait comes before the take: a reply is in flight (of
                    # unknown outcome, were the process killed) only while it is being sent.
                    await self.limiter.acquire(str(chat))
                    ticket = await self.gateway.run(
                        ledger.take, CHANNEL, reply_part(str(update_id), index)
                    )
                    if ticket is None:
                        continue
                    sent, error = await self._send_replies(chat, messages, acquired=True)
                    await self.gateway.run(
                        functools.partial(
                            ledger.settle,
                            ticket,
                            sent=sent,
                            error=None if error is None else error.reason,
                            retryable=error is not None and error.retryable,
                        )
                    )
                    if error is not None:
                        return  # blocked or gone: the rest would fail the same way
            finally:
                self._settle(update_id)

        self._background(run())

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.gateway.spawn(coro, channel=CHANNEL)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_replies(
        self,
        chat: int | str,
        messages: list[Outgoing | OutgoingFile],
        *,
        acquired: bool = False,
    ) -> tuple[int, DeliveryError | None]:
        """Send in order; (how many went out, why the rest did not). `acquired`: the first
        message's limiter slot is already taken."""
        sent = 0
        for message in messages:
            for attempt in range(1, self._attempts + 1):
                try:
                    await self._send(
                        chat, message, acquired=acquired and sent == 0 and attempt == 1
                    )
                    sent += 1
                    break
                except DeliveryError as exc:
                    if not exc.retryable or attempt == self._attempts:
                        self._error("reply", exc)
                        return sent, exc  # blocked, or gone: the rest would fail the same way
                    if exc.retry_after is None:  # 429 waits in the limiter; others back off
                        await asyncio.sleep(min(2.0 ** (attempt - 1), 30.0))
        return sent, None

    async def resend(self, recipient_id: str, payload: str, *, acquired: bool = False) -> None:
        """A step's stored replies the channel never took (the dispatcher's, after a crash);
        `acquired`: the first message's limiter slot is taken (`TelegramSender.reserve`)."""
        replies = load_replies(payload)
        messages = [m for r in replies for m in (*render_reply(r), *files_of(r))]
        sent, error = await self._send_replies(recipient_id, messages, acquired=acquired)
        if error is not None:
            raise DeliveryError(
                f"{sent} of {len(messages)} sent: {error.reason}",
                retryable=sent == 0 and error.retryable,
                retry_after=error.retry_after,
            )

    async def _send(
        self, chat: int | str, message: Outgoing | OutgoingFile, *, acquired: bool = False
    ) -> int:
        """One message through the shared limiter (`acquired`: its slot was taken already); a
        429 pauses the chat, then raises."""
        key = str(chat)
        if not acquired:
            await self.limiter.acquire(key)
        try:
            if isinstance(message, OutgoingFile):
                message_id = await self._files.send(chat, message)
            else:
                message_id = await self.client.send_message(chat, message)
        except DeliveryError as exc:
            if exc.retry_after is not None:
                self.limiter.pause(key, exc.retry_after.total_seconds())
            raise
        self.gateway.metrics.inc("awardbot_replies_sent_total", channel=CHANNEL)
        return message_id

    async def notify(self, recipient_id: str, text: str, *, acquired: bool = False) -> None:
        """An outbox notification; DeliveryError (with retry_after on 429) if not accepted.
        `acquired`: the first piece's limiter slot is taken (`TelegramSender.reserve`)."""
        pieces = render_notification(text)
        if not pieces:
            raise DeliveryError("empty notification", retryable=False)
        for index, piece in enumerate(pieces):
            await self._send(chat_target(recipient_id), piece, acquired=acquired and index == 0)

    async def _quietly(self, call: Awaitable[None]) -> None:
        try:
            await call
        except DeliveryError as exc:
            self._error("edit", exc)

    def _error(self, kind: str, exc: DeliveryError) -> None:
        self.gateway.metrics.inc("awardbot_errors_total", channel=CHANNEL, kind=kind)
        log.warning("telegram %s failed: %s", kind, exc.reason)

    # ----- for tests and drivers --------------------------------------------------------

    def _settle(self, update_id: int) -> None:
        self._done[update_id] = None
        while len(self._done) > REMEMBERED_UPDATES:
            self._done.popitem(last=False)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def settled(self, update_id: int, wait: float = 10.0) -> None:
        """Wait until the update was handled and its replies sent (or given up)."""
        async with asyncio.timeout(wait):
            while update_id not in self._done:
                await self._changed.wait()


class TelegramSender:
    """The outbox's Telegram sender; `send` runs on the dispatcher's thread.

    `reserve` (`notifications.senders.ReservingSender`) waits for the flood limit's slot
    before the dispatcher marks the row in flight (issue 13: a kill during that wait lost the
    notice); the next send to that chat on the same thread uses the slot, and `unreserve`, or
    any other send, drops one not used."""

    channel = CHANNEL
    idempotent = False  # Telegram has no idempotency key: a resend may arrive twice

    def __init__(self, adapter: TelegramAdapter) -> None:
        self._adapter = adapter
        self._reserved = threading.local()  # .chat: whose next send's slot this thread holds

    def reserve(self, recipient_id: str) -> None:
        self._reserved.chat = None
        self._run(self._adapter.limiter.acquire(str(chat_target(recipient_id))))
        self._reserved.chat = recipient_id

    def unreserve(self, recipient_id: str) -> None:
        self._reserved.chat = None

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        acquired = self._take_reservation(recipient_id)
        self._run(self._adapter.notify(recipient_id, text, acquired=acquired))

    def send_replies(self, recipient_id: str, payload: str, idempotency_key: str) -> None:
        acquired = self._take_reservation(recipient_id)
        self._run(self._adapter.resend(recipient_id, payload, acquired=acquired))

    def _take_reservation(self, recipient_id: str) -> bool:
        """Whether this send's first slot is reserved; the reservation is used up either way."""
        chat = getattr(self._reserved, "chat", None)
        self._reserved.chat = None
        return chat is not None and chat == recipient_id

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        loop = self._adapter._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise DeliveryError("telegram adapter not running", retryable=True)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("TelegramSender.send blocks: call it from a worker thread")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            future.result(self._adapter._send_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise DeliveryError("telegram send timed out", retryable=True) from None
        except concurrent.futures.CancelledError:
            raise DeliveryError("telegram adapter stopped", retryable=True) from None


def retry_after(seconds: float | int | timedelta) -> timedelta:
    return seconds if isinstance(seconds, timedelta) else timedelta(seconds=float(seconds))
