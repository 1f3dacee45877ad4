"""HTTP end to end: `awardbot serve` against each library's own webhook server (issue 13).

One process, one event loop (client, servers and fake APIs alike), as bench_channels.py runs it:
its load generator, fakes, floors and profiler are imported from there, not copied.

Telegram, 100 concurrent closed-loop users (each sends its next update once the replies to the
last one reached the fake Bot API, tests/fakes/telegram_api.py), every user the 7 texts of the
baselines' form (benchmarks/baselines/form.py: 10 sendMessage calls per user on every stack):

  ours-tg-ptb        `awardbot serve`'s Server (bot.server, real SQLite Store, the channel wired
                     by bot.channels as serve wires it: replies stored with the step, taken
                     from the outbox before sending), python-telegram-bot adapter: POST
                     /telegram with the secret header
  ours-tg-aiogram    the same with the aiogram adapter
  ptb-webhook        benchmarks/baselines/ptb_form.py's ConversationHandler on an Application
                     whose own webhook server answers: `Updater.start_webhook` (tornado), as
                     `Application.run_webhook` starts it; the library's defaults otherwise
  aiogram-webhook    benchmarks/baselines/aiogram_form.py's Dispatcher behind aiogram's own
                     `SimpleRequestHandler` on aiohttp (default handle_in_background=True)

WeChat safe mode, 200 concurrent closed-loop users (bench_channels.py's 13-message self-check):

  ours-wx-aes        serve's POST /wechat, AES safe mode: signature, decrypt, the step, encrypt
  wechatpy-aes       a bare aiohttp route: WeChatCrypto decrypt (msg_signature), parse_message,
                     TextReply, encrypt

Rows: serve / library webhook (upd/s, target >= 1.0, both libraries), ours / bare wechatpy
(upd/s, target >= 0.5), and ours' request p99 at 200 concurrent (target < 100 ms). Telegram
flood pacing is out of the way (the tests' fast limiter), as in bench_channels.py.

Run:  .venv/bin/python benchmarks/bench_http.py [--quick] [--rows-json PATH]
      [--only STACK ...] [--profile STACK] [--tg-users 100] [--wx-users 200]
Exit code 0 when every sanity check passed, 1 otherwise. `--profile` writes the cProfile by
package to benchmarks/profiles/bench_http-<stack>.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("PTB_TIMEDELTA", "true")

import bench_channels as bc  # noqa: E402 - the load generator, fakes, floors, profiler
from rows import Report, Row  # noqa: E402

from benchmarks.baselines import form  # noqa: E402

PROFILES = HERE / "profiles"
TG_STACKS = ("ptb-webhook", "ours-tg-ptb", "aiogram-webhook", "ours-tg-aiogram")
WX_STACKS = ("wechatpy-aes", "ours-wx-aes")
STACKS = TG_STACKS + WX_STACKS
# sendMessage calls per form text, the same on every stack (form.REPLIES_PER_USER in all)
FORM_SENDS = (2, 2, 1, 2, 1, 1, 1)
assert sum(FORM_SENDS) == form.REPLIES_PER_USER
assert len(FORM_SENDS) == len(form.TEXTS)


# ----- the Telegram stacks, all on the form ---------------------------------------------------


def _form_builder(fake: Any, base_url: str) -> Callable[[int, int], list[bc.Request]]:
    from yarl import URL

    url = URL(f"{base_url}/telegram")

    def build(user: int, messages: int) -> list[bc.Request]:
        return [bc._telegram_request(fake, url, user, text) for text in form.TEXTS[:messages]]

    return build


def _wait_for_form_sends(fake: Any) -> Callable[[bc.Request], Any]:
    """The baselines' warm-up settle: until the chat has the form's messages for this update
    (the counts are the form's; bench_channels' calibration checks all users alike)."""
    done: dict[int, int] = {}

    async def settle(request: bc.Request) -> None:
        assert request.chat is not None
        n = done.get(request.chat, 0)
        done[request.chat] = n + 1
        await fake.wait_sent(request.chat, sum(FORM_SENDS[: n + 1]))

    return settle


def _form_check(name: str, fake: Any, state_of: Callable[[int], Any]) -> Callable[..., Any]:
    """Every chat got the form's 10 messages, the same in the same order, and the bot's own
    storage holds each user's answers."""

    async def check(chats: list[int], messages: int, bodies: Any, result: bc.Result) -> None:
        await asyncio.sleep(0.05)
        want = sum(FORM_SENDS[:messages])
        reference = fake.sent_texts[chats[0]]
        for chat in chats:
            texts = fake.sent_texts[chat]
            if len(texts) != want or texts != reference:
                raise bc.CheckFailed(f"{name}: chat {chat} got {len(texts)} messages, or others")
        if messages == len(form.TEXTS) and (
            reference[0] != form.GREETING or reference[-1] != form.DONE
        ):
            raise bc.CheckFailed(f"{name}: the form's replies are not the form's")
        result.checks.append(f"every chat got the same {want} messages, the form's, in order")
        if messages == len(form.TEXTS):
            wrong = [c for c in chats if await state_of(c) != form.EXPECTED]
            if wrong:
                raise bc.CheckFailed(f"{name}: {len(wrong)} users' stored answers are wrong")
            result.checks.append(f"{len(chats)} users' answers {form.EXPECTED} in its storage")

    return check


