"""Several `awardbot serve` workers on one PostgreSQL database: the Telegram HTTP row at 1, 2
and 4 workers (issue 13).

Each worker is a real `awardbot serve` child process (tests/support/workers.py), Telegram in
webhook mode (python-telegram-bot adapter by default), all on one database of this run's own
(created, dropped after; the server and other databases are not touched). There is no proxy in
front: the load generator balances round robin itself, per update and not per user, so each
user's successive updates go to different workers (update k of user j to worker (j + k) mod N):
the per-user order across workers is exercised on every update.

The load is bench_http.py's Telegram row: 100 concurrent closed-loop users (imported from
bench_channels.py: each sends its next update once the replies to the last one reached the fake
Bot API), each slot running 3 users one after the other, every user the baselines' 7-text form
(benchmarks/baselines/form.py). The fake Bot API and the load generator share this process;
the workers' flood limits are lifted (a sitecustomize this script puts on their PYTHONPATH), as
bench_channels.py does in process, or the limiter's 30 messages/s a worker would be measured.

Checks (exit 1 when one fails): every update answered 200 and stepped exactly once (its
delivery id recorded, the session's version = the user's updates, no repeat counted on any
worker's /metrics), each worker stepped its share, every reply row the steps stored was
delivered and the fake got exactly those messages, and each chat got them in the order of its
updates (the stored rows opened and rendered, compared with what reached the fake).

Run:  .venv/bin/python benchmarks/bench_workers.py [--quick] [--rows-json PATH]
      [--workers 1 2 4] [--users 100] [--waves 3] [--library ptb|aiogram]
PostgreSQL: AWARDBOT_BENCH_POSTGRES_URL, else AWARDBOT_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (the database named there is only used to
create and drop this run's own).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import aiohttp  # noqa: E402
import bench_channels as bc  # noqa: E402 - load generator, fake Bot API, Request, machine info
import sqlalchemy as sa  # noqa: E402
from rows import Report, Row  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from support.workers import Worker, workers_of  # noqa: E402

from benchmarks.baselines import form  # noqa: E402
from handlers.base import load_replies  # noqa: E402
from handlers.telegram.render import render_reply  # noqa: E402
from storage.crypto import Sealer  # noqa: E402
from storage.store import Store  # noqa: E402
from storage.tables import conversation_sessions, inbound_deliveries, outbox, users  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
FAST_LIMITS_NOTE = "bench_workers: flood limits lifted"
SITECUSTOMIZE = f'''\
"""bench_workers.py's children only: Telegram's flood limits out of the way."""
import os
import sys

if os.environ.get("AWARDBOT_BENCH_FAST_LIMITS") == "1":
    from handlers.telegram.limits import RateLimiter

    RateLimiter.__init__.__kwdefaults__.update(
        per_second=10_000.0, per_chat_per_second=10_000.0, chat_burst=1000
    )
    print({FAST_LIMITS_NOTE!r}, file=sys.stderr, flush=True)
'''
SETTLE_S = 30.0
CHAT_BASE = 7_100_000
WARM_BASE = 7_900_000


@contextlib.contextmanager
def own_database(base: str) -> Iterator[str]:
    """A database of this run's own, dropped after (WITH FORCE: only its own connections)."""
    url = make_url(base)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"awardbot_bench_workers_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----- what the database says -----------------------------------------------------------------


def reply_rows(store: Store, update_ids: list[int]) -> dict[int, list[Any]]:
    """Each update's reply rows (key, status, sealed text), in the order they are sent."""
    keys = [f"reply:telegram:{u}:%" for u in update_ids]
    out: dict[int, list[Any]] = defaultdict(list)
    query = (
        sa.select(outbox.c.idempotency_key, outbox.c.status, outbox.c.text)
        .where(sa.or_(*(outbox.c.idempotency_key.like(k) for k in keys)))
        .order_by(outbox.c.idempotency_key)
    )
    with store.reading() as conn:
        for row in conn.execute(query):
            out[int(row.idempotency_key.split(":")[2])].append(row)
    return out


def all_reply_rows(store: Store, chats: list[int]) -> dict[int, list[Any]]:
    query = (
        sa.select(outbox.c.idempotency_key, outbox.c.status, outbox.c.text, outbox.c.claimed_by)
        .where(
            outbox.c.kind == "reply",
            outbox.c.channel == "telegram",
            outbox.c.recipient_id.in_([str(c) for c in chats]),
        )
        .order_by(outbox.c.idempotency_key)
    )
    out: dict[int, list[Any]] = defaultdict(list)
    with store.reading() as conn:
        for row in conn.execute(query):
            out[int(row.idempotency_key.split(":")[2])].append(row)
    return out


