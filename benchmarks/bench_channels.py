"""Webhook throughput and latency of `awardbot serve`, against the libraries' own webhooks.

One process, one run. N simulated users (default 50) each send M messages (default 20) one after
the other, all users at once (asyncio, one aiohttp client), with distinct chat ids / openids, to:

  ours-tg-ptb       `awardbot serve` (bot.server.Server, real SQLite Store in a temp dir, built as
                    tests/support/serving.py builds it): POST /telegram with the secret header,
                    python-telegram-bot adapter; replies go to a fake Bot API (tests/fakes)
  ours-tg-aiogram   the same with the aiogram adapter
  ours-wx-plain     the same server: WeChat Official Account plaintext POST /wechat, passive reply
  ours-wx-aes       the same in safe mode (AES-encrypted push and reply)

and, in the same run on the same machine and the same fake Bot API, the floors:

  ptb-webhook       python-telegram-bot's `Application` with a CommandHandler + MessageHandler echo
                    that replies (`reply_text`), fed by `application.process_update` from a bare
                    aiohttp route (secret checked, no persistence)
  aiogram-webhook   aiogram's own `SimpleRequestHandler` + a Dispatcher with a Command and a text
                    echo handler that reply (`message.answer`); default MemoryStorage, unused
  wechatpy-plain    a bare aiohttp route: `check_signature`, `parse_message`, `TextReply` echo
  wechatpy-aes      the same with `WeChatCrypto` decrypt / encrypt (safe mode)

Ours runs a real conversation: "/start", then the self-check of jl-skills-2022 /
technical_expert up to its verdict (13 messages), then "/restart" and again. The floors echo the
same texts. Answers are typed (no button presses). Telegram flood pacing is out of the way: ours
uses the tests' `fast_limiter()`, so its 1 message/s per chat is not what is measured.

Per stack: updates/s (all N x M round trips over the wall time), p50/p99 of the webhook request
(POST sent -> response read) and, for Telegram, of the reply (POST sent -> the last sendMessage
of that update reaching the fake Bot API). Each user sends its next message only after the reply
arrived, so under load a round trip is about N / (updates/s): mostly queueing. The latency of an
idle stack ("1 user") comes from 3 users alone, one after the other, after the warm-up and before
the load. Process CPU time per update, and for ours the step's own time on its worker thread, say
where the time goes; `--profile STACK` adds a cProfile by package. Requests are built before
timing. Everything (client, servers, fake APIs) shares one process and one event loop.

Run:  .venv/bin/python benchmarks/bench_channels.py [--users 50] [--messages 20]
Exit code 0 when every sanity check passed, 1 otherwise. Writes the "channels" key of
benchmarks/results.json (other keys are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import hmac
import io
import json
import os
import platform
import pstats
import secrets
import sqlite3
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# tests/support and tests/fakes are imported from tests/; the root goes first, or the folders
# of tests/ (tests/handlers, tests/bot: no __init__.py) would shadow the packages as namespaces.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

DEFAULT_JSON = ROOT / "benchmarks" / "results.json"
JSON_KEY = "channels"

SECRET = "bench-secret_0123456789"
SCRIPT = (
    "/start",
    "jl-skills-2022",
    "technical_expert",
    "是",
    "是",
    "否",
    "否",
    "否",
    "否",
    "中级工",
    "是",
    "3",  # years in occupation: fails 「二、（二）」, the engine offers to stop
    "3",  # "到此为止，查看结论": the verdict
)
AGAIN = ("/restart", *SCRIPT[1:])
VERDICT = "自检结论"
CHAT_BASE = 7_000_000  # Telegram chat ids of measured users: CHAT_BASE + 1 ...
WARM_BASE = 8_000_000  # ... of warm-up users
SOLO_BASE = 6_000_000  # ... and of the users measured alone, one after the other
SOLO_USERS = 3
WAIT_REPLY_S = 30.0

STACKS = (
    "ptb-webhook",
    "ours-tg-ptb",
    "aiogram-webhook",
    "ours-tg-aiogram",
    "wechatpy-plain",
    "ours-wx-plain",
    "wechatpy-aes",
    "ours-wx-aes",
)
BASELINE_OF = {
    "ours-tg-ptb": "ptb-webhook",
    "ours-tg-aiogram": "aiogram-webhook",
    "ours-wx-plain": "wechatpy-plain",
    "ours-wx-aes": "wechatpy-aes",
}


def text_for(index: int) -> str:
    """The text a user sends as its message number `index` (0-based)."""
    if index < len(SCRIPT):
        return SCRIPT[index]
    return AGAIN[(index - len(SCRIPT)) % len(AGAIN)]


def verdict_indexes(messages: int) -> list[int]:
    return [i for i in range(messages) if i % len(SCRIPT) == len(SCRIPT) - 1]


class CheckFailed(Exception):
    """A sanity check failed: the benchmark did not measure the work it claims to."""


# ----- results ------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    label: str
    channel: str
    users: int
    messages: int
    updates: int
    seconds: float
    updates_per_s: float
    request_p50_ms: float
    request_p99_ms: float
    request_max_ms: float
    reply_p50_ms: float | None = None
    reply_p99_ms: float | None = None
    reply_max_ms: float | None = None
    solo_p50_ms: float = 0.0  # users one at a time: p50 of the reply (Telegram) or request
    cpu_ms_per_update: float = 0.0  # process CPU (all threads) over the measured run / updates
    step_ms_mean: float | None = None  # ours: Runtime.handle_once on its worker thread (wall)
    step_cpu_ms_mean: float | None = None  # ... and its thread CPU time
    profile_shares: dict[str, float] | None = None  # --profile: share of CPU by package
    baseline: str | None = None
    ratio_updates_per_s: float | None = None  # ours / baseline (higher is better)
    ratio_request_p50: float | None = None  # ours / baseline (higher is slower)
    ratio_reply_p50: float | None = None
    ratio_solo_p50: float | None = None  # ours / baseline, one user alone (higher is slower)
    notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def percentile(sorted_ns: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-len(sorted_ns) * q // 100))
    return sorted_ns[int(rank) - 1]


def _ms(values: list[int]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return (
        percentile(ordered, 50) / 1e6,
        percentile(ordered, 99) / 1e6,
        ordered[-1] / 1e6,
    )


# ----- the fake Bot API, with a per-chat reply clock ----------------------------------------


def _counting_fake() -> Any:
    from fakes.telegram_api import FakeTelegram

    class CountingTelegram(FakeTelegram):
        """The tests' fake Bot API; also notes when each chat's sendMessage calls arrive."""

        def __init__(self) -> None:
            super().__init__()
            self.sent_count: dict[int, int] = defaultdict(int)
            self.sent_at: dict[int, int] = {}  # chat -> perf_counter_ns of its last sendMessage
            self.sent_texts: dict[int, list[str]] = defaultdict(list)
            self._waiting: dict[int, tuple[int, asyncio.Future[None]]] = {}

        async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
            arrived = time.perf_counter_ns()
            result = await super()._m_sendMessage(params)
            chat = params["chat_id"]
            self.sent_at[chat] = arrived
            self.sent_texts[chat].append(str(params.get("text", "")))
            self.sent_count[chat] += 1
            waiter = self._waiting.get(chat)
            if waiter is not None and self.sent_count[chat] >= waiter[0]:
                del self._waiting[chat]
                if not waiter[1].done():
                    waiter[1].set_result(None)
            return result

        async def wait_sent(self, chat: int, count: int) -> None:
            """Until `count` messages in all were sent to `chat`."""
            if self.sent_count[chat] >= count:
                return
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting[chat] = (count, future)
            try:
                await asyncio.wait_for(future, WAIT_REPLY_S)
            except TimeoutError:
                raise CheckFailed(
                    f"chat {chat}: {self.sent_count[chat]} messages sent, waited for {count}"
                ) from None

    return CountingTelegram()


# ----- what a stack offers the load ---------------------------------------------------------


@dataclass(slots=True)
class Request:
    url: Any  # yarl.URL, built before timing
    body: bytes
    headers: dict[str, str]
    chat: int | None = None  # Telegram: the chat whose replies end this round trip
    sends: int = 0  # Telegram: messages sent to that chat in all, after this update


@dataclass
class Stack:
    name: str
    label: str
    channel: str  # telegram | wechat
    build: Callable[[int, int], list[Request]]  # (user number, messages) -> requests
    fake: Any = None  # CountingTelegram for Telegram stacks
    sends_per_message: list[int] | None = None  # Telegram: per message index (after warm-up)
    settle: Callable[[Request], Awaitable[None]] | None = None  # warm-up: until replies sent
    check: Callable[[list[int], int, list[list[bytes]], Result], Awaitable[None]] | None = None
    server: Any = None  # ours: bot.server.Server
    step_timer: StepTimer | None = None
    notes: list[str] = field(default_factory=list)
    profile_shares: dict[str, float] | None = None


class StepTimer:
    """Wraps the runtime the gateway calls: wall and thread-CPU time of each step (~1 µs)."""

    def __init__(self, steps: Any) -> None:
        self._steps = steps
        self._lock = threading.Lock()
        self.calls = 0
        self.wall_ns = 0
        self.cpu_ns = 0
        self.profiles: dict[int, cProfile.Profile] | None = None  # per worker thread

    def reset(self) -> None:
        with self._lock:
            self.calls = self.wall_ns = self.cpu_ns = 0

    def __getattr__(self, name: str) -> Any:  # open(), and anything else the gateway asks
        return getattr(self._steps, name)

    def handle_once(self, *args: Any, **kwargs: Any) -> Any:
        profile = None
        if self.profiles is not None:
            profile = self.profiles.get(threading.get_ident())
            if profile is None:
                profile = cProfile.Profile(time.thread_time_ns, 1e-9)
                self.profiles[threading.get_ident()] = profile
            profile.enable()
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        try:
            return self._steps.handle_once(*args, **kwargs)
        finally:
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            if profile is not None:
                profile.disable()
            with self._lock:
                self.calls += 1
                self.wall_ns += t1 - t0
                self.cpu_ns += c1 - c0


def _store(tmp: Path, name: str) -> Any:
    from cryptography.fernet import Fernet

    from storage.crypto import Sealer
    from storage.store import Store

    return Store(f"sqlite:///{tmp / name}.db", sealer=Sealer([Fernet.generate_key()]))


def _telegram_request(fake: Any, url: Any, chat: int, text: str) -> Request:
    from fakes.telegram_api import SECRET_HEADER

    body = json.dumps(fake.text_update(chat, text), ensure_ascii=False).encode("utf-8")
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    return Request(url, body, headers, chat=chat)


def _telegram_builder(fake: Any, base_url: str) -> Callable[[int, int], list[Request]]:
    from yarl import URL

    url = URL(f"{base_url}/telegram")

    def build(user: int, messages: int) -> list[Request]:
        return [_telegram_request(fake, url, user, text_for(i)) for i in range(messages)]

    return build


async def _errors_total(server: Any) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in server.metrics.render().splitlines()
        if line.startswith("awardbot_errors_total{")
    )


# ----- ours ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def ours_telegram(library: str, tmp: Path) -> AsyncIterator[Stack]:
    from support.drivers.telegram import fast_limiter
    from support.serving import serving

    from bot.channels import build_adapters

    store = _store(tmp, f"ours-{library}")
    fake = _counting_fake()
    async with contextlib.AsyncExitStack() as cleanup:
        cleanup.callback(store.close)
        await cleanup.enter_async_context(fake)
        env = {
            "AWARDBOT_TELEGRAM_TOKEN": fake.token,
            "AWARDBOT_TELEGRAM_LIBRARY": library,
            "AWARDBOT_TELEGRAM_MODE": "webhook",
            "AWARDBOT_TELEGRAM_API_BASE": fake.url,
            "AWARDBOT_TELEGRAM_WEBHOOK_SECRET": SECRET,
        }

        def adapters(settings: Any, gateway: Any, store: Any, *, clock: Any) -> list[Any]:
            # As serve wires the channel (bot.channels: replies stored with the step, taken
            # from the outbox before sending), with the flood limits out of the way.
            built = build_adapters(settings, gateway, store, clock=clock)
            for adapter in built:
                adapter.limiter = fast_limiter()
            return built

        async with serving(
            store, env, files_dir=tmp / "files", dispatch_every=2.0, adapters=adapters
        ) as server:
            timer = StepTimer(server.gateway.steps)
            server.gateway.steps = timer
            adapter = server.adapters[0]

            async def settle(request: Request) -> None:
                update_id = json.loads(request.body)["update_id"]
                await adapter.settled(update_id, wait=WAIT_REPLY_S)

            async def check(
                chats: list[int], messages: int, bodies: list[list[bytes]], result: Result
            ) -> None:
                await _idle(server)
                sends = stack.sends_per_message or []
                for chat in chats:
                    if fake.sent_count[chat] != sum(sends[:messages]):
                        raise CheckFailed(
                            f"{stack.name}: chat {chat} got {fake.sent_count[chat]} messages, "
                            f"expected {sum(sends[:messages])}"
                        )
                result.checks.append(
                    f"every chat got exactly the {sum(sends[:messages])} messages the warm-up "
                    f"users got ({', '.join(map(str, sends[:messages]))} per update)"
                )
                for i in verdict_indexes(messages):
                    first, last = sum(sends[:i]), sum(sends[: i + 1])
                    for chat in chats:
                        if VERDICT not in "\n".join(fake.sent_texts[chat][first:last]):
                            raise CheckFailed(f"{stack.name}: chat {chat}: no verdict at {i + 1}")
                if verdict_indexes(messages):
                    result.checks.append(
                        f"all {len(chats)} users got the verdict ({VERDICT}) after messages "
                        f"{[i + 1 for i in verdict_indexes(messages)]}"
                    )
                await _check_store(server, "telegram", [str(c) for c in chats], messages, result)
                await _check_metrics(server, "telegram", result)

            stack = Stack(
                name=f"ours-tg-{library}",
                label=f"awardbot serve, Telegram webhook, {library} adapter",
                channel="telegram",
                build=_telegram_builder(fake, server.url),
                fake=fake,
                settle=settle,
                check=check,
                server=server,
                step_timer=timer,
                notes=[
                    "webhook answers after the step's transaction; replies are sent in the "
                    "background through the fast limiter (tests' fast_limiter())"
                ],
            )
            yield stack


async def _idle(server: Any) -> None:
    """Until nothing is in flight (replies still being sent); `drain` waits, then says it is
    shutting down, which is undone here (serving()'s exit stops the server for real)."""
    if not await server.gateway.drain(WAIT_REPLY_S):
        raise CheckFailed(f"still {server.gateway.busy} tasks in flight after {WAIT_REPLY_S} s")
    server.gateway.closing = False


async def _check_store(
    server: Any, channel: str, user_ids: list[str], messages: int, result: Result
) -> None:
    from conversations.keys import ConversationKey

    want = len(verdict_indexes(messages))
    sample = user_ids[:: max(1, len(user_ids) // 20)]
    for uid in sample:
        key = ConversationKey(channel, uid)
        got = await asyncio.to_thread(server.store.results, key)
        if len(got) != want:
            raise CheckFailed(f"{channel} user {uid}: {len(got)} self-check results, want {want}")
        state = await asyncio.to_thread(server.store.load_state, key)
        if state is None:
            raise CheckFailed(f"{channel} user {uid}: no saved conversation")
    result.checks.append(
        f"{len(sample)} sampled users: a saved conversation and {want} stored self-check "
        "result(s) each, read back from the SQLite file"
    )


async def _check_metrics(server: Any, channel: str, result: Result) -> None:
    received = server.metrics.value("awardbot_updates_received_total", channel=channel)
    duplicates = server.metrics.value("awardbot_updates_duplicate_total", channel=channel)
    errors = await _errors_total(server)
    if errors or duplicates:
        raise CheckFailed(f"{channel}: /metrics counts {errors:g} errors, {duplicates} repeats")
    result.checks.append(f"/metrics: {received} updates received, no error, no repeat")


@contextlib.asynccontextmanager
async def ours_wechat(safe: bool, tmp: Path) -> AsyncIterator[Stack]:
    from fakes.wechat_api import AES_KEY, APP_ID, SECRET, TOKEN, FakeWechatApi
    from support.drivers.wechat import WechatPusher
    from support.serving import serving

    store = _store(tmp, f"ours-wx-{'aes' if safe else 'plain'}")
    async with contextlib.AsyncExitStack() as cleanup:
        cleanup.callback(store.close)
        api = await cleanup.enter_async_context(FakeWechatApi())
        env = {
            "AWARDBOT_WECHAT_APP_ID": APP_ID,
            "AWARDBOT_WECHAT_APP_SECRET": SECRET,
            "AWARDBOT_WECHAT_TOKEN": TOKEN,
            "AWARDBOT_WECHAT_AES_KEY": AES_KEY if safe else "",
            "AWARDBOT_WECHAT_API_BASE": api.url,
        }
        async with serving(store, env, files_dir=tmp / "files", dispatch_every=2.0) as server:
            timer = StepTimer(server.gateway.steps)
            server.gateway.steps = timer
            settings = server.settings.wechat
            pusher = WechatPusher(settings, safe=safe)
            build = _wechat_builder(pusher, server.url)

            async def check(
                users: list[int], messages: int, bodies: list[list[bytes]], result: Result
            ) -> None:
                await _idle(server)
                for user_bodies in bodies:
                    for i, body in enumerate(user_bodies):
                        text = pusher.open_reply(body.decode("utf-8"))
                        if not text:
                            raise CheckFailed(f"{stack.name}: message {i + 1}: no passive reply")
                        if i in verdict_indexes(messages) and VERDICT not in text:
                            raise CheckFailed(f"{stack.name}: message {i + 1}: no verdict")
                verdicts = [i + 1 for i in verdict_indexes(messages)]
                result.checks.append(
                    "every push got a passive reply"
                    + (" (decrypted with wechatpy's WeChatCrypto)" if safe else "")
                    + (f"; the verdict after messages {verdicts}" if verdicts else "")
                )
                sent = len(api.sent_texts())
                if sent:
                    result.notes.append(f"{sent} customer-service messages (long replies)")
                openids = [_openid(u) for u in users]
                await _check_store(server, "wechat", openids, messages, result)
                await _check_metrics(server, "wechat", result)

            stack = Stack(
                name=f"ours-wx-{'aes' if safe else 'plain'}",
                label="awardbot serve, WeChat OA " + ("safe mode (AES)" if safe else "plaintext"),
                channel="wechat",
                build=build,
                check=check,
                server=server,
                step_timer=timer,
                notes=[
                    "passive reply: the request waits for the step (and a second transaction "
                    "counting the customer-service window)"
                ],
            )
            yield stack


def _openid(user: int) -> str:
    return f"o-bench-{user:010d}"


def _wechat_builder(pusher: Any, base_url: str) -> Callable[[int, int], list[Request]]:
    from yarl import URL

    def build(user: int, messages: int) -> list[Request]:
        requests = []
        for i in range(messages):
            query, body = pusher.sign(pusher.text(_openid(user), text_for(i)))
            url = URL(f"{base_url}/wechat").with_query(query)
            requests.append(Request(url, body, {"Content-Type": "text/xml"}))
        return requests

    return build


# ----- the floors ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _aiohttp_site(app: Any) -> AsyncIterator[str]:
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _echo_check(stack_name: str, fake: Any) -> Callable[..., Awaitable[None]]:
    async def check(
        chats: list[int], messages: int, bodies: list[list[bytes]], result: Result
    ) -> None:
        await asyncio.sleep(0.05)
        want = [text_for(i) for i in range(messages)]
        for chat in chats:
            if fake.sent_texts[chat] != want:
                raise CheckFailed(f"{stack_name}: chat {chat} got {fake.sent_texts[chat][:3]}")
        result.checks.append(f"every chat got its {messages} texts echoed, in order")

    return check


@contextlib.asynccontextmanager
async def ptb_webhook() -> AsyncIterator[Stack]:
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # as handlers/telegram/ptb.py does
    from aiohttp import web
    from telegram import Update
    from telegram.ext import ApplicationBuilder, CommandHandler, MessageHandler, filters

    fake = _counting_fake()
    async with fake:
        application = (
            ApplicationBuilder()
            .token(fake.token)
            .base_url(f"{fake.url}/bot")
            .base_file_url(f"{fake.url}/file/bot")
            .updater(None)
            .build()
        )

        async def echo(update: Update, context: Any) -> None:
            message = update.effective_message
            assert message is not None
            assert message.text is not None
            await message.reply_text(message.text)

        application.add_handler(CommandHandler(["start", "restart"], echo))
        application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))

        async def webhook(request: web.Request) -> web.Response:
            given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
            if not hmac.compare_digest(given, SECRET.encode()):
                return web.Response(status=403)
            update = Update.de_json(await request.json(), application.bot)
            await application.process_update(update)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/telegram", webhook)
        await application.initialize()  # getMe, from the fake
        await application.start()
        try:
            async with _aiohttp_site(app) as url:
                yield Stack(
                    name="ptb-webhook",
                    label="python-telegram-bot Application, echo, process_update from aiohttp",
                    channel="telegram",
                    build=_telegram_builder(fake, url),
                    fake=fake,
                    check=_echo_check("ptb-webhook", fake),
                    notes=[
                        "process_update awaits the handler: the webhook answers after the reply "
                        "was sent"
                    ],
                )
        finally:
            await application.stop()
            await application.shutdown()


@contextlib.asynccontextmanager
async def aiogram_webhook() -> AsyncIterator[Stack]:
    from aiogram import Bot, Dispatcher, F, Router
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.filters import Command
    from aiogram.types import Message
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    fake = _counting_fake()
    async with fake:
        session = AiohttpSession(api=TelegramAPIServer.from_base(fake.url))
        bot = Bot(fake.token, session=session)
        dispatcher = Dispatcher()
        router = Router()

        @router.message(Command("start", "restart"))
        async def on_command(message: Message) -> None:
            await message.answer(message.text or "")

        @router.message(F.text)
        async def on_text(message: Message) -> None:
            await message.answer(message.text or "")

        dispatcher.include_router(router)
        app = web.Application()
        handler = SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=SECRET)
        handler.register(app, path="/telegram")
        setup_application(app, dispatcher, bot=bot)
        async with _aiohttp_site(app) as url:  # its shutdown closes the bot's session
            yield Stack(
                name="aiogram-webhook",
                label="aiogram SimpleRequestHandler + Dispatcher, echo",
                channel="telegram",
                build=_telegram_builder(fake, url),
                fake=fake,
                check=_echo_check("aiogram-webhook", fake),
                notes=[
                    "SimpleRequestHandler's default handle_in_background=True: the webhook "
                    "answers at once, the handler runs as a task"
                ],
            )


