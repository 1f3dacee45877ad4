"""Per-step cost of a self-check conversation: our stack against the baseline frameworks.

One process, one workload: N users x 7 updates each, interleaved round-robin across users (every
user's first message, then every user's second, ...), as real traffic interleaves. Each user
picks the campaign `jl-skills-2022`, the category `technical_expert`, then answers 是 是 否 否 否.
The same workload is pushed through:

  ours-durable    bot.runtime.Runtime + storage.store.Store on a fresh SQLite file: per update one
                  locked, committed transaction (BEGIN IMMEDIATE, WAL, synchronous=NORMAL), state
                  sealed with Fernet, the real engine (answer parsing, rule evaluation, texts)
  ours-engine     conversations.engine.Engine alone, states kept in a Python dict
  ptb-memory      python-telegram-bot Application + ConversationHandler (7 states), in memory
  ptb-pickle      the same with PicklePersistence, persisted after EVERY update (per-step
                  durability): update_persistence() + flush(), a whole-file rewrite each time
  aiogram-async   aiogram Dispatcher + FSM (StatesGroup) + MemoryStorage, StateFilter(...) filters
                  (Filter subclasses: awaited in the event loop)
  aiogram-state   the same with bare State objects as filters, as in aiogram's FSM docs
                  (`@router.message(Form.name)`): plain callables, run via asyncio.to_thread

Nothing contacts Telegram: both libraries get a request layer that answers PTB's getMe with a
canned bot user and refuses (and records) anything else; the run fails if anything else was asked.
The baselines' handlers only record the raw answer text and move to the next state; they send no
reply (that would need the network), parse nothing and evaluate no rule: they do less work than
ours. Updates are built (parsed from JSON, as a webhook would) before timing, for every stack.

Run:  .venv/bin/python benchmarks/bench_steps.py [--users N] [--steps 7]
Exit code 0 when every sanity check passed (the work was really done), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import pickle
import platform
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = ROOT / "campaigns"
DEFAULT_JSON = ROOT / "benchmarks" / "results.json"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
if str(ROOT / "benchmarks") not in sys.path:  # benchmarks/rows.py, also when imported by a test
    sys.path.insert(0, str(ROOT / "benchmarks"))

CAMPAIGN, CATEGORY = "jl-skills-2022", "technical_expert"
TEXTS = (CAMPAIGN, CATEGORY, "是", "是", "否", "否", "否")
# The facts the 5 answers fill, in the order technical_expert asks them, and their parsed values.
ANSWERED = (
    ("works_in_jilin", True),
    ("frontline_skill_position", True),
    ("is_unit_head", False),
    ("is_retired", False),
    ("applying_both_awards", False),
)
NEXT_QUESTION = "holds_jilin_technical_expert"  # what the engine asks after the 5th answer
FIXED_NOW = dt.datetime(2022, 10, 20, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))

USER_BASE = 1_000_000  # Telegram user ids of measured users: USER_BASE + 1 ...
WARM_BASE = 9_000_000  # ... and of warm-up users (never mixed with the measured ones)
TOKEN = "123456:BENCHMARK-offline-token"  # well-formed, never sent anywhere
BOT_ID = 123456
MESSAGE_DATE = int(FIXED_NOW.timestamp())

# What DESIGN §8 says (2,000 users x 7 updates on a 2-core machine), for comparison.
DESIGN_SAYS = {
    "ptb-memory": "~2,000/s, p99 ~1 ms",
    "ptb-pickle": "~220/s at a 1 s flush",
    "aiogram-async": "~1,300/s",
    "aiogram-state": "~570/s",
}


class CheckFailed(Exception):
    """A sanity check failed: the benchmark did not measure the work it claims to."""


# ----- measuring ----------------------------------------------------------------------------


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
    ratio_to_ptb_memory: float | None = None
    notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    breakdown_us: dict[str, float] = field(default_factory=dict)


def _percentile(sorted_ns: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-len(sorted_ns) * q // 100))  # ceil(n * q / 100)
    return sorted_ns[int(rank) - 1]


def _result(name: str, label: str, users: int, latencies: list[int], wall_ns: int) -> Result:
    lat = sorted(latencies)
    n = len(lat)
    return Result(
        name=name,
        label=label,
        users=users,
        updates=n,
        seconds=wall_ns / 1e9,
        updates_per_s=n / (wall_ns / 1e9),
        p50_ms=_percentile(lat, 50) / 1e6,
        p99_ms=_percentile(lat, 99) / 1e6,
        max_ms=lat[-1] / 1e6,
        mean_ms=sum(lat) / n / 1e6,
    )


def measure_sync(step: Callable[[Any], object], items: Iterable[Any]) -> tuple[list[int], int]:
    """Call `step(item)` for each item; per-call latencies and the wall time, in ns."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    record = latencies.append
    gc.collect()
    start = clock()
    for item in items:
        t0 = clock()
        step(item)
        record(clock() - t0)
    return latencies, clock() - start


