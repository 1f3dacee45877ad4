"""The `awardbot` command line. Bad input: one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from bot import (
    admin,
    audit_cli,
    export_cli,
    logs,
    members_cli,
    privacy_cli,
    reminders_cli,
    telegram_cli,
    wechat_cli,
)
from conversations.answers import AnswerError, coerce_value
from conversations.campaign import Campaign, CampaignError, Catalog
from conversations.consistency import answer_disagreements, birth_date_problem
from conversations.eligibility import assess

EXIT_USAGE = 2


class CliError(Exception):
    """Bad command-line input or configuration; printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the usage block first; we keep errors to one line.
        raise CliError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="awardbot", description="吉林省评选表彰申报助手 (award-nomination bot)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    console = sub.add_parser("console", help="talk to the bot in this terminal")
    console.add_argument("--user", help="who you are (default: the OS user)")
    console.add_argument(
        "--show-keys", action="store_true", help="show question keys and choice values"
    )

    check = sub.add_parser("check", help="verdict for a file of answers, as JSON")
    check.add_argument("--campaign", required=True, help="campaign id, see 'awardbot campaigns'")
    check.add_argument("--category", required=True, help="category id")
    check.add_argument(
        "--answers", required=True, help="JSON file of fact answers, or - for stdin"
    )

    serve = sub.add_parser("serve", help="run every channel configured in .env (HTTP server)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", default=8080, type=_port, help="port (default 8080; 0: any)")

    sub.add_parser("campaigns", help="list campaigns and their categories")
    sub.add_parser("keygen", help="print a new encryption key for AWARDBOT_SECRET_KEY")

    calendar = sub.add_parser("calendar", help="working-day calendar")
    cal_sub = calendar.add_subparsers(dest="calendar_command", required=True, parser_class=_Parser)
    end = cal_sub.add_parser("end", help="date of the N-th working day from a start date")
    end.add_argument("--start", required=True, help="YYYY-MM-DD; counted when a working day")
    end.add_argument("--workdays", required=True, type=int, help="N >= 1")

    admin.register(sub)  # invite, quota
    members_cli.register(sub)  # member list|remove
    audit_cli.register(sub)  # audit --nomination|--user
    reminders_cli.register(sub)  # reminders plan|run-due|list, campaign window set|list
    privacy_cli.register(sub)  # privacy purge
    export_cli.register(sub)  # export summary|forms|cover|opinions|publicity|book|report|quota
    wechat_cli.register(sub)  # wechat menu
    telegram_cli.register(sub)  # telegram set-webhook, delete-webhook
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (0-65535)")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except CliError as exc:
        return _fail(str(exc))
    except CampaignError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): nothing more to say.
        sys.stderr.close()
        return 0


def _fail(message: str) -> int:
    print(f"awardbot: {message}", file=sys.stderr)
    return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    logs.configure(settings.log_level)
    if args.command in admin.COMMANDS:
        return admin.run(args, settings)
    if args.command in members_cli.COMMANDS:
        return members_cli.run(args, settings)
    if args.command in audit_cli.COMMANDS:
        return audit_cli.run(args, settings)
    if args.command in reminders_cli.COMMANDS:
        return reminders_cli.run(args, settings)
    if args.command in privacy_cli.COMMANDS:
        return privacy_cli.run(args, settings)
    if args.command in export_cli.COMMANDS:
        return export_cli.run(args, settings)
    if args.command in wechat_cli.COMMANDS:
        return wechat_cli.run(args, settings)
    if args.command in telegram_cli.COMMANDS:
        return telegram_cli.run(args, settings)
    if args.command == "keygen":
        from storage.crypto import Sealer

        print(Sealer.new_key())
        return 0
    if args.command == "calendar":
        return _calendar_end(args, settings.calendar_file)
    from bot.catalog import load_catalog

    catalog = load_catalog(settings.campaigns_dir)
    if args.command == "campaigns":
        return _list_campaigns(catalog)
    if args.command == "check":
        return _check(args, catalog, settings.timezone)
    if args.command == "serve":
        return _serve(args, catalog, settings)
    return _console(args, catalog, settings)


def _list_campaigns(catalog: Catalog) -> int:
    for campaign in catalog:
        print(f"{campaign.id}  {campaign.title}")
        for c in campaign.categories:
            places = f"{c.places_note or ''}{c.places}" if c.places is not None else "-"
            kind = "个人" if c.kind.value == "individual" else "集体"
            print(f"  {c.id:<24} {c.name}（{kind}，名额 {places}）")
    return 0