@contextlib.asynccontextmanager
async def wechatpy_webhook(safe: bool) -> AsyncIterator[Stack]:
    from aiohttp import web
    from fakes.wechat_api import AES_KEY, APP_ID, TOKEN
    from support.drivers.wechat import WechatPusher
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.replies import TextReply
    from wechatpy.utils import check_signature

    from handlers.config import WechatSettings

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    async def wechat(request: web.Request) -> web.Response:
        query = request.query
        body = await request.read()
        if safe:
            xml = crypto.decrypt_message(
                body, query["msg_signature"], query["timestamp"], query["nonce"]
            )
        else:
            check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
            xml = body
        message = parse_message(xml)
        reply = TextReply(message=message, content=message.content).render()
        if safe:
            reply = crypto.encrypt_message(reply, secrets.token_hex(8), str(int(time.time())))
        return web.Response(text=reply, content_type="application/xml")

    app = web.Application()
    app.router.add_post("/wechat", wechat)
    settings = WechatSettings(APP_ID, "", TOKEN, AES_KEY if safe else None, "", None, None)
    pusher = WechatPusher(settings, safe=safe)
    name = f"wechatpy-{'aes' if safe else 'plain'}"

    async def check(
        users: list[int], messages: int, bodies: list[list[bytes]], result: Result
    ) -> None:
        for user_bodies in bodies:
            for i, body in enumerate(user_bodies):
                if pusher.open_reply(body.decode("utf-8")) != text_for(i):
                    raise CheckFailed(f"{name}: message {i + 1} not echoed")
        result.checks.append("every push got its text echoed as a passive reply")

    async with _aiohttp_site(app) as url:
        yield Stack(
            name=name,
            label="bare aiohttp route: wechatpy parse_message + TextReply"
            + (", WeChatCrypto" if safe else ""),
            channel="wechat",
            build=_wechat_builder(pusher, url),
            check=check,
        )


