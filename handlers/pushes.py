"""Signed pushes (WeChat, WeCom): the timestamp window and the nonce ledger (issue 8).

A push's signature covers its `timestamp` and `nonce`, so once the signature holds:
- a timestamp further than `max_age` seconds from our clock (either way) is refused: a query
  string copied from a log cannot be used later;
- the nonce goes to the `PushLedger` (shared by every worker through the store): a nonce seen
  before under another signature, or under the same one after the retry span, is a replay and
  refused; the identical signed request again within the span is the platform retrying a push
  whose answer it did not get, and goes on (the delivery dedupe answers it with the kept answer).

`LocalPushLedger` is the same rule for one process (tests; adapters built without the store's).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable

from handlers.base import (
    Gateway,
    PushLedger,
    PushSeen,
)

RETRY_SPAN = dt.timedelta(seconds=60)  # WeChat and WeCom retry 3 times, 5 s apart
LOCAL_KEPT = dt.timedelta(hours=2)  # longer than any accepted timestamp's age
LOCAL_LIMIT = 100_000  # nonces one process keeps at most (oldest forgotten first)

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[!-~]{1,64}")  # the platforms send a short number; ASCII, no spaces


class PushRefused(Exception):
    """A signed push refused by its timestamp or nonce (answer 403, do nothing)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason  # stale | nonce | replay: the `refused` outcome's reason
        super().__init__(reason)


class LocalPushLedger:
    """`handlers.base.PushLedger` for one process, by the store ledger's rule."""

    def __init__(
        self,
        retry_span: dt.timedelta = RETRY_SPAN,
        *,
        kept: dt.timedelta = LOCAL_KEPT,
        limit: int = LOCAL_LIMIT,
    ) -> None:
        self._retry_span = retry_span
        self._kept = kept
        self._limit = limit
        self._seen: OrderedDict[tuple[str, str], tuple[str, dt.datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, channel: str, nonce: str, signature: str, *, now: dt.datetime) -> PushSeen:
        key = (channel, nonce)
        with self._lock:
            self._forget(now)
            first = self._seen.get(key)
            if first is None:
                self._seen[key] = (signature, now)
                return PushSeen.NEW
        seen_signature, seen_at = first
        if seen_signature == signature and now - seen_at <= self._retry_span:
            return PushSeen.RETRY
        return PushSeen.REPLAY

    def _forget(self, now: dt.datetime) -> None:
        while self._seen:
            _, (_, seen_at) = next(iter(self._seen.items()))
            if now - seen_at <= self._kept and len(self._seen) < self._limit:
                return
            self._seen.popitem(last=False)


class PushGuard:
    """The timestamp and nonce checks of one channel's signed pushes (see the module)."""

    def __init__(
        self,
        channel: str,
        ledger: PushLedger | None,
        *,
        max_age: int,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.channel = channel
        self.ledger: PushLedger = ledger if ledger is not None else LocalPushLedger()
        self.max_age = max_age
        self.clock = clock

    def check_time(self, timestamp: str) -> None:
        """Refuse a (signed) timestamp outside ±max_age of our clock; raises PushRefused."""
        if not _TIMESTAMP.fullmatch(timestamp):
            raise PushRefused("stale")
        if abs(int(timestamp) - self.clock().timestamp()) > self.max_age:
            raise PushRefused("stale")

    async def check_nonce(self, gateway: Gateway, nonce: str, signature: str) -> PushSeen:
        """Record the nonce of a verified push; raises PushRefused for a replay, Unavailable
        when the store keeping the nonces cannot be reached (nothing else was done: 503)."""
        if not _NONCE.fullmatch(nonce):
            raise PushRefused("nonce")
        seen = functools.partial(
            self.ledger.seen, self.channel, nonce, signature, now=self.clock()
        )
        found = await gateway.run(seen)  # the store away: Unavailable, a 503
        if found is PushSeen.REPLAY:
            raise PushRefused("replay")
        return found
