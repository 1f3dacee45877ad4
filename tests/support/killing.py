"""Kill -9 of `awardbot serve` (issue 8): the real process, SIGKILLed at random moments.

    async with RecordingTelegram() as fake, killable_serve(fake, url, ...) as serve:
        run = await talk_while_killing(serve, fake, plan)      # bounded users, seeded kills
    report = conversation_report(run, store, fake)             # what got lost or doubled

`ServeProcess` runs `python -m bot.cli serve --port 0` as a child with the Telegram channel in
polling mode against the fake Bot API, settings from the environment only (a fixed secret key,
the test's database, attachments in the test's folder, the repository's campaigns), and kills
it with SIGKILL: no cleanup, no flush, the way a crashed or OOM-killed worker ends.

`RecordingTelegram` is the fake Bot API plus what Telegram itself knows and the fake does not
record: which updates were *confirmed* (a getUpdates with a higher offset: Telegram then
forgets them, so a process killed after that never gets them back) and which serve process was
handed each update. Unconfirmed updates stay queued, as on Telegram (the fake's getUpdates only
drops updates below the offset asked for), so a restarted serve gets them again.

The reports compare three records of the same run: what the simulated users sent and saw (the
fake's chat histories, in message-id order: user and bot messages share one counter per chat),
what the store committed (`inbound_deliveries`, one row per update whose step committed, and
each conversation's saved state and version), and what the pure engine makes of the committed
updates replayed in order (the replies each one should have got). Nothing here depends on the
timing of a kill: every count is read from those records after the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import random
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fakes.telegram_api import FakeTelegram

from bot.catalog import load_catalog
from bot.runtime import REPLY_GRACE
from conversations.engine import Engine, Inbound
from conversations.keys import ConversationKey
from handlers.telegram.render import render_reply
from notifications.outbox import Dispatcher
from storage import outbox
from storage.channels import inbound_deliveries
from storage.crypto import Sealer
from storage.store import Store
from storage.tables import conversation_sessions, dumps_json, users
from storage.tables import outbox as outbox_table
from support.outage import own_database

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "campaigns"
CHANNEL = "telegram"
DATABASES = ["sqlite", "postgres"]
LIBRARIES = ["ptb", "aiogram"]
START_TIMEOUT = 60.0  # seconds for a serve to say it listens (imports, migration, getMe)
STOP_TIMEOUT = 40.0  # graceful stop: serve drains for up to 30 s
TRANSCRIPTS = 4  # chats shown in full when something went wrong in them
TAIL = 40  # lines of a serve's stderr kept for failure messages
SEED_VARIABLE = "AWARDBOT_TEST_KILL_SEED"  # set: every run uses this seed instead of its own
# The lease the real dispatcher takes on a claimed batch: rows a killed worker left `sending`
# are settled by the next worker only after it (storage.outbox.recover_expired).
DISPATCH_LEASE = Dispatcher.__init__.__kwdefaults__["lease"]  # type: ignore[index]


# ----- the fake Bot API, with what Telegram knows about confirmations ---------------------------


class RecordingTelegram(FakeTelegram):
    """`FakeTelegram` that also records confirmations and which serve was handed what.

    `generation` is set by `ServeProcess` while a serve runs (None while none is alive), so a
    getUpdates answered after a kill — the killed process's long poll still pending in the fake —
    is not counted as handed to anyone alive.
    """

    def __init__(self) -> None:
        super().__init__()
        self._server_log = logging.getLogger("aiohttp.server")
        self._server_level = self._server_log.level
        self.confirmed_below = 0  # every update_id below this was confirmed by an offset
        self.handed: dict[int, set[int]] = defaultdict(set)  # update_id -> serve generations
        self.generation: int | None = None
        # Called (in the fake's handler, before it answers) when an offset confirms updates
        # that were handed out: the moment Telegram forgets them.
        self.on_confirm: Callable[[list[int]], None] | None = None

    async def __aenter__(self) -> RecordingTelegram:
        # A killed serve drops its connections mid-request: aiohttp logs each as an error with
        # a traceback, which is what this suite does on purpose, not a fault of the fake.
        self._server_log.setLevel(logging.CRITICAL)
        await super().__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await super().__aexit__(*exc)
        finally:
            self._server_log.setLevel(self._server_level)

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        if offset > self.confirmed_below:  # Telegram: an offset confirms every update below it
            newly = [u for u in self.handed if self.confirmed_below <= u < offset]
            self.confirmed_below = offset
            if newly and self.on_confirm is not None:
                self.on_confirm(newly)
        asked_by = self.generation
        updates = await super()._m_getUpdates(params)
        if asked_by is not None and asked_by == self.generation:
            for update in updates:
                self.handed[update["update_id"]].add(asked_by)
        return updates

    def confirmed(self, update_id: int) -> bool:
        return update_id < self.confirmed_below

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return self.sent(chat_id)

    def transcript(self, chat_id: int, width: int = 36) -> str:
        """The chat as its user saw it, one line a message (bot lines start with `bot`)."""
        lines = []
        for message_id, message in sorted(self.messages[chat_id].items()):
            who = "bot " if message["from"]["id"] != chat_id else "user"
            first = (message.get("text") or "").splitlines()[:1] or [""]
            buttons = " [buttons]" if message.get("reply_markup") else ""
            lines.append(f"    #{message_id} {who} {first[0][:width]}{buttons}")
        return "\n".join(lines)

    def sends(self) -> int:
        return len(self.calls_of("sendMessage"))


# ----- databases --------------------------------------------------------------------------------


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A SQLite file in tmp_path, or a PostgreSQL database of the test's own (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'kill.db'}"
        return
    with own_database() as url:
        yield url


def new_key() -> str:
    return Sealer.new_key()


def open_store(url: str, key: str) -> Store:
    return Store(url, sealer=Sealer([key]))


def seed_of(default: int) -> int:
    """The run's seed: its own, or the one in AWARDBOT_TEST_KILL_SEED (to try other moments)."""
    value = os.environ.get(SEED_VARIABLE, "")
    return int(value) if value.strip().isdigit() else default