async def measure_async(
    step: Callable[[Any], Awaitable[object]], items: Iterable[Any]
) -> tuple[list[int], int]:
    """Await `step(item)` for each item, one at a time; latencies and wall time, in ns."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    record = latencies.append
    gc.collect()
    start = clock()
    for item in items:
        t0 = clock()
        await step(item)
        record(clock() - t0)
    return latencies, clock() - start


def round_robin(user_ids: Sequence[int], steps: int) -> list[tuple[int, int]]:
    """(user id, step index) in the order traffic arrives: step 0 of everyone, then step 1..."""
    return [(uid, s) for s in range(steps) for uid in user_ids]


def raw_update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    """A Telegram Bot API update, as a webhook receives it (private chat: chat id = user id)."""
    user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": MESSAGE_DATE,
            "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
            "from": user,
            "text": text,
        },
    }


def _sample(user_ids: Sequence[int], k: int = 50) -> list[int]:
    """A spread sample of users: the first, the last and every n-th."""
    every = max(1, len(user_ids) // k)
    return sorted({user_ids[0], user_ids[-1], *user_ids[::every]})


def _expected_answers(steps: int) -> dict[str, Any]:
    return dict(ANSWERED[: max(0, steps - 2)])


def _expected_texts(steps: int) -> dict[str, str]:
    """What the baselines record in user_data: the raw text of each step, by step name."""
    return {f"s{i}": TEXTS[i] for i in range(steps)}


# ----- ours ---------------------------------------------------------------------------------


def _ours_engine() -> Any:
    from conversations.engine import Engine

    return Engine(_catalog(), clock=lambda: FIXED_NOW)


def _ours_runtime(store: Any) -> Any:
    """The runtime as `awardbot console` wires it (bot/wiring.py), with the fixed clock."""
    from bot.settings import load_settings
    from bot.wiring import build_runtime

    settings = load_settings(
        env={"AWARDBOT_ATTACHMENTS_DIR": str(Path(tempfile.gettempdir()) / "bench-att")},
        dotenv=Path("/nonexistent"),
    )
    return build_runtime(settings, _catalog(), store, clock=lambda: FIXED_NOW)


_skipped_files: list[str] = []


def _catalog() -> Any:
    """The campaigns as `awardbot` loads them; if a file in campaigns/ does not load (another
    engineer's work in progress), the campaigns that do, with the skipped file reported."""
    from bot.catalog import NOT_CAMPAIGNS, load_campaign_file, load_catalog
    from conversations.campaign import CampaignError, Catalog

    try:
        return load_catalog(CAMPAIGNS)
    except CampaignError:
        pass
    campaigns = []
    for path in sorted(CAMPAIGNS.glob("*.yaml")):
        if path.name in NOT_CAMPAIGNS:
            continue
        try:
            campaigns.append(load_campaign_file(path))
        except CampaignError as exc:
            message = f"skipped {path.name}, not a loadable campaign: {str(exc)[:100]}"
            if message not in _skipped_files:
                _skipped_files.append(message)
    return Catalog(campaigns)


def _check_state(state: dict[str, Any] | None, steps: int, who: str) -> None:
    if state is None:
        raise CheckFailed(f"{who}: no saved state")
    want = _expected_answers(steps)
    if state.get("answers") != want:
        raise CheckFailed(f"{who}: answers {state.get('answers')!r}, expected {want!r}")
    if steps >= 1 and state.get("campaign") != CAMPAIGN:
        raise CheckFailed(f"{who}: campaign {state.get('campaign')!r}")
    if steps >= 2 and state.get("category") != CATEGORY:
        raise CheckFailed(f"{who}: category {state.get('category')!r}")
    if steps == len(TEXTS) and (state.get("stage"), state.get("question")) != (
        "question",
        NEXT_QUESTION,
    ):
        raise CheckFailed(f"{who}: at {state.get('stage')}/{state.get('question')}")


def bench_ours_durable(
    users: int,
    warm: int,
    steps: int,
    tmp: Path,
    *,
    postgres: str | None = None,
    async_commit: bool = False,
) -> Result:
    """Our durable step on a fresh SQLite file, or (`postgres`: a server's URL) in a schema of
    its own on PostgreSQL over loopback, dropped afterwards. `async_commit`: the connections
    run with synchronous_commit=off (set in the URL, as a deployment would)."""
    if postgres is None:
        return _bench_ours_durable(users, warm, steps, tmp, f"sqlite:///{tmp / 'ours.db'}")
    from sqlalchemy.exc import OperationalError

    try:
        with _postgres_schema(postgres, async_commit=async_commit) as url:
            return _bench_ours_durable(users, warm, steps, tmp, url, async_commit=async_commit)
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())[:160]
        raise CheckFailed(f"ours-durable-pg: PostgreSQL unreachable ({reason})") from None