def _baseline_fake() -> Any:
    """bench_channels' counting fake Bot API, answering a sendMessage as Telegram does: the
    Message it returns carries `reply_markup` only for an inline keyboard (the Bot API's
    Message.reply_markup is an InlineKeyboardMarkup). The tests' fake echoes any markup, and
    the baselines' reply keyboards would then fail both libraries' parsing of the answer."""
    fake = bc._counting_fake()
    check = fake._check_markup

    def inline_only(markup: Any) -> Any:
        markup = check(markup)
        return markup if markup and "inline_keyboard" in markup else None

    fake._check_markup = inline_only
    return fake


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def ptb_webhook() -> AsyncIterator[bc.Stack]:
    """The form bot (ptb_form's handlers) behind PTB's own webhook server, pointed at the fake."""
    from telegram.ext import ApplicationBuilder

    from benchmarks.baselines import ptb_form

    fake = _baseline_fake()
    async with fake:
        app = (
            ApplicationBuilder()
            .token(fake.token)
            .base_url(f"{fake.url}/bot")
            .base_file_url(f"{fake.url}/file/bot")
            .job_queue(None)  # as ptb_form.build_application, which has no updater
            .build()
        )
        app.add_handler(ptb_form.form_handler())
        errors: list[BaseException] = []

        async def on_error(update: object, context: Any) -> None:
            errors.append(context.error)

        app.add_error_handler(on_error)
        port = _free_port()
        await app.initialize()
        assert app.updater is not None
        # What Application.run_webhook does, on this loop: setWebhook (the fake), tornado.
        await app.updater.start_webhook(
            listen="127.0.0.1", port=port, url_path="telegram", secret_token=bc.SECRET
        )
        await app.start()
        try:

            async def state_of(chat: int) -> Any:
                return None if errors else app.user_data.get(chat)

            yield bc.Stack(
                name="ptb-webhook",
                label="benchmarks/baselines/ptb_form.py behind Updater.start_webhook (tornado)",
                channel="telegram",
                build=_form_builder(fake, f"http://127.0.0.1:{port}"),
                fake=fake,
                settle=_wait_for_form_sends(fake),
                check=_form_check("ptb-webhook", fake, state_of),
                notes=[
                    "tornado answers once the update is queued; the Application then handles "
                    "updates one at a time (PTB's default, concurrent_updates off)"
                ],
            )
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()


@contextlib.asynccontextmanager
async def aiogram_webhook() -> AsyncIterator[bc.Stack]:
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.fsm.storage.base import StorageKey
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    from benchmarks.baselines import aiogram_form

    fake = _baseline_fake()
    async with fake:
        session = AiohttpSession(api=TelegramAPIServer.from_base(fake.url))
        bot = aiogram_form.make_bot(session, token=fake.token)
        dispatcher = aiogram_form.build_dispatcher()
        app = web.Application()
        SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=bc.SECRET).register(
            app, path="/telegram"
        )
        setup_application(app, dispatcher, bot=bot)

        async def state_of(chat: int) -> Any:
            key = StorageKey(bot_id=bot.id, chat_id=chat, user_id=chat)
            return await dispatcher.storage.get_data(key)

        async with bc._aiohttp_site(app) as url:  # its shutdown closes the bot's session
            yield bc.Stack(
                name="aiogram-webhook",
                label="benchmarks/baselines/aiogram_form.py behind SimpleRequestHandler",
                channel="telegram",
                build=_form_builder(fake, url),
                fake=fake,
                settle=_wait_for_form_sends(fake),
                check=_form_check("aiogram-webhook", fake, state_of),
                notes=["answers at once; the handlers run as tasks (handle_in_background)"],
            )