# ----- the load -----------------------------------------------------------------------------


@dataclass
class Measured:
    request_ns: list[int]
    reply_ns: list[int]
    wall_ns: int
    cpu_ns: int
    bodies: list[list[bytes]]
    marks: dict[int, list[int]]  # calibration: chat -> its message count after each update


async def drive(
    session: Any,
    stack: Stack,
    plans: list[list[Request]],
    *,
    calibrate: bool = False,
) -> Measured:
    """All users at once, each user's messages one after the other (next after the reply)."""
    clock = time.perf_counter_ns
    request_ns: list[int] = []
    reply_ns: list[int] = []
    bodies: list[list[bytes]] = [[] for _ in plans]
    marks: dict[int, list[int]] = defaultdict(list)
    fake = stack.fake

    async def user(number: int, plan: list[Request]) -> None:
        for request in plan:
            t0 = clock()
            async with session.post(request.url, data=request.body, headers=request.headers) as r:
                body = await r.read()
                status = r.status
            request_ns.append(clock() - t0)
            if status != 200:
                raise CheckFailed(f"{stack.name}: HTTP {status}: {body[:200]!r}")
            bodies[number].append(body)
            if request.chat is None:
                continue
            if calibrate:
                assert stack.settle is not None
                await stack.settle(request)
                marks[request.chat].append(fake.sent_count[request.chat])
            else:
                await fake.wait_sent(request.chat, request.sends)
            reply_ns.append(fake.sent_at[request.chat] - t0)

    cpu0, start = time.process_time_ns(), clock()
    await asyncio.gather(*(user(n, plan) for n, plan in enumerate(plans)))
    wall, cpu = clock() - start, time.process_time_ns() - cpu0
    return Measured(request_ns, reply_ns, wall, cpu, bodies, dict(marks))


