"""`awardbot reminders plan|run-due|list` and `awardbot campaign window set|list`.

- `reminders plan --campaign ID [--from DATE] [--to DATE] [--user …]` prints what the plan holds
  (local time, recipient, channel, kind, text) from the state as it is, without storing or
  sending anything. A reminder the calendar cannot place (a year it lacks) is printed to stderr
  and the command exits 1: never a silent guess.
- `reminders run-due [--now "YYYY-MM-DD HH:MM"]` does one tick of the ticker at that time: the
  plan refreshed, what is due handed to the outbox (or skipped with the reason). Console users'
  reminders are printed here; the other channels' are delivered by `serve`, at once if it runs.
- `reminders list [--status pending|sent|skipped|failed] [--campaign ID] [--user …]`.
- `campaign window set --campaign ID --window KEY --start DATE --end DATE` moves a window and
  re-plans the campaign in the same transaction, as of the bot's clock (AWARDBOT_NOW in a demo);
  reminders the calendar cannot place are said on stderr and it exits 1, the move kept.
  `campaign window list --campaign ID`.

Errors are one line on stderr, Chinese first with English in parentheses, exit 2 (bad input or
configuration); see bot.admin for why this module prints its own errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from bot.catalog import load_catalog
from bot.clock import Clock, clock_for
from bot.settings import DEMO_CLOCK_FORMAT, Environment, Settings
from bot.wiring import console_notifier, open_store, planning_for
from conversations.campaign import Campaign, CampaignError, Catalog
from conversations.effects import Scope
from conversations.keys import Channel
from conversations.reminders import KIND_LABELS, SHANGHAI, Unplanned, kind_of, plan
from notifications.calendar import CalendarError
from notifications.ticker import Ticker
from storage.planning import Planning, plan_facts
from storage.regions import RegionError
from storage.reminders import SUPERSEDED, entries, move_window, windows_in_force
from storage.store import Store, StoreError
from storage.tables import users

COMMANDS = frozenset({"reminders", "campaign"})
EXIT_USAGE = 2
EXIT_UNPLANNED = 1
STATUSES = ("pending", "sent", "skipped", "failed")


class _Error(Exception):
    """Bad input; printed as one line, exit 2."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    reminders = subparsers.add_parser("reminders", help="reminders: the plan, due ones, the list")
    sub = reminders.add_subparsers(
        dest="reminders_command", required=True, metavar="{plan,run-due,list}"
    )
    plan_ = sub.add_parser("plan", help="print the plan without sending (local time)")
    plan_.add_argument("--campaign", required=True, help="campaign id, see 'awardbot campaigns'")
    plan_.add_argument("--from", dest="start", help="YYYY-MM-DD (default: now)")
    plan_.add_argument("--to", dest="end", help="YYYY-MM-DD, included (default: no end)")
    plan_.add_argument("--user", help="only this recipient: CHANNEL:ID or ID")
    run = sub.add_parser("run-due", help="hand what is due at --now to the outbox (one tick)")
    run.add_argument("--now", help=f"local time {DEMO_CLOCK_FORMAT} (default: the bot's clock)")
    listing = sub.add_parser("list", help="stored reminders")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--campaign", help="campaign id")
    listing.add_argument("--user", help="CHANNEL:ID or ID")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")

    campaign = subparsers.add_parser("campaign", help="campaign administration: windows")
    campaign_sub = campaign.add_subparsers(
        dest="campaign_command", required=True, metavar="{window}"
    )
    window = campaign_sub.add_parser("window", help="a campaign's windows")
    window_sub = window.add_subparsers(dest="window_command", required=True, metavar="{set,list}")
    set_ = window_sub.add_parser("set", help="move a window; the campaign's reminders re-plan")
    set_.add_argument("--campaign", required=True)
    set_.add_argument("--window", required=True, help="the window's key (see 'list')")
    set_.add_argument("--start", required=True, help="YYYY-MM-DD")
    set_.add_argument("--end", required=True, help="YYYY-MM-DD")
    list_ = window_sub.add_parser("list", help="windows as in force")
    list_.add_argument("--campaign", required=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with _context(settings) as (store, catalog, planning, clock):
            if args.command == "campaign":
                return _window(args, store, catalog, planning, clock)
            if args.reminders_command == "plan":
                return _plan(args, store, catalog, planning, clock)
            if args.reminders_command == "run-due":
                return _run_due(args, settings, store, planning, clock)
            return _list(args, store, catalog)
    except _Error as exc:
        print(f"awardbot: {exc}", file=sys.stderr)
        return EXIT_USAGE


@contextmanager
def _context(settings: Settings) -> Iterator[tuple[Store, Catalog, Planning, Clock]]:

    try:
        catalog = load_catalog(settings.campaigns_dir)
        planning = planning_for(settings, catalog)
        store = open_store(settings)
    except (CampaignError, RegionError, CalendarError, StoreError) as exc:
        raise _Error(str(exc)) from None
    try:
        yield store, catalog, planning, clock_for(settings)
    except StoreError as exc:
        raise _Error(str(exc)) from None
    finally:
        store.close()


def _campaign(catalog: Catalog, campaign_id: str) -> Campaign:
    if campaign_id not in catalog:
        known = ", ".join(c.id for c in catalog)
        raise _Error(
            f"--campaign: 没有评选 {campaign_id!r}（已有：{known}）"
            f" (no campaign {campaign_id!r}; known: {known})"
        )
    return catalog.get(campaign_id)


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _Error(
            f"{name}: {value!r} 不是日期，应为 YYYY-MM-DD ({value!r} is not a date YYYY-MM-DD)"
        ) from None


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _users(store: Store, who: str | None) -> dict[int, tuple[str, str]]:
    """user id → (channel, external id); only `who` (CHANNEL:ID or ID) when given."""
    query = sa.select(users.c.id, users.c.channel, users.c.external_id)
    if who is not None:
        channel, sep, external = who.partition(":")
        if sep and channel in {c.value for c in Channel}:
            query = query.where(users.c.channel == channel, users.c.external_id == external)
        else:
            query = query.where(users.c.external_id == who)
    with store.reading() as conn:
        found = {r.id: (r.channel, r.external_id) for r in conn.execute(query)}
    if who is not None and not found:
        raise _Error(
            f"--user: 没有用户 {who!r} 与机器人对话过，请写 渠道:编号 或 编号，如 console:ann"
            f" (nobody {who!r} has talked to the bot; give CHANNEL:ID or ID)"
        )
    return found


def _plan(
    args: argparse.Namespace, store: Store, catalog: Catalog, planning: Planning, clock: Clock
) -> int:

    campaign = _campaign(catalog, args.campaign)
    start = _date(args.start, "--from") if args.start else None
    end = _date(args.end, "--to") if args.end else None
    if start and end and end < start:
        raise _Error(f"--to: {end} 早于 --from {start} (--to is before --from)")
    now = dt.datetime.combine(start, dt.time(0, 0), SHANGHAI) if start else clock()
    if end and end < now.astimezone(SHANGHAI).date():
        raise _Error(
            f"--to: {end} 早于现在 {_when(now)}，请用 --from 指定起点"
            f" (--to is before now {_when(now)}; give --from)"
        )
    people = _users(store, args.user)
    with store.reading() as conn:
        facts = plan_facts(
            conn, store.sealer, catalog, planning.regions, campaign, now=now,
            waiting_workdays=planning.waiting_workdays,
        )  # fmt: skip
    result = plan(facts, planning.workdays, Scope(campaign.id))
    shown = 0
    for r in result.reminders:
        day = r.due.astimezone(SHANGHAI).date()
        if (end and day > end) or r.user_id not in people:
            continue
        channel, external = people[r.user_id]
        body = " ".join(r.body.split()) if r.body else "（发送时按当日情况生成）"
        print(f"{_when(r.due)}  {channel}:{external}  {KIND_LABELS[r.kind]}  【{r.title}】{body}")
        shown += 1
    until = f" 至 {end}" if end else ""
    print(
        f"# {shown} 条提醒 (reminders) · {campaign.id} · 自 {_when(now)} 起{until} (from)",
        file=sys.stderr,
    )
    return _unplanned([u for u in result.unplanned if u.user_id in people])


def _unplanned(gaps: Sequence[Unplanned]) -> int:
    """One line on stderr per reason the planner could not place reminders; exit 1 if any."""
    by_reason: dict[str, dict[str, Unplanned]] = {}
    for u in gaps:  # a key once: "2 and 5 working days after a return" is one gap
        by_reason.setdefault(u.reason, {})[u.key] = u
    for reason, which in by_reason.items():
        n = len(which)
        kinds = "、".join(dict.fromkeys(KIND_LABELS[kind_of(u.topic)] for u in which.values()))
        print(
            f"awardbot: 无法计划 {n} 条提醒（{kinds}），没有猜测日期"
            f" (cannot plan {n} reminder(s), no date guessed): {reason}",
            file=sys.stderr,
        )
    return EXIT_UNPLANNED if gaps else 0


def _run_due(
    args: argparse.Namespace, settings: Settings, store: Store, planning: Planning, clock: Clock
) -> int:

    if args.now:
        try:
            now = dt.datetime.fromisoformat(args.now.strip())
        except ValueError:
            raise _Error(
                f'--now: {args.now!r} 不是本地时间 {DEMO_CLOCK_FORMAT}，如 "2022-11-02 08:30"'
                f" ({args.now!r} is not a local time {DEMO_CLOCK_FORMAT})"
            ) from None
        if now.tzinfo is None:
            now = now.replace(tzinfo=settings.timezone)
        if settings.environment is Environment.PRODUCTION and now > dt.datetime.now(dt.UTC):
            raise _Error(
                "--now: 生产环境不能使用未来的时间，否则提醒会提前发出"
                " (a time in the future is refused in production: it would send early)"
            )
    else:
        now = clock()
    ticker = Ticker(store, planning, clock=lambda: now)
    try:
        report = ticker.tick()
    finally:
        ticker.close()
    if not report.leader:
        raise _Error(
            "另一个进程（serve）正在运行提醒任务，到期提醒由它交给发件箱"
            " (another worker, serve, runs the ticker now; it hands due reminders over)"
        )
    handed = report.handed
    print(
        f"{_when(now)}：交给发件箱 {handed.sent} 条，跳过 {handed.skipped} 条，"
        f"推迟到 08:00 {handed.deferred} 条 (handed to the outbox {handed.sent}, "
        f"skipped {handed.skipped}, deferred {handed.deferred})"
    )
    planned = report.planned  # the re-plan before the first tick settles what is over
    if planned is not None and planned.missed:
        print(
            f"  错过 {planned.missed} 条：截止前机器人未运行，未发送"
            f" (missed {planned.missed}: nobody ran before their deadline; not sent)"
        )
    if planned is not None and planned.superseded:
        print(f"  作废 {planned.superseded} 条：{SUPERSEDED}")
    for reason, n in handed.reasons.items():
        print(f"  跳过 {n}：{reason}")
    # Console users are here, in this terminal's machine: their reminders are printed now.
    with store.reading() as conn:
        console_users = [
            r.external_id
            for r in conn.execute(
                sa.select(users.c.external_id).where(users.c.channel == Channel.CONSOLE.value)
            )
        ]
    for user in console_users:
        printed = console_notifier(store, user, lambda: now)()
        if printed:
            print(f"[console:{user}]\n{printed}")
    return 0


def _list(args: argparse.Namespace, store: Store, catalog: Catalog) -> int:
    if args.campaign is not None:
        _campaign(catalog, args.campaign)
    if args.limit < 1:
        raise _Error(f"--limit: 至少为 1，收到 {args.limit} (at least 1)")
    # A bare ID may be one person on several channels: all of theirs.
    who: list[int | None] = list(_users(store, args.user)) if args.user else [None]
    out = io.StringIO()
    with store.reading() as conn:
        found = []
        for user_id in who:
            found += entries(
                conn, store.sealer, status=args.status, campaign=args.campaign,
                limit=args.limit, user_id=user_id,
            )  # fmt: skip
    rows = sorted(found, key=lambda e: (e.due_at, e.id))[: args.limit]
    for e in rows:
        why = f"  ({e.reason})" if e.reason else ""
        out.write(
            f"{_when(e.due_at)}  {e.status:<8} {e.channel}:{e.recipient_id}  "
            f"{KIND_LABELS.get(e.kind, e.kind)}  【{e.title or e.topic}】{why}\n"
        )
    sys.stdout.write(out.getvalue())
    print(f"# {len(rows)} 条 (reminders)", file=sys.stderr)
    return 0


def _window(
    args: argparse.Namespace, store: Store, catalog: Catalog, planning: Planning, clock: Clock
) -> int:
    campaign = _campaign(catalog, args.campaign)
    if args.window_command == "list":
        with store.reading() as conn:
            windows, versions = windows_in_force(conn, campaign)
        if not windows:
            print(f"# {campaign.id} 没有报送时间窗口 (no windows)", file=sys.stderr)
        for w in windows:
            moved = f"（已调整 {versions[w.key]} 次）" if versions[w.key] else ""
            strict = "，严格" if w.strict else ""
            print(f"{w.key}  {w.label}  {w.start} 至 {w.end}{strict}{moved}")
        return 0
    keys = [w.key for w in campaign.windows]
    if args.window not in keys:
        known = ", ".join(keys) or "无 (none)"
        raise _Error(
            f"--window: {campaign.id} 没有窗口 {args.window!r}（已有：{known}）"
            f" (no window {args.window!r}; see 'awardbot campaign window list')"
        )
    start, end = _date(args.start, "--start"), _date(args.end, "--end")
    if end < start:
        raise _Error(f"--end: {end} 早于 --start {start} (--end is before --start)")
    now = clock().astimezone(dt.UTC)
    with store.transaction() as conn:
        version = move_window(conn, campaign, args.window, start, end, now=now)
        change = planning.replan(conn, store.sealer, Scope(campaign.id), now=now)
        facts = plan_facts(
            conn, store.sealer, catalog, planning.regions, campaign, now=now,
            waiting_workdays=planning.waiting_workdays,
        )  # fmt: skip
    gaps = plan(facts, planning.workdays, Scope(campaign.id)).unplanned
    print(
        f"已调整 {campaign.id} 的 {args.window}：{start} 至 {end}（第 {version} 次）；"
        f"提醒已重新计划：新增 {change.added}，作废 {change.superseded}，"
        f"已过期 {change.missed}（按 {_when(now)} 计）"
        f" (window moved; reminders re-planned: {change.added} new, "
        f"{change.superseded} superseded, {change.missed} past)"
    )
    return _unplanned(gaps)


__all__ = ["COMMANDS", "register", "run"]