# ----- the serve process ------------------------------------------------------------------------


@dataclass
class Kill:
    generation: int
    at: float  # monotonic
    uptime: float  # seconds the killed serve had been listening


class ServeProcess:
    """`awardbot serve` as a child process that can be killed -9 and started again.

    Every generation's stdout and stderr go to `workdir/serve-<n>.log` (kept for a failed test);
    the last lines of stderr are in `tail`.
    """

    def __init__(
        self, fake: RecordingTelegram, *, database: str, key: str, library: str, workdir: Path
    ) -> None:
        self.fake = fake
        self.library = library
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWARDBOT_")}
        self.env.update(
            AWARDBOT_DATABASE_URL=database,
            AWARDBOT_SECRET_KEY=key,
            AWARDBOT_SECRET_KEY_FILE=str(workdir / "unused.key"),
            AWARDBOT_ATTACHMENTS_DIR=str(workdir / "attachments"),
            AWARDBOT_CAMPAIGNS_DIR=str(CAMPAIGNS),
            AWARDBOT_LOG_LEVEL="WARNING",
            AWARDBOT_TELEGRAM_TOKEN=fake.token,
            AWARDBOT_TELEGRAM_LIBRARY=library,
            AWARDBOT_TELEGRAM_MODE="polling",
            AWARDBOT_TELEGRAM_API_BASE=fake.url,
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        self.generation = 0
        self.kills: list[Kill] = []
        self.tail: list[str] = []
        self.started_at = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._exited: asyncio.Task[int] | None = None
        self._log: Any = None
        self._signalled = False  # kill_at_once sent SIGKILL; not reaped yet
        self._ended_by_us = False  # SIGKILL or SIGTERM sent to the current generation
        self._spawned = 0.0
        self.crashes: list[str] = []  # generations that exited without being told to

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self._signalled

    async def start(self) -> None:
        """Start the next generation and wait until it listens (its channels started)."""
        assert not self.alive, "a serve is already running"
        self._signalled = self._ended_by_us = False
        self.generation += 1
        self._log = (self.workdir / f"serve-{self.generation}.log").open("w", encoding="utf-8")
        self._spawned = time.monotonic()
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            cwd=self.workdir,  # no .env there: the environment is the whole configuration
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        listening = asyncio.get_running_loop().create_future()
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self._proc.stdout, "out", listening)),
            asyncio.create_task(self._read(self._proc.stderr, "err", None)),
        ]
        self._exited = asyncio.create_task(self._proc.wait())
        # Hand-outs count for this generation from now on: its first getUpdates may come
        # before it prints that it listens.
        self.fake.generation = self.generation
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await asyncio.wait({listening, self._exited}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            await self.kill(count=False)
            raise AssertionError(
                f"serve generation {self.generation} did not listen within {START_TIMEOUT:g} s"
                f"; stderr:\n{self.stderr_tail()}"
            ) from None
        if not listening.done():
            await self.kill(count=False)
            raise AssertionError(
                f"serve generation {self.generation} exited with {self._proc.returncode} before"
                f" listening; stderr:\n{self.stderr_tail()}"
            )
        self.started_at = time.monotonic()

    async def _read(
        self, stream: asyncio.StreamReader, name: str, listening: asyncio.Future[None] | None
    ) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            if self._log is not None:
                at = time.monotonic() - self._spawned
                self._log.write(f"[{name} +{at:.3f}s] {text}\n")
            if name == "err":
                self.tail = [*self.tail[-(TAIL - 1) :], text]
            if listening is not None and not listening.done() and "listening on" in text:
                listening.set_result(None)

    def stderr_tail(self) -> str:
        return "\n".join(self.tail) or "(nothing)"

    def kill_at_once(self) -> None:
        """SIGKILL now, from a synchronous callback (the fake's handler, mid-request); the
        next `kill` or `restart` reaps the process."""
        if self._proc is None or self._proc.returncode is not None or self._signalled:
            return
        self._signalled = self._ended_by_us = True
        self.fake.generation = None
        uptime = time.monotonic() - self.started_at
        self.kills.append(Kill(self.generation, time.monotonic(), uptime))
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._proc.pid, signal.SIGKILL)

    async def kill(self, *, count: bool = True) -> None:
        """SIGKILL: the process ends where it stands."""
        if self._proc is None:
            return
        self.fake.generation = None
        self._note_crash()
        if self._proc.returncode is None and not self._signalled:
            self._ended_by_us = True
            if count:
                uptime = time.monotonic() - self.started_at
                self.kills.append(Kill(self.generation, time.monotonic(), uptime))
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)
        await self._reap()

    async def stop(self) -> int | None:
        """SIGTERM, as an operator stops it: graceful shutdown (killed if it hangs)."""
        if self._proc is None:
            return None
        self.fake.generation = None
        self._note_crash()
        if self._proc.returncode is None:
            self._ended_by_us = True
            if self._log is not None:
                self._log.write(f"[test +{time.monotonic() - self._spawned:.3f}s] SIGTERM\n")
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self._proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.send_signal(signal.SIGKILL)
        await self._reap()
        return self._proc.returncode

    def _note_crash(self) -> None:
        assert self._proc is not None
        if self._proc.returncode is not None and not self._ended_by_us:
            self._ended_by_us = True  # noted once
            self.crashes.append(
                f"serve {self.generation} exited by itself with {self._proc.returncode}:"
                f" {self.stderr_tail()}"
            )

    async def _reap(self) -> None:
        assert self._proc is not None
        await self._proc.wait()
        for task in [*self._readers, *([self._exited] if self._exited else [])]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        self._readers, self._exited = [], None
        if self._log is not None:
            self._log.close()
            self._log = None

    async def restart(self) -> None:
        await self.kill()
        await self.start()


