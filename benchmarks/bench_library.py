"""Our bot through each Telegram library against the same form written the library's way.

One process, no network. Every stack gets the same Bot API updates (built as dicts before timing;
each stack parses them with its library, as its webhook would), N users x 7 updates interleaved
round-robin: the campaign, the category, 是, 也许 (invalid: an error and the same question
again), 是, 否, 否. Every update is answered: 10 sendMessage calls per user on every stack, each
built and serialized by the library's own request code and answered by the in-process fake
Bot API (benchmarks/baselines/fake_api.py), whose answer the library parses.

  ours-ptb        our TelegramAdapter (python-telegram-bot client) + Gateway + the real Runtime
                  and Store on a fresh SQLite file, replies stored with the step and taken from
                  the outbox before sending (the ReplyLedger `awardbot serve` wires)
  ours-aiogram    the same with the aiogram client
  ptb-memory      benchmarks/baselines/ptb_form.py: Application + ConversationHandler
  ptb-pickle      the same + PicklePersistence, written to the file every second (job queue)
  aiogram-memory  benchmarks/baselines/aiogram_form.py: Dispatcher + FSM + MemoryStorage
  aiogram-redis   the same + RedisStorage on a redis-server this script starts (no disk)
  aiogram-sqlite  the same + benchmarks/baselines/sqlite_storage.py (a commit per write)

Run:  .venv/bin/python benchmarks/bench_library.py [--users 2000] [--quick] [--rows-json P]
      [--only STACK ...] [--profile STACK]
Exit code 0 when every sanity check passed (the work was really done), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import json
import os
import pickle
import platform
import pstats
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# tests/support is imported from tests/; the root goes first (benchmarks.baselines, our code).
for _path in (str(ROOT / "tests"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("PTB_TIMEDELTA", "true")

from benchmarks.baselines import form  # noqa: E402
from benchmarks.baselines.fake_api import BOT_ID, TOKEN, FakeBotApi  # noqa: E402
from benchmarks.rows import Report, Row  # noqa: E402

STACKS = (
    "ptb-memory",
    "ptb-pickle",
    "ours-ptb",
    "aiogram-memory",
    "aiogram-redis",
    "aiogram-sqlite",
    "ours-aiogram",
)
ROWS = (  # (row, ours, baseline, target)
    ("ours via PTB / ptb-memory", "ours-ptb", "ptb-memory", 1.0),
    ("ours via PTB / ptb-pickle (1 s flush)", "ours-ptb", "ptb-pickle", 2.0),
    ("ours via aiogram / aiogram-memory", "ours-aiogram", "aiogram-memory", 1.0),
    ("ours via aiogram / aiogram-redis", "ours-aiogram", "aiogram-redis", 2.0),
    ("ours via aiogram / aiogram-sqlite", "ours-aiogram", "aiogram-sqlite", 2.0),
)
MEASURED_BASE = 1_000_000  # Telegram user ids of measured users: MEASURED_BASE + 1 ...
WARM_BASE = 9_000_000  # ... and of warm-up users
MESSAGES_PER_UPDATE = (2, 2, 1, 2, 1, 1, 1)  # sendMessage calls for each of the 7 texts
ERROR_AT = 5  # the index, among a user's 10 messages, of the error reply to 也许
# What our engine holds after the 7 texts, and asks next.
OURS_ANSWERS = {
    "works_in_jilin": True,
    "frontline_skill_position": True,
    "is_unit_head": False,
    "is_retired": False,
}
OURS_NEXT = "applying_both_awards"
PROFILES = ROOT / "benchmarks" / "profiles"


class CheckFailed(Exception):
    """A sanity check failed: the run did not do the work it claims to."""


@dataclass
class Stack:
    name: str
    label: str
    api: FakeBotApi
    feed: Callable[[dict[str, Any]], Awaitable[None]]  # returns once the replies were sent
    check: Callable[[list[int], Report], Awaitable[None]]  # after the measured loop
    executor: Any = None  # ours: the gateway's step threads (profiled with --profile)
    timers: list[Timed] = field(default_factory=list)  # ours: the step, the reply ledger
    flushes: list[float] | None = None  # ptb-pickle: perf_counter() of each flush


@dataclass
class Result:
    name: str
    label: str
    users: int
    updates: int
    seconds: float
    updates_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    messages: int
    cpu_ms: float  # CPU time of the whole process (every thread) per update
    notes: list[str] = field(default_factory=list)
    # ours: per update, (wall ms, thread CPU ms, calls) of handle_once, take, settle
    parts_ms: dict[str, tuple[float, float, int]] = field(default_factory=dict)


def percentile(sorted_ns: Sequence[int], q: float) -> int:
    rank = max(1, -(-len(sorted_ns) * q // 100))  # nearest rank
    return sorted_ns[int(rank) - 1]


def updates_for(user_ids: Sequence[int], first_id: int) -> list[dict[str, Any]]:
    """Round-robin: every user's first text, then every user's second, ..."""
    out = []
    for text in form.TEXTS:
        for user in user_ids:
            out.append(form.raw_update(first_id + len(out), user, text))
    return out


def check_replies(stack: Stack, users: list[int], report: Report) -> None:
    """Every user got the same 10 messages, the error and the question again after 也许."""
    sent = stack.api.sent
    reference = sent[users[0]]
    ok = len(reference) == form.REPLIES_PER_USER
    ok = ok and reference[ERROR_AT + 1] == reference[ERROR_AT - 1] != reference[ERROR_AT]
    ok = ok and "是" in reference[ERROR_AT] and "否" in reference[ERROR_AT]
    wrong = [u for u in users if sent[u] != reference]
    report.check(
        ok=ok and not wrong and stack.api.messages == form.REPLIES_PER_USER * len(users),
        text=f"{stack.name}: {stack.api.messages} sendMessage calls serialized by the library "
        f"for {len(users)} users x 7 updates ({form.REPLIES_PER_USER} each, the same for "
        f"everyone; 也许 got {reference[ERROR_AT]!r} and the question again)"
        + (f"; {len(wrong)} users differ" if wrong else ""),
    )


# ----- the baselines ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def ptb_stack(tmp: Path, pickled: bool) -> AsyncIterator[Stack]:
    from telegram import Update

    from benchmarks.baselines import ptb_form

    api = FakeBotApi()
    path = tmp / "ptb.pickle" if pickled else None
    app = ptb_form.build_application(ptb_form.InProcessRequest(api), pickle_path=path)
    errors: list[BaseException] = []

    async def on_error(update: object, context: Any) -> None:
        errors.append(context.error)

    app.add_error_handler(on_error)
    flushes: list[float] = []  # when the job queue's flush job ran (the only job)
    submitted: list[float] = []
    if pickled:
        from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED

        assert app.job_queue is not None
        app.job_queue.scheduler.add_listener(
            lambda event: (submitted if event.code == EVENT_JOB_SUBMITTED else flushes).append(
                time.perf_counter()
            ),
            EVENT_JOB_EXECUTED | EVENT_JOB_SUBMITTED,
        )
    await app.initialize()
    await app.start()

    async def feed(data: dict[str, Any]) -> None:
        await app.process_update(Update.de_json(data, app.bot))

    async def check(users: list[int], report: Report) -> None:
        check_replies(stack, users, report)
        complete = [u for u in users if app.user_data.get(u) == form.EXPECTED]
        report.check(
            ok=len(complete) == len(users) and not errors,
            text=f"{stack.name}: user_data complete for {len(complete)}/{len(users)} users, "
            f"{len(errors)} handler errors",
        )
        if path is None:
            return
        before = len(flushes)
        await asyncio.sleep(2.2)  # the job's next flush writes what the last updates changed
        with path.open("rb") as file:
            unpickler = pickle.Unpickler(file)
            unpickler.persistent_load = lambda pid: None  # type: ignore[method-assign]
            data = unpickler.load()
        stored = data.get("user_data", {})
        in_file = [u for u in users if stored.get(u) == form.EXPECTED]
        open_forms = [k for k, v in data.get("conversations", {}).get("form", {}).items() if v]
        report.check(
            ok=len(in_file) == len(users) and not open_forms and len(flushes) > before,
            text=f"{stack.name}: the pickle file ({path.stat().st_size // 1024} KiB, written "
            f"by the 1 s flush job, not at shutdown) holds {len(in_file)}/{len(users)} users' "
            f"complete data; {len(open_forms)} conversations left open",
        )

    stack = Stack(
        name="ptb-pickle" if pickled else "ptb-memory",
        label="PTB Application + ConversationHandler"
        + (" + PicklePersistence, 1 s flush" if pickled else ", in memory"),
        api=api,
        feed=feed,
        check=check,
        flushes=flushes if pickled else None,
    )
    try:
        yield stack
    finally:
        if pickled and app.job_queue is not None:
            for job in app.job_queue.jobs():
                job.schedule_removal()
            for _ in range(100):  # a flush under way ends first (stop would cancel it)
                if len(flushes) >= len(submitted):
                    break
                await asyncio.sleep(0.05)
        await app.stop()
        await app.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    """A redis-server of our own on a free port, in memory only (no RDB, no AOF)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.asynccontextmanager