async def bench(
    stack: Stack, users: int, messages: int, warm: int, profile_to: list[str] | None
) -> Result:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm-up (not measured): imports, caches, connections; for ours on Telegram it also
        # learns how many messages each update answers with (waiting on the adapter itself).
        warm_ids = [WARM_BASE + n for n in range(1, warm + 1)]
        warm_plans = [stack.build(uid, messages) for uid in warm_ids]
        if stack.channel == "telegram":
            if stack.settle is None:
                stack.sends_per_message = [1] * messages
                _fill_sends(warm_plans, stack.sends_per_message)
            warmed = await drive(session, stack, warm_plans, calibrate=stack.settle is not None)
            if stack.settle is not None:
                stack.sends_per_message = _learned_sends(stack, warmed.marks)
        else:
            await drive(session, stack, warm_plans)

        # One user at a time (not the load): the latency of an idle server, without queueing;
        # SOLO_USERS users one after the other, for enough samples.
        solo_plans = [stack.build(SOLO_BASE + n, messages) for n in range(1, SOLO_USERS + 1)]
        if stack.sends_per_message is not None:
            _fill_sends(solo_plans, stack.sends_per_message)
        solo = await drive(session, stack, [[r for plan in solo_plans for r in plan]])

        ids = [CHAT_BASE + n for n in range(1, users + 1)]
        plans = [stack.build(uid, messages) for uid in ids]
        if stack.sends_per_message is not None:
            _fill_sends(plans, stack.sends_per_message)
        if stack.step_timer is not None:
            stack.step_timer.reset()
        gc.collect()  # only here: a full collection takes ~0.2 s with PTB, aiogram, pydantic
        profiler = None
        if profile_to is not None:
            profiler = cProfile.Profile(time.thread_time_ns, 1e-9)
            if stack.step_timer is not None:
                stack.step_timer.profiles = {}
            profiler.enable()
        measured = await drive(session, stack, plans)
        if profiler is not None:
            profiler.disable()
            assert profile_to is not None
            text, shares = _profile(stack, profiler)
            profile_to.append(text)
            stack.profile_shares = shares

    updates = users * messages
    p50, p99, top = _ms(measured.request_ns)
    result = Result(
        name=stack.name,
        label=stack.label,
        channel=stack.channel,
        users=users,
        messages=messages,
        updates=updates,
        seconds=measured.wall_ns / 1e9,
        updates_per_s=updates / (measured.wall_ns / 1e9),
        request_p50_ms=p50,
        request_p99_ms=p99,
        request_max_ms=top,
        cpu_ms_per_update=measured.cpu_ns / updates / 1e6,
        notes=list(stack.notes),
        profile_shares=stack.profile_shares,
    )
    if measured.reply_ns:
        result.reply_p50_ms, result.reply_p99_ms, result.reply_max_ms = _ms(measured.reply_ns)
    result.solo_p50_ms = _ms(solo.reply_ns or solo.request_ns)[0]
    timer = stack.step_timer
    if timer is not None:
        if timer.calls != updates:
            raise CheckFailed(f"{stack.name}: {timer.calls} steps ran, expected {updates}")
        result.step_ms_mean = timer.wall_ns / timer.calls / 1e6
        result.step_cpu_ms_mean = timer.cpu_ns / timer.calls / 1e6
        result.checks.append(f"{timer.calls} steps ran (Runtime.handle_once), one per update")
    if stack.check is not None:
        await stack.check(ids, messages, measured.bodies, result)
    return result