@asynccontextmanager
async def killable_serve(
    fake: RecordingTelegram, *, database: str, key: str, library: str, workdir: Path
) -> AsyncIterator[ServeProcess]:
    """A ServeProcess (not started) that is killed when the block ends, whatever happened."""
    serve = ServeProcess(fake, database=database, key=key, library=library, workdir=workdir)
    try:
        yield serve
    finally:
        await serve.kill(count=False)


# ----- simulated users --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationPlan:
    users: int = 8
    messages: int = 12  # per user, the first one /start
    kills: int = 6
    seed: int = 8
    uptime: tuple[float, float] = (1.5, 4.0)  # seconds a serve lives before its kill
    think: tuple[float, float] = (0.0, 0.8)  # seconds a user reads before answering
    reply_timeout: float = 15.0  # a user gives up waiting (then sends /start)
    # Kill at the moment Telegram is told an update is done (the getUpdates whose offset
    # confirms it) instead of at a random moment: after `uptime`, the next confirmation.
    on_confirm: bool = False
    budget: float = 240.0  # the whole run, drain included
    first_chat: int = 810_001


@dataclass
class Sent:
    update_id: int
    chat_id: int
    text: str
    message_id: int  # the user's message in the fake's chat history
    generation: int  # the serve alive when it was sent (0: none)
    answered: bool = False  # the user saw a question after it


@dataclass
class ConversationRun:
    plan: ConversationPlan
    library: str
    database: str
    sent: list[Sent]
    kills: list[Kill]
    seconds: float
    timeouts: int
    crashes: list[str]  # serves that exited without being killed or stopped


def question_like(message: dict[str, Any]) -> bool:
    """A message that asks something: it has buttons, or it is a question (free answer)."""
    return bool(message.get("reply_markup")) or "？" in message.get("text", "")


def answer_for(question: dict[str, Any]) -> str:
    """What the simulated user answers: the first choice, else a plausible free answer."""
    if question.get("reply_markup"):
        return "1"
    text = question.get("text", "")
    if "日期" in text:
        return "1985-06-15"
    example = re.search(r"例如\s*(\d+)", text)
    return example.group(1) if example else "5"


