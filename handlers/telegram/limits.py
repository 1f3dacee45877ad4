"""Telegram's flood limits on our side: ≤ 30 messages/s overall, ≤ 1/s per chat.

Token buckets (short bursts allowed, as Telegram allows them), shared by the replies and the
outbox sender of one adapter; both run on the adapter's event loop. A 429 pauses the chat (or
everything) for the `retry_after` Telegram asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MESSAGES_PER_SECOND = 30.0  # telegram.constants.FloodLimit.MESSAGES_PER_SECOND
MESSAGES_PER_SECOND_PER_CHAT = 1.0  # FloodLimit.MESSAGES_PER_SECOND_PER_CHAT
CHAT_BURST = 3  # a step often answers with two or three messages at once
IDLE_CHATS = 10_000
EPSILON = 1e-6  # forget full buckets beyond this many chats


@dataclass(slots=True)
class _Bucket:
    rate: float  # tokens per second
    size: float
    tokens: float
    stamp: float
    paused_until: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0: available now)."""
        self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        pause = max(0.0, self.paused_until - now)
        if self.tokens >= 1 - EPSILON:  # float refills stop just short of whole tokens
            return pause
        return max(pause, (1 - self.tokens) / self.rate, EPSILON)


class RateLimiter:
    """`await limiter.acquire(chat_id)` before each message to that chat."""

    def __init__(
        self,
        *,
        per_second: float = MESSAGES_PER_SECOND,
        per_chat_per_second: float = MESSAGES_PER_SECOND_PER_CHAT,
        chat_burst: int = CHAT_BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._chat_rate = per_chat_per_second
        self._chat_burst = float(chat_burst)
        now = clock()
        self._all = _Bucket(per_second, per_second, per_second, now)
        self._chats: dict[str, _Bucket] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, tasks using it

    def _chat(self, chat_id: str, now: float) -> _Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) >= IDLE_CHATS:
                self._forget_full(now)
            bucket = _Bucket(self._chat_rate, self._chat_burst, self._chat_burst, now)
            self._chats[chat_id] = bucket
        return bucket

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._chats.items()):
            if bucket.wait(now) == 0 and bucket.tokens >= bucket.size and key not in self._locks:
                del self._chats[key]

    async def acquire(self, chat_id: str) -> None:
        """Wait for this chat's turn and a free slot overall; messages to one chat keep order."""
        lock, users = self._locks.get(chat_id, (asyncio.Lock(), 0))
        self._locks[chat_id] = (lock, users + 1)
        try:
            async with lock:
                while True:
                    now = self._clock()
                    chat = self._chat(chat_id, now)
                    delay = max(chat.wait(now), self._all.wait(now))
                    if delay <= 0:
                        chat.tokens = max(0.0, chat.tokens - 1)
                        self._all.tokens = max(0.0, self._all.tokens - 1)
                        return
                    await self._sleep(delay)
        finally:
            lock, users = self._locks[chat_id]
            if users <= 1:
                del self._locks[chat_id]
            else:
                self._locks[chat_id] = (lock, users - 1)

    def pause(self, chat_id: str | None, seconds: float) -> None:
        """Telegram said 429: nothing more to this chat (None: to anyone) for `seconds`."""
        now = self._clock()
        bucket = self._all if chat_id is None else self._chat(chat_id, now)
        bucket.paused_until = max(bucket.paused_until, now + seconds)
