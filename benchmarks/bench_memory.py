"""Process memory per active conversation: the state lives in the database, not in the process.

The real stack as `awardbot console` and `serve` wire it (bot.wiring.build_runtime: Runtime +
Store on a SQLite file, states sealed, one committed transaction per step) on a fixed clock
(2022-10-20, jl-skills-2022 open). Each conversation is left in the middle of a self-check: the
user picked jl-skills-2022 and technical_expert and answered 是 是 (4 steps), and the bot waits
for the third answer. Conversations are interleaved round-robin (every user's first message,
then every user's second...), as traffic arrives.

First WARM users run the same 4 steps (every code path, SQLAlchemy's statement cache, the
catalog's and the engine's caches, SQLite's page cache of the busy pages are warm), then two
measured phases of N new users each:

  rss     without tracemalloc: `gc.collect()`, VmRSS from /proc/self/status before, halfway
          and after N conversations; (after - before) / N, and the second half's growth alone.
          This is the process's real memory, including SQLite's page cache (bounded:
          `cache_size`, 2 MiB per connection by default) and allocator slack, so it is noisy
          and flattens once the cache is full (a database of ~3 MiB, ~3,000 conversations).
  traced  with tracemalloc started after the warm-up (and its own warm-up of WARM users, so its
          bookkeeping is in the baseline): `gc.collect()`, traced memory before and after N more
          conversations; (after - before) / N: the Python objects that stay per conversation.
          The top growth by file and line is printed (and kept in the rows' details).

The row uses the traced growth: that is what a conversation leaves in the process — anything the
code keeps per user (a dict of states, a cache keyed by user) shows there at full size, while
RSS also moves with caches whose size does not depend on the number of conversations. Both are
reported. Checks: the database holds one session per conversation, and a sample of
conversations resumes correctly from the file through a NEW Store and Runtime (the next answer
is taken as the third fact, and the bot asks the fourth question).

Run:  .venv/bin/python benchmarks/bench_memory.py [--quick] [--conversations N] [--rows-json PATH]
Exit code 0 when every sanity check passed (the row may miss its target), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.rows import Report, Row  # noqa: E402

CAMPAIGNS = ROOT / "campaigns"
CAMPAIGN, CATEGORY = "jl-skills-2022", "technical_expert"
TEXTS = (CAMPAIGN, CATEGORY, "是", "是")  # mid-self-check: the third answer is awaited
RESUME_TEXT = "否"  # the third answer (is_unit_head: no)
RESUMED_ANSWERS = {"works_in_jilin": True, "frontline_skill_position": True, "is_unit_head": False}
NEXT_QUESTION = "is_retired"  # what the engine asks after the third answer
FIXED_NOW = dt.datetime(2022, 10, 20, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
FULL, QUICK = 10_000, 500
WARM = 300
SAMPLE = 50
TOP = 12
SCRIPT = "bench_memory"


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def build(db: Path, key: str) -> tuple[Any, Any]:
    """Store + Runtime as bot.wiring builds them, on the fixed clock."""
    from bot.catalog import load_catalog
    from bot.settings import load_settings
    from bot.wiring import build_runtime
    from storage.crypto import Sealer
    from storage.store import Store

    store = Store(f"sqlite:///{db}", sealer=Sealer([key]))
    settings = load_settings(
        env={"AWARDBOT_ATTACHMENTS_DIR": str(db.parent / "attachments")},
        dotenv=Path("/nonexistent"),
    )
    runtime = build_runtime(settings, load_catalog(CAMPAIGNS), store, clock=lambda: FIXED_NOW)
    return store, runtime


def converse(runtime: Any, user_ids: Sequence[int]) -> list[str | None]:
    """TEXTS round-robin over these Telegram users; the key of each user's last reply."""
    from conversations.keys import Channel, ConversationKey

    last: dict[int, str | None] = {}
    for step, text in enumerate(TEXTS):
        for uid in user_ids:
            replies = runtime.handle(ConversationKey(Channel.TELEGRAM.value, str(uid)), text)
            if step == len(TEXTS) - 1:
                last[uid] = replies[-1].key if replies else None
    return [last[uid] for uid in user_ids]


def _short(filename: str) -> str:
    for prefix in (str(ROOT) + "/.venv/lib/", str(ROOT) + "/"):
        if filename.startswith(prefix):
            return filename[len(prefix) :]
    return filename


def _settle() -> None:
    for _ in range(3):
        gc.collect()