def _check(args: argparse.Namespace, catalog: Catalog, tz: Any) -> int:
    campaign = _campaign(catalog, args.campaign)
    if args.category not in {c.id for c in campaign.categories}:
        known = ", ".join(c.id for c in campaign.categories)
        raise CliError(f"unknown category '{args.category}' of {campaign.id} (known: {known})")
    raw = _read_answers(args.answers)
    today = dt.datetime.now(tz).date()
    answers: dict[str, Any] = {}
    for key, value in raw.items():
        if not campaign.has_fact(key):
            raise CliError(f"{args.answers}: unknown fact key '{key}' for {campaign.id}")
        fact = campaign.fact(key)
        if fact.derived is not None:
            raise CliError(f"{args.answers}: '{key}' is derived, give {fact.derived.sources}")
        if value is None:
            continue
        try:
            answers[key] = coerce_value(fact, value, today=today)
        except AnswerError as exc:
            raise CliError(f"{args.answers}: {exc}") from None
        problem = birth_date_problem(campaign, key, answers[key], today=today)
        if problem is not None:
            raise CliError(f"{args.answers}: {key}: {problem.message} ({problem.english})")
    # Answers that cannot both be true (two birth dates, years of work beyond the age): refused
    # as a wrong value is, not judged.
    for found in answer_disagreements(campaign, answers, today=today):
        keys = " / ".join(found.facts)
        raise CliError(f"{args.answers}: {keys}: {found.message} ({found.english})")
    result = assess(campaign, args.category, answers).as_json()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _campaign(catalog: Catalog, campaign_id: str) -> Campaign:
    if campaign_id not in catalog:
        known = ", ".join(c.id for c in catalog)
        raise CliError(f"unknown campaign '{campaign_id}' (known: {known})")
    return catalog.get(campaign_id)


def _read_answers(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{source}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{source}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise CliError(f"{source}: expected a JSON object mapping fact keys to values")
    return data


def _calendar_end(args: argparse.Namespace, calendar_file: Path) -> int:
    from notifications.calendar import CalendarError, WorkdayCalendar

    try:
        start = dt.date.fromisoformat(args.start)
    except ValueError:
        raise CliError(f"--start: '{args.start}' is not a real date in YYYY-MM-DD form") from None
    if args.workdays < 1:
        raise CliError(f"--workdays: must be 1 or more, got {args.workdays}")
    try:
        print(WorkdayCalendar(calendar_file).nth_workday(start, args.workdays).isoformat())
    except CalendarError as exc:
        raise CliError(str(exc)) from None
    return 0


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "default"


@contextmanager
def _runtime(catalog: Catalog, settings: Any) -> Iterator[tuple[Any, Any]]:
    """The store and the runtime over it, closed after; their errors as one-line CliErrors."""
    from bot.settings import SettingsError
    from bot.wiring import build_runtime, open_store
    from notifications.calendar import CalendarError
    from storage.files import FileStoreError
    from storage.regions import RegionError
    from storage.store import StoreError

    try:
        store = open_store(settings)
    except (StoreError, SettingsError) as exc:
        raise CliError(str(exc)) from None
    try:
        try:
            runtime = build_runtime(settings, catalog, store)
        except (RegionError, CalendarError, FileStoreError, StoreError) as exc:
            raise CliError(str(exc)) from None
        yield store, runtime
    finally:
        store.close()


def _console(args: argparse.Namespace, catalog: Catalog, settings: Any) -> int:
    from bot.channels import attachments_for
    from bot.exports import document_worker
    from bot.wiring import console_notifier
    from conversations.keys import Channel, ConversationKey
    from handlers.console import ConsoleChannel

    user = args.user if args.user is not None else _default_user()
    if not user.strip() or len(user) > 64:
        raise CliError("--user: give a name of 1 to 64 characters")
    with _runtime(catalog, settings) as (store, runtime):
        key = ConversationKey(Channel.CONSOLE.value, user)
        channel = ConsoleChannel(
            lambda: _opened(runtime, key),
            lambda text, upload=None: runtime.handle(key, text, upload),
            show_keys=args.show_keys,
            notifications=console_notifier(
                store,
                user,
                runtime.assistant.engine.clock,
                ticker=_console_ticker(store, runtime),
                documents=document_worker(runtime, f"console-{os.getpid()}").run_due,
                replies=lambda payload: channel.render_stored(payload),
            ),
            attachments=attachments_for(settings, store),
            downloads=settings.downloads_dir,
        )
        return channel.run()


def _console_ticker(store: Any, runtime: Any) -> Any:
    """The console's own reminder ticker on SQLite (one process); none on PostgreSQL, where
    `serve` workers run it (one leader among them)."""
    from notifications.ticker import Ticker

    if store.dialect != "sqlite" or runtime.planning is None:
        return None
    return Ticker(store, runtime.planning, clock=runtime.assistant.engine.clock)


def _opened(runtime: Any, key: Any) -> list[Any]:
    """The console's greeting; the store gone away meanwhile is said, not a traceback."""
    from conversations.engine import Reply
    from conversations.texts import render
    from handlers.base import Unavailable

    try:
        replies: list[Any] = runtime.open(key)
    except Unavailable:
        return [Reply(render("store_unavailable"))]
    return replies


def _serve(args: argparse.Namespace, catalog: Catalog, settings: Any) -> int:
    import asyncio

    from bot.server import ChannelStartError, ListenError, serve

    def announce(line: str) -> None:
        print(line, flush=True)

    with _runtime(catalog, settings) as (store, runtime):
        try:
            asyncio.run(
                serve(
                    settings,
                    store,
                    runtime,
                    host=args.host,
                    port=args.port,
                    clock=runtime.assistant.engine.clock,
                    announce=announce,
                )
            )
        except (ListenError, ChannelStartError) as exc:
            raise CliError(str(exc)) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