def _fill_sends(plans: list[list[Request]], sends: list[int]) -> None:
    for plan in plans:
        total = 0
        for request, count in zip(plan, sends, strict=True):
            total += count
            request.sends = total


def _learned_sends(stack: Stack, marks: dict[int, list[int]]) -> list[int]:
    """Messages per update, as the warm-up users got them (all of them alike, or it fails).

    In the warm-up each update was settled (all its replies sent) before the next was sent, so
    the chat's message count after each settle marks where that update's replies end."""
    per_update = {
        tuple(b - a for a, b in zip([0, *chat_marks[:-1]], chat_marks, strict=True))
        for chat_marks in marks.values()
    }
    if len(per_update) != 1:
        raise CheckFailed(f"{stack.name}: warm-up users got different replies: {per_update}")
    sends = list(per_update.pop())
    if not all(sends):
        raise CheckFailed(f"{stack.name}: an update got no reply in the warm-up: {sends}")
    return sends


# Where the profiled CPU time goes, by the package of the function that spent it (C builtins,
# such as sqlite3's execute or socket.send, count for the package of their caller).
BUCKETS = (
    ("/site-packages/telegram/", "python-telegram-bot"),
    ("/site-packages/aiogram/", "aiogram"),
    ("/site-packages/httpx/", "httpx/httpcore/anyio (PTB's HTTP client)"),
    ("/site-packages/httpcore/", "httpx/httpcore/anyio (PTB's HTTP client)"),
    ("/site-packages/anyio/", "httpx/httpcore/anyio (PTB's HTTP client)"),
    ("/site-packages/h11/", "httpx/httpcore/anyio (PTB's HTTP client)"),
    ("<frozen importlib", "import system (httpcore's failed `import sniffio`)"),
    ("/site-packages/aiohttp/", "aiohttp (client, servers, aiogram's session)"),
    ("/site-packages/yarl/", "aiohttp (client, servers, aiogram's session)"),
    ("/site-packages/multidict/", "aiohttp (client, servers, aiogram's session)"),
    ("/site-packages/propcache/", "aiohttp (client, servers, aiogram's session)"),
    ("/site-packages/sqlalchemy/", "SQLAlchemy + sqlite3"),
    ("/site-packages/sqlmodel/", "SQLAlchemy + sqlite3"),
    ("/site-packages/cryptography/", "cryptography (Fernet, AES)"),
    ("/site-packages/wechatpy/", "wechatpy + xmltodict + defusedxml"),
    ("/site-packages/xmltodict", "wechatpy + xmltodict + defusedxml"),
    ("/site-packages/defusedxml/", "wechatpy + xmltodict + defusedxml"),
    ("/site-packages/jinja2/", "Jinja2 + markupsafe"),
    ("/site-packages/markupsafe/", "Jinja2 + markupsafe"),
    ("/site-packages/pydantic", "pydantic"),
    (f"{ROOT}/conversations/", "ours: conversations (engine)"),
    (f"{ROOT}/storage/", "ours: storage"),
    (f"{ROOT}/handlers/", "ours: handlers (adapters)"),
    (f"{ROOT}/bot/", "ours: bot (runtime, server)"),
    (f"{ROOT}/tests/", "harness: fake APIs, pushers"),
    (f"{ROOT}/benchmarks/", "harness: load generator"),
    ("/asyncio/", "asyncio + selectors + socket"),
    ("/selectors.py", "asyncio + selectors + socket"),
    ("/socket.py", "asyncio + selectors + socket"),
    ("/json/", "json"),
    ("/logging/", "logging"),
    ("/python3.11/", "stdlib, other"),
)


