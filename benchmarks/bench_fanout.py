"""Reminder fan-out through the outbox at Telegram's flood limit, across a kill -9 (issue 13).

The workload is the real path end to end. Before anything runs, N Telegram users (chat id = user
id) asked for jl-skills-2022's window reminders (`storage.reminders.set_pref`, as `/subscribe`
stores it). The strict submission window opens 2022-11-03, so each user is due one "1 day to go"
reminder at 08:30 on 2022-11-02. `awardbot serve` runs as a child process (Telegram in webhook
mode against the fake Bot API of tests/fakes, which runs in this process), on the demo clock
(AWARDBOT_NOW) started a few seconds before 08:30 and a 1 s reminder tick: the ticker plans every
campaign when it starts leading, and at 08:30 hands the N reminders to the outbox; the outbox
dispatcher sends them through the adapter's REAL flood limiter (30 messages/s overall, 1/s per
chat: `handlers.telegram.limits.RateLimiter` with its defaults, not the tests' fast limiter).

When a third of the messages reached the fake, the process is killed with SIGKILL (no cleanup;
at a seeded random moment within the next two send periods, so it lands wherever the dispatcher
is in its cycle).
A new `serve` starts on the same database with its clock continuing the first one's timeline (and
jumped past the dispatcher's 60 s lease when what is left would be sent before the lease ends,
as in --quick, so the killed worker's claimed rows are settled within the run). It sends the
rest. The run ends when no outbox row is pending or sending, plus a few quiet seconds, and the
second serve stops gracefully (SIGTERM).

Counted at the fake Bot API, per chat: duplicates (a chat that got more than one message: the
extra ones) and losses (a chat that got none). The rate is the steady delivery rate over the two
sending periods (each generation's first send to its last), without the restart gap and without
each generation's initial burst (the token bucket starts full, as Telegram allows a burst: the
first 30 messages of each generation are left out so the burst does not inflate the rate); the
overall wall rate including the restart gap is in the notes.

Run:  .venv/bin/python benchmarks/bench_fanout.py [--quick] [--reminders N] [--postgres URL]
      [--rows-json PATH]
Exit code 0 when every sanity check passed (rows may miss their targets), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
for _path in (str(ROOT), str(TESTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import sqlalchemy as sa  # noqa: E402
from fakes.telegram_api import FakeTelegram  # noqa: E402
from support.workers import Worker, serve_env  # noqa: E402

from benchmarks.rows import Report, Row  # noqa: E402
from conversations.reminders import SHANGHAI  # noqa: E402
from handlers.telegram.limits import MESSAGES_PER_SECOND  # noqa: E402
from notifications.outbox import Dispatcher  # noqa: E402
from storage.crypto import Sealer  # noqa: E402
from storage.outbox import UNKNOWN_OUTCOME  # noqa: E402
from storage.reminders import set_pref  # noqa: E402
from storage.store import Store  # noqa: E402
from storage.tables import outbox, reminders, users  # noqa: E402

CAMPAIGN = "jl-skills-2022"
DUE = dt.datetime(2022, 11, 2, 8, 30, tzinfo=SHANGHAI)  # the 1-day-to-go reminder, 08:30
REMINDER = "1天后开始"  # in its title: 报送推荐材料1天后开始
CHAT_BASE = 700_000_000
FULL, QUICK = 3_000, 150
KILL_AT = 1 / 3  # of the messages at the fake
BURST = int(MESSAGES_PER_SECOND)  # the overall bucket starts full: this many go at once
LEASE = Dispatcher.__init__.__kwdefaults__["lease"]  # type: ignore[index]
POLL = 0.005
QUIET = 3.0  # seconds to watch for a late second copy once nothing is left to send
SCRIPT = "bench_fanout"


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def clock_at(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


# ----- the database ---------------------------------------------------------------------------


@contextlib.contextmanager
def database(postgres: str | None, tmp: Path) -> Iterator[str]:
    """A SQLite file in `tmp`, or a PostgreSQL database of our own on that server (dropped)."""
    if not postgres:
        yield f"sqlite:///{tmp / 'fanout.db'}"
        return
    base = sa.engine.make_url(postgres)
    name = f"awardbot_fanout_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def subscribe(store: Store, chats: Sequence[int], *, now: dt.datetime) -> None:
    """Telegram users who asked for the window reminders (what `/subscribe 报送` stores)."""
    with store.transaction() as conn:
        for chat in chats:
            user_id = conn.execute(
                sa.insert(users)
                .values(channel="telegram", external_id=str(chat), created_at=now)
                .returning(users.c.id)
            ).scalar_one()
            set_pref(conn, user_id, CAMPAIGN, "window", True, now=now)


def outbox_counts(store: Store) -> dict[str, int]:
    query = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
    with store.reading() as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}


def unknown_outcome_chats(store: Store) -> list[int]:
    query = sa.select(outbox.c.recipient_id).where(
        outbox.c.status == "failed", outbox.c.last_error == UNKNOWN_OUTCOME
    )
    with store.reading() as conn:
        return [int(r) for r in conn.execute(query).scalars()]


def reminders_of_the_day(store: Store) -> dict[str, int]:
    query = (
        sa.select(reminders.c.status, sa.func.count())
        .where(reminders.c.due_at >= DUE, reminders.c.due_at < DUE + dt.timedelta(hours=12))
        .group_by(reminders.c.status)
    )
    with store.reading() as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}


# ----- the run --------------------------------------------------------------------------------


def sends(fake: FakeTelegram) -> list[tuple[float, int, str]]:
    return [
        (c.at, int(c.params["chat_id"]), str(c.params.get("text", "")))
        for c in fake.calls
        if c.method == "sendMessage"
    ]


def _sent_count(fake: FakeTelegram) -> int:
    return sum(c.method == "sendMessage" for c in fake.calls)


async def _wait_settled(store: Store, worker: Worker, within: float) -> float:
    """Until no outbox row is pending or sending (AssertionError after `within` s)."""
    deadline = time.monotonic() + within
    while True:
        counts = await asyncio.to_thread(outbox_counts, store)
        if counts and not counts.get("pending") and not counts.get("sending"):
            return time.monotonic()
        if not worker.alive:
            raise AssertionError(f"{worker.name} ended by itself:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox not settled within {within:g} s: {counts}")
        await asyncio.sleep(0.25)


def _period(times: list[float]) -> dict[str, float]:
    """A generation's sending period: its span, its rate, and its rate after the burst."""
    times = sorted(times)
    out: dict[str, float] = {"messages": len(times)}
    if len(times) >= 2:
        out["span_s"] = times[-1] - times[0]
        out["rate"] = (len(times) - 1) / out["span_s"] if out["span_s"] > 0 else 0.0
    steady = times[BURST - 1 :] if len(times) > BURST + 1 else []
    if len(steady) >= 2:
        out["steady_span_s"] = steady[-1] - steady[0]
        out["steady_messages"] = len(steady) - 1  # intervals after the burst
        out["steady_rate"] = out["steady_messages"] / out["steady_span_s"]
    return out