@contextlib.asynccontextmanager
async def ours_telegram(library: str, tmp: Path) -> AsyncIterator[bc.Stack]:
    """bench_channels' serve stack, fed the form's texts instead of the self-check script."""
    async with bc.ours_telegram(library, tmp) as stack:
        stack.build = _form_builder(stack.fake, stack.server.url)
        adapter = stack.server.adapters[0]
        ledger = adapter._ledger = LedgerTimer(adapter._ledger)
        timer = stack.step_timer
        assert timer is not None
        reset = timer.reset

        def reset_both() -> None:  # bench() resets the step timer before the measured run
            reset()
            ledger.reset()

        timer.reset = reset_both  # type: ignore[method-assign]
        checks = stack.check
        assert checks is not None

        async def check(chats: list[int], messages: int, bodies: Any, result: bc.Result) -> None:
            await checks(chats, messages, bodies, result)
            updates = len(chats) * messages
            result.notes.append(
                "thread CPU per update: the step "
                f"{timer.cpu_ns / max(1, timer.calls) / 1e6:.2f} ms, the reply ledger's take "
                f"{ledger.cpu_ns['take'] / updates / 1e6:.2f} ms and settle "
                f"{ledger.cpu_ns['settle'] / updates / 1e6:.2f} ms "
                f"({ledger.calls['take']} reply rows)"
            )
            rows = await asyncio.to_thread(_reply_rows, stack.server.store, chats)
            sent = sum(stack.fake.sent_count[c] for c in chats)
            if rows != {"delivered": sent}:
                raise bc.CheckFailed(f"{stack.name}: reply rows {rows}, {sent} messages sent")
            result.checks.append(
                f"the {sent} messages went out as the steps' stored reply rows, all delivered"
            )

        stack.check = check
        yield stack