def _bucket(filename: str) -> str | None:
    if filename == "~":
        return None  # a C builtin: its caller's bucket
    for part, bucket in BUCKETS:
        if part in filename:
            return bucket
    return "other"


def profile_shares(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of profiled time by bucket, largest first."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        bucket = _bucket(filename)
        if bucket is not None:
            totals[bucket] += tottime
            continue
        spread = sum(edge[2] for edge in callers.values())
        if not callers or spread <= 0:
            totals["C builtins, caller unknown"] += tottime
            continue
        for (caller_file, _l, _n), edge in callers.items():
            totals[_bucket(caller_file) or "C builtins, caller unknown"] += (
                tottime * edge[2] / spread
            )
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _profile(stack: Stack, profiler: cProfile.Profile, top: int = 25) -> tuple[str, dict]:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    timer = stack.step_timer
    if timer is not None and timer.profiles:
        for worker in timer.profiles.values():
            stats.add(worker)
    shares = profile_shares(stats)
    total = sum(shares.values()) or 1.0
    print(
        f"cProfile of {stack.name}'s measured run: thread CPU time of the event loop and the "
        "step threads (the profiler slows everything, and small calls most)",
        file=out,
    )
    print(f"{'where':<52} {'s':>7} {'share':>6}", file=out)
    for bucket, seconds in shares.items():
        if seconds / total >= 0.005:
            print(f"{bucket:<52} {seconds:>7.2f} {seconds / total:>6.1%}", file=out)
    print(f"{'total':<52} {total:>7.2f}", file=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue(), {k: round(v / total, 4) for k, v in shares.items()}


# ----- report -------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libs: dict[str, str | None] = {}
    for dist in (
        "awardbot",
        "python-telegram-bot",
        "aiogram",
        "wechatpy",
        "aiohttp",
        "httpx",
        "SQLAlchemy",
        "cryptography",
    ):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            libs[dist] = None
    libs["sqlite"] = sqlite3.sqlite_version
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "libraries": libs,
        "load_average_at_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list[Result]) -> None:
    head = (
        f"{'stack':<16} {'upd/s':>6} {'req p50':>8} {'req p99':>8} {'reply p50':>9} "
        f"{'reply p99':>9} {'1 user':>7} {'CPU/upd':>7} {'step':>10}  {'x base':>7} "
        f"{'x base':>7}"
    )
    units = (
        f"{'':<16} {'':>6} {'ms':>8} {'ms':>8} {'ms':>9} {'ms':>9} {'p50 ms':>7} {'ms':>7} "
        f"{'wall/CPU':>10}  {'upd/s':>7} {'1 user':>7}"
    )
    print(head)
    print(units)
    print("-" * len(head))
    for r in results:
        ratio = f"{r.ratio_updates_per_s:.2f}x" if r.ratio_updates_per_s is not None else "-"
        solo = f"{r.ratio_solo_p50:.1f}x" if r.ratio_solo_p50 is not None else "-"
        step = (
            f"{r.step_ms_mean:.1f}/{r.step_cpu_ms_mean:.2f}"
            if r.step_ms_mean is not None and r.step_cpu_ms_mean is not None
            else "-"
        )
        print(
            f"{r.name:<16} {r.updates_per_s:>6,.0f} {r.request_p50_ms:>8.1f} "
            f"{r.request_p99_ms:>8.1f} {_fmt(r.reply_p50_ms, '.1f'):>9} "
            f"{_fmt(r.reply_p99_ms, '.1f'):>9} {r.solo_p50_ms:>7.2f} {r.cpu_ms_per_update:>7.2f} "
            f"{step:>10}  {ratio:>7} {solo:>7}"
        )


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Set `JSON_KEY` in the results file; every other key stays as it was."""
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text("utf-8"))
    data[JSON_KEY] = report
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse `argv`, run the stacks, print the table, write the JSON; the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument(
        "--messages", type=int, default=20, help="messages per user, sequential (default 20)"
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="warm-up users per stack, not measured (default 5)"
    )
    parser.add_argument("--only", nargs="+", metavar="STACK", choices=STACKS, help="these only")
    parser.add_argument(
        "--profile", metavar="STACK", choices=STACKS, help="cProfile this stack's measured run"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--no-json", action="store_true", help="write no results file")
    args = parser.parse_args(argv)
    if args.users < 1 or args.messages < 1 or args.warmup < 1:
        parser.error("--users, --messages and --warmup must be at least 1")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    users, messages, warm = args.users, args.messages, args.warmup
    selected = [s for s in STACKS if not args.only or s in args.only]
    started = dt.datetime.now(dt.UTC)
    info = machine_info()
    print(
        f"Webhook throughput: {users} users x {messages} messages (each user sequential, users "
        f"concurrent); warm-up {warm} users per stack (not measured)."
    )
    print(
        f"Python {info['python']}, {info['cpu_count']} CPUs ({info['cpu']}); "
        + ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    )
    load = info["load_average_at_start"]
    if load and load[0] > 0.5:
        print(f"WARNING: load average {load[0]} at start: numbers will be slower and noisier.")
    print()

    results: list[Result] = []
    failures: list[str] = []
    profiles: list[str] = []
    with tempfile.TemporaryDirectory(prefix="awardbot-bench-channels-") as tmpdir:
        tmp = Path(tmpdir)
        factories: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Stack]]] = {
            "ptb-webhook": ptb_webhook,
            "ours-tg-ptb": lambda: ours_telegram("ptb", tmp),
            "aiogram-webhook": aiogram_webhook,
            "ours-tg-aiogram": lambda: ours_telegram("aiogram", tmp),
            "wechatpy-plain": lambda: wechatpy_webhook(False),
            "ours-wx-plain": lambda: ours_wechat(False, tmp),
            "wechatpy-aes": lambda: wechatpy_webhook(True),
            "ours-wx-aes": lambda: ours_wechat(True, tmp),
        }
        for name in selected:
            print(f"running {name} ...", flush=True)
            t0 = time.perf_counter()
            try:
                async with factories[name]() as stack:
                    profile_to = profiles if args.profile == name else None
                    r = await bench(stack, users, messages, warm, profile_to)
            except CheckFailed as exc:
                failures.append(str(exc))
                print(f"  SANITY CHECK FAILED: {exc}", flush=True)
                continue
            results.append(r)
            print(
                f"  {r.updates} updates in {r.seconds:.2f} s ({time.perf_counter() - t0:.1f} s "
                f"with setup and checks): {r.updates_per_s:,.0f}/s",
                flush=True,
            )

    by_name = {r.name: r for r in results}
    for r in results:
        base = by_name.get(BASELINE_OF.get(r.name, ""))
        if base is None:
            continue
        r.baseline = base.name
        r.ratio_updates_per_s = r.updates_per_s / base.updates_per_s
        r.ratio_request_p50 = r.request_p50_ms / base.request_p50_ms
        if r.reply_p50_ms is not None and base.reply_p50_ms is not None:
            r.ratio_reply_p50 = r.reply_p50_ms / base.reply_p50_ms
        r.ratio_solo_p50 = r.solo_p50_ms / base.solo_p50_ms

    print()
    print_table(results)
    print()
    print("Notes:")
    print("  req = POST sent -> response read; reply = POST sent -> last sendMessage of that")
    print("  update at the fake Bot API (Telegram only; WeChat's reply is the response)")
    print("  CPU/upd = process CPU time (all threads: client, fakes, server) / updates")
    print("  step = ours: Runtime.handle_once on its worker thread, mean wall / thread CPU time")
    print(
        f"  1 user = {SOLO_USERS} users one at a time on the idle stack: p50 of the reply "
        "(Telegram), of the request (WeChat)"
    )
    print("  x base = ours / its floor: upd/s (higher is better); 1-user p50 (higher is slower)")
    print(
        f"  under load every user waits for its reply, so a round trip is about "
        f"{users} users / (updates/s): the load latencies are mostly queueing"
    )
    for r in results:
        for note in r.notes:
            print(f"  {r.name}: {note}")
    load_end = _loadavg()
    info["load_average_at_end"] = load_end
    print()
    print("Sanity checks (the work was really done):")
    for r in results:
        for check in r.checks:
            print(f"  ok  {r.name}: {check}")
    for failure in failures:
        print(f"  FAILED  {failure}")
    for text in profiles:
        print()
        print(text)

    report = {
        "benchmark": "webhook throughput of awardbot serve (benchmarks/bench_channels.py)",
        "date": started.isoformat(timespec="seconds"),
        "users": users,
        "messages_per_user": messages,
        "warmup_users": warm,
        "texts": [text_for(i) for i in range(messages)],
        "machine": info,
        "baseline_of": BASELINE_OF,
        "results": [asdict(r) for r in results],
        "failures": failures,
        "ok": not failures,
    }
    if not args.no_json:
        write_json(args.json, report)
        print()
        print(f"wrote {args.json} (key {JSON_KEY!r})")
    if failures:
        print(f"FAILED: {len(failures)} sanity check(s) failed; numbers above are not valid")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return 0 if run(argv)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