class _Users:
    def __init__(self, serve: ServeProcess, fake: RecordingTelegram, plan: ConversationPlan):
        self.serve = serve
        self.fake = fake
        self.plan = plan
        self.sent: list[Sent] = []
        self.timeouts = 0

    def _gone(self, update_id: int) -> bool:
        """No reply can come any more: every serve handed the update is dead, and Telegram
        forgot it (confirmed), so no later serve will get it — and none of its replies is
        stored and still pending (those go out through the dispatcher, issue 9)."""
        handed = self.fake.handed.get(update_id, set())
        alive = self.serve.generation if self.serve.alive else None
        gone = bool(handed) and alive not in handed and self.fake.confirmed(update_id)
        return gone and not _replies_pending(self.serve, update_id)

    async def _reply(self, sent: Sent) -> dict[str, Any] | None:
        """The question the bot asked after `sent`, or None when none comes."""
        deadline = time.monotonic() + self.plan.reply_timeout
        while time.monotonic() < deadline:
            new = [
                m
                for m in self.fake.bot_messages(sent.chat_id)
                if m["message_id"] > sent.message_id
            ]
            if any(question_like(m) for m in new):
                # A reply can be several messages (paced 1/s per chat): let the rest come.
                await asyncio.sleep(0.3)
                later = self.fake.bot_messages(sent.chat_id)
                return [m for m in later if question_like(m)][-1]
            if self._gone(sent.update_id):
                return None
            await asyncio.sleep(0.1)
        return None

    async def user(self, chat_id: int, rng: random.Random) -> None:
        question: dict[str, Any] | None = None
        for number in range(self.plan.messages):
            await asyncio.sleep(rng.uniform(*self.plan.think))  # users do not type in step
            text = "/start" if number == 0 or question is None else answer_for(question)
            update = self.fake.text_update(chat_id, text)
            sent = Sent(
                update["update_id"],
                chat_id,
                text,
                update["message"]["message_id"],
                self.serve.generation if self.serve.alive else 0,
            )
            self.sent.append(sent)
            self.fake.push_update(update)
            question = await self._reply(sent)
            sent.answered = question is not None
            if question is None:
                self.timeouts += 1


async def talk_while_killing(
    serve: ServeProcess, fake: RecordingTelegram, plan: ConversationPlan, *, database: str
) -> ConversationRun:
    """Users talk (one message at a time, each waiting for its answer) while serve is killed
    at seeded random moments and restarted; then a last serve drains what is left and stops
    gracefully. Bounded: `plan.budget` seconds, `plan.users * plan.messages` updates."""
    plan = dataclasses.replace(plan, seed=seed_of(plan.seed))
    rng = random.Random(plan.seed)
    started = time.monotonic()
    people = _Users(serve, fake, plan)

    def progress() -> str:
        return f"{len(people.sent)} updates sent, {len(serve.kills)} kills"

    async with within(plan.budget, serve, progress):
        await serve.start()
        done = asyncio.Event()

        async def killer() -> None:
            for _ in range(plan.kills):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(rng.uniform(*plan.uptime)):
                        await done.wait()
                if done.is_set():
                    return
                if plan.on_confirm:
                    generation = serve.generation
                    fake.on_confirm = lambda _ids: serve.kill_at_once()
                    try:
                        while serve.alive and serve.generation == generation:
                            if done.is_set():
                                return
                            await asyncio.sleep(0.05)
                    finally:
                        fake.on_confirm = None
                await serve.restart()

        killing = asyncio.create_task(killer())
        try:
            chats = [plan.first_chat + i for i in range(plan.users)]
            await asyncio.gather(
                *(people.user(chat, random.Random(rng.random())) for chat in chats)
            )
        finally:
            done.set()
            await killing
        if not serve.alive:
            await serve.start()
        await _drain_updates(serve, fake, [s.update_id for s in people.sent])
        await _drain_stored_replies(serve)
        code = await serve.stop()
        assert code == 0, f"the last serve did not stop cleanly ({code}):\n{serve.stderr_tail()}"
    return ConversationRun(
        plan=plan,
        library=serve.library,
        database=database,
        sent=people.sent,
        kills=list(serve.kills),
        seconds=time.monotonic() - started,
        timeouts=people.timeouts,
        crashes=list(serve.crashes),
    )


@asynccontextmanager
async def within(
    budget: float, serve: ServeProcess, progress: Callable[[], str]
) -> AsyncIterator[None]:
    """The run's time budget: past it, a readable failure (how far it got), not a hang."""
    try:
        async with asyncio.timeout(budget):
            yield
    except TimeoutError:
        raise AssertionError(
            f"the run took more than its {budget:g} s ({progress()}); last serve's stderr:\n"
            f"{serve.stderr_tail()}"
        ) from None


def uncertain_replies(store: Store) -> int:
    """Stored replies whose send began and never settled: killed mid-send (unknown outcome)."""
    query = (
        sa.select(sa.func.count())
        .select_from(outbox_table)
        .where(
            outbox_table.c.kind == "reply",
            outbox_table.c.started_at.is_not(None),
            outbox_table.c.status != "delivered",
        )
    )
    with store.reading() as conn:
        return int(conn.execute(query).scalar_one())


