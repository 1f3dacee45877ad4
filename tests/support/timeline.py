"""A campaign timeline under a controllable clock: the real ticker and outbox, console users.

`Timeline(store)` holds a clock the test moves (`at(...)`); `run(until, every)` ticks the real
`notifications.ticker.Ticker` and the real outbox `Dispatcher` at each step of the clock and
records what reached each console user, with the local time it was delivered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.wiring import CalendarWorkdays
from conversations.keys import Channel
from conversations.reminders import SHANGHAI
from notifications.calendar import WorkdayCalendar
from notifications.notice import Notice
from notifications.outbox import Dispatcher
from notifications.ticker import Ticker
from storage.planning import Planning
from storage.store import Store
from support.console_harness import CAMPAIGNS, catalog, regions


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


@dataclass(frozen=True, slots=True)
class Delivered:
    at: dt.datetime  # local
    user: str
    kind: str
    text: str
    key: str


@dataclass
class _Recorder:
    """The console channel's outbox sender, recording instead of printing."""

    timeline: Timeline
    channel: str = Channel.CONSOLE.value
    idempotent: bool = False

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        self.timeline.got("notice", recipient_id, text, idempotency_key)

    def send_notice(self, recipient_id: str, notice: Notice, idempotency_key: str) -> None:
        self.timeline.got(notice.kind.value, recipient_id, notice.text(), idempotency_key)


@dataclass
class Timeline:
    store: Store
    now: dt.datetime = field(default_factory=lambda: local(2022, 9, 29, 9, 0))
    delivered: list[Delivered] = field(default_factory=list)
    waiting_workdays: int = 5

    def __post_init__(self) -> None:
        self.planning = Planning(
            catalog(),
            regions(),
            CalendarWorkdays(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
            waiting_workdays=self.waiting_workdays,
        )
        self.ticker = self.new_ticker()
        self.dispatcher = Dispatcher(
            self.store,
            {Channel.CONSOLE.value: _Recorder(self)},
            clock=lambda: self.now.astimezone(dt.UTC),
            worker_id="timeline",
        )

    def new_ticker(self) -> Ticker:
        """A ticker as a freshly started process has it (it re-plans before its first tick);
        the one before it stops (its leader's session, on PostgreSQL, ends with it)."""
        old = getattr(self, "ticker", None)
        if old is not None:
            old.close()
        return Ticker(self.store, self.planning, clock=lambda: self.now)

    def close(self) -> None:
        self.ticker.close()

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clock(self) -> dt.datetime:
        return self.now

    def got(self, kind: str, user: str, text: str, key: str) -> None:
        self.delivered.append(Delivered(self.now, user, kind, text, key))

    def at(self, moment: dt.datetime) -> None:
        self.now = moment

    def tick(self) -> None:
        self.ticker.tick()
        while self.dispatcher.run_once().total:
            pass

    def run(self, until: dt.datetime, every: dt.timedelta = dt.timedelta(hours=1)) -> None:
        """Tick at `now`, then at every half past (the campaigns send at 08:30) and every
        `every` from there, until `until` (included): night hours are ticked too."""
        self.tick()
        half_past = self.now.replace(minute=30, second=0, microsecond=0)
        self.now = half_past if half_past > self.now else half_past + dt.timedelta(hours=1)
        while self.now <= until:
            self.tick()
            self.now += every
        self.now = until

    def of(self, user: str, kind: str | None = None) -> list[Delivered]:
        return [d for d in self.delivered if d.user == user and (kind is None or d.kind == kind)]


__all__ = ["Delivered", "Timeline", "local"]