class LedgerTimer:
    """Wraps the adapter's reply ledger: thread CPU time of each take and settle (the outbox
    transactions around every reply sent), as bench_channels.StepTimer times the step."""

    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {"take": 0, "settle": 0}
        self.cpu_ns: dict[str, int] = {"take": 0, "settle": 0}

    def reset(self) -> None:
        with self._lock:
            self.calls = {"take": 0, "settle": 0}
            self.cpu_ns = {"take": 0, "settle": 0}

    def _timed(self, name: str, *args: Any, **kwargs: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return getattr(self._ledger, name)(*args, **kwargs)
        finally:
            spent = time.thread_time_ns() - started
            with self._lock:
                self.calls[name] += 1
                self.cpu_ns[name] += spent

    def take(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("take", *args, **kwargs)

    def settle(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("settle", *args, **kwargs)


def _reply_rows(store: Any, chats: list[int]) -> dict[str, int]:
    """Outbox rows of kind reply for these chats, by status (serve's replies are stored with
    the step and taken from the outbox before sending)."""
    import sqlalchemy as sa

    from storage.tables import outbox

    query = (
        sa.select(outbox.c.status, sa.func.count())
        .where(outbox.c.kind == "reply", outbox.c.recipient_id.in_([str(c) for c in chats]))
        .group_by(outbox.c.status)
    )
    with store.reading() as conn:
        return {str(status): int(n) for status, n in conn.execute(query)}


# ----- the run ------------------------------------------------------------------------------


def _ratio(ours: bc.Result, base: bc.Result) -> None:
    ours.baseline = base.name
    ours.ratio_updates_per_s = ours.updates_per_s / base.updates_per_s
    ours.ratio_request_p50 = ours.request_p50_ms / base.request_p50_ms
    if ours.reply_p50_ms is not None and base.reply_p50_ms is not None:
        ours.ratio_reply_p50 = ours.reply_p50_ms / base.reply_p50_ms
    ours.ratio_solo_p50 = ours.solo_p50_ms / base.solo_p50_ms


async def _run(args: argparse.Namespace, report: Report) -> None:
    selected = [s for s in STACKS if not args.only or s in args.only]
    info = bc.machine_info()
    info["libraries"]["tornado"] = _version("tornado")
    report.details["machine"] = info
    report.details["tg_users"], report.details["wx_users"] = args.tg_users, args.wx_users
    report.details["wx_messages"] = args.wx_messages
    print(
        f"HTTP: Telegram {args.tg_users} users x {len(form.TEXTS)} form texts, WeChat safe "
        f"mode {args.wx_users} users x {args.wx_messages} messages; all users at once, each "
        f"closed-loop; load average {info['load_average_at_start']}",
        flush=True,
    )
    results: dict[str, bc.Result] = {}
    with tempfile.TemporaryDirectory(prefix="awardbot-bench-http-") as tmpdir:
        tmp = Path(tmpdir)
        factories: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[bc.Stack]]] = {
            "ptb-webhook": ptb_webhook,
            "ours-tg-ptb": lambda: ours_telegram("ptb", tmp),
            "aiogram-webhook": aiogram_webhook,
            "ours-tg-aiogram": lambda: ours_telegram("aiogram", tmp),
            "wechatpy-aes": lambda: bc.wechatpy_webhook(True),
            "ours-wx-aes": lambda: bc.ours_wechat(True, tmp),
        }
        for name in selected:
            telegram = name in TG_STACKS
            users = args.tg_users if telegram else args.wx_users
            messages = len(form.TEXTS) if telegram else args.wx_messages
            print(f"running {name} ({users} users x {messages}) ...", flush=True)
            profiles: list[str] | None = [] if args.profile == name else None
            try:
                async with factories[name]() as stack:
                    result = await bc.bench(stack, users, messages, args.warmup, profiles)
            except bc.CheckFailed as exc:
                report.check(ok=False, text=f"{name}: {exc}")
                continue
            for text in result.checks:
                report.check(ok=True, text=f"{name}: {text}")
            results[name] = result
            print(
                f"  {result.updates_per_s:,.0f} upd/s, request p50/p99 "
                f"{result.request_p50_ms:.1f}/{result.request_p99_ms:.1f} ms",
                flush=True,
            )
            if profiles:
                PROFILES.mkdir(exist_ok=True)
                path = PROFILES / f"bench_http-{name}.txt"
                path.write_text(
                    f"bench_http.py {' '.join(sys.argv[1:])}; load {bc._loadavg()}\n\n"
                    + profiles[0]
                )
                print(f"  profile written to {path.relative_to(ROOT)}", flush=True)
    for ours, base in (
        ("ours-tg-ptb", "ptb-webhook"),
        ("ours-tg-aiogram", "aiogram-webhook"),
        ("ours-wx-aes", "wechatpy-aes"),
    ):
        if ours in results and base in results:
            _ratio(results[ours], results[base])
    print()
    bc.print_table(list(results.values()))
    print()
    for result in results.values():
        for note in result.notes:
            print(f"  {result.name}: {note}")
    print()
    _rows(report, results, args)
    info["load_average_at_end"] = bc._loadavg()
    report.details["results"] = {name: asdict(r) for name, r in results.items()}


def _rows(report: Report, results: dict[str, bc.Result], args: argparse.Namespace) -> None:
    for ours, base, label in (
        ("ours-tg-ptb", "ptb-webhook", "serve (PTB) / PTB webhook"),
        ("ours-tg-aiogram", "aiogram-webhook", "serve (aiogram) / aiogram webhook"),
    ):
        if ours in results and base in results:
            mine, theirs = results[ours], results[base]
            report.row(
                Row(
                    row=f"HTTP Telegram: {label}",
                    ours=round(mine.updates_per_s, 1),
                    baseline=round(theirs.updates_per_s, 1),
                    baseline_name=base,
                    unit="upd/s",
                    target=1.0,
                    notes=f"{args.tg_users} closed-loop users, the 7-text form; reply p50 "
                    f"{mine.reply_p50_ms:.0f} vs {theirs.reply_p50_ms:.0f} ms",
                )
            )
    if "ours-wx-aes" in results and "wechatpy-aes" in results:
        mine, theirs = results["ours-wx-aes"], results["wechatpy-aes"]
        report.row(
            Row(
                row="HTTP WeChat safe mode: ours / bare wechatpy",
                ours=round(mine.updates_per_s, 1),
                baseline=round(theirs.updates_per_s, 1),
                baseline_name="wechatpy-aes",
                unit="upd/s",
                target=0.5,
                notes=f"{args.wx_users} closed-loop users",
            )
        )
    if "ours-wx-aes" in results:
        mine = results["ours-wx-aes"]
        report.row(
            Row(
                row=f"HTTP WeChat safe mode: ours p99 at {args.wx_users} concurrent",
                ours=round(mine.request_p99_ms, 1),
                unit="ms",
                target=100.0,
                higher_is_better=False,
                notes=f"closed loop: ~{args.wx_users} / {mine.updates_per_s:.0f} upd/s of "
                f"queueing per round trip; 1 user alone p50 {mine.solo_p50_ms:.1f} ms",
            )
        )
    for row in report.rows:
        verdict = "met" if row.met else "MISSED"
        ratio = f" ({row.ratio:.2f}x {row.baseline_name})" if row.ratio is not None else ""
        print(f"{row.row}: {row.ours:g} {row.unit}{ratio}, target {row.target:g}: {verdict}")


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (numbers meaningless)")
    parser.add_argument("--rows-json", type=Path, help="write the rows and checks here")
    parser.add_argument("--only", nargs="+", choices=STACKS, metavar="STACK")
    parser.add_argument("--profile", choices=STACKS, metavar="STACK")
    parser.add_argument("--tg-users", type=int, default=100)
    parser.add_argument("--wx-users", type=int, default=200)
    parser.add_argument("--wx-messages", type=int, default=len(bc.SCRIPT))
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.tg_users, args.wx_users, args.wx_messages, args.warmup = 6, 10, 4, 2
    report = Report("bench_http")
    started = time.perf_counter()
    asyncio.run(_run(args, report))
    report.details["seconds"] = round(time.perf_counter() - started, 1)
    if args.rows_json is None:
        print(json.dumps({"checks_failed": [c for c in report.checks if not c["ok"]]}))
    return report.write(args.rows_json)


if __name__ == "__main__":
    sys.exit(main())