async def aiogram_stack(tmp: Path, kind: str, warm: int) -> AsyncIterator[Stack]:
    from aiogram.fsm.storage.base import StorageKey
    from aiogram.fsm.storage.memory import MemoryStorage

    from benchmarks.baselines import aiogram_form
    from benchmarks.baselines.sqlite_storage import SQLiteStorage

    api = FakeBotApi()
    async with contextlib.AsyncExitStack() as cleanup:
        if kind == "redis":
            from aiogram.fsm.storage.redis import RedisStorage

            url = await cleanup.enter_async_context(redis_server())
            storage: Any = RedisStorage.from_url(url)
        elif kind == "sqlite":
            storage = SQLiteStorage(tmp / "aiogram-fsm.db")
        else:
            storage = MemoryStorage()
        bot = aiogram_form.make_bot(aiogram_form.InProcessSession(api))
        dispatcher = aiogram_form.build_dispatcher(storage)
        cleanup.push_async_callback(bot.session.close)
        cleanup.push_async_callback(storage.close)

        async def feed(data: dict[str, Any]) -> None:
            await dispatcher.feed_raw_update(bot, data)

        def key_of(user: int) -> StorageKey:
            return StorageKey(bot_id=BOT_ID, chat_id=user, user_id=user)

        async def check(users: list[int], report: Report) -> None:
            check_replies(stack, users, report)
            complete = 0
            for user in users:
                key = key_of(user)
                data = await storage.get_data(key)
                state = await storage.get_state(key)
                complete += data == form.EXPECTED and state is None
            report.check(
                ok=complete == len(users),
                text=f"{stack.name}: FSM data complete and the form closed for "
                f"{complete}/{len(users)} users",
            )
            if kind == "redis":
                import redis

                direct = redis.Redis.from_url(url)
                keys = direct.keys("fsm:*:data")
                sample = [
                    json.loads(direct.get(storage.key_builder.build(key_of(u), "data")) or "null")
                    for u in users[:: max(1, len(users) // 50)]
                ]
                direct.close()
                report.check(
                    ok=len(keys) == len(users) + warm and all(s == form.EXPECTED for s in sample),
                    text=f"{stack.name}: redis-server holds {len(keys)} FSM data keys; "
                    f"{len(sample)} sampled read back complete",
                )
            elif kind == "sqlite":
                with contextlib.closing(sqlite3.connect(tmp / "aiogram-fsm.db")) as db:
                    rows = dict(db.execute("SELECT key, data FROM fsm WHERE state IS NULL"))
                found = sum(
                    json.loads(rows.get(storage.key_builder.build(key_of(u)), "null"))
                    == form.EXPECTED
                    for u in users
                )
                report.check(
                    ok=found == len(users),
                    text=f"{stack.name}: the SQLite file, read by a new connection, holds "
                    f"{found}/{len(users)} users' complete data",
                )

        stack = Stack(
            name=f"aiogram-{kind}",
            label=f"aiogram Dispatcher + FSM, {type(storage).__name__}",
            api=api,
            feed=feed,
            check=check,
        )
        yield stack


# ----- ours ---------------------------------------------------------------------------------


class Timed:
    """A proxy that adds up the wall and thread CPU time of the calls to `names` (made on the
    step threads): the runtime's step, the reply ledger's take and settle."""

    def __init__(self, target: Any, names: set[str]) -> None:
        self._target = target
        self._names = names
        self._lock = threading.Lock()
        self.wall_ns: defaultdict[str, int] = defaultdict(int)
        self.cpu_ns: defaultdict[str, int] = defaultdict(int)
        self.calls: defaultdict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.wall_ns.clear()
        self.cpu_ns.clear()
        self.calls.clear()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in self._names:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return attr(*args, **kwargs)
            finally:
                t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                with self._lock:
                    self.calls[name] += 1
                    self.wall_ns[name] += t1 - t0
                    self.cpu_ns[name] += c1 - c0

        return timed


class ProfiledThreads(ThreadPoolExecutor):
    """The gateway's step threads; with `profiles`, each call runs under its thread's profiler."""

    def __init__(self) -> None:
        super().__init__(8, thread_name_prefix="awardbot-step")
        self.profiles: dict[int, cProfile.Profile] | None = None

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self.profiles is None:
            return super().submit(fn, *args, **kwargs)
        profiles = self.profiles

        def run() -> Any:
            profile = profiles.setdefault(
                threading.get_ident(), cProfile.Profile(time.thread_time)
            )
            profile.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                profile.disable()

        return super().submit(run)


@contextlib.contextmanager
def _ptb_request(request: Any) -> Any:
    """PtbClient builds its Application itself: while it does, the builder also gets the
    in-process request (PTB's documented `ApplicationBuilder.request`)."""
    from telegram.ext import ApplicationBuilder

    import handlers.telegram.ptb as ptb

    class Builder(ApplicationBuilder):  # type: ignore[misc]
        def build(self) -> Any:
            self.request(request).get_updates_request(request)
            return super().build()

    ptb.ApplicationBuilder = Builder  # type: ignore[misc]
    try:
        yield
    finally:
        ptb.ApplicationBuilder = ApplicationBuilder  # type: ignore[misc]


@contextlib.asynccontextmanager
async def ours_stack(tmp: Path, library: str, warm: int) -> AsyncIterator[Stack]:
    from support.console_harness import FIXED_NOW, catalog
    from support.serving import settings_for

    from bot.channels import attachments_for
    from bot.edges import StoreReplyLedger
    from bot.wiring import build_runtime
    from conversations.keys import ConversationKey
    from handlers.base import Gateway, Metrics
    from handlers.telegram import make_adapter
    from handlers.telegram.limits import RateLimiter
    from storage.crypto import Sealer
    from storage.store import Store

    api = FakeBotApi()
    db = tmp / f"ours-{library}.db"
    store = Store(f"sqlite:///{db}", sealer=Sealer([Sealer.new_key()]))
    env = {
        "AWARDBOT_TELEGRAM_TOKEN": TOKEN,
        "AWARDBOT_TELEGRAM_LIBRARY": library,
        "AWARDBOT_TELEGRAM_MODE": "webhook",
        "AWARDBOT_TELEGRAM_API_BASE": "http://127.0.0.1:9",  # never contacted
        "AWARDBOT_TELEGRAM_WEBHOOK_SECRET": "bench-secret",
    }
    settings = settings_for(env, files_dir=tmp / "files")
    assert settings.telegram is not None

    def clock() -> dt.datetime:
        return FIXED_NOW

    runtime = build_runtime(settings, catalog(), store, clock=clock)
    threads = ProfiledThreads()
    steps = Timed(runtime, {"handle_once"})
    gateway = Gateway(steps, Metrics(), executor=threads)  # type: ignore[arg-type]
    ledger = Timed(StoreReplyLedger(store, "replies:bench", clock=clock), {"take", "settle"})
    # As bot.channels.build_adapters wires it for `serve`, but without the flood limits (1 msg/s
    # a chat, 30 a bot: they would measure the pacing; the baselines have none).
    fast = RateLimiter(per_second=10_000, per_chat_per_second=10_000, chat_burst=1000)
    options = {
        "clock": clock,
        "limiter": fast,
        "attachments": attachments_for(settings, store),
        "replies": ledger,
    }
    if library == "ptb":
        from benchmarks.baselines.ptb_form import InProcessRequest

        with _ptb_request(InProcessRequest(api)):
            adapter = make_adapter(settings.telegram, gateway, **options)  # type: ignore[arg-type]
    else:
        from benchmarks.baselines.aiogram_form import InProcessSession

        adapter = make_adapter(settings.telegram, gateway, **options)  # type: ignore[arg-type]
        adapter.client.bot.session = InProcessSession(api)  # type: ignore[attr-defined]
    await adapter.start()

    async def feed(data: dict[str, Any]) -> None:
        await adapter.client.feed(data)
        await adapter.settled(data["update_id"])

    async def check(users: list[int], report: Report) -> None:
        check_replies(stack, users, report)
        errors = sum(
            float(line.rsplit(" ", 1)[1])
            for line in gateway.metrics.render().splitlines()
            if line.startswith("awardbot_errors_total{")
        )
        sample = users[:: max(1, len(users) // 50)]
        right = 0
        for user in sample:
            state = store.load_state(ConversationKey("telegram", str(user))) or {}
            right += (
                state.get("answers") == OURS_ANSWERS
                and state.get("campaign") == form.CAMPAIGN
                and state.get("category") == form.CATEGORY
                and state.get("question") == OURS_NEXT
            )
        ids = ",".join(f"'{u}'" for u in users)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            sessions = conn.execute("SELECT count(*) FROM conversation_sessions").fetchone()[0]
            replies = dict(
                conn.execute(
                    "SELECT status, count(*) FROM outbox WHERE kind = 'reply' "
                    f"AND recipient_id IN ({ids}) GROUP BY 1"
                )
            )
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        report.check(
            ok=right == len(sample) and not errors,
            text=f"{stack.name}: {right}/{len(sample)} sampled users' answers {OURS_ANSWERS} "
            f"read back from the SQLite file, next question {OURS_NEXT}; {errors:g} errors",
        )
        report.check(
            ok=sessions == len(users) + warm
            and replies == {"delivered": stack.api.messages}
            and mode == "wal",
            text=f"{stack.name}: the file ({mode}) holds {sessions} sessions and the "
            f"{stack.api.messages} replies as outbox rows, all {sorted(replies)}",
        )

    stack = Stack(
        name=f"ours-{library}",
        label=f"ours: TelegramAdapter ({library}) + Runtime + Store (SQLite)",
        api=api,
        feed=feed,
        check=check,
        executor=threads,
        timers=[steps, ledger],
    )
    try:
        yield stack
    finally:
        await adapter.stop()
        threads.shutdown()
        store.close()


def open_stack(name: str, tmp: Path, warm: int) -> contextlib.AbstractAsyncContextManager[Stack]:
    if name.startswith("ours-"):
        return ours_stack(tmp, name.removeprefix("ours-"), warm)
    if name.startswith("ptb-"):
        return ptb_stack(tmp, pickled=name == "ptb-pickle")
    return aiogram_stack(tmp, name.removeprefix("aiogram-"), warm)


# ----- measuring ----------------------------------------------------------------------------


async def run_stack(
    name: str, users: int, warm: int, report: Report, tmp: Path, profile: bool
) -> Result:
    warm_ids = list(range(WARM_BASE + 1, WARM_BASE + warm + 1))
    measured = list(range(MEASURED_BASE + 1, MEASURED_BASE + users + 1))
    warm_updates = updates_for(warm_ids, 1)
    updates = updates_for(measured, 1 + len(warm_updates))
    async with open_stack(name, tmp / name, warm) as stack:
        for data in warm_updates:  # imports, caches, the first connections: not measured
            await stack.feed(data)
        stack.api.reset()
        for timer in stack.timers:
            timer.reset()
        profiler = None
        if profile:
            profiler = cProfile.Profile(time.thread_time)
            if stack.executor is not None:
                stack.executor.profiles = {}
        clock = time.perf_counter_ns
        latencies: list[int] = []
        gc.collect()
        if profiler is not None:
            profiler.enable()
        cpu_start = time.process_time_ns()
        start = clock()
        for data in updates:
            t0 = clock()
            await stack.feed(data)
            latencies.append(clock() - t0)
            await asyncio.sleep(0)  # timers and background tasks get their turn, as in a server
        wall = clock() - start
        cpu = time.process_time_ns() - cpu_start
        if profiler is not None:
            profiler.disable()
            threads = stack.executor.profiles.values() if stack.executor is not None else ()
            write_profile(name, profiler, list(threads))
        await stack.check(measured, report)
        lat = sorted(latencies)
        result = Result(
            name=name,
            label=stack.label,
            users=users,
            updates=len(lat),
            seconds=wall / 1e9,
            updates_per_s=len(lat) / (wall / 1e9),
            p50_ms=percentile(lat, 50) / 1e6,
            p99_ms=percentile(lat, 99) / 1e6,
            max_ms=lat[-1] / 1e6,
            mean_ms=sum(lat) / len(lat) / 1e6,
            messages=stack.api.messages,
            cpu_ms=cpu / len(lat) / 1e6,
        )
        for timer in stack.timers:
            for part, ns in timer.wall_ns.items():
                result.parts_ms[part] = (
                    round(ns / len(lat) / 1e6, 3),
                    round(timer.cpu_ns[part] / len(lat) / 1e6, 3),
                    timer.calls[part],
                )
        if result.parts_ms:
            parts = ", ".join(f"{k} {w:.2f}/{c:.2f}" for k, (w, c, _n) in result.parts_ms.items())
            result.notes.append(f"per update, wall/CPU ms on the step threads: {parts}")
        if stack.flushes is not None:
            during = [t for t in stack.flushes if start / 1e9 <= t <= (start + wall) / 1e9]
            result.notes.append(f"{len(during)} flushes of the pickle file during the run")
    return result


# ----- profiles -----------------------------------------------------------------------------


def _bucket(filename: str) -> str:
    if "site-packages/" in filename:
        package = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        package = package.removesuffix(".py").split(".")[0]
        return {
            "telegram": "python-telegram-bot",
            "sqlalchemy": "SQLAlchemy + sqlite3",
            "pydantic": "pydantic (aiogram's models)",
            "pydantic_core": "pydantic (aiogram's models)",
        }.get(package, package)
    if filename.startswith(str(ROOT)):
        part = Path(filename).relative_to(ROOT).parts[0]
        return "harness (benchmarks, fake Bot API)" if part == "benchmarks" else f"ours: {part}"
    if "asyncio" in filename or "selectors" in filename:
        return "asyncio"
    if "concurrent/futures" in filename or "threading" in filename or "queue" in filename:
        return "thread pool (run_in_executor)"
    if "sqlite3" in filename:
        return "SQLAlchemy + sqlite3"
    return "stdlib (json, re, copy, ...)"


PARTS = {  # what an update of ours is made of: (file name ending, function)
    "the step (Runtime.handle_once, on a step thread)": ("bot/runtime.py", "handle_once"),
    "  its replies stored in the outbox with it": ("storage/outbox.py", "enqueue"),
    "each reply taken from the outbox (ReplyLedger.take)": ("bot/edges.py", "take"),
    "each reply settled as delivered (ReplyLedger.settle)": ("bot/edges.py", "settle"),
    "the update parsed and dispatched by PTB (PtbClient.feed)": ("telegram/ptb.py", "feed"),
    "the update parsed and dispatched by aiogram": ("telegram/aiogram_adapter.py", "feed"),
    "each reply sent through PTB (send_message)": ("telegram/ptb.py", "send_message"),
    "each reply sent through aiogram (send_message)": (
        "telegram/aiogram_adapter.py",
        "send_message",
    ),
    "  pydantic rebuilding a generic model (aiogram's Response[...])": (
        "pydantic/_internal/_generics.py",
        "create_generic_submodel",
    ),
    "PTB's Application.process_update": ("telegram/ext/_application.py", "process_update"),
    "aiogram's Dispatcher.feed_raw_update (the baselines)": (
        "aiogram/dispatcher/dispatcher.py",
        "feed_raw_update",
    ),
}


def profile_shares(stats: pstats.Stats) -> dict[str, float]:
    """Own time by package; a C function's time goes to the package of its caller."""
    totals: defaultdict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        if filename == "~" and callers:
            for (caller_file, _l, _n), caller_stats in callers.items():
                totals[_bucket(caller_file)] += caller_stats[2]
        else:
            totals[_bucket(filename)] += tottime
    whole = sum(totals.values()) or 1.0
    return dict(sorted(((k, v / whole) for k, v in totals.items()), key=lambda kv: -kv[1]))


def write_profile(name: str, main: cProfile.Profile, threads: list[cProfile.Profile]) -> None:
    """benchmarks/profiles/bench_library-<name>.txt: shares by package and the top functions,
    the event loop's thread and the step threads together (thread CPU time)."""
    import io

    stats = pstats.Stats(main)
    for profile in threads:
        stats.add(profile)
    shares = profile_shares(stats)
    out = io.StringIO()
    out.write(f"bench_library.py --profile {name}: thread CPU time, event loop + step threads\n\n")
    out.write("Own time by package (a C function counts for its caller's package):\n")
    for package, share in shares.items():
        out.write(f"{share:6.1%}  {package}\n")
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    whole = sum(v[2] for v in raw.values()) or 1.0
    out.write("\nCumulative time of the parts of an update (they nest: see the indent):\n")
    for part, (file_end, function) in PARTS.items():
        cum = sum(v[3] for (f, _l, n), v in raw.items() if f.endswith(file_end) and n == function)
        if cum:
            out.write(f"{cum / whole:6.1%}  {part}\n")
    out.write("\n")
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(50)
    stats.sort_stats("cumulative").print_stats(60)
    PROFILES.mkdir(exist_ok=True)
    path = PROFILES / f"bench_library-{name}.txt"
    path.write_text(out.getvalue().replace(str(ROOT) + "/", ""))
    print(f"profile written to {path.relative_to(ROOT)}")
    for package, share in list(shares.items())[:12]:
        print(f"  {share:6.1%}  {package}")


# ----- the run ------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libs = {}
    for dist in ("python-telegram-bot", "aiogram", "redis", "SQLAlchemy", "cryptography"):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            libs[dist] = None
    libs["sqlite"] = sqlite3.sqlite_version
    return {"python": platform.python_version(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "libraries": libs}  # fmt: skip


def print_table(results: dict[str, Result]) -> None:
    print(f"\n{'stack':<15} {'users':>5} {'upd/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
          f" {'CPU ms':>7} {'msgs':>6}  what")  # fmt: skip
    for r in results.values():
        print(f"{r.name:<15} {r.users:>5} {r.updates_per_s:>8.0f} {r.p50_ms:>7.3f} "
              f"{r.p99_ms:>7.3f} {r.max_ms:>7.1f} {r.cpu_ms:>7.3f} {r.messages:>6}  "
              f"{r.label}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=None, help="measured users (2000)")
    parser.add_argument("--warm", type=int, default=None, help="warm-up users (100)")
    parser.add_argument("--quick", action="store_true", help="20 users: smoke sizes")
    parser.add_argument("--rows-json", type=Path, default=None)
    parser.add_argument("--only", nargs="+", choices=STACKS, default=list(STACKS))
    parser.add_argument("--profile", choices=STACKS, default=None, help="cProfile this stack")
    args = parser.parse_args(argv)
    users = args.users or (20 if args.quick else 2000)
    warm = args.warm if args.warm is not None else (5 if args.quick else 100)
    report = Report("bench_library")
    load_start = os.getloadavg()
    results: dict[str, Result] = {}
    print(f"bench_library: {users} users x 7 updates (warm-up {warm}), load {load_start[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-library-") as tmp:
        for name in args.only:
            (Path(tmp) / name).mkdir()
            try:
                results[name] = asyncio.run(
                    run_stack(name, users, warm, report, Path(tmp), args.profile == name)
                )
            except Exception as exc:  # noqa: BLE001 - reported as a failed check
                report.check(ok=False, text=f"{name}: crashed: {type(exc).__name__}: {exc}")
                continue
            r = results[name]
            print(f"  {name}: {r.updates_per_s:,.0f} upd/s, p50 {r.p50_ms:.3f} ms, "
                  f"p99 {r.p99_ms:.3f} ms, mean {r.mean_ms:.3f} ms, CPU {r.cpu_ms:.3f} ms/update",
                  flush=True)  # fmt: skip
            for note in r.notes:
                print(f"    {note}")
    print_table(results)
    for row, ours, base, target in ROWS:
        if ours in results and base in results:
            r = report.row(
                Row(
                    row=row,
                    ours=round(results[ours].updates_per_s, 1),
                    baseline=round(results[base].updates_per_s, 1),
                    baseline_name=base,
                    unit="upd/s",
                    target=target,
                    notes=f"{users} users x 7 updates in process; p99 {results[ours].p99_ms:.2f}"
                    f" vs {results[base].p99_ms:.2f} ms",
                )
            )
            print(f"{row:<40} {r.ratio:6.3f}x (target {target}x) {'met' if r.met else 'NOT met'}")
    report.details.update(
        machine=machine_info(),
        users=users,
        warm_up_users=warm,
        load_average_start=[round(x, 2) for x in load_start],
        load_average_end=[round(x, 2) for x in os.getloadavg()],
        stacks={name: vars(r) for name, r in results.items()},
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return report.write(args.rows_json)


if __name__ == "__main__":
    sys.exit(main())