def _replies_pending(serve: ServeProcess, update_id: int | None = None) -> int:
    """Stored replies (of one update, or all) still to go out: pending, or claimed by a worker
    that was killed before it marked them in flight (back to pending when the lease ends)."""
    store = open_store(serve.env["AWARDBOT_DATABASE_URL"], serve.env["AWARDBOT_SECRET_KEY"])
    try:
        waiting = sa.or_(
            outbox_table.c.status == "pending",
            sa.and_(outbox_table.c.status == "sending", outbox_table.c.started_at.is_(None)),
        )
        query = (
            sa.select(sa.func.count())
            .select_from(outbox_table)
            .where(outbox_table.c.kind == "reply", waiting)
        )
        if update_id is not None:
            query = query.where(
                outbox_table.c.idempotency_key.startswith(f"reply:telegram:{update_id}:")
            )
        with store.reading() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        store.close()


async def _drain_stored_replies(serve: ServeProcess) -> None:
    """Until no stored reply is still to go out (issue 9: replies a killed serve never took go
    out through the dispatcher once due, or once the take's 15 s lease ends); at most
    REPLY_GRACE + 20 s."""
    deadline = time.monotonic() + REPLY_GRACE.total_seconds() + 20
    while time.monotonic() < deadline and _replies_pending(serve):  # noqa: ASYNC110 - a poll
        await asyncio.sleep(0.5)


