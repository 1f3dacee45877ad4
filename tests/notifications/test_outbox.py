"""The outbox and its dispatcher, on every backend: commit together, deliver once, retry, seal."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from support.keys import TEST_SEALER
from support.scrape import sample
from support.serving import serving

from conversations.keys import ConversationKey
from notifications.outbox import Dispatcher, DispatchReport
from notifications.senders import ConsoleSender, DeliveryError, Sender
from storage import outbox as box
from storage.crypto import Sealer
from storage.outbox import (
    QUARANTINED,
    RELEASED_RETRY,
    UNKNOWN_OUTCOME,
    OutboxMessage,
    OutboxStatus,
    Recovery,
    claim,
    depth,
    enqueue,
    find,
    give_back,
    mark_delivered,
    mark_retry,
    mark_started,
    recover_expired,
    release,
)
from storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2022, 11, 3, 1, 30, tzinfo=UTC)  # 09:30 in Jilin, the first submission day
LEASE = timedelta(seconds=60)
TEXT = "张三的推荐（吉林省技术能手）已进入市级评审。"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class RecordingSender:
    """Records what it was asked to send; raises what it is told to, in order."""

    def __init__(
        self,
        channel: str = "telegram",
        *,
        idempotent: bool = False,
        failures: list[Exception] | None = None,
        pause: float = 0.0,
    ) -> None:
        self.channel = channel
        self.idempotent = idempotent
        self.sent: list[tuple[str, str, str]] = []
        self._failures = list(failures or [])
        self._pause = pause
        self._lock = threading.Lock()

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
        time.sleep(self._pause)  # outside the lock: other workers send meanwhile
        with self._lock:
            self.sent.append((recipient_id, text, idempotency_key))

    @property
    def keys(self) -> list[str]:
        return [key for _, _, key in self.sent]


class OverlappingSender(RecordingSender):
    """Each worker's first send waits for the other's, so two workers hold claims at once."""

    def __init__(self) -> None:
        super().__init__()
        self._meet = threading.Barrier(2, timeout=10)
        self._local = threading.local()

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        if not getattr(self._local, "met", False):
            self._local.met = True
            self._meet.wait()
        super().send(recipient_id, text, idempotency_key)


def message(n: int = 1, *, channel: str = "telegram", text: str = TEXT) -> OutboxMessage:
    return OutboxMessage(
        idempotency_key=f"nom-{n}:change-7:applicant",
        channel=channel,
        recipient_id="10001",
        text=text,
    )


def put(store: Store, *messages: OutboxMessage, now: datetime = T0) -> int:
    with store.transaction() as conn:
        return enqueue(conn, store.sealer, messages, now=now)


def dispatcher(
    store: Store, sender: RecordingSender, clock: Clock, **options: object
) -> Dispatcher:
    return Dispatcher(
        store,
        {sender.channel: sender},
        clock=clock,
        worker_id="w1",
        **options,  # type: ignore[arg-type]
    )


def entry(store: Store, msg: OutboxMessage) -> box.OutboxEntry:
    found = find(store, msg.idempotency_key)
    assert found is not None
    return found


# 1. A status change and its notifications commit together or not at all.


def test_enqueue_rolls_back_with_the_callers_transaction(store: Store) -> None:
    def change_status_then_fail() -> None:
        with store.transaction() as conn:
            enqueue(conn, store.sealer, [message()], now=T0)
            raise RuntimeError("status change failed")

    with pytest.raises(RuntimeError, match="status change failed"):
        change_status_then_fail()
    assert find(store, message().idempotency_key) is None
    assert depth(store) == 0

    with store.transaction() as conn:
        assert enqueue(conn, store.sealer, [message()], now=T0) == 1
    found = entry(store, message())
    assert (found.status, found.attempts, found.next_attempt_at) == ("pending", 0, T0)
    assert found.created_at == T0


def test_enqueue_commits_with_a_conversation_step(store: Store) -> None:
    key = ConversationKey("telegram", "10001")
    with pytest.raises(RuntimeError), store.conversation(key) as tx:  # noqa: PT012
        tx.save({"step": "submitted"})
        enqueue(tx.connection, store.sealer, [message()], now=T0)
        raise RuntimeError("crash before commit")
    assert store.load_state(key) is None
    assert depth(store) == 0

    with store.conversation(key) as tx:
        tx.save({"step": "submitted"})
        enqueue(tx.connection, store.sealer, [message()], now=T0)
    assert store.load_state(key) == {"step": "submitted"}
    assert entry(store, message()).status == OutboxStatus.PENDING


# 2. Enqueueing twice never sends twice.


def test_duplicate_idempotency_key_is_one_row_and_one_delivery(store: Store) -> None:
    assert put(store, message(), message()) == 1  # twice in one call
    assert put(store, message(text="另一段文字")) == 0  # and again later
    sender, clock = RecordingSender(), Clock()
    assert dispatcher(store, sender, clock).run_once() == DispatchReport(delivered=1)
    assert put(store, message()) == 0  # after delivery too
    clock.now += timedelta(hours=1)
    assert dispatcher(store, sender, clock).run_once() == DispatchReport()
    assert sender.sent == [("10001", TEXT, message().idempotency_key)]
    with store.reading() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() == 1


# 3. Concurrent dispatchers deliver each message exactly once.


def test_two_dispatchers_at_once_deliver_each_message_once(store: Store) -> None:
    messages = [message(n) for n in range(50)]
    put(store, *messages)
    sender = OverlappingSender()
    barrier = threading.Barrier(2, timeout=10)
    delivered_by: dict[str, int] = {}

    def work(worker_id: str) -> None:
        worker = Dispatcher(
            store, {"telegram": sender}, clock=Clock(), worker_id=worker_id, batch_size=5
        )
        barrier.wait()
        delivered = 0
        for _ in range(100):
            report = worker.run_once()
            delivered += report.delivered
            if report.total == 0 and depth(store) == 0:
                break
        delivered_by[worker_id] = delivered

    threads = [threading.Thread(target=work, args=(w,)) for w in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert Counter(sender.keys) == Counter({m.idempotency_key: 1 for m in messages})
    assert sum(delivered_by.values()) == 50
    assert all(delivered_by.values()), delivered_by  # both took part
    assert {entry(store, m).status for m in messages} == {OutboxStatus.DELIVERED}


# 4. A dispatcher killed after sending, before marking, does not send twice.


def _send_then_die(url: str, marker: str) -> None:
    """In a child process: two workers each send one message, then the process dies at once.

    Each send appends its key to `marker`; once both messages are out (and neither is marked),
    `os._exit` kills the process as a crash would: no mark, no cleanup.
    """
    both_sent = threading.Barrier(2, timeout=30)

    class DiesAfterSend:
        def __init__(self, channel: str, *, idempotent: bool) -> None:
            self.channel = channel
            self.idempotent = idempotent

        def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
            with open(marker, "a", encoding="utf-8") as f:
                f.write(idempotency_key + "\n")
            both_sent.wait()
            os._exit(9)

    store = Store(url, sealer=TEST_SEALER)
    senders = {
        "telegram": DiesAfterSend("telegram", idempotent=True),
        "wechat": DiesAfterSend("wechat", idempotent=False),
    }
    workers = [
        Dispatcher(store, senders, clock=Clock(), worker_id=f"doomed-{n}", batch_size=1)
        for n in (1, 2)
    ]
    threads = [threading.Thread(target=worker.run_once) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_killed_after_send_is_not_sent_twice(
    store: Store, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # telegram's sender is idempotent (the platform would drop a second send with the same
    # key); wechat's is not.
    retried, abandoned = message(1, channel="telegram"), message(2, channel="wechat")
    put(store, retried, abandoned)
    marker = tmp_path / "sent.txt"
    # Spawned children import this module by its pytest name: they need the project root.
    monkeypatch.syspath_prepend(str(ROOT))
    child = multiprocessing.get_context("spawn").Process(
        target=_send_then_die, args=(store_url, str(marker))
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 9
    sent_once = Counter({retried.idempotency_key: 1, abandoned.idempotency_key: 1})
    assert Counter(marker.read_text(encoding="utf-8").splitlines()) == sent_once
    assert {entry(store, m).status for m in (retried, abandoned)} == {OutboxStatus.SENDING}

    telegram = RecordingSender("telegram", idempotent=True)
    wechat = RecordingSender("wechat", idempotent=False)
    clock = Clock(T0 + LEASE - timedelta(seconds=1))  # lease still running: left alone
    worker = Dispatcher(
        store, {"telegram": telegram, "wechat": wechat}, clock=clock, worker_id="w1"
    )
    assert worker.run_once() == DispatchReport()
    assert {entry(store, m).status for m in (retried, abandoned)} == {OutboxStatus.SENDING}

    clock.now = T0 + LEASE + timedelta(seconds=1)
    recovery = recover_expired(store, now=clock.now, idempotent_channels={"telegram"})
    assert recovery == Recovery(requeued=1, failed=1)
    assert worker.run_once() == DispatchReport(delivered=1)

    assert Counter(marker.read_text(encoding="utf-8").splitlines()) == sent_once
    # Not idempotent: at most once — given up, and the record says why.
    assert wechat.sent == []
    after = entry(store, abandoned)
    assert (after.status, after.attempts, after.last_error) == ("failed", 1, UNKNOWN_OUTCOME)
    assert after.claimed_by is not None
    assert after.claimed_by.startswith("doomed-")
    # Idempotent: retried with the same key, for the platform to dedupe on.
    assert telegram.sent == [("10001", TEXT, retried.idempotency_key)]
    after = entry(store, retried)
    assert (after.status, after.attempts) == (OutboxStatus.DELIVERED, 2)


def test_run_once_recovers_expired_leases_itself(store: Store) -> None:
    # issue 8: a worker died holding four rows, two of them in flight. Only those two are
    # uncertain; the two it never started to send come back as if never claimed.
    started_telegram, started_wechat = message(1), message(2, channel="wechat")
    unstarted_telegram, unstarted_wechat = message(3), message(4, channel="wechat")
    put(store, started_telegram, started_wechat, unstarted_telegram, unstarted_wechat)
    held = {m.idempotency_key: m for m in claim(store, "dead", now=T0, lease=LEASE, limit=10)}
    for msg in (started_telegram, started_wechat):
        assert mark_started(store, held[msg.idempotency_key], now=T0)
    # ... and then the worker dies.
    telegram = RecordingSender("telegram", idempotent=True)
    wechat = RecordingSender("wechat", idempotent=False)
    clock = Clock(T0 + LEASE + timedelta(seconds=1))
    worker = Dispatcher(
        store, {"telegram": telegram, "wechat": wechat}, clock=clock, worker_id="w1"
    )
    # Recovery: one requeued (idempotent, same key), one failed (unknown), two returned.
    assert worker.run_once() == DispatchReport(delivered=3, retried=3, failed=1)
    assert Counter(telegram.keys) == Counter(
        [started_telegram.idempotency_key, unstarted_telegram.idempotency_key]
    )
    assert wechat.keys == [unstarted_wechat.idempotency_key]
    lost = entry(store, started_wechat)
    assert (lost.status, lost.last_error) == (OutboxStatus.FAILED, UNKNOWN_OUTCOME)
    for msg in (unstarted_telegram, unstarted_wechat):
        found = entry(store, msg)  # its first claim not counted as an attempt
        assert (found.status, found.attempts, found.last_error) == ("delivered", 1, None)
    assert entry(store, started_telegram).attempts == 2


def test_rows_claimed_but_never_started_are_not_failed_after_a_crash(store: Store) -> None:
    # issue 8: the dispatcher used to fail every row of a dead worker's batch "outcome
    # unknown" on channels that do not deduplicate, including rows it never began to send.
    msgs = [message(n, channel="wechat") for n in range(1, 6)]
    put(store, *msgs)
    held = list(claim(store, "dead", now=T0, lease=LEASE, limit=10))
    assert mark_delivered(store, held[0], now=T0)  # sent and recorded
    assert mark_started(store, held[1], now=T0)  # in flight when the worker died
    later = T0 + LEASE + timedelta(seconds=1)
    recovery = recover_expired(store, now=later, idempotent_channels=())
    assert recovery == Recovery(failed=1, returned=3)
    assert entry(store, msgs[0]).status == OutboxStatus.DELIVERED
    assert entry(store, msgs[1]).last_error == UNKNOWN_OUTCOME
    for msg in msgs[2:]:
        found = entry(store, msg)
        assert (found.status, found.attempts, found.claimed_by) == ("pending", 0, None)
        assert (found.last_error, found.started_at, found.next_attempt_at) == (None, None, T0)


def test_the_in_flight_mark_applies_only_while_the_claim_holds(store: Store) -> None:
    put(store, message(1), message(2), message(3))
    first, second, third = claim(store, "w1", now=T0, lease=LEASE, limit=10)
    assert mark_started(store, first, now=T0)
    assert entry(store, message(1)).started_at == T0
    assert not mark_started(store, first, now=T0)  # once per claim
    assert not mark_started(store, second, now=T0 + LEASE)  # the lease is over
    later = T0 + LEASE + timedelta(seconds=1)
    recover_expired(store, now=later, idempotent_channels=())
    assert not mark_started(store, second, now=T0)  # returned to pending by recovery
    [retaken, _] = claim(store, "w2", now=later, lease=LEASE, limit=10)
    assert retaken.id == second.id
    assert not mark_started(store, second, now=later)  # another worker's claim now
    assert not give_back(store, third)  # recovery already gave it back
    assert mark_started(store, retaken, now=later)


def test_a_claim_lost_before_its_send_is_not_sent(store: Store) -> None:
    # issue 8: the worker checks its claim in the database just before each send. Here a
    # second worker, whose clock runs ahead, recovers and re-claims the first worker's next
    # message while the first is still sending; the first must not send it as well.
    put(store, message(1), message(2))
    sender, clock = RecordingSender(), Clock()
    worker = dispatcher(store, sender, clock, batch_size=2)
    other = RecordingSender()
    ahead = Clock(T0 + LEASE + timedelta(seconds=1))
    rival = Dispatcher(store, {"telegram": other}, clock=ahead, worker_id="w2")
    rival_reports: list[DispatchReport] = []

    def send_while_a_rival_takes_over(recipient_id: str, text: str, key: str) -> None:
        RecordingSender.send(sender, recipient_id, text, key)
        if not rival_reports:
            rival_reports.append(rival.run_once())

    sender.send = send_while_a_rival_takes_over  # type: ignore[method-assign]
    assert worker.run_once() == DispatchReport(delivered=1)
    assert sender.keys == [message(1).idempotency_key]
    # The rival's recovery failed message 1 as unknown (its send had begun, on a channel that
    # does not deduplicate) and returned message 2, which the rival then delivered.
    assert rival_reports == [DispatchReport(delivered=1, retried=1, failed=1)]
    assert other.keys == [message(2).idempotency_key]
    assert entry(store, message(1)).status == OutboxStatus.DELIVERED  # the late truth
    assert entry(store, message(2)).claimed_by == "w2"


def test_a_stale_worker_cannot_undo_recovery(store: Store) -> None:
    put(store, message(1), message(2, channel="wechat"))
    stale = {m.channel: m for m in claim(store, "slow", now=T0, lease=LEASE, limit=10)}
    for held in stale.values():
        assert mark_started(store, held, now=T0)
    later = T0 + LEASE + timedelta(seconds=1)
    recover_expired(store, now=later, idempotent_channels={"telegram"})
    retaken = claim(store, "fresh", now=later, lease=LEASE, limit=10)
    assert [m.channel for m in retaken] == ["telegram"]

    # telegram was claimed again by another worker: the slow one's marks change nothing.
    assert not mark_delivered(store, stale["telegram"], now=later)
    assert not mark_retry(store, stale["telegram"], error="x", next_attempt_at=later)
    assert entry(store, message(1)).claimed_by == "fresh"
    # wechat was given up as "outcome unknown": a late retry cannot revive it, but a late
    # success is the truth and is recorded.
    assert not mark_retry(store, stale["wechat"], error="x", next_attempt_at=later)
    assert entry(store, message(2, channel="wechat")).status == OutboxStatus.FAILED
    assert mark_delivered(store, stale["wechat"], now=later)
    assert entry(store, message(2, channel="wechat")).status == OutboxStatus.DELIVERED


def test_an_expired_lease_is_not_used_to_send(store: Store) -> None:
    put(store, message(1), message(2))
    sender, clock = RecordingSender(), Clock()
    worker = dispatcher(store, sender, clock, batch_size=2)

    def slow_send(recipient_id: str, text: str, idempotency_key: str) -> None:
        clock.now += LEASE  # the first send took the whole lease
        RecordingSender.send(sender, recipient_id, text, idempotency_key)

    sender.send = slow_send  # type: ignore[method-assign]
    assert worker.run_once() == DispatchReport(delivered=1, retried=1)
    assert sender.keys == [message(1).idempotency_key]
    assert entry(store, message(2)).status == OutboxStatus.PENDING


# 5. Retries with backoff, then failure; permanent failures at once.


def test_retryable_failures_back_off_then_fail_with_the_last_reason(store: Store) -> None:
    msg = message()
    put(store, msg)
    failures: list[Exception] = [
        DeliveryError(f"网关超时 (gateway timeout #{n})", retryable=True) for n in range(1, 6)
    ]
    sender, clock = RecordingSender(failures=failures), Clock()
    worker = dispatcher(store, sender, clock, backoff_cap=timedelta(seconds=15))

    waits = []
    for attempt in range(1, 5):
        assert worker.run_once() == DispatchReport(retried=1)
        found = entry(store, msg)
        assert (found.status, found.attempts) == (OutboxStatus.PENDING, attempt)
        assert found.last_error == f"网关超时 (gateway timeout #{attempt})"
        waits.append(found.next_attempt_at - clock.now)
        clock.now = found.next_attempt_at - timedelta(seconds=1)
        assert worker.run_once() == DispatchReport()  # not due yet
        clock.now = found.next_attempt_at
    assert waits == [timedelta(seconds=s) for s in (5, 10, 15, 15)]  # 5·2^(n-1), capped at 15

    assert worker.run_once() == DispatchReport(failed=1)
    found = entry(store, msg)
    assert (found.status, found.attempts) == (OutboxStatus.FAILED, 5)
    assert found.last_error == "网关超时 (gateway timeout #5)"
    assert sender.sent == []
    assert depth(store) == 0


def test_retry_after_from_the_platform_is_respected(store: Store) -> None:
    put(store, message())
    limited = DeliveryError(
        "429 Too Many Requests", retryable=True, retry_after=timedelta(seconds=90)
    )
    sender, clock = RecordingSender(failures=[limited]), Clock()
    assert dispatcher(store, sender, clock).run_once() == DispatchReport(retried=1)
    assert entry(store, message()).next_attempt_at == T0 + timedelta(seconds=90)


def test_a_permanent_failure_fails_at_once(store: Store) -> None:
    put(store, message())
    blocked = DeliveryError("用户已屏蔽机器人 (bot was blocked by the user)", retryable=False)
    sender = RecordingSender(failures=[blocked])
    assert dispatcher(store, sender, Clock()).run_once() == DispatchReport(failed=1)
    found = entry(store, message())
    assert (found.status, found.attempts) == (OutboxStatus.FAILED, 1)
    assert found.last_error == "用户已屏蔽机器人 (bot was blocked by the user)"


def test_a_channel_without_a_sender_waits_for_a_worker_that_has_one(store: Store) -> None:
    # A console user's notices, say, wait for their console; a server without that channel
    # must not claim them, let alone fail them.
    put(store, message(channel="wecom"))
    assert dispatcher(store, RecordingSender(), Clock()).run_once() == DispatchReport()
    found = entry(store, message(channel="wecom"))
    assert (found.status, found.attempts) == (OutboxStatus.PENDING, 0)
    wecom = RecordingSender("wecom")
    assert dispatcher(store, wecom, Clock()).run_once() == DispatchReport(delivered=1)
    assert entry(store, message(channel="wecom")).status == OutboxStatus.DELIVERED


def test_a_stopping_worker_gives_back_its_unsent_claims(store: Store) -> None:
    put(store, message())
    claimed = claim(store, "w1", now=Clock()(), lease=timedelta(minutes=1), limit=5)
    assert [m.idempotency_key for m in claimed] == [message().idempotency_key]
    assert release(store, "w2") == Recovery()  # only its own
    assert release(store, "w1") == Recovery(returned=1)
    found = entry(store, message())
    assert (found.status, found.attempts, found.claimed_by) == (OutboxStatus.PENDING, 0, None)


def test_a_stopping_worker_settles_a_send_in_flight_as_uncertain(store: Store) -> None:
    # issue 8: at release, a row whose send began and was never recorded may have gone out.
    idempotent, once_only, unsent = message(1), message(2, channel="wechat"), message(3)
    put(store, idempotent, once_only, unsent)
    held = {m.idempotency_key: m for m in claim(store, "w1", now=T0, lease=LEASE, limit=5)}
    for msg in (idempotent, once_only):
        assert mark_started(store, held[msg.idempotency_key], now=T0)
    settled = release(store, "w1", idempotent_channels={"telegram"})
    assert settled == Recovery(requeued=1, failed=1, returned=1)
    found = entry(store, idempotent)
    assert (found.status, found.attempts, found.started_at) == ("pending", 1, None)
    assert found.last_error == RELEASED_RETRY
    found = entry(store, once_only)
    assert (found.status, found.last_error) == (OutboxStatus.FAILED, UNKNOWN_OUTCOME)
    found = entry(store, unsent)
    assert (found.status, found.attempts, found.last_error) == ("pending", 0, None)


def test_an_unexpected_exception_is_retried_and_logged_without_the_text(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    put(store, message())
    crash = RuntimeError(f"HTTP 500 while posting {TEXT}")  # an SDK echoing the request
    sender, clock = RecordingSender(failures=[crash]), Clock()
    with caplog.at_level(logging.WARNING, logger="notifications.outbox"):
        assert dispatcher(store, sender, clock).run_once() == DispatchReport(retried=1)
    assert "RuntimeError" in caplog.text
    assert "张三" not in caplog.text
    found = entry(store, message())
    assert found.status == OutboxStatus.PENDING
    assert found.last_error is not None
    assert "RuntimeError" in found.last_error
    assert "张三" not in found.last_error

    clock.now = found.next_attempt_at
    assert dispatcher(store, sender, clock).run_once() == DispatchReport(delivered=1)


# 6. Sealed at rest, opened on claim.


def test_the_text_is_sealed_at_rest_and_opened_on_claim(store: Store) -> None:
    put(store, message())
    with store.reading() as conn:
        stored = conn.execute(sa.text("SELECT text FROM outbox")).scalar_one()
    assert stored.startswith("fernet:")
    assert "张三" not in stored
    assert TEST_SEALER.open(stored) == TEXT

    [claimed] = claim(store, "w1", now=T0, lease=LEASE, limit=10)
    assert claimed.text == TEXT
    assert (claimed.attempts, claimed.claimed_by, claimed.claimed_until) == (1, "w1", T0 + LEASE)
    assert "张三" not in repr(claimed)
    assert "张三" not in repr(message())


# 7. depth() counts pending messages.


def test_depth_counts_pending_messages(store: Store) -> None:
    assert depth(store) == 0
    put(store, message(1), message(2), message(3))
    put(store, message(4), now=T0 + timedelta(hours=1))  # not due yet: still pending
    assert depth(store) == 4
    [first] = claim(store, "w1", now=T0, lease=LEASE, limit=1)
    assert depth(store) == 3  # sending is not pending
    mark_delivered(store, first, now=T0)
    assert depth(store) == 3
    assert [m.idempotency_key for m in claim(store, "w1", now=T0, lease=LEASE, limit=10)] == [
        message(2).idempotency_key,
        message(3).idempotency_key,
    ]
    assert depth(store) == 1


# The schema.


def test_migrated_outbox_matches_the_model(store: Store) -> None:
    with store.reading() as conn:
        inspector = sa.inspect(conn)
        columns = {(c["name"], c["nullable"]) for c in inspector.get_columns("outbox")}
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("outbox")}
        pk = inspector.get_pk_constraint("outbox")["constrained_columns"]
    assert columns == {(c.name, c.nullable) for c in box.outbox.columns}
    assert pk == ["id"]
    assert ("idempotency_key",) in uniques


def test_console_sender_prints_a_notice_line(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    with path.open("w", encoding="utf-8") as out:
        sender = ConsoleSender(out)
        sender.send("kim", TEXT, "k1")
        assert (sender.channel, sender.idempotent) == ("console", False)
    assert path.read_text(encoding="utf-8") == f"【通知】{TEXT}\n"
    with pytest.raises(DeliveryError) as caught:
        sender.send("kim", TEXT, "k2")  # the stream is closed now
    assert not caught.value.retryable


def test_recovery_gives_up_when_attempts_are_used_up(store: Store) -> None:
    put(store, message())
    [held] = claim(store, "dead", now=T0, lease=LEASE, limit=10)
    assert mark_started(store, held, now=T0)
    later = T0 + LEASE + timedelta(seconds=1)
    recovery = recover_expired(store, now=later, idempotent_channels={"telegram"}, max_attempts=1)
    assert recovery == Recovery(failed=1)
    found = entry(store, message())
    assert found.status == OutboxStatus.FAILED
    assert (
        found.last_error
        == "租约过期且已尝试 1 次，不再重试 (lease expired after 1 attempts; not retried)"
    )


# 8. One row that cannot be opened does not block the others (issue 8).


def test_a_row_that_cannot_be_opened_is_quarantined_and_the_rest_delivered(
    store: Store,
) -> None:
    msgs = [message(n) for n in range(1, 4)]
    put(store, *msgs)
    retired = Sealer([Sealer.new_key()])  # a key no longer in AWARDBOT_SECRET_KEY
    with store.transaction() as conn:
        conn.execute(
            sa.update(box.outbox)
            .where(box.outbox.c.idempotency_key == msgs[1].idempotency_key)
            .values(text=retired.seal(TEXT))
        )
    sender, clock = RecordingSender(), Clock()
    worker = dispatcher(store, sender, clock)
    assert worker.run_once() == DispatchReport(delivered=2, failed=1, quarantined=1)
    assert sender.keys == [msgs[0].idempotency_key, msgs[2].idempotency_key]
    bad = entry(store, msgs[1])
    assert (bad.status, bad.last_error, bad.claimed_until) == ("failed", QUARANTINED, None)
    assert "\n" not in QUARANTINED
    assert "张三" not in QUARANTINED
    assert worker.run_once() == DispatchReport()  # never claimed again
    with store.reading() as conn:
        kept = conn.execute(
            sa.select(box.outbox.c.text).where(box.outbox.c.id == bad.id)
        ).scalar_one()
    assert retired.open(kept) == TEXT  # still sealed, for an operator with the old key


def test_a_claim_of_only_unopenable_rows_reports_them(store: Store) -> None:
    put(store, message(1))
    with store.transaction() as conn:
        conn.execute(sa.update(box.outbox).values(text="fernet:damaged"))
    taken = claim(store, "w1", now=T0, lease=LEASE, limit=10)
    assert (len(taken), list(taken)) == (0, [])
    assert taken.quarantined == (entry(store, message(1)).id,)
    assert depth(store) == 0


class SendOnly:
    """A channel inside `serve` that only sends notifications (no routes)."""

    channel = "telegram"

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def routes(self) -> list[web.AbstractRouteDef]:
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def sender(self) -> Sender:
        return self._sender


async def test_serve_counts_quarantined_rows_in_metrics(store: Store) -> None:
    put(store, message(1), message(2))
    with store.transaction() as conn:
        conn.execute(
            sa.update(box.outbox)
            .where(box.outbox.c.idempotency_key == message(2).idempotency_key)
            .values(text=Sealer([Sealer.new_key()]).seal(TEXT))
        )
    sender = RecordingSender()
    options: dict[str, object] = {"adapters": [SendOnly(sender)], "dispatch_every": 0.05}
    async with serving(store, clock=Clock(), **options) as server:
        for _ in range(100):
            if server.metrics.value("awardbot_outbox_quarantined_total"):
                break
            await asyncio.sleep(0.05)
        assert server.metrics.value("awardbot_outbox_quarantined_total") == 1
        assert sample(server.metrics.render(), "awardbot_outbox_quarantined_total") == 1
    assert sender.keys == [message(1).idempotency_key]
    assert entry(store, message(2)).last_error == QUARANTINED