def sessions(store: Store, chats: list[int]) -> dict[int, int]:
    query = (
        sa.select(users.c.external_id, conversation_sessions.c.version)
        .join_from(users, conversation_sessions)
        .where(users.c.channel == "telegram", users.c.external_id.in_([str(c) for c in chats]))
    )
    with store.reading() as conn:
        return {int(uid): int(version) for uid, version in conn.execute(query)}


def recorded(store: Store) -> set[int]:
    query = sa.select(inbound_deliveries.c.delivery_id).where(
        inbound_deliveries.c.channel == "telegram"
    )
    with store.reading() as conn:
        return {int(d) for d in conn.execute(query).scalars()}


# ----- one worker count -------------------------------------------------------------------------


async def run_count(
    count: int, args: argparse.Namespace, report: Report, tmp: Path
) -> dict[str, Any] | None:
    base = (
        os.environ.get("AWARDBOT_BENCH_POSTGRES_URL")
        or os.environ.get("AWARDBOT_TEST_POSTGRES_URL")
        or DEFAULT_URL
    )
    workdir = tmp / f"workers-{count}"
    workdir.mkdir()
    (tmp / "site").mkdir(exist_ok=True)
    (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    key = Sealer.new_key()
    name = f"{count} worker{'s' if count > 1 else ''}"
    with own_database(base) as url:
        store = Store(url, sealer=Sealer([key]))  # migrates before the workers start
        try:
            fake = bc._counting_fake()
            async with fake, workers_of(fake, database=url, key=key, workdir=workdir) as start:
                extra = {
                    "PYTHONPATH": f"{tmp / 'site'}{os.pathsep}{ROOT}",
                    "AWARDBOT_BENCH_FAST_LIMITS": "1",
                    "AWARDBOT_TELEGRAM_LIBRARY": args.library,
                    "AWARDBOT_LOG_LEVEL": "WARNING",
                }
                workers = [await start(f"w{i}", **extra) for i in range(count)]
                try:
                    return await measure(name, workers, fake, store, args, report)
                except bc.CheckFailed as exc:
                    report.check(ok=False, text=f"{name}: {exc}")
                    return None
        finally:
            store.close()


async def measure(
    name: str,
    workers: list[Worker],
    fake: Any,
    store: Store,
    args: argparse.Namespace,
    report: Report,
) -> dict[str, Any]:
    from fakes.telegram_api import SECRET_HEADER
    from support.workers import WEBHOOK_SECRET
    from yarl import URL

    count = len(workers)
    lifted = all(w.count(FAST_LIMITS_NOTE) for w in workers)
    if not lifted:
        raise bc.CheckFailed("a worker did not lift its flood limits (sitecustomize not loaded)")
    urls = [URL(f"{w.url}/telegram") for w in workers]
    headers = {SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"}
    update_chat: dict[int, int] = {}

    def user_plan(chat: int, slot: int) -> list[bc.Request]:
        plan = []
        for k, text in enumerate(form.TEXTS):
            update = fake.text_update(chat, text)
            update_chat[update["update_id"]] = chat
            body = json.dumps(update, ensure_ascii=False).encode("utf-8")
            plan.append(bc.Request(urls[(slot + k) % count], body, headers, chat=chat))
        return plan

    async def settle(request: bc.Request) -> None:
        """Warm-up only: until every reply row the update's step stored is delivered."""
        update_id = json.loads(request.body)["update_id"]
        deadline = time.monotonic() + SETTLE_S
        while True:
            rows = (await asyncio.to_thread(reply_rows, store, [update_id])).get(update_id, [])
            if rows and all(r.status == "delivered" for r in rows):
                await asyncio.sleep(0.02)  # the sends are done, their answers read
                return
            if time.monotonic() > deadline:
                raise bc.CheckFailed(f"update {update_id}: replies {[r.status for r in rows]}")
            await asyncio.sleep(0.01)

    stack = bc.Stack(
        name=name, label=name, channel="telegram", build=lambda u, m: [], fake=fake, settle=settle
    )
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm_chats = [WARM_BASE + n for n in range(1, args.warmup + 1)]
        warm = await bc.drive(
            session, stack, [user_plan(c, i) for i, c in enumerate(warm_chats)], calibrate=True
        )
        sends = bc._learned_sends(stack, warm.marks)
        # The measured load: `users` slots at once, each `waves` users one after the other.
        chats: list[int] = []
        plans: list[list[bc.Request]] = []
        for slot in range(args.users):
            plan: list[bc.Request] = []
            for wave in range(args.waves):
                chat = CHAT_BASE + wave * args.users + slot + 1
                chats.append(chat)
                user = user_plan(chat, slot + wave)
                for request, total in zip(user, _cumulative(sends), strict=True):
                    request.sends = total
                plan.extend(user)
            plans.append(plan)
        before = [cpu_seconds(w.pid) for w in workers]
        measured = await bc.drive(session, stack, plans)
        after = [cpu_seconds(w.pid) for w in workers]
    updates = len(chats) * len(form.TEXTS)
    seconds = measured.wall_ns / 1e9
    p50, p99, top = bc._ms(measured.request_ns)
    r50, r99, rtop = bc._ms(measured.reply_ns)
    worker_cpu = [b - a for a, b in zip(before, after, strict=True)]
    result = {
        "workers": count,
        "users_at_once": args.users,
        "users": len(chats),
        "updates": updates,
        "seconds": round(seconds, 3),
        "updates_per_s": round(updates / seconds, 1),
        "request_ms": {"p50": round(p50, 2), "p99": round(p99, 2), "max": round(top, 2)},
        "reply_ms": {"p50": round(r50, 2), "p99": round(r99, 2), "max": round(rtop, 2)},
        "workers_cpu_s": [round(c, 2) for c in worker_cpu],
        "workers_cpu_ms_per_update": round(sum(worker_cpu) / updates * 1e3, 2),
        "client_and_fake_cpu_ms_per_update": round(measured.cpu_ns / updates / 1e6, 2),
        "sends_per_update": sends,
    }
    print(
        f"  {name}: {result['updates_per_s']:,.0f} upd/s; request p50/p99 {p50:.1f}/{p99:.1f} ms,"
        f" reply p50/p99 {r50:.1f}/{r99:.1f} ms; workers' CPU "
        f"{result['workers_cpu_ms_per_update']} ms/update ({result['workers_cpu_s']} s), client"
        f" and fake {result['client_and_fake_cpu_ms_per_update']} ms/update",
        flush=True,
    )
    await check(name, workers, fake, store, chats, update_chat, sends, report)
    return result


def _cumulative(sends: list[int]) -> list[int]:
    out, total = [], 0
    for n in sends:
        total += n
        out.append(total)
    return out


async def check(
    name: str,
    workers: list[Worker],
    fake: Any,
    store: Store,
    chats: list[int],
    update_chat: dict[int, int],
    sends: list[int],
    report: Report,
) -> None:
    await asyncio.sleep(0.2)
    steps = len(form.TEXTS)
    ids_of: dict[int, list[int]] = defaultdict(list)
    for update_id, chat in sorted(update_chat.items()):
        ids_of[chat].append(update_id)
    every = set(update_chat)
    stored = await asyncio.to_thread(recorded, store)
    report.check(
        ok=stored == every,
        text=f"{name}: all {len(every)} updates' delivery ids recorded, none else "
        f"({len(every - stored)} missing, {len(stored - every)} unknown)",
    )
    versions = await asyncio.to_thread(sessions, store, chats)
    wrong = {c: v for c, v in versions.items() if v != steps}
    report.check(
        ok=len(versions) == len(chats) and not wrong,
        text=f"{name}: {len(versions)} conversations, each at session version {steps} (one "
        f"step per update); {len(wrong)} otherwise",
    )
    received = [await w.metric("awardbot_updates_received_total") for w in workers]
    repeats = [await w.metric("awardbot_updates_duplicate_total") for w in workers]
    errors = [await w.metric("awardbot_errors_total") for w in workers]
    total = len(every)
    report.check(
        ok=sum(received) == total and not any(repeats) and not any(errors),
        text=f"{name}: the workers received {received} updates ({sum(received)} of {total}), "
        f"{sum(repeats)} repeats, {sum(errors)} errors",
    )
    share = total / len(workers)
    report.check(
        ok=all(abs(n - share) <= len(chats) for n in received),
        text=f"{name}: each worker stepped its share (~{share:.0f}): {received}",
    )
    rows = await asyncio.to_thread(all_reply_rows, store, list(ids_of))
    statuses: dict[str, int] = defaultdict(int)
    for update_rows in rows.values():
        for row in update_rows:
            statuses[row.status] += 1
    sent_total = sum(fake.sent_count[c] for c in ids_of)
    report.check(
        ok=dict(statuses) == {"delivered": sent_total},
        text=f"{name}: the steps stored {sum(statuses.values())} replies, "
        f"{dict(statuses)}; the fake Bot API got {sent_total} messages",
    )
    # The order: each update's messages after the previous update's (the questions' order),
    # and within one update in the order its step stored them.
    across, within, shown = [], [], []
    for chat, update_ids in ids_of.items():
        got = fake.sent_texts[chat]
        start = 0
        for update_id in update_ids:
            want = [
                piece.text
                for row in rows.get(update_id, [])
                for reply in load_replies(store.sealer.open(row.text))
                for piece in render_reply(reply)
            ]
            mine = got[start : start + len(want)]
            start += len(want)
            if mine == want:
                continue
            if sorted(mine) == sorted(want):
                within.append(chat)
                if len(shown) < 3:
                    by = [_sender(r.claimed_by) for r in rows.get(update_id, [])]
                    shown.append(f"chat {chat} update {update_id}: rows sent by {by}")
            else:
                across.append(chat)
            break
    report.check(
        ok=not across,
        text=f"{name}: each of {len(ids_of)} chats got each update's replies after the "
        f"previous update's, in the order of its questions ({len(across)} otherwise)",
    )
    report.check(
        ok=not within,
        text=f"{name}: and the messages of one update in the order its step stored them "
        f"({len(within)} chats otherwise{': ' if shown else ''}{'; '.join(shown)})",
    )
    senders: dict[str, int] = defaultdict(int)
    for update_rows in rows.values():
        for row in update_rows:
            senders[_sender(row.claimed_by)] += 1
    report.details.setdefault("reply_rows_sent_by", {})[name] = dict(senders)
    print(f"  {name}: reply rows sent by {dict(senders)}", flush=True)


def _sender(claimed_by: str | None) -> str:
    """Who sent a reply row: the channel right after the step, or a dispatcher once due."""
    text = str(claimed_by or "")
    return "channel" if text.startswith("replies:") else "dispatcher" if text else "nobody"


# ----- the run ------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, report: Report) -> None:
    info = bc.machine_info()
    report.details["machine"] = info
    print(
        f"Workers on PostgreSQL: {args.workers} workers; {args.users} users at once x "
        f"{args.waves} waves x {len(form.TEXTS)} form texts, round robin per update; "
        f"{args.library}; load average {info['load_average_at_start']}",
        flush=True,
    )
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="awardbot-bench-workers-") as tmpdir:
        for count in args.workers:
            print(f"running {count} worker(s) ...", flush=True)
            result = await run_count(count, args, report, Path(tmpdir))
            if result is not None:
                result["load_average"] = bc._loadavg()
                results[count] = result
    info["load_average_at_end"] = bc._loadavg()
    report.details["results"] = {str(k): v for k, v in results.items()}
    one = results.get(1)
    for count, result in results.items():
        if count == 1 or one is None:
            continue
        report.row(
            Row(
                row=f"workers on PostgreSQL: {count} / 1 (Telegram HTTP, {args.library})",
                ours=result["updates_per_s"],
                baseline=one["updates_per_s"],
                baseline_name="1 worker",
                unit="upd/s",
                target=1.0,
                notes=f"{os.cpu_count()} cores for the workers, PostgreSQL, the client and the "
                f"fake; workers' CPU {result['workers_cpu_ms_per_update']} vs "
                f"{one['workers_cpu_ms_per_update']} ms/update",
            )
        )
    print()
    print(f"{'workers':>7} {'upd/s':>7} {'req p50':>8} {'req p99':>8} {'reply p99':>9} "
          f"{'CPU/upd':>8} {'client':>7}")  # fmt: skip
    for count, r in results.items():
        print(
            f"{count:>7} {r['updates_per_s']:>7,.0f} {r['request_ms']['p50']:>8.1f} "
            f"{r['request_ms']['p99']:>8.1f} {r['reply_ms']['p99']:>9.1f} "
            f"{r['workers_cpu_ms_per_update']:>8.2f} "
            f"{r['client_and_fake_cpu_ms_per_update']:>7.2f}"
        )
    for row in report.rows:
        print(f"{row.row}: {row.ratio:.2f}x ({row.ours:g} vs {row.baseline:g} upd/s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (numbers meaningless)")
    parser.add_argument("--rows-json", type=Path, help="write the rows and checks here")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--users", type=int, default=100, help="users at once (default 100)")
    parser.add_argument("--waves", type=int, default=3, help="users one after the other a slot")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--library", choices=("ptb", "aiogram"), default="ptb")
    args = parser.parse_args(argv)
    if args.quick:
        args.workers, args.users, args.waves, args.warmup = [1, 2], 6, 1, 2
    report = Report("bench_workers")
    started = time.perf_counter()
    asyncio.run(_run(args, report))
    report.details["seconds"] = round(time.perf_counter() - started, 1)
    if args.rows_json is None:
        print(json.dumps({"checks_failed": [c for c in report.checks if not c["ok"]]}))
    return report.write(args.rows_json)


if __name__ == "__main__":
    sys.exit(main())