async def run_fanout(
    n: int,
    *,
    postgres: str | None,
    tmp: Path,
    lead: float,
    library: str,
    seed: int,
    quiet: float = QUIET,
) -> Report:
    report = Report(SCRIPT)
    key = Sealer.new_key()
    chats = list(range(CHAT_BASE + 1, CHAT_BASE + n + 1))
    report.details.update(
        reminders=n,
        database="postgresql" if postgres else "sqlite",
        library=library,
        seed=seed,
        limit_per_s=MESSAGES_PER_SECOND,
        loadavg_before=_loadavg(),
    )
    with database(postgres, tmp) as url:
        store = Store(url, sealer=Sealer([key]))  # migrates: the workers find the schema
        try:
            t = time.monotonic()
            subscribe(store, chats, now=DUE - dt.timedelta(days=7))
            report.details["subscribe_s"] = round(time.monotonic() - t, 2)
            async with FakeTelegram() as fake:
                await _two_generations(
                    report,
                    store,
                    fake,
                    url,
                    key,
                    n,
                    chats,
                    tmp,
                    lead,
                    library,
                    random.Random(seed),
                    quiet,
                )
        finally:
            store.close()
    report.details["loadavg_after"] = _loadavg()
    return report


async def _two_generations(
    report: Report,
    store: Store,
    fake: FakeTelegram,
    url: str,
    key: str,
    n: int,
    chats: list[int],
    tmp: Path,
    lead: float,
    library: str,
    rng: random.Random,
    quiet: float,
) -> None:
    def env(now: dt.datetime) -> dict[str, str]:
        return serve_env(
            fake,
            database=url,
            key=key,
            workdir=tmp,
            AWARDBOT_NOW=clock_at(now),
            AWARDBOT_REMINDER_TICK_SECONDS="1",
            AWARDBOT_TELEGRAM_LIBRARY=library,
            AWARDBOT_LOG_LEVEL="WARNING",
        )

    first_now = DUE - dt.timedelta(seconds=lead)
    one = Worker("serve-1", env(first_now), tmp)
    two: Worker | None = None
    try:
        await one.start()
        kill_after = max(1, int(n * KILL_AT))
        deadline = time.monotonic() + lead + 60 + n / MESSAGES_PER_SECOND
        while _sent_count(fake) < kill_after:
            if not one.alive:
                raise AssertionError(f"serve-1 ended by itself:\n{one.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"only {_sent_count(fake)} sends before the kill")
            await asyncio.sleep(POLL)
        # A crash does not pick its moment: a random phase within the next two send periods
        # (the kill may land while a message waits for its slot, is on the wire, or between).
        await asyncio.sleep(rng.uniform(0, 2 / MESSAGES_PER_SECOND))
        killed = one.kill()
        await one.close()
        at_kill = _sent_count(fake)
        first_send = min(at for at, _, _ in sends(fake))
        # The second serve continues the first one's timeline; if what is left would all be
        # sent before the killed worker's lease ends (its claimed rows wait for it), the clock
        # jumps past the lease, as if the restart had taken that long.
        elapsed = dt.timedelta(seconds=time.monotonic() - one.spawned)
        left_s = (n - at_kill) / MESSAGES_PER_SECOND
        lease_left = (LEASE - dt.timedelta(seconds=time.monotonic() - killed)).total_seconds()
        jump = dt.timedelta(0)
        if left_s < lease_left + 5:
            jump = LEASE + dt.timedelta(seconds=2)
        two = Worker("serve-2", env(first_now + elapsed + jump), tmp)
        await two.start()
        settled = await _wait_settled(store, two, 90 + 2 * n / MESSAGES_PER_SECOND)
        await asyncio.sleep(quiet)
        code = await two.stop()
    finally:
        await one.close()
        if two is not None:
            await two.close()

    sent = sends(fake)
    # A request already on the wire when SIGKILL came still reaches the fake after it.
    gen1 = [at for at, _, _ in sent if at < two.spawned]
    gen2 = [at for at, _, _ in sent if at >= two.spawned]
    after_kill = sum(killed < at < two.spawned for at, _, _ in sent)
    p1, p2 = _period(gen1), _period(gen2)
    per_chat = Counter(chat for _, chat, _ in sent)
    duplicates = sum(c - 1 for c in per_chat.values() if c > 1)
    lost = [chat for chat in chats if per_chat[chat] == 0]
    strangers = set(per_chat) - set(chats)
    wrong_text = sum(REMINDER not in text for _, _, text in sent)
    steady_msgs = p1.get("steady_messages", 0) + p2.get("steady_messages", 0)
    steady_span = p1.get("steady_span_s", 0) + p2.get("steady_span_s", 0)
    span_msgs = max(0, len(gen1) - 1) + max(0, len(gen2) - 1)
    span = p1.get("span_s", 0) + p2.get("span_s", 0)
    period_rate = span_msgs / span if span else 0.0
    # A run too small to leave the burst (a smoke test) has no steady part: its period rate.
    steady_rate = steady_msgs / steady_span if steady_span else period_rate
    last_send = max(at for at, _, _ in sent)
    wall_rate = (len(sent) - 1) / (last_send - first_send) if len(sent) > 1 else 0.0
    gap = (min(gen2) - killed) if gen2 else float("nan")
    counts = outbox_counts(store)
    unknown = unknown_outcome_chats(store)
    unknown_sent = [chat for chat in unknown if per_chat[chat] > 0]
    planned = reminders_of_the_day(store)

    report.details.update(
        kill_after_sends=kill_after,
        sends_at_kill=at_kill,
        clock_jump_s=jump.total_seconds(),
        generation_1=p1,
        generation_2=p2,
        restart_gap_s=round(gap, 3),
        restart_listening_s=round(two.listening_at - two.spawned, 3),
        sends_after_the_kill_before_restart=after_kill,
        steady_rate=round(steady_rate, 2),
        period_rate=round(period_rate, 2),
        wall_rate_with_gap=round(wall_rate, 2),
        settled_after_s=round(settled - first_send, 2),
        outbox=counts,
        reminders_of_the_day=planned,
        unknown_outcome_rows=len(unknown),
        unknown_outcome_sent=len(unknown_sent),
        serve_2_exit=code,
    )
    print(
        f"  {n} reminders: generation 1 sent {len(gen1)} in {p1.get('span_s', 0):.1f} s,"
        f" kill -9, restart gap {gap:.1f} s, generation 2 sent {len(gen2)} in"
        f" {p2.get('span_s', 0):.1f} s; steady {steady_rate:.2f} msg/s"
        f" (periods {period_rate:.2f}, wall incl. gap {wall_rate:.2f});"
        f" outbox {counts}; load {_loadavg()}",
        flush=True,
    )
    report.row(
        Row(
            row="reminder fan-out: delivered rate / Telegram's 30 msg/s",
            ours=round(steady_rate / MESSAGES_PER_SECOND, 3),
            unit="× 30 msg/s",
            target=0.95,
            notes=(
                f"{steady_rate:.2f} msg/s over both sending periods after each one's burst of"
                f" {BURST}; with the burst {period_rate:.2f}; wall incl. the {gap:.1f} s restart"
                f" gap {wall_rate:.2f}; {n} reminders, kill -9 after {at_kill}"
            ),
        )
    )
    report.row(
        Row(
            row="reminder fan-out across kill -9: duplicates",
            ours=duplicates,
            unit="messages",
            target=0,
            higher_is_better=False,
            notes="extra copies counted per chat at the fake Bot API",
        )
    )
    report.row(
        Row(
            row="reminder fan-out across kill -9: losses",
            ours=len(lost),
            unit="chats",
            target=0,
            higher_is_better=False,
            notes=(
                "chats that got nothing"
                + (
                    f"; {len(unknown)} row(s) failed 'outcome unknown' by the kill, of which"
                    f" {len(unknown_sent)} had reached the fake"
                    if unknown
                    else ""
                )
            ),
        )
    )
    report.check(ok=code == 0, text=f"the second serve stopped cleanly (exit {code})")
    report.check(ok=at_kill < n, text=f"the kill came part-way: after {at_kill} of {n} sends")
    report.check(
        ok=len(gen2) > 0 and len(gen1) + len(gen2) == len(sent),
        text=(
            f"the second serve sent the rest ({len(gen2)}); the first {len(gen1)}, of which"
            f" {after_kill} reached the fake after the SIGKILL (already on the wire)"
        ),
    )
    report.check(
        ok=len(per_chat) == n - len(lost) and not strangers,
        text=f"the fake saw {len(per_chat)} distinct chats of the {n} (none unknown)",
    )
    report.check(
        ok=wrong_text == 0, text=f"every message is the 11-02 reminder ({wrong_text} not)"
    )
    report.check(
        ok=planned == {"sent": n},
        text=f"the ticker planned and handed off one reminder per user: {planned}",
    )
    delivered = counts.get("delivered", 0)
    report.check(
        ok=sum(counts.values()) == n
        and delivered + len(unknown) == n
        and len(unknown) <= 1
        and not counts.get("pending")
        and not counts.get("sending"),
        text=(
            f"outbox: {n} rows, {delivered} delivered, {len(unknown)} failed 'outcome unknown'"
            " (at most one per kill, the README's guarantee), none pending or sending"
        ),
    )
    report.check(
        ok=set(unknown_sent) | set(lost) == set(unknown),
        text="every lost chat is the kill's 'outcome unknown' row (none lost otherwise)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} reminders")
    parser.add_argument("--reminders", type=int, default=None, help=f"default {FULL}")
    parser.add_argument("--postgres", metavar="URL", default=None)
    parser.add_argument("--library", choices=("ptb", "aiogram"), default="ptb")
    parser.add_argument(
        "--lead", type=float, default=None, help="seconds from start to 08:30 (default 6/10)"
    )
    parser.add_argument(
        "--quiet", type=float, default=QUIET, help="seconds to watch for late copies at the end"
    )
    parser.add_argument("--seed", type=int, default=13, help="the kill's random phase")
    parser.add_argument("--rows-json", type=Path, default=None)
    args = parser.parse_args(argv)
    n = args.reminders or (QUICK if args.quick else FULL)
    lead = args.lead if args.lead is not None else (6.0 if n <= 500 else 10.0)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        report = asyncio.run(
            run_fanout(
                n,
                postgres=args.postgres,
                tmp=Path(tmp),
                lead=lead,
                library=args.library,
                seed=args.seed,
                quiet=args.quiet,
            )
        )
    for row in report.rows:
        print(f"  {row.row}: {row.ours:g} {row.unit} (target {row.target:g}, met {row.met})")
    return report.write(args.rows_json)


if __name__ == "__main__":
    sys.exit(main())