@contextlib.contextmanager
def _postgres_schema(base: str, *, async_commit: bool = False) -> Iterator[str]:
    """A new schema on the server (tests/support/stores.py does the same), dropped after."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    url = make_url(base)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    schema = f"bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        options = f"-csearch_path={schema}"
        if async_commit:
            options += " -csynchronous_commit=off"
        in_schema = url.update_query_dict({"options": options})
        yield in_schema.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _bench_ours_durable(
    users: int, warm: int, steps: int, tmp: Path, url: str, *, async_commit: bool = False
) -> Result:
    from conversations.keys import Channel, ConversationKey
    from storage.crypto import Sealer
    from storage.store import Store

    on_pg = url.startswith("postgresql")
    name = "ours-durable-pg" + ("-async" if async_commit else "") if on_pg else "ours-durable"
    label = (
        "ours: Runtime + Store (PostgreSQL"
        + (", synchronous_commit=off)" if async_commit else ")")
        if on_pg
        else "ours: Runtime + Store (SQLite)"
    )
    db = tmp / "ours.db"
    sealer = Sealer([Sealer.new_key()])
    store = Store(url, sealer=sealer)
    runtime = _ours_runtime(store)
    keys = {
        uid: ConversationKey(Channel.TELEGRAM.value, str(uid))
        for uid in [*range(WARM_BASE + 1, WARM_BASE + warm + 1)]
        + [*range(USER_BASE + 1, USER_BASE + users + 1)]
    }
    last_keys: dict[int, str | None] = {}

    def step(item: tuple[int, int]) -> None:
        uid, s = item
        replies = runtime.handle(keys[uid], TEXTS[s])
        if s == steps - 1:
            last_keys[uid] = replies[-1].key if replies else None

    measure_sync(step, round_robin(range(WARM_BASE + 1, WARM_BASE + warm + 1), steps))
    measured = list(range(USER_BASE + 1, USER_BASE + users + 1))
    latencies, wall = measure_sync(step, round_robin(measured, steps))
    result = _result(name, label, users, latencies, wall)

    # Sanity: the engine really advanced, every step was committed, and sealed.
    if steps == len(TEXTS):
        wrong = [u for u in measured if last_keys.get(u) != NEXT_QUESTION]
        if wrong:
            raise CheckFailed(f"{name}: {len(wrong)} users not asked {NEXT_QUESTION}")
        result.checks.append(f"all {users} users were asked {NEXT_QUESTION} after step 7")
    sample = _sample(measured)
    for uid in sample:
        _check_state(store.load_state(keys[uid]), steps, f"{name} user {uid}")
        with store.conversation(keys[uid]) as tx:  # commits nothing: nothing saved
            if tx.version != steps:
                raise CheckFailed(f"{name} user {uid}: version {tx.version} != {steps}")
    result.checks.append(
        f"{len(sample)} sampled users: saved answers {_expected_answers(steps)} "
        f"re-read from the file, session version = {steps} (one commit per step)"
    )
    plain_state = json.dumps(store.load_state(keys[measured[-1]]), ensure_ascii=False)
    if on_pg:
        import sqlalchemy as sa

        from storage.tables import conversation_sessions

        with store.reading() as conn:
            stored = list(conn.execute(sa.select(conversation_sessions.c.state)).scalars())
        store.close()
        if len(stored) != users + warm:
            raise CheckFailed(f"{name}: {len(stored)} sessions, expected {users + warm}")
        if not all(s.startswith("fernet:") and "works_in_jilin" not in s for s in stored):
            raise CheckFailed(f"{name}: a stored state is not sealed")
        result.checks.append(
            f"{len(stored)} sessions in the schema, every state Fernet-sealed (no plain answers)"
        )
        result.notes.append(
            "each update: BEGIN, SELECT ... FOR UPDATE, load+open, engine step, seal+save, "
            "COMMIT (PostgreSQL over loopback, synchronous_commit as the server has it)"
        )
        return result
    store.close()
    with sqlite3.connect(db) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sessions = conn.execute("SELECT count(*) FROM conversation_sessions").fetchone()[0]
        stored = [r[0] for r in conn.execute("SELECT state FROM conversation_sessions")]
    if mode != "wal":
        raise CheckFailed(f"ours-durable: journal_mode {mode}")
    if sessions != users + warm:
        raise CheckFailed(f"ours-durable: {sessions} sessions, expected {users + warm}")
    if not all(s.startswith("fernet:") and "works_in_jilin" not in s for s in stored):
        raise CheckFailed("ours-durable: a stored state is not sealed")
    result.checks.append(
        f"{sessions} sessions in the file (WAL), every state Fernet-sealed (no plain answers)"
    )
    result.notes.append("each update: BEGIN IMMEDIATE, load+open, engine step, seal+save, COMMIT")
    result.breakdown_us = {
        "fernet_seal_and_open": _fernet_cost_us(sealer, plain_state),
        "raw_sqlite_transaction": _raw_sqlite_cost_us(db, sample),
    }
    return result


def _fernet_cost_us(sealer: Any, text: str, n: int = 2000) -> float:
    """Mean cost of sealing and opening one saved state (what every step does once each)."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(n):
        sealer.open(sealer.seal(text))
    return (clock() - start) / n / 1e3


