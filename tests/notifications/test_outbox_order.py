"""A step's replies go out in order whoever sends them, and the flood-limit wait comes before
the in-flight mark (issue 13), on every backend."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from handlers.base import reply_key, reply_part
from notifications.outbox import Dispatcher
from notifications.senders import DeliveryError
from storage.outbox import (
    OutboxMessage,
    OutboxStatus,
    claim,
    enqueue,
    find,
    mark_delivered,
    mark_failed,
    mark_retry,
    step_of,
    take,
)
from storage.store import Store

T0 = datetime(2022, 11, 3, 1, 30, tzinfo=UTC)
LEASE = timedelta(seconds=60)
CHAT = "810001"


def key(update: int, index: int, channel: str = "telegram") -> str:
    return reply_key(channel, reply_part(str(update), index))


def reply(update: int, index: int, *, chat: str = CHAT) -> OutboxMessage:
    return OutboxMessage(key(update, index), "telegram", chat, f"[{index}]", kind="reply")


def put(store: Store, *messages: OutboxMessage, now: datetime = T0) -> None:
    with store.transaction() as conn:
        enqueue(conn, store.sealer, messages, now=now)


def keys_of(claimed: object) -> list[str]:
    return [m.idempotency_key for m in claimed]  # type: ignore[attr-defined]


def test_step_of_names_a_steps_reply_rows_only() -> None:
    assert step_of("reply", key(1013, 2)) == "reply:telegram:1013:"
    assert step_of("notice", key(1013, 2)) is None
    assert step_of("reply", "documents:17") is None  # a job's replies: not a step's
    assert step_of("reply", "reply:telegram:1013") is None


def test_a_later_reply_waits_while_an_earlier_one_is_in_flight(store: Store) -> None:
    """Worker A (the channel) has reply 0 in flight; reply 1 is due: worker B takes nothing of
    the step until reply 0 is settled, then reply 1."""
    put(store, reply(7, 0), reply(7, 1))
    first = take(store, key(7, 0), "replies:A", now=T0, lease=LEASE)
    assert first is not None
    later = T0 + timedelta(seconds=10)  # reply 1 is long due
    assert keys_of(claim(store, "B", now=later, lease=LEASE, limit=10)) == []
    assert take(store, key(7, 1), "replies:C", now=later, lease=LEASE) is None
    mark_delivered(store, first, now=later)
    assert keys_of(claim(store, "B", now=later, lease=LEASE, limit=10)) == [key(7, 1)]


def test_a_later_reply_waits_for_an_earlier_one_claimed_by_a_dispatcher(store: Store) -> None:
    put(store, reply(8, 0), reply(8, 1), reply(8, 2))
    # A batch cut after reply 0: the others wait for it, on this worker as on another.
    assert keys_of(claim(store, "A", now=T0, lease=LEASE, limit=1)) == [key(8, 0)]
    assert keys_of(claim(store, "B", now=T0, lease=LEASE, limit=10)) == []
    assert take(store, key(8, 1), "replies:A", now=T0, lease=LEASE) is None
    assert find(store, key(8, 1)).status is OutboxStatus.PENDING  # type: ignore[union-attr]


def test_one_claim_takes_a_whole_step_in_order(store: Store) -> None:
    # Stored in reverse id order on purpose: the order is the index, not the row id.
    put(store, reply(9, 2), reply(9, 1), reply(9, 0))
    put(store, OutboxMessage("n-1", "telegram", "5", "通知"))
    claimed = keys_of(claim(store, "A", now=T0, lease=LEASE, limit=10))
    assert sorted(claimed) == sorted([key(9, 0), key(9, 1), key(9, 2), "n-1"])
    steps = [k for k in claimed if k.startswith("reply:")]
    assert steps == [key(9, 0), key(9, 1), key(9, 2)]


def test_a_retried_reply_holds_the_rest_of_its_step_only(store: Store) -> None:
    put(store, reply(10, 0), reply(10, 1), reply(11, 0, chat="810002"))
    put(store, OutboxMessage("n-2", "telegram", CHAT, "通知"))
    batch = claim(store, "A", now=T0, lease=LEASE, limit=1)
    assert keys_of(batch) == [key(10, 0)]
    mark_retry(store, batch.messages[0], error="429", next_attempt_at=T0 + timedelta(minutes=5))
    # Reply 1 is due but its step's reply 0 waits for its retry; the others are not held.
    later = T0 + timedelta(seconds=30)
    assert sorted(keys_of(claim(store, "B", now=later, lease=LEASE, limit=10))) == sorted(
        [key(11, 0), "n-2"]
    )
    retry = T0 + timedelta(minutes=5)
    assert keys_of(claim(store, "B", now=retry, lease=LEASE, limit=10)) == [key(10, 0), key(10, 1)]


def test_a_failed_reply_does_not_hold_the_next(store: Store) -> None:
    put(store, reply(12, 0), reply(12, 1))
    batch = claim(store, "A", now=T0, lease=LEASE, limit=1)
    mark_failed(store, batch.messages[0], error="blocked")
    assert keys_of(claim(store, "B", now=T0, lease=LEASE, limit=10)) == [key(12, 1)]


def test_other_steps_with_similar_keys_are_not_held(store: Store) -> None:
    # Same length and another update, a longer update id, another chat: not the same step.
    put(store, reply(1, 0), reply(2, 1), reply(12, 1), reply(1, 1, chat="810009"))
    assert take(store, key(1, 0), "replies:A", now=T0, lease=LEASE) is not None
    claimed = keys_of(claim(store, "B", now=T0, lease=LEASE, limit=10))
    assert sorted(claimed) == sorted([key(2, 1), key(12, 1), key(1, 1)])


class StepSender:
    """Records replies sent; fails the keys it is told to, once each."""

    channel = "telegram"
    idempotent = False

    def __init__(self, fail: set[str]) -> None:
        self.fail = set(fail)
        self.sent: list[str] = []

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        raise AssertionError("no notices here")

    def send_replies(self, recipient_id: str, payload: str, idempotency_key: str) -> None:
        if idempotency_key in self.fail:
            self.fail.discard(idempotency_key)
            raise DeliveryError("Too Many Requests", retryable=True)
        self.sent.append(idempotency_key)


def test_the_dispatcher_keeps_a_steps_order_when_a_reply_must_wait(store: Store) -> None:
    put(store, reply(20, 0), reply(20, 1), reply(20, 2), reply(21, 0, chat="810002"))
    now = [T0]
    sender = StepSender(fail={key(20, 0)})
    dispatcher = Dispatcher(
        store, {"telegram": sender}, clock=lambda: now[0], worker_id="A", lease=LEASE
    )
    report = dispatcher.run_once()
    # Reply 0 waits for its retry: 1 and 2 are handed back unsent, the other step goes out.
    assert sender.sent == [key(21, 0)]
    assert (report.delivered, report.retried) == (1, 3)
    assert [find(store, key(20, i)).attempts for i in range(3)] == [1, 0, 0]  # type: ignore[union-attr]
    now[0] = T0 + timedelta(minutes=1)
    dispatcher.run_once()
    assert sender.sent == [key(21, 0), key(20, 0), key(20, 1), key(20, 2)]


class ReservingSender:
    """Reserve waits (here: says what it saw); the send then records what the row looked like."""

    channel = "telegram"
    idempotent = False

    def __init__(self, store: Store, clock: list[datetime], *, jump: timedelta | None = None):
        self.store = store
        self.clock = clock
        self.jump = jump
        self.calls: list[tuple[str, OutboxStatus | None, bool]] = []
        self.reserved: set[tuple[int, str]] = set()  # (thread, recipient)

    def _row(self, name: str, key: str) -> None:
        entry = find(self.store, key)
        assert entry is not None
        self.calls.append((name, entry.status, entry.started_at is not None))

    def reserve(self, recipient_id: str) -> None:
        self._row("reserve", "n-r")
        self.reserved.add((threading.get_ident(), recipient_id))
        if self.jump is not None:  # the wait outlasted the lease
            self.clock[0] += self.jump

    def unreserve(self, recipient_id: str) -> None:
        self.calls.append(("unreserve", None, False))
        self.reserved.discard((threading.get_ident(), recipient_id))

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        assert (threading.get_ident(), recipient_id) in self.reserved
        self.reserved.discard((threading.get_ident(), recipient_id))
        self._row("send", idempotency_key)


def test_the_dispatcher_reserves_before_the_in_flight_mark(store: Store) -> None:
    put(store, OutboxMessage("n-r", "telegram", CHAT, "提醒"))
    clock = [T0]
    sender = ReservingSender(store, clock)
    dispatcher = Dispatcher(store, {"telegram": sender}, clock=lambda: clock[0], worker_id="A")
    assert dispatcher.run_once().delivered == 1
    # While it waited the row was claimed, not in flight: a kill there leaves it unstarted.
    assert sender.calls == [
        ("reserve", OutboxStatus.SENDING, False),
        ("send", OutboxStatus.SENDING, True),
        ("unreserve", None, False),  # a no-op after the send used it
    ]


def test_a_reservation_not_used_is_dropped(store: Store) -> None:
    put(store, OutboxMessage("n-r", "telegram", CHAT, "提醒"))
    clock = [T0]
    sender = ReservingSender(store, clock, jump=LEASE + timedelta(seconds=1))
    dispatcher = Dispatcher(
        store, {"telegram": sender}, clock=lambda: clock[0], worker_id="A", lease=LEASE
    )
    dispatcher.run_once()
    # The lease ended during the wait: not marked, not sent, the reservation given up.
    assert [c[0] for c in sender.calls] == ["reserve", "unreserve"]
    assert sender.reserved == set()
    entry = find(store, "n-r")
    assert entry is not None
    assert entry.started_at is None


def test_a_reserve_that_fails_is_retried_like_a_send(store: Store) -> None:
    put(store, OutboxMessage("n-r", "telegram", CHAT, "提醒"))

    class Down(ReservingSender):
        def reserve(self, recipient_id: str) -> None:
            raise DeliveryError("telegram adapter not running", retryable=True)

    sender = Down(store, [T0])
    dispatcher = Dispatcher(store, {"telegram": sender}, clock=lambda: T0, worker_id="A")
    assert dispatcher.run_once().retried == 1
    entry = find(store, "n-r")
    assert entry is not None
    assert (entry.status, entry.started_at) == (OutboxStatus.PENDING, None)
    assert sender.calls == []