def measure(n: int, warm: int, tmp: Path, *, frames: int = 1) -> Report:
    from storage.crypto import Sealer

    report = Report(SCRIPT)
    db = tmp / "memory.db"
    key = Sealer.new_key()
    store, runtime = build(db, key)
    base = 1_000_000

    def users(count: int) -> list[int]:
        nonlocal base
        ids = list(range(base + 1, base + count + 1))
        base += count
        return ids

    t0 = time.monotonic()
    converse(runtime, users(warm))

    # ----- RSS, without tracemalloc -----
    rss_users = users(n)
    _settle()
    rss_before = rss_bytes()
    t = time.monotonic()
    half = n // 2
    rss_keys = converse(runtime, rss_users[:half])
    _settle()
    rss_mid = rss_bytes()
    rss_keys += converse(runtime, rss_users[half:])
    rss_wall = time.monotonic() - t
    _settle()
    rss_after = rss_bytes()

    # ----- traced Python allocations -----
    tracemalloc.start(frames)
    converse(runtime, users(warm))  # tracemalloc's own tables and any first-time path
    _settle()
    snap_before = tracemalloc.take_snapshot()
    traced_users = users(n)
    t = time.monotonic()
    traced_keys = converse(runtime, traced_users)
    traced_wall = time.monotonic() - t
    _settle()
    _, traced_peak = tracemalloc.get_traced_memory()
    snap_after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    filters = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        # This script's own lists (the users' ids, the keys it checks) are not the bot's.
        tracemalloc.Filter(False, __file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ]
    snap_before, snap_after = snap_before.filter_traces(filters), snap_after.filter_traces(filters)
    traced_before = sum(stat.size for stat in snap_before.statistics("filename"))
    traced_after = sum(stat.size for stat in snap_after.statistics("filename"))
    diff = snap_after.compare_to(snap_before, "lineno")
    top = [
        {
            "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
            "growth_bytes": s.size_diff,
            "blocks": s.count_diff,
        }
        for s in diff[:TOP]
        if s.size_diff > 0
    ]
    by_file = snap_after.compare_to(snap_before, "filename")
    top_files = [
        {
            "file": _short(s.traceback[0].filename),
            "growth_bytes": s.size_diff,
        }
        for s in by_file[:TOP]
        if s.size_diff > 0
    ]

    rss_per = (rss_after - rss_before) / n
    # Once SQLite's page cache is full (its size is fixed), what is left of RSS growth.
    rss_late = (rss_after - rss_mid) / (n - half)
    traced_per = (traced_after - traced_before) / n
    total_users = warm * 2 + n * 2
    print(
        f"  {n} conversations per phase: RSS +{(rss_after - rss_before) / 1024:.0f} KiB"
        f" ({rss_per:.0f} B/conversation; the second half {rss_late:.0f} B), {rss_wall:.1f} s;"
        " traced"
        f" {(traced_after - traced_before) / 1024:+.1f} KiB ({traced_per:+.1f} B/conversation,"
        f" {traced_wall:.1f} s, peak {traced_peak / 1024 / 1024:.1f} MiB); load {_loadavg()}",
        flush=True,
    )
    for entry in top:
        print(f"    {entry['growth_bytes']:>+9} B {entry['blocks']:>+6} blocks  {entry['where']}")

    # ----- checks: in the database, and resumable from it by a new process's objects -----
    store.close()
    with sqlite3.connect(db) as conn:
        sessions = conn.execute("SELECT count(*) FROM conversation_sessions").fetchone()[0]
        sealed = conn.execute(
            "SELECT count(*) FROM conversation_sessions WHERE state LIKE 'fernet:%'"
        ).fetchone()[0]
    report.check(
        ok=sessions == total_users and sealed == total_users,
        text=f"{sessions} sessions in the database for {total_users} conversations, all sealed",
    )
    measured = rss_users + traced_users
    waiting = sum(k == "is_unit_head" for k in rss_keys + traced_keys)
    report.check(
        ok=waiting == len(measured),
        text=f"{waiting} of {len(measured)} measured conversations wait for is_unit_head",
    )
    every = max(1, len(measured) // SAMPLE)
    sample = measured[::every][:SAMPLE]
    store2, runtime2 = build(db, key)
    try:
        from conversations.keys import Channel, ConversationKey

        resumed = 0
        for uid in sample:
            conv = ConversationKey(Channel.TELEGRAM.value, str(uid))
            replies = runtime2.handle(conv, RESUME_TEXT)
            state = store2.load_state(conv) or {}
            if (
                replies
                and replies[-1].key == NEXT_QUESTION
                and state.get("answers") == RESUMED_ANSWERS
                and state.get("campaign") == CAMPAIGN
                and state.get("category") == CATEGORY
            ):
                resumed += 1
    finally:
        store2.close()
    report.check(
        ok=resumed == len(sample),
        text=(
            f"{resumed} of {len(sample)} sampled conversations resumed from the file through a new"
            f" Store and Runtime: the third answer taken, {NEXT_QUESTION} asked"
        ),
    )

    report.row(
        Row(
            row="process memory per active conversation (traced Python growth)",
            ours=round(traced_per / 1024, 3),
            unit="KiB",
            target=1.0,
            higher_is_better=False,
            notes=(
                f"{n} conversations mid-self-check, Runtime + Store (SQLite); RSS growth"
                f" {rss_per / 1024:.2f} KiB/conversation over another {n} (its second half"
                f" {rss_late / 1024:.2f}: SQLite's page cache, bounded, fills first)"
            ),
        )
    )
    report.details.update(
        conversations=n,
        warm=warm,
        rss_before=rss_before,
        rss_after=rss_after,
        rss_mid=rss_mid,
        rss_per_conversation_bytes=round(rss_per, 1),
        rss_second_half_per_conversation_bytes=round(rss_late, 1),
        traced_before=traced_before,
        traced_after=traced_after,
        traced_peak=traced_peak,
        traced_per_conversation_bytes=round(traced_per, 1),
        rss_phase_s=round(rss_wall, 2),
        traced_phase_s=round(traced_wall, 2),
        total_s=round(time.monotonic() - t0, 2),
        top_lines=top,
        top_files=top_files,
        db_bytes=db.stat().st_size,
        loadavg=_loadavg(),
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} conversations")
    parser.add_argument("--conversations", type=int, default=None, help=f"default {FULL}")
    parser.add_argument("--warm", type=int, default=None, help=f"default {WARM}")
    parser.add_argument(
        "--frames", type=int, default=1, help="tracemalloc frames (more: slower, deeper)"
    )
    parser.add_argument("--rows-json", type=Path, default=None)
    args = parser.parse_args(argv)
    n = args.conversations or (QUICK if args.quick else FULL)
    warm = args.warm if args.warm is not None else min(WARM, n)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        report = measure(n, warm, Path(tmp), frames=args.frames)
    for row in report.rows:
        print(f"  {row.row}: {row.ours:g} {row.unit} (target {row.target:g}, met {row.met})")
    return report.write(args.rows_json)


if __name__ == "__main__":
    sys.exit(main())