def _raw_sqlite_cost_us(db: Path, user_ids: Sequence[int], n: int = 2000) -> float:
    """Mean cost of the store's transaction written in plain sqlite3 (same pragmas, same
    statements: lock, find the user, read the session, update it, commit) - the floor under
    what SQLAlchemy Core does per step. Run after the checks: it bumps sampled versions."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
            conn.execute(f"PRAGMA {pragma}")
        now = FIXED_NOW.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        clock = time.perf_counter_ns
        start = clock()
        for i in range(n):
            uid = str(user_ids[i % len(user_ids)])
            conn.execute("BEGIN IMMEDIATE")
            (user_id,) = conn.execute(
                "SELECT id FROM users WHERE channel = ? AND external_id = ?", ("telegram", uid)
            ).fetchone()
            state, _version = conn.execute(
                "SELECT state, version FROM conversation_sessions WHERE user_id = ?", (user_id,)
            ).fetchone()
            conn.execute(
                "UPDATE conversation_sessions SET state = ?, version = version + 1, "
                "updated_at = ? WHERE user_id = ?",
                (state, now, user_id),
            )
            conn.execute("COMMIT")
        return (clock() - start) / n / 1e3
    finally:
        conn.close()


def bench_ours_engine(users: int, warm: int, steps: int) -> Result:
    from conversations.engine import Engine, Inbound

    engine: Engine = _ours_engine()
    states: dict[int, dict[str, Any]] = {}
    last_keys: dict[int, str | None] = {}

    def step(item: tuple[int, int]) -> None:
        uid, s = item
        out = engine.resume(states.get(uid), Inbound(TEXTS[s]))
        states[uid] = out.state
        if s == steps - 1:
            last_keys[uid] = out.replies[-1].key if out.replies else None

    measure_sync(step, round_robin(range(WARM_BASE + 1, WARM_BASE + warm + 1), steps))
    measured = list(range(USER_BASE + 1, USER_BASE + users + 1))
    latencies, wall = measure_sync(step, round_robin(measured, steps))
    result = _result("ours-engine", "ours: engine only (dict)", users, latencies, wall)
    for uid in measured:
        _check_state(states.get(uid), steps, f"ours-engine user {uid}")
    if steps == len(TEXTS) and any(last_keys.get(u) != NEXT_QUESTION for u in measured):
        raise CheckFailed(f"ours-engine: a user was not asked {NEXT_QUESTION}")
    result.checks.append(f"all {users} users: answers {_expected_answers(steps)} in the state")
    result.notes.append("no store, no encryption: the pure engine's own cost")
    return result


# ----- python-telegram-bot ------------------------------------------------------------------


def _ptb_offline_request() -> Any:
    from telegram.request import BaseRequest

    class OfflineRequest(BaseRequest):
        """Answers getMe with a canned bot user; refuses (and records) any other call."""

        def __init__(self) -> None:
            self.calls: list[str] = []

        @property
        def read_timeout(self) -> float | None:
            return None

        async def initialize(self) -> None:
            pass

        async def shutdown(self) -> None:
            pass

        async def do_request(
            self, url: str, method: str, *args: Any, **kwargs: Any
        ) -> tuple[int, bytes]:
            endpoint = url.rsplit("/", 1)[-1]
            self.calls.append(endpoint)
            if endpoint == "getMe":
                me = {"id": BOT_ID, "is_bot": True, "first_name": "bench", "username": "bench_bot"}
                return 200, json.dumps({"ok": True, "result": me}).encode()
            raise RuntimeError(f"benchmark is offline: refused Bot API call {endpoint}")

    return OfflineRequest()


async def bench_ptb(
    users: int, warm: int, steps: int, tmp: Path, *, pickle_path: Path | None
) -> Result:
    from telegram import Update
    from telegram.ext import (
        ApplicationBuilder,
        ConversationHandler,
        ExtBot,
        MessageHandler,
        PicklePersistence,
        filters,
    )

    requests = [_ptb_offline_request(), _ptb_offline_request()]
    bot = ExtBot(TOKEN, request=requests[0], get_updates_request=requests[1])
    builder = ApplicationBuilder().bot(bot).updater(None).job_queue(None)
    persistence = None
    if pickle_path is not None:
        # on_flush=True: nothing is written until flush(), which we call after every update,
        # so each update costs exactly one whole-file rewrite (the default, on_flush=False,
        # rewrites the file for user_data and again for the conversation state: two).
        persistence = PicklePersistence(pickle_path, on_flush=True)
        builder = builder.persistence(persistence)
    app = builder.build()

    calls = {"n": 0}
    errors: list[BaseException] = []

    def make(s: int) -> Callable[..., Awaitable[Any]]:
        async def on_text(update: Update, context: Any) -> int:
            context.user_data[f"s{s}"] = update.message.text  # no reply: it needs the network
            calls["n"] += 1
            return s + 1  # the next state; after the 7th, state 7 waits for the 6th question

        return on_text

    text = filters.TEXT & ~filters.COMMAND
    conv = ConversationHandler(
        entry_points=[MessageHandler(text, make(0))],
        states={s: [MessageHandler(text, make(s))] for s in range(1, 8)},  # 7 states
        fallbacks=[],
        name="selfcheck" if persistence else None,
        persistent=persistence is not None,
    )
    app.add_handler(conv)

    async def on_error(update: object, context: Any) -> None:
        errors.append(context.error)

    app.add_error_handler(on_error)
    await app.initialize()  # bot.initialize() -> getMe, answered by OfflineRequest

    async def step_memory(update: Update) -> None:
        await app.process_update(update)

    async def step_durable(update: Update) -> None:
        await app.process_update(update)
        await app.update_persistence()
        await persistence.flush()

    step = step_memory if persistence is None else step_durable

    def updates(user_ids: Sequence[int], first_id: int) -> list[Update]:
        plan = round_robin(user_ids, steps)
        return [
            Update.de_json(raw_update(first_id + i, uid, TEXTS[s]), bot)
            for i, (uid, s) in enumerate(plan)
        ]

    await measure_async(step, updates(range(WARM_BASE + 1, WARM_BASE + warm + 1), 1))
    measured = list(range(USER_BASE + 1, USER_BASE + users + 1))
    batch = updates(measured, 1_000_000)
    calls["n"] = 0
    latencies, wall = await measure_async(step, batch)
    del batch

    name = "ptb-memory" if persistence is None else "ptb-pickle"
    label = "PTB ConversationHandler" + (
        " in memory" if persistence is None else " + PicklePersistence"
    )
    result = _result(name, label, users, latencies, wall)

    # Sanity: every update ran a handler, each user's answers are in user_data, no network.
    if errors:
        raise CheckFailed(f"{name}: handler errors: {errors[:3]!r}")
    if calls["n"] != users * steps:
        raise CheckFailed(f"{name}: {calls['n']} handler calls, expected {users * steps}")
    want = _expected_texts(steps)
    bad = [u for u in measured if dict(app.user_data.get(u, {})) != want]
    if bad:
        raise CheckFailed(f"{name}: user {bad[0]} has {dict(app.user_data.get(bad[0], {}))}")
    result.checks.append(f"{users * steps} handler calls; all {users} users' user_data complete")
    await app.shutdown()
    await app.bot.shutdown()
    if persistence is not None:
        assert pickle_path is not None
        saved = pickle.loads(pickle_path.read_bytes())  # noqa: ASYNC240 (after timing)
        conversations = saved["conversations"]["selfcheck"]
        for uid in _sample(measured):
            if saved["user_data"].get(uid) != want:
                raise CheckFailed(f"{name}: pickle file lacks user {uid}'s data")
            if conversations.get((uid, uid)) != steps:
                raise CheckFailed(f"{name}: pickle file: user {uid} in state {conversations}")
        size = len(pickle.dumps(saved))  # about the file's size (no bot in the data)
        result.checks.append(
            f"pickle file re-read: sampled users' data and state present ({size:,} bytes)"
        )
        result.notes.append(
            f"each update: update_persistence() + flush() rewrites the whole file "
            f"(~{size // 1024} KB at the end, no fsync)"
        )
    contacted = [c for r in requests for c in r.calls]
    if contacted != ["getMe"]:
        raise CheckFailed(f"{name}: Bot API calls {contacted}, expected only the canned getMe")
    result.checks.append("no Bot API call but the canned getMe of initialize()")
    result.notes.append("handlers store the raw text and return the next state; no reply sent")
    return result


# ----- aiogram ------------------------------------------------------------------------------


def _aiogram_offline_session() -> Any:
    from aiogram.client.session.base import BaseSession

    class OfflineSession(BaseSession):
        """Refuses (and records) every Bot API call."""

        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        async def close(self) -> None:
            pass

        async def make_request(self, bot: Any, method: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(type(method).__name__)
            raise RuntimeError(f"benchmark is offline: refused {type(method).__name__}")

        async def stream_content(self, *args: Any, **kwargs: Any) -> Any:
            self.calls.append("stream_content")
            raise RuntimeError("benchmark is offline")

    return OfflineSession()


async def bench_aiogram(users: int, warm: int, steps: int, *, async_filter: bool) -> Result:
    from aiogram import Bot, Dispatcher, Router
    from aiogram.filters import StateFilter
    from aiogram.fsm.context import FSMContext
    from aiogram.fsm.state import State, StatesGroup, default_state
    from aiogram.fsm.storage.base import StorageKey
    from aiogram.fsm.storage.memory import MemoryStorage
    from aiogram.types import Message, Update

    class SelfCheck(StatesGroup):
        category = State()
        a1 = State()
        a2 = State()
        a3 = State()
        a4 = State()
        a5 = State()
        next_question = State()  # after the 5th answer: waits for the 6th question

    order: list[State] = [
        default_state,
        SelfCheck.category,
        SelfCheck.a1,
        SelfCheck.a2,
        SelfCheck.a3,
        SelfCheck.a4,
        SelfCheck.a5,
        SelfCheck.next_question,
    ]
    session = _aiogram_offline_session()
    bot = Bot(TOKEN, session=session)
    dp = Dispatcher(storage=MemoryStorage())
    router = Router()
    calls = {"n": 0}

    def make(s: int) -> Callable[..., Awaitable[Any]]:
        async def on_text(message: Message, state: FSMContext) -> None:
            await state.update_data({f"s{s}": message.text})  # no reply: it needs the network
            await state.set_state(order[s + 1])
            calls["n"] += 1

        return on_text

    for s in range(len(order)):
        flt = StateFilter(order[s]) if async_filter else order[s]
        router.message(flt)(make(s))
    dp.include_router(router)

    def updates(user_ids: Sequence[int], first_id: int) -> list[Update]:
        plan = round_robin(user_ids, steps)
        return [
            Update.model_validate(raw_update(first_id + i, uid, TEXTS[s]), context={"bot": bot})
            for i, (uid, s) in enumerate(plan)
        ]

    async def step(update: Update) -> None:
        await dp.feed_update(bot, update)

    await measure_async(step, updates(range(WARM_BASE + 1, WARM_BASE + warm + 1), 1))
    measured = list(range(USER_BASE + 1, USER_BASE + users + 1))
    batch = updates(measured, 1_000_000)
    calls["n"] = 0
    latencies, wall = await measure_async(step, batch)
    del batch

    name = "aiogram-async" if async_filter else "aiogram-state"
    label = "aiogram FSM + MemoryStorage, " + (
        "StateFilter (async)" if async_filter else "bare State filters"
    )
    result = _result(name, label, users, latencies, wall)
    if calls["n"] != users * steps:
        raise CheckFailed(f"{name}: {calls['n']} handler calls, expected {users * steps}")
    want = _expected_texts(steps)
    for uid in measured:
        key = StorageKey(bot_id=bot.id, chat_id=uid, user_id=uid)
        data = await dp.storage.get_data(key)
        if data != want:
            raise CheckFailed(f"{name}: user {uid} has data {data!r}")
        if await dp.storage.get_state(key) != order[steps].state:
            raise CheckFailed(f"{name}: user {uid} in state {await dp.storage.get_state(key)}")
    result.checks.append(f"{users * steps} handler calls; all {users} users' FSM data complete")
    if session.calls:
        raise CheckFailed(f"{name}: Bot API calls {session.calls}")
    result.checks.append("no Bot API call")
    await dp.storage.close()
    await bot.session.close()
    if async_filter:
        result.notes.append("filters: StateFilter(state), a Filter subclass, awaited in-loop")
    else:
        result.notes.append(
            "filters: bare State objects (sync callables): aiogram runs each check in "
            "asyncio.to_thread, one per handler tried"
        )
    result.notes.append("handlers: state.update_data + state.set_state; no reply sent")
    return result


# ----- report -------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libs = {}
    for dist in (
        "awardbot",
        "python-telegram-bot",
        "aiogram",
        "SQLAlchemy",
        "cryptography",
        "pydantic",
        "Jinja2",
    ):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            libs[dist] = None
    libs["sqlite"] = sqlite3.sqlite_version
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "libraries": libs,
        "load_average_at_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    """1, 5, 15-minute load averages: other busy processes make the numbers noisy."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def print_table(results: list[Result]) -> None:
    head = (
        f"{'stack':<15} {'users':>6} {'updates':>8} {'upd/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'x PTB mem':>9}  DESIGN §8 says"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ratio = f"{r.ratio_to_ptb_memory:.3f}x" if r.ratio_to_ptb_memory is not None else "-"
        print(
            f"{r.name:<15} {r.users:>6} {r.updates:>8} {r.updates_per_s:>8,.0f} "
            f"{r.p50_ms:>8.3f} {r.p99_ms:>8.3f} {r.max_ms:>8.1f} {ratio:>9}  "
            f"{DESIGN_SAYS.get(r.name, '')}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000, help="users (default 2000)")
    parser.add_argument(
        "--steps", type=int, default=7, choices=range(1, 8), help="updates per user (default 7)"
    )
    parser.add_argument(
        "--pickle-users",
        type=int,
        default=500,
        help="users for ptb-pickle (default 500, at most --users): each update rewrites the "
        "whole file, so its cost grows with the users and 2,000 would take ~5 minutes",
    )
    parser.add_argument(
        "--warmup", type=int, default=100, help="warm-up users per stack, not measured"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="STACK",
        choices=[
            "ours-durable",
            "ours-durable-pg",
            "ours-durable-pg-async",
            "ours-engine",
            "ptb-memory",
            "ptb-pickle",
            "aiogram-async",
            "aiogram-state",
        ],
        help="run only these stacks: ours-durable ours-durable-pg ours-durable-pg-async "
        "ours-engine ptb-memory "
        "ptb-pickle aiogram-async aiogram-state (the baselines here send no reply; "
        "bench_library.py has the fair ones)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AWARDBOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL server for ours-durable-pg (a schema of its own, dropped after; "
        f"default $AWARDBOT_TEST_POSTGRES_URL or {DEFAULT_POSTGRES})",
    )
    parser.add_argument(
        "--rows-json", type=Path, help="write the rows against the targets (make bench)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="also profile ours-durable (pyinstrument, 300 users) and write the call tree here",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke sizes: 20 users, 5 warm-up (numbers mean nothing)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.warmup, args.pickle_users = 20, 5, 20
    if args.users < 1 or args.pickle_users < 1:
        parser.error("--users and --pickle-users must be at least 1")
    users, steps = args.users, args.steps
    pickle_users = min(users, args.pickle_users)
    warm = max(0, min(args.warmup, users))
    selected = set(args.only or [])

    def wanted(name: str) -> bool:
        return not selected or name in selected

    started = dt.datetime.now(dt.UTC)
    info = machine_info()
    print(
        f"Per-step cost of a self-check conversation: {users} users x {steps} updates, "
        f"round-robin; warm-up {warm} users per stack (not measured)."
    )
    print(
        f"Python {info['python']}, {info['cpu_count']} CPUs ({info['cpu']}); "
        + ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    )
    load = info["load_average_at_start"]
    if load and load[0] > 0.5:
        print(
            f"WARNING: load average {load[0]} at start: other processes share the "
            f"{info['cpu_count']} CPUs and will make these numbers slower and noisier."
        )
    print()

    results: list[Result] = []
    failures: list[str] = []

    def run(name: str, fn: Callable[[], Result]) -> None:
        if not wanted(name):
            return
        print(f"running {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            r = fn()
        except CheckFailed as exc:
            failures.append(str(exc))
            print(f"  SANITY CHECK FAILED: {exc}", flush=True)
            return
        results.append(r)
        print(
            f"  {r.updates} updates in {r.seconds:.1f} s ({time.perf_counter() - t0:.1f} s "
            f"with setup and checks): {r.updates_per_s:,.0f}/s",
            flush=True,
        )

    with tempfile.TemporaryDirectory(prefix="awardbot-bench-") as tmpdir:
        tmp = Path(tmpdir)
        run("ours-durable", lambda: bench_ours_durable(users, warm, steps, tmp))
        run(
            "ours-durable-pg",
            lambda: bench_ours_durable(users, warm, steps, tmp, postgres=args.postgres),
        )
        run(
            "ours-durable-pg-async",
            lambda: bench_ours_durable(
                users, warm, steps, tmp, postgres=args.postgres, async_commit=True
            ),
        )
        run("ours-engine", lambda: bench_ours_engine(users, warm, steps))
        run(
            "ptb-memory", lambda: asyncio.run(bench_ptb(users, warm, steps, tmp, pickle_path=None))
        )
        pickle_warm = max(0, min(warm, pickle_users))
        run(
            "ptb-pickle",
            lambda: asyncio.run(
                bench_ptb(pickle_users, pickle_warm, steps, tmp, pickle_path=tmp / "ptb.pickle")
            ),
        )
        run(
            "aiogram-async",
            lambda: asyncio.run(bench_aiogram(users, warm, steps, async_filter=True)),
        )
        run(
            "aiogram-state",
            lambda: asyncio.run(bench_aiogram(users, warm, steps, async_filter=False)),
        )

    base = next((r for r in results if r.name == "ptb-memory"), None)
    for r in results:
        if base is not None:
            r.ratio_to_ptb_memory = r.updates_per_s / base.updates_per_s
        if r.name == "ptb-pickle" and r.users != users:
            r.notes.append(
                f"run on {r.users} users, not {users}: the file (and so each rewrite) is "
                f"~{users / r.users:.0f}x smaller than it would be at {users}"
            )

    print()
    print_table(results)
    print()
    print("Notes:")
    for r in results:
        for note in r.notes:
            print(f"  {r.name}: {note}")
    print(
        "  all baselines do LESS work per update than ours: no answer parsing or rule "
        "evaluation, no reply text, no encryption; only ours-durable and ptb-pickle persist"
    )
    print("  'x PTB mem' = updates/s divided by ptb-memory's updates/s (higher is faster)")
    durable = next((r for r in results if r.name == "ours-durable"), None)
    engine = next((r for r in results if r.name == "ours-engine"), None)
    if durable is not None and durable.breakdown_us:
        print()
        print("Where ours-durable's time goes (mean per update, approximate):")
        total = durable.mean_ms * 1e3
        parts = []
        if engine is not None:
            parts.append(("engine step (ours-engine's mean)", engine.mean_ms * 1e3))
        parts.append(
            ("Fernet seal + open of the state", durable.breakdown_us["fernet_seal_and_open"])
        )
        parts.append(
            (
                "the same transaction in plain sqlite3",
                durable.breakdown_us["raw_sqlite_transaction"],
            )
        )
        rest = total - sum(us for _, us in parts)
        parts.append(("the rest: SQLAlchemy Core, JSON, Runtime wiring", rest))
        for what, us in parts:
            print(f"  {what:<48} {us:>8.0f} us  {us / total:>4.0%}")
        print(f"  {'total (ours-durable mean)':<48} {total:>8.0f} us")
        durable.breakdown_us["rest_sqlalchemy_json_runtime"] = rest
        if engine is not None:
            durable.breakdown_us["engine_step"] = engine.mean_ms * 1e3
    load_end = _loadavg()
    info["load_average_at_end"] = load_end
    if load_end and load_end[0] > 1.5:
        print(f"  WARNING: load average {load_end[0]} at the end: the machine was busy")
    for message in _skipped_files:
        print(f"  WARNING: campaigns/: {message}")
    print()
    print("Sanity checks (the work was really done):")
    for r in results:
        for check in r.checks:
            print(f"  ok  {r.name}: {check}")
    for failure in failures:
        print(f"  FAILED  {failure}")

    report = {
        "benchmark": "per-step cost of a self-check conversation (benchmarks/bench_steps.py)",
        "date": started.isoformat(timespec="seconds"),
        "users": users,
        "steps": steps,
        "warmup_users": warm,
        "texts": list(TEXTS[:steps]),
        "order": "round-robin across users",
        "machine": info,
        "design_section_8": DESIGN_SAYS,
        "results": [asdict(r) for r in results],
        "failures": failures,
        "skipped_campaign_files": _skipped_files,
        "ok": not failures,
    }
    if args.json.exists():  # keep what other benchmarks wrote (bench_channels.py: "channels")
        previous = json.loads(args.json.read_text("utf-8"))
        report = {**report, **{k: v for k, v in previous.items() if k not in report}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print()
    print(f"wrote {args.json}")
    if args.profile is not None and wanted("ours-durable"):
        _profile_durable(args.profile, steps)
        print(f"wrote the durable step's profile to {args.profile}")
    if args.rows_json is not None:
        _write_rows(args.rows_json, results, failures)
    if failures:
        print(f"FAILED: {len(failures)} sanity check(s) failed; numbers above are not valid")
        return 1
    return 0


DURABLE_MEAN_US = 150.0  # issue 13's targets for the durable step on SQLite
DURABLE_P99_MS = 0.5
PG_OVER_SQLITE = 2.0


def _write_rows(path: Path, results: list[Result], failures: list[str]) -> None:
    """The rows `make bench` prints (benchmarks/rows.py)."""
    from rows import Report, Row

    report = Report("bench_steps")
    by = {r.name: r for r in results}
    lite, pg, engine = by.get("ours-durable"), by.get("ours-durable-pg"), by.get("ours-engine")
    if lite is not None:
        report.row(Row("durable step, SQLite: mean", lite.mean_ms * 1e3, "µs", DURABLE_MEAN_US,
                       higher_is_better=False,
                       notes=f"{lite.updates_per_s:,.0f} upd/s, one core"))  # fmt: skip
        report.row(Row("durable step, SQLite: p99", lite.p99_ms, "ms", DURABLE_P99_MS,
                       higher_is_better=False))  # fmt: skip
    if engine is not None:
        report.row(Row("engine step alone (no store): mean", engine.mean_ms * 1e3, "µs",
                       DURABLE_MEAN_US, higher_is_better=False,
                       notes="not a target: what the store adds is the difference"))  # fmt: skip
    if pg is not None and lite is not None:
        report.row(Row("durable step, PostgreSQL: mean / SQLite's", pg.mean_ms * 1e3, "µs",
                       PG_OVER_SQLITE, higher_is_better=False, baseline=lite.mean_ms * 1e3,
                       baseline_name="ours-durable (SQLite)",
                       notes=f"p99 {pg.p99_ms:.2f} ms, loopback, "
                       "a WAL flush per commit"))  # fmt: skip
    pg_async = by.get("ours-durable-pg-async")
    if pg_async is not None and lite is not None:
        report.row(Row("durable step, PostgreSQL synchronous_commit=off: mean / SQLite's",
                       pg_async.mean_ms * 1e3, "µs", PG_OVER_SQLITE, higher_is_better=False,
                       baseline=lite.mean_ms * 1e3, baseline_name="ours-durable (SQLite)",
                       notes=f"p99 {pg_async.p99_ms:.2f} ms: SQLite's own guarantee (WAL, "
                       "synchronous=NORMAL): a crash of ours loses nothing"))  # fmt: skip
    for r in results:
        for check in r.checks:
            report.check(ok=True, text=f"{r.name}: {check}")
    for failure in failures:
        report.check(ok=False, text=failure)
    report.details = {r.name: asdict(r) for r in results}
    report.write(path)


def _profile_durable(out: Path, steps: int, users: int = 300) -> None:
    """Run ours-durable again under pyinstrument (a sampling profiler: 1 ms, low overhead)
    and keep its call tree as text beside the results."""
    from pyinstrument import Profiler

    with tempfile.TemporaryDirectory(prefix="awardbot-profile-") as tmpdir:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        try:
            bench_ours_durable(users, 20, steps, Path(tmpdir))
        finally:
            profiler.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_text(unicode=True, color=False, show_all=False), "utf-8")


if __name__ == "__main__":
    sys.exit(main())
