"""Building the runtime from settings: the one place that knows every part."""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from bot.clock import clock_for
from bot.keys import sealer_for
from bot.runtime import Runtime
from bot.settings import Settings
from conversations.assistant import Assistant
from conversations.campaign import Catalog
from conversations.engine import Clock, Engine
from conversations.keys import Channel
from conversations.reads import PortRefusal
from notifications.calendar import CalendarError, WorkdayCalendar
from notifications.outbox import Dispatcher
from notifications.senders import ConsoleSender
from notifications.ticker import Ticker
from storage.files import FileStore, upgrade_file_names
from storage.planning import Planning
from storage.reads import WorkdayEnd
from storage.regions import load_regions
from storage.store import Store, StoreError

REGIONS_FILE = "regions.yaml"  # in the campaigns directory


def workday_end_from(calendar: WorkdayCalendar) -> WorkdayEnd:
    """The calendar as the core's port: a year it lacks is a refusal the user reads."""

    def workday_end(start: dt.date, workdays: int) -> dt.date:
        try:
            return calendar.nth_workday(start, workdays)
        except CalendarError as exc:
            raise PortRefusal(str(exc)) from None

    return workday_end


class CalendarWorkdays:
    """The calendar as the planner's port (conversations.reminders.Workdays): a year it lacks
    raises PortRefusal, whose text names the year and the file to add it to."""

    def __init__(self, calendar: WorkdayCalendar) -> None:
        self._calendar = calendar

    def is_workday(self, day: dt.date) -> bool:
        try:
            return self._calendar.is_workday(day)
        except CalendarError as exc:
            raise PortRefusal(str(exc)) from None

    def nth_workday(self, start: dt.date, n: int) -> dt.date:
        try:
            return self._calendar.nth_workday(start, n)
        except CalendarError as exc:
            raise PortRefusal(str(exc)) from None


def planning_for(settings: Settings, catalog: Catalog) -> Planning:
    """How reminders are planned: the campaigns, the regions, the calendar, the settings."""
    return Planning(
        catalog,
        load_regions(settings.campaigns_dir / REGIONS_FILE),
        CalendarWorkdays(WorkdayCalendar(settings.calendar_file)),
        waiting_workdays=settings.alert_waiting_workdays,
    )


def build_runtime(
    settings: Settings, catalog: Catalog, store: Store, *, clock: Clock | None = None
) -> Runtime:
    """The runtime over `store`; raises SettingsError / RegionError / CalendarError early."""
    regions = load_regions(settings.campaigns_dir / REGIONS_FILE)
    calendar = WorkdayCalendar(settings.calendar_file)
    engine = Engine(catalog, clock=clock or clock_for(settings))
    files = FileStore(Path(settings.attachments_dir), store.sealer)
    upgrade_file_names(store, files)  # once: names by plain SHA-256 (before issue 8) go
    return Runtime(
        Assistant(catalog, engine, retention_days=settings.retention_days),
        store,
        regions,
        files=files,
        workday_end=workday_end_from(calendar),
        planning=Planning(
            catalog,
            regions,
            CalendarWorkdays(calendar),
            waiting_workdays=settings.alert_waiting_workdays,
        ),  # fmt: skip
    )


def console_notifier(
    store: Store,
    user: str,
    clock: Callable[[], dt.datetime],
    *,
    ticker: Ticker | None = None,
    documents: Callable[[], object] | None = None,
    replies: Callable[[str], str] | None = None,
) -> Callable[[], str]:
    """Deliver what waits for this console user; returns the printed `【通知】…` lines.

    One console process serves one person: it delivers their notifications when they are
    there (after each step); other people's wait in the outbox for their own channel. With a
    `ticker` (the console's, on SQLite: one process) due reminders are handed over first, so a
    console user walking a timeline with AWARDBOT_NOW sees theirs. `documents` runs the
    document jobs that wait (bot.exports.DocumentWorker.run_due) and `replies` prints the
    replies they leave in the outbox (the files saved to the downloads folder).
    """
    buffer = io.StringIO()
    dispatcher = Dispatcher(
        store,
        {Channel.CONSOLE.value: ConsoleSender(buffer, replies)},
        clock=lambda: clock().astimezone(dt.UTC),
        worker_id=f"console-{os.getpid()}-{secrets.token_hex(4)}",
        recipient=(Channel.CONSOLE.value, user),
    )

    def deliver() -> str:
        try:
            if ticker is not None:
                ticker.tick()
            if documents is not None:
                documents()
            while dispatcher.run_once().delivered:
                pass
        except StoreError:
            pass  # the store is away: they wait in the outbox for the next step

        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.rstrip("\n")

    return deliver


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url, sealer=sealer_for(settings))
