"""Two `awardbot serve` workers on one PostgreSQL database: reminders go out once, and kill -9 of
the ticker's worker hands the ticker to the other within seconds (issue 10).

The database is the test's own (created and dropped). Before any worker starts, BATCH_1 Telegram
users asked for jl-skills-2022's window reminders; the strict window opens 2022-11-03, so each
is due one "1 day to go" reminder at 08:30 on 2022-11-02. Both workers run the demo clock
(AWARDBOT_NOW), ticking every second, with Telegram in webhook mode (as several workers behind a
load balancer run) against one fake Bot API.

Worker A starts first and takes the ticker's advisory lock; then B starts with its clock SKEW
seconds AHEAD of A's (clock skew between hosts, on purpose): without the lock, B would be the
first to see the reminders due and would hand them off itself. What must hold:

1. every user gets the 11-02 reminder exactly once (counted at the fake, per chat and text);
2. only A handed reminders to the outbox (each worker's awardbot_reminders_sent_total on its
   /metrics), only A re-planned and logged that it leads, and one session holds the lock.
   The outbox's idempotency key would hide a second ticker's hand-offs from the users; this
   is what fails without the lock (Leadership.held() always True: B hands the batch off).

Then BATCH_2 more users ask for the reminders — their rows written straight to the table, so
nothing plans their reminders until a worker starts leading (it re-plans every campaign) — and
A is killed -9. B must log that it leads within TAKEOVER_LIMIT seconds (the measured takeover
time is printed: `pytest -s`), re-plan, and hand the new users' reminders (due at once: 08:30
has passed, the day has not) to the outbox, delivered once; the first users get nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fakes.telegram_api import FakeTelegram
from support.outage import own_database
from support.workers import Worker, workers_of

from conversations.reminders import SHANGHAI
from storage import outbox
from storage.crypto import Sealer
from storage.leader import lock_key
from storage.reminders import ReminderStatus, set_pref
from storage.store import Store
from storage.tables import reminders, users

CAMPAIGN = "jl-skills-2022"
DUE = dt.datetime(2022, 11, 2, 8, 30, tzinfo=SHANGHAI)  # the 1-day-to-go reminder, 08:30
REMINDER = "1天后开始"  # in its title: 报送推荐材料1天后开始
BATCH_1 = range(830_001, 830_001 + 120)  # chat ids: asked before the workers started
BATCH_2 = range(831_001, 831_001 + 40)  # asked while A led; planned only by a new leader
LEAD = 12  # seconds from A's start until its clock reaches DUE
SKEW = 4  # B's clock runs this many seconds ahead of A's
TAKEOVER_LIMIT = 10.0
DELIVERY_TIMEOUT = 60.0
QUIET = 4.0  # seconds more to watch for a second copy after everything arrived
LEADS = "ticker: this worker leads"
REPLANNED = "ticker: plan refreshed"
SENT_TOTAL = "awardbot_reminders_sent_total"

Start = Callable[..., Awaitable[Worker]]


def subscribe(store: Store, chats: range, *, now: dt.datetime) -> None:
    """Telegram users (chat id = user id on Telegram) who asked for the window reminders."""
    with store.transaction() as conn:
        for chat in chats:
            user_id = conn.execute(
                sa.insert(users)
                .values(channel="telegram", external_id=str(chat), created_at=now)
                .returning(users.c.id)
            ).scalar_one()
            set_pref(conn, user_id, CAMPAIGN, "window", True, now=now)


def sends(fake: FakeTelegram) -> Counter[tuple[int, str]]:
    return Counter(
        (int(c.params["chat_id"]), str(c.params.get("text", "")))
        for c in fake.calls_of("sendMessage")
    )


def reached(fake: FakeTelegram, chats: range) -> int:
    """How many of these chats got at least one message."""
    got = {chat for chat, _ in sends(fake)}
    return sum(chat in got for chat in chats)


async def all_reached(fake: FakeTelegram, chats: range, within: float) -> float:
    """The moment every chat of `chats` got a message (AssertionError after `within` s)."""
    deadline = time.monotonic() + within
    while (n := reached(fake, chats)) < len(chats):
        assert time.monotonic() < deadline, f"only {n} of {len(chats)} chats reached"
        await asyncio.sleep(0.05)
    return time.monotonic()


def lock_holders(store: Store) -> list[int]:
    """Backend pids of the sessions holding the ticker's advisory lock (a bigint key shows in
    pg_locks as classid = its high 32 bits, objid = its low 32 bits, objsubid = 1)."""
    query = sa.text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = :hi AND objid = :lo AND objsubid = 1"
    )
    with store.reading() as conn:
        key = lock_key("public")  # the test's own database, its default schema
        rows = conn.execute(query, {"hi": key >> 32, "lo": key & 0xFFFFFFFF})
        return sorted(int(pid) for pid in rows.scalars())


def problems_in(fake: FakeTelegram, chats: range) -> list[str]:
    """Each chat must have exactly one message, the 11-02 reminder."""
    counted = sends(fake)
    out = []
    for chat in chats:
        texts = [(text, n) for (c, text), n in counted.items() if c == chat]
        if len(texts) != 1 or texts[0][1] != 1 or REMINDER not in texts[0][0]:
            shown = [(text[:30], n) for text, n in texts]
            out.append(f"chat {chat}: {shown or 'nothing'}")
    return out


def clock_at(start: dt.datetime) -> str:
    """AWARDBOT_NOW for a clock starting at `start` (local, whole seconds)."""
    return start.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def log_of(*workers: Worker) -> str:
    """What the workers said about the ticker (and any warning), for a failure message."""
    shown = []
    for w in workers:
        said = [
            f"  +{at - w.spawned:.2f}s {line}"
            for at, line in w.lines
            if "ticker" in line or line.startswith(("WARNING", "ERROR", "[test]"))
        ]
        shown.append(f"worker {w.name}:\n" + ("\n".join(said[-15:]) or "  (nothing)"))
    return "\n".join(shown)


@pytest.mark.slow
async def test_two_workers_send_each_reminder_once_and_the_ticker_fails_over(
    tmp_path: Path,
) -> None:
    key = Sealer.new_key()
    with own_database() as url:
        store = Store(url, sealer=Sealer([key]))  # migrates: the workers find the schema
        try:
            subscribe(store, BATCH_1, now=DUE - dt.timedelta(days=7))
            async with (
                FakeTelegram() as fake,
                workers_of(fake, database=url, key=key, workdir=tmp_path) as start,
            ):
                await run(store, fake, start)
        finally:
            store.close()


async def run(store: Store, fake: FakeTelegram, start: Start) -> None:
    a_now = DUE - dt.timedelta(seconds=LEAD)
    a = await start("a", AWARDBOT_NOW=clock_at(a_now), AWARDBOT_REMINDER_TICK_SECONDS="1")
    await a.wait_for(REPLANNED, 20)  # its first tick ran: the lock was free, A leads
    b_now = a_now + dt.timedelta(seconds=round(time.monotonic() - a.spawned) + SKEW)
    b = await start("b", AWARDBOT_NOW=clock_at(b_now), AWARDBOT_REMINDER_TICK_SECONDS="1")
    # B's clock reaches DUE at about this moment (later, by the time its process took to set
    # its clock up); B must be ticking before, or the test would not show it held back.
    b_due = b.spawned + (DUE - b_now).total_seconds()
    assert b.listening_at < b_due - 0.5, (
        f"B listened {b.listening_at - b_due:+.1f} s after its clock reached 08:30:"
        " too slow a machine for this test (raise LEAD)"
    )

    # ----- the first batch: due while both run -----
    await all_reached(fake, BATCH_1, DELIVERY_TIMEOUT)
    await asyncio.sleep(QUIET)
    handed = {w.name: await w.metric(SENT_TOTAL) for w in (a, b)}
    holders = lock_holders(store)
    problems = problems_in(fake, BATCH_1)
    assert not problems, "not exactly once:\n" + "\n".join(problems[:20])
    assert handed == {"a": len(BATCH_1), "b": 0}, (
        f"reminders handed to the outbox per worker {handed}: only the leader may hand off\n"
        + log_of(a, b)
    )
    assert (a.count(LEADS), b.count(LEADS)) == (1, 0), log_of(a, b)
    assert (a.count(REPLANNED), b.count(REPLANNED)) == (1, 0), log_of(a, b)
    assert len(holders) == 1, f"sessions holding the ticker's lock: {holders}"

    # ----- kill -9 of the leader; new users wait for a new leader's re-plan -----
    subscribe(store, BATCH_2, now=DUE)
    await asyncio.sleep(2)
    assert reached(fake, BATCH_2) == 0, "a worker re-planned while A still led"
    killed = a.kill()
    leads = await b.wait_for(LEADS, 30, after=killed)
    await b.wait_for(REPLANNED, 30, after=killed)
    delivered = await all_reached(fake, BATCH_2, DELIVERY_TIMEOUT)
    takeover = leads - killed
    print(
        f"\nticker failover: B led {takeover:.2f} s after kill -9 of A;"
        f" {len(BATCH_2)} new users' reminders delivered {delivered - killed:.2f} s after it"
    )
    await asyncio.sleep(QUIET)
    after = lock_holders(store)
    b_handed = await b.metric(SENT_TOTAL)
    code = await b.stop()

    problems = problems_in(fake, BATCH_1) + problems_in(fake, BATCH_2)
    assert not problems, "not exactly once:\n" + "\n".join(problems[:20])
    assert takeover < TAKEOVER_LIMIT, f"B took over {takeover:.1f} s after the kill"
    assert b_handed == len(BATCH_2), f"B handed {b_handed} reminders, not {len(BATCH_2)}"
    assert len(after) == 1, f"sessions holding the ticker's lock after the kill: {after}"
    assert after != holders, "the lock's holder did not change"
    assert code == 0, f"B did not stop cleanly ({code}):\n{b.tail()}"
    stored = rows_of_the_day(store)
    assert stored == {ReminderStatus.SENT.value: len(BATCH_1) + len(BATCH_2)}, stored
    assert deliveries(store) == {"delivered": len(BATCH_1) + len(BATCH_2)}


def rows_of_the_day(store: Store) -> dict[str, int]:
    """The 11-02 reminders' rows by status (one per user: planned once, handed off once)."""
    query = (
        sa.select(reminders.c.status, sa.func.count())
        .where(reminders.c.due_at >= DUE, reminders.c.due_at < DUE + dt.timedelta(hours=12))
        .group_by(reminders.c.status)
    )
    with store.reading() as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}


def deliveries(store: Store) -> dict[str, int]:
    table = outbox.outbox
    query = (
        sa.select(table.c.status, sa.func.count())
        .where(table.c.idempotency_key.like("reminder:%"))
        .group_by(table.c.status)
    )
    with store.reading() as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}
