"""The Telegram flood limit's wait and a kill -9 of the dispatcher (issue 13), against the fake
Bot API with the real `TelegramSender`.

bench_fanout.py found it: at 30 messages/s a send spends most of its time waiting for its
limiter slot, and that wait used to happen after the row was marked in flight, inside the send.
A kill during it left a row recovery must take for a send that may have happened — failed
"outcome unknown", a reminder lost. Now the sender's `reserve` takes the slot before the mark:
while the dispatcher waits, the row is only claimed, so recovery after a kill gives it back and
the next worker sends it, once.

The kill is taken at the moment it matters: while the dispatcher thread is blocked in the
limiter's wait, recovery runs as it would once the dead worker's lease ended.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from support.console_harness import FIXED_NOW
from support.drivers.telegram import CHAT, telegram_bot

from handlers.telegram import RateLimiter
from notifications.outbox import Dispatcher
from storage.outbox import OutboxMessage, OutboxStatus, Recovery, enqueue, find, recover_expired
from storage.store import Store

# Later than the serve's own clock (FIXED_NOW), so its dispatcher leaves these rows alone.
NOW = FIXED_NOW + timedelta(days=1)
LEASE = timedelta(seconds=60)


class GatedSleep:
    """The limiter's sleep: says it is waiting, and waits until the test opens the gate."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.open = threading.Event()

    async def __call__(self, seconds: float) -> None:
        self.waiting.set()
        await asyncio.to_thread(self.open.wait, 30)
        await asyncio.sleep(seconds)


class CountingLimiter(RateLimiter):
    """Counts the slots taken (one per message sent without a reservation)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.acquired: list[str] = []

    async def acquire(self, chat_id: str) -> None:
        self.acquired.append(chat_id)
        await super().acquire(chat_id)


def on_new_thread(call: Callable[..., None], *args: str) -> None:
    """Run `call` on a thread of its own (a thread pool would reuse one)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


def notice(store: Store, key: str, chat: int = CHAT) -> None:
    with store.transaction() as conn:
        enqueue(conn, store.sealer, [OutboxMessage(key, "telegram", str(chat), "提醒")], now=NOW)


async def test_a_kill_during_the_flood_limit_wait_loses_nothing(
    store: Store, tmp_path: Path
) -> None:
    gate = GatedSleep()
    limiter = RateLimiter(per_chat_per_second=1.0, chat_burst=1, sleep=gate)
    async with telegram_bot(
        store, library="ptb", mode="webhook", files_dir=tmp_path, limiter=limiter
    ) as tg:
        notice(store, "n-flood")
        await limiter.acquire(str(CHAT))  # the chat's one slot: the next send must wait
        sender = tg.adapter.sender()
        first = Dispatcher(
            store, {"telegram": sender}, clock=lambda: NOW, worker_id="killed", lease=LEASE
        )
        round_one = asyncio.ensure_future(asyncio.to_thread(first.run_once))
        assert await asyncio.to_thread(gate.waiting.wait, 10), "the send never waited"
        # The dispatcher waits for its slot: the row is claimed, not in flight.
        entry = find(store, "n-flood")
        assert entry is not None
        assert entry.status is OutboxStatus.SENDING
        assert entry.started_at is None, "marked in flight while waiting for the flood limit"
        # kill -9 now: once the lease ends, recovery gives the row back, unsent and not failed.
        after = NOW + LEASE + timedelta(seconds=1)
        assert recover_expired(store, now=after, idempotent_channels=()) == Recovery(returned=1)
        gate.open.set()
        lost = await round_one  # (the "dead" worker: its claim is gone, it sends nothing)
        assert (lost.delivered, lost.failed) == (0, 0)
        assert tg.fake.sent(CHAT) == []
        second = Dispatcher(
            store, {"telegram": sender}, clock=lambda: after, worker_id="next", lease=LEASE
        )
        assert (await asyncio.to_thread(second.run_once)).delivered == 1
        sent = tg.fake.sent(CHAT)
    assert [m["text"] for m in sent] == ["提醒"]
    entry = find(store, "n-flood")
    assert entry is not None
    assert entry.status is OutboxStatus.DELIVERED


async def test_a_reservation_is_for_the_next_send_to_that_chat_on_that_thread(
    store: Store, tmp_path: Path
) -> None:
    limiter = CountingLimiter(per_second=1000.0, per_chat_per_second=1000.0, chat_burst=100)
    async with telegram_bot(
        store, library="ptb", mode="webhook", files_dir=tmp_path, limiter=limiter
    ) as tg:
        sender = tg.adapter.sender()
        chat, other = str(CHAT), str(CHAT + 1)

        def used(*calls: tuple[str, ...]) -> list[str]:
            """Run sender calls on one thread; the slots they took."""
            before = len(limiter.acquired)
            for name, *args in calls:
                getattr(sender, name)(*args)
            return limiter.acquired[before:]

        def send(to: str) -> tuple[str, ...]:
            return ("send", to, "提醒", "n-1")

        # Reserved, then sent: one slot for the two, taken by reserve.
        assert await asyncio.to_thread(used, ("reserve", chat), send(chat)) == [chat]
        # A reservation given up, or used once already, does not let a send skip the limiter.
        assert await asyncio.to_thread(
            used, ("reserve", chat), ("unreserve", chat), send(chat)
        ) == [chat, chat]
        assert await asyncio.to_thread(used, ("reserve", chat), send(chat), send(chat)) == [
            chat,
            chat,
        ]
        # It is for that chat: a send to another one takes its own slot, and drops it.
        assert await asyncio.to_thread(used, ("reserve", chat), send(other), send(chat)) == [
            chat,
            other,
            chat,
        ]
        # And for that thread: another dispatcher thread's send to the chat waits its turn.
        await asyncio.to_thread(on_new_thread, sender.reserve, chat)
        before = len(limiter.acquired)
        await asyncio.to_thread(on_new_thread, sender.send, chat, "提醒", "n-2")
        assert limiter.acquired[before:] == [chat]
        assert len(tg.fake.sent(CHAT)) == 6