async def _drain_updates(serve: ServeProcess, fake: RecordingTelegram, ids: list[int]) -> None:
    """Until every update is confirmed and the bot has been quiet for 2 s (at most 30 s)."""
    last = max(ids, default=0)
    deadline = time.monotonic() + 30
    sends, quiet_since = fake.sends(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if fake.sends() != sends:
            sends, quiet_since = fake.sends(), time.monotonic()
        if fake.confirmed(last) and time.monotonic() - quiet_since >= 2:
            return


# ----- what a conversation run came to ----------------------------------------------------------


@dataclass
class UpdateFate:
    sent: Sent
    applied: bool
    confirmed: bool
    expected: list[str] = field(default_factory=list)  # the reply's messages, from the replay
    delivered: int = 0  # how many of them reached the chat
    copies: int = 0  # extra whole copies of the reply

    def describe(self) -> str:
        first = self.expected[0].splitlines()[0][:40] if self.expected else ""
        return (
            f"chat {self.sent.chat_id} update {self.sent.update_id} {self.sent.text!r}"
            f" (sent under serve {self.sent.generation or '-'}): applied={self.applied}"
            f" confirmed={self.confirmed} reply {self.delivered}/{len(self.expected)}"
            f" messages, {self.copies} extra copies, reply starts {first!r}"
        )


@dataclass
class ConversationReport:
    run: ConversationRun
    fake: RecordingTelegram
    fates: list[UpdateFate]
    replies_lost: list[UpdateFate]  # applied, reply not (wholly) in the chat
    replies_duplicated: list[UpdateFate]  # the same reply for the same update twice
    unexplained: dict[int, list[str]]  # chat -> bot messages no committed update explains
    applied_twice: dict[int, str]  # chat -> why (saved more often than updates were applied)
    diverged: dict[int, str]  # chat -> stored state vs the replay of its committed updates
    answers_lost: list[UpdateFate]  # confirmed, never applied
    never_taken: list[UpdateFate]  # neither confirmed nor applied at the end

    @property
    def kills(self) -> int:
        return len(self.run.kills)

    def counts(self) -> dict[str, int]:
        return {
            "updates": len(self.fates),
            "applied": sum(f.applied for f in self.fates),
            "kills": self.kills,
            "crashes": len(self.run.crashes),
            "user timeouts": self.run.timeouts,
            "replies lost": len(self.replies_lost),
            "replies duplicated": len(self.replies_duplicated),
            "replies unexplained": sum(len(v) for v in self.unexplained.values()),
            "answers applied twice": len(self.applied_twice),
            "states diverged": len(self.diverged),
            "answers lost": len(self.answers_lost),
            "updates never taken": len(self.never_taken),
        }

    def summary(self) -> str:
        run = self.run
        head = (
            f"kill -9 conversations [{run.database}, {run.library}] {run.plan.users} users x"
            f" {run.plan.messages} messages, seed {run.plan.seed}, {run.seconds:.0f} s:"
        )
        counts = ", ".join(f"{name} {value}" for name, value in self.counts().items())
        return f"{head} {counts}"

    def details(self) -> str:
        lines: list[str] = [self.summary()]
        kills = ", ".join(f"serve {k.generation} after {k.uptime:.1f} s" for k in self.run.kills)
        lines.append(f"kills: {kills or 'none'}")
        lines.extend(self.run.crashes)
        for title, fates in (
            ("replies lost (step committed, reply never reached the chat)", self.replies_lost),
            ("replies duplicated", self.replies_duplicated),
            ("answers lost (update confirmed, step never applied)", self.answers_lost),
            ("updates never taken", self.never_taken),
        ):
            if fates:
                lines.append(f"{title}:")
                lines.extend(f"  {fate.describe()}" for fate in fates)
        for chat, texts in self.unexplained.items():
            shown = "; ".join(t.splitlines()[0][:40] for t in texts)
            lines.append(f"chat {chat}: bot messages no committed update explains: {shown}")
        for chat, why in self.applied_twice.items():
            lines.append(f"chat {chat}: applied twice: {why}")
        for chat, why in self.diverged.items():
            lines.append(f"chat {chat}: stored state differs from the replay: {why}")
        troubled = sorted(
            {f.sent.chat_id for f in self.replies_lost + self.replies_duplicated}
            | {f.sent.chat_id for f in self.answers_lost + self.never_taken}
            | set(self.unexplained)
            | set(self.applied_twice)
            | set(self.diverged)
        )
        for chat in troubled[:TRANSCRIPTS]:
            sent = {s.message_id: s for s in self.run.sent if s.chat_id == chat}
            lines.append(f"chat {chat} as its user saw it:")
            lines.append(self.fake.transcript(chat))
            lines.append(
                "    updates: "
                + ", ".join(f"#{m}={s.update_id}@serve{s.generation}" for m, s in sent.items())
            )
        return "\n".join(lines)


_COMPARED = ("flow", "stage", "campaign", "category", "question", "answers", "acknowledged",
             "consented", "verdict")  # fmt: skip


def conversation_report(
    run: ConversationRun, store: Store, fake: RecordingTelegram
) -> ConversationReport:
    applied = _applied_deliveries(store)
    versions = _versions(store)
    engine = Engine(load_catalog(CAMPAIGNS), clock=lambda: dt.datetime.now(dt.UTC))
    by_chat: dict[int, list[Sent]] = defaultdict(list)
    for sent in run.sent:
        by_chat[sent.chat_id].append(sent)
    fates: list[UpdateFate] = []
    unexplained: dict[int, list[str]] = {}
    applied_twice: dict[int, str] = {}
    diverged: dict[int, str] = {}
    for chat, sents in sorted(by_chat.items()):
        chat_fates = [
            UpdateFate(s, str(s.update_id) in applied, fake.confirmed(s.update_id))
            for s in sorted(sents, key=lambda s: s.update_id)
        ]
        fates.extend(chat_fates)
        replayed = _replay(engine, [f for f in chat_fates if f.applied])
        stored = store.load_state(ConversationKey(CHANNEL, str(chat)))
        actual = [m.get("text", "") for m in fake.bot_messages(chat)]
        leftover = align_replies([f for f in chat_fates if f.applied], actual)
        if leftover:
            unexplained[chat] = leftover
        count = sum(f.applied for f in chat_fates)
        version = versions.get(str(chat), 0)
        if version > count:
            applied_twice[chat] = f"state saved {version} times for {count} committed updates"
        why = _difference(stored, replayed)
        if why:
            diverged[chat] = why
    return ConversationReport(
        run=run,
        fake=fake,
        fates=fates,
        replies_lost=[f for f in fates if f.applied and f.delivered < len(f.expected)],
        replies_duplicated=[f for f in fates if f.copies],
        unexplained=unexplained,
        applied_twice=applied_twice,
        diverged=diverged,
        answers_lost=[f for f in fates if f.confirmed and not f.applied],
        never_taken=[f for f in fates if not f.confirmed and not f.applied],
    )


def _applied_deliveries(store: Store) -> set[str]:
    query = sa.select(inbound_deliveries.c.delivery_id).where(
        inbound_deliveries.c.channel == CHANNEL
    )
    with store.reading() as conn:
        return set(conn.execute(query).scalars())


def _versions(store: Store) -> dict[str, int]:
    query = (
        sa.select(users.c.external_id, conversation_sessions.c.version)
        .join_from(users, conversation_sessions)
        .where(users.c.channel == CHANNEL)
    )
    with store.reading() as conn:
        return {row.external_id: row.version for row in conn.execute(query)}


def _replay(engine: Engine, fates: list[UpdateFate]) -> dict[str, Any] | None:
    """The committed updates through the pure engine, in order: each one's expected reply."""
    state: dict[str, Any] | None = None
    for fate in fates:
        step = engine.resume(state, Inbound(fate.sent.text))
        fate.expected = [m.text for reply in step.replies for m in render_reply(reply)]
        state = json.loads(dumps_json(step.state))  # as the store keeps it
    return state


def align_replies(fates: list[UpdateFate], actual: list[str]) -> list[str]:
    """Match the committed updates' expected replies, in order, to the chat's bot messages
    (a longest common subsequence: a reply cut short by a kill matches its first messages).

    Sets each fate's `delivered` and `copies` (bot messages repeating the reply of the update
    matched just before them); returns the bot messages no committed update explains.
    """
    wanted = [(i, text) for i, fate in enumerate(fates) for text in fate.expected]
    n, m = len(wanted), len(actual)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for a in range(n - 1, -1, -1):
        for b in range(m - 1, -1, -1):
            if wanted[a][1] == actual[b]:
                best[a][b] = best[a + 1][b + 1] + 1
            else:
                best[a][b] = max(best[a + 1][b], best[a][b + 1])
    owner: list[int | None] = [None] * m  # the fate each bot message is matched to
    a = b = 0
    while a < n and b < m:
        # On a tie a bot message goes to the LATER update that expects it: a kill cuts a reply
        # short, and the question it lacked comes with the user's next message (/start).
        if best[a + 1][b] == best[a][b]:
            a += 1
        elif wanted[a][1] == actual[b] and best[a][b] == best[a + 1][b + 1] + 1:
            owner[b] = wanted[a][0]
            fates[wanted[a][0]].delivered += 1
            a, b = a + 1, b + 1
        else:
            b += 1
    unexplained: list[str] = []
    previous: int | None = None
    for b, text in enumerate(actual):
        if owner[b] is not None:
            previous = owner[b]
        elif previous is not None and text in fates[previous].expected:
            fates[previous].copies += 1
        else:
            unexplained.append(text)
    return unexplained


def _difference(stored: dict[str, Any] | None, replayed: dict[str, Any] | None) -> str:
    if stored is None or replayed is None:
        return (
            ""
            if stored is replayed
            else f"stored {stored is not None}, replayed {replayed is not None}"
        )
    for name in _COMPARED:
        if stored.get(name) != replayed.get(name):
            return f"{name}: stored {stored.get(name)!r}, replay {replayed.get(name)!r}"
    return ""


# ----- the dispatcher under kill -9 ------------------------------------------------------------


@dataclass(frozen=True)
class DispatchPlan:
    notifications: int = 200
    chats: int = 40
    kills: int = 6
    seed: int = 4
    budget: float = 300.0
    first_chat: int = 820_001


@dataclass
class DispatchRun:
    plan: DispatchPlan
    library: str
    database: str
    kills: list[Kill]
    seconds: float
    crashes: list[str]  # serves that exited without being killed or stopped


def marker(number: int) -> str:
    return f"[kill-{number:04d}]"


def enqueue_notifications(store: Store, plan: DispatchPlan) -> None:
    """N notifications for Telegram chats, each text with a unique marker, due now."""
    now = dt.datetime.now(dt.UTC)
    messages = [
        outbox.OutboxMessage(
            idempotency_key=f"kill:{number}",
            channel=CHANNEL,
            recipient_id=str(plan.first_chat + number % plan.chats),
            text=f"测试通知 {marker(number)}：您关注的推荐有新进展。",
        )
        for number in range(plan.notifications)
    ]
    with store.transaction() as conn:
        outbox.enqueue(conn, store.sealer, messages, now=now)


def _statuses(store: Store) -> Counter[str]:
    query = sa.select(outbox.outbox.c.status, sa.func.count()).group_by(outbox.outbox.c.status)
    with store.reading() as conn:
        return Counter({row[0]: row[1] for row in conn.execute(query)})


async def send_while_killing(
    serve: ServeProcess,
    fake: RecordingTelegram,
    store: Store,
    plan: DispatchPlan,
    *,
    database: str,
) -> DispatchRun:
    """Serve's dispatcher sends the outbox while serve is killed at seeded random points of
    its progress (after so many sendMessage calls) and restarted; then a last serve runs until
    nothing is pending or left `sending` (a killed worker's rows settle after the dispatcher's
    lease) and stops gracefully."""
    plan = dataclasses.replace(plan, seed=seed_of(plan.seed))
    rng = random.Random(plan.seed)
    started = time.monotonic()
    points = sorted(rng.sample(range(3, plan.notifications - 3), plan.kills))

    def progress() -> str:
        return f"{fake.sends()} sends, {len(serve.kills)} kills, outbox {dict(_statuses(store))}"

    async with within(plan.budget, serve, progress):
        await serve.start()
        for point in points:
            await _progress(fake, store, max(point, fake.sends() + 1))
            await serve.restart()
        last_kill = time.monotonic()
        deadline = last_kill + DISPATCH_LEASE.total_seconds() + 20
        while time.monotonic() < deadline:
            statuses = _statuses(store)
            if not statuses["pending"] and not statuses["sending"]:
                break
            await asyncio.sleep(1)
        code = await serve.stop()
        assert code == 0, f"the last serve did not stop cleanly ({code}):\n{serve.stderr_tail()}"
    return DispatchRun(
        plan,
        serve.library,
        database,
        list(serve.kills),
        time.monotonic() - started,
        list(serve.crashes),
    )


async def _progress(fake: RecordingTelegram, store: Store, sends: int) -> None:
    """Until the fake has seen `sends` sendMessage calls, or nothing is left to send."""
    checked = time.monotonic()
    while fake.sends() < sends:
        if time.monotonic() - checked >= 0.5:
            if not _statuses(store)["pending"]:
                return
            checked = time.monotonic()
        await asyncio.sleep(0.02)


@dataclass
class DispatchReport:
    run: DispatchRun
    sent: dict[str, int]  # marker -> times it reached the fake
    rows: dict[str, outbox.OutboxEntry]  # marker -> its row

    def _with(self, condition: Any) -> list[str]:
        return [m for m, row in sorted(self.rows.items()) if condition(row, self.sent[m])]

    @property
    def twice(self) -> list[str]:
        return [m for m, n in sorted(self.sent.items()) if n > 1]

    @property
    def delivered(self) -> list[str]:
        return self._with(lambda r, n: r.status == outbox.OutboxStatus.DELIVERED)

    @property
    def unknown(self) -> list[str]:
        return self._with(
            lambda r, n: (
                r.status == outbox.OutboxStatus.FAILED and r.last_error == outbox.UNKNOWN_OUTCOME
            )
        )

    @property
    def still_sending(self) -> list[str]:
        return self._with(lambda r, n: r.status == outbox.OutboxStatus.SENDING)

    @property
    def uncertain(self) -> list[str]:
        return self.unknown + self.still_sending

    @property
    def pending(self) -> list[str]:
        return self._with(lambda r, n: r.status == outbox.OutboxStatus.PENDING)

    @property
    def failed_other(self) -> list[str]:
        return self._with(
            lambda r, n: (
                r.status == outbox.OutboxStatus.FAILED and r.last_error != outbox.UNKNOWN_OUTCOME
            )
        )

    @property
    def delivered_unsent(self) -> list[str]:
        return self._with(lambda r, n: r.status == outbox.OutboxStatus.DELIVERED and n == 0)

    def counts(self) -> dict[str, int]:
        unknown_sent = [m for m in self.uncertain if self.sent[m]]
        return {
            "notifications": len(self.rows),
            "kills": len(self.run.kills),
            "crashes": len(self.run.crashes),
            "sent twice": len(self.twice),
            "delivered": len(self.delivered),
            "failed unknown": len(self.unknown),
            "still sending": len(self.still_sending),
            "uncertain sent": len(unknown_sent),
            "uncertain never sent": len(self.uncertain) - len(unknown_sent),
            "still pending": len(self.pending),
            "failed otherwise": len(self.failed_other),
            "marked delivered, never sent": len(self.delivered_unsent),
        }

    def summary(self) -> str:
        run = self.run
        head = (
            f"kill -9 dispatcher [{run.database}, {run.library}] {run.plan.notifications}"
            f" notifications to {run.plan.chats} chats, seed {run.plan.seed},"
            f" {run.seconds:.0f} s:"
        )
        return f"{head} " + ", ".join(f"{k} {v}" for k, v in self.counts().items())

    def details(self) -> str:
        lines = [self.summary()]
        kills = ", ".join(f"serve {k.generation} after {k.uptime:.1f} s" for k in self.run.kills)
        lines.append(f"kills: {kills or 'none'}")
        lines.extend(self.run.crashes)
        for title, markers in (
            ("sent twice", self.twice),
            ("uncertain (failed outcome unknown, or left sending)", self.uncertain),
            ("still pending", self.pending),
            ("failed otherwise", self.failed_other),
            ("marked delivered, never sent", self.delivered_unsent),
        ):
            if markers:
                shown = ", ".join(
                    f"{m} ({self.rows[m].status}, attempts {self.rows[m].attempts},"
                    f" sent {self.sent[m]}x, chat {self.rows[m].recipient_id})"
                    for m in markers
                )
                lines.append(f"{title}: {shown}")
        return "\n".join(lines)


def dispatch_report(run: DispatchRun, store: Store, fake: RecordingTelegram) -> DispatchReport:
    sent: Counter[str] = Counter()
    pattern = re.compile(r"\[kill-\d{4}\]")
    for chat in range(run.plan.first_chat, run.plan.first_chat + run.plan.chats):
        for message in fake.bot_messages(chat):
            sent.update(pattern.findall(message.get("text", "")))
    rows: dict[str, outbox.OutboxEntry] = {}
    for number in range(run.plan.notifications):
        row = outbox.find(store, f"kill:{number}")
        assert row is not None, f"outbox row kill:{number} is gone"
        rows[marker(number)] = row
    return DispatchReport(run, {m: sent[m] for m in rows}, rows)
