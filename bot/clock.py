"""The bot's clock: the system's, or the demo clock of AWARDBOT_NOW (never in production).

The demo clock starts at the given local time and runs on at the real pace from there, so a
newcomer can walk a whole campaign timeline (`AWARDBOT_NOW="2022-11-02 08:00" awardbot console`)
without touching the system clock. Every part of one process reads the same clock: the steps,
the reminder ticker and the outbox.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from bot.settings import Settings

Clock = Callable[[], dt.datetime]


def clock_for(settings: Settings, *, monotonic: Callable[[], float] = time.monotonic) -> Clock:
    """Aware local datetimes in settings.timezone."""
    if settings.now is None:
        return lambda: dt.datetime.now(settings.timezone)
    start = settings.now.astimezone(settings.timezone)
    began = monotonic()
    return lambda: start + dt.timedelta(seconds=monotonic() - began)


__all__ = ["Clock", "clock_for"]
