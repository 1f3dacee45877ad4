"""The reminder ticker: one interval job that hands due reminders to the outbox.

Exactly one worker runs it (storage.leader: a PostgreSQL advisory lock; SQLite is one process).
When a worker becomes leader — at start, or taking over from one that died — it first re-plans
every campaign (the campaign files may have changed while nobody ran; keys that are unchanged
stay as they are), then each tick moves what is due to the outbox (storage.reminders.
hand_off_due): a reminder missed while the bot was down goes out once at start if its deadline
has not passed, else it is recorded skipped with the reason. Delivery is the outbox's: channel
limits, retries, at most once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from storage.leader import Leadership
from storage.planning import Digests, Planning
from storage.reminders import HandOff, PlanChange, hand_off_due
from storage.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickReport:
    leader: bool
    planned: PlanChange | None = None  # the re-plan of becoming leader
    handed: HandOff = HandOff()


class Ticker:
    def __init__(
        self,
        store: Store,
        planning: Planning,
        *,
        clock: Callable[[], dt.datetime],
        leadership: Leadership | None = None,
        batch: int = 500,
    ) -> None:
        self._store = store
        self._planning = planning
        self._clock = clock
        self._leadership = leadership or Leadership(store)
        self._batch = batch
        self._planned = False
        self.leading = False  # as of the last tick (what /healthz says)
        self._digests = Digests(store.sealer, planning.catalog, planning.regions)

    def tick(self) -> TickReport:
        """One round; raises StoreError when the database is away (the next tick tries again)."""
        self.leading = self._leadership.held()
        if not self.leading:
            self._planned = False  # leading again later re-plans first
            return TickReport(leader=False)
        planned = None
        if not self._planned:
            with self._store.transaction() as conn:
                planned = self._planning.replan_all(conn, self._store.sealer, now=self._now())
            self._planned = True
            log.info(
                "ticker: plan refreshed (%d new, %d superseded)", planned.added, planned.superseded
            )
        total = HandOff()
        while True:
            handed = hand_off_due(
                self._store, now=self._now(), digest=self._digests, limit=self._batch
            )
            total = _sum(total, handed)
            if handed.sent + handed.skipped + handed.deferred < self._batch:
                break
        return TickReport(leader=True, planned=planned, handed=total)

    def close(self) -> None:
        self._leadership.release()

    def _now(self) -> dt.datetime:
        return self._clock().astimezone(dt.UTC)


def _sum(a: HandOff, b: HandOff) -> HandOff:
    reasons = dict(a.reasons)
    for reason, n in b.reasons.items():
        reasons[reason] = reasons.get(reason, 0) + n
    return HandOff(a.sent + b.sent, a.skipped + b.skipped, a.deferred + b.deferred, reasons)


__all__ = ["TickReport", "Ticker"]
