"""The outbox dispatcher: claims due notifications and delivers each through its channel's sender.

`Dispatcher.run_once()` is one round: settle rows whose lease expired (`recover_expired`), claim
a small batch (committed as `sending` BEFORE anything is sent), and for each message mark it in
flight (`mark_started`, its own committed transaction), send it, and record the outcome. Call it
in a loop or from the scheduler; any number of dispatchers may run at once, in threads or
processes, each with its own `worker_id` and the same senders (one `run_once` at a time per
Dispatcher). Why this never sends a message twice, and why a worker killed mid-batch leaves at
most one message of unknown outcome, is in `storage.outbox`.

A sender that waits before sending (Telegram's flood limit) has `reserve`: it is called BEFORE
`mark_started`, so the wait happens while the row is merely claimed, and a kill during it leaves
the row unstarted, not of unknown outcome (issue 13; `notifications.senders`). A step's replies
come in their order (`storage.outbox.claim`); once one of them is put back for a retry, or its
claim was lost, the later replies of that step in the batch are handed back unsent, to follow it.

Failures of the send (see `notifications.senders` for what senders raise):
- retryable `DeliveryError`, or any unexpected exception: back to pending after
  `backoff_base * 2 ** (attempts - 1)`, at most `backoff_cap` (or the platform's `retry_after`
  if longer), until `max_attempts` are used; then failed with the last reason;
- non-retryable `DeliveryError`: failed at once, with its reason;
- no sender for the channel: failed at once;
- a notice row (any kind but `reply`) whose text is not a notice (`Notice.of_row` cannot read
  it): failed at once. A notice goes to the sender's `send_notice` if it has one, else to
  `send` as `notice.text()` (a status row's plain text, as it is);
- a row whose text cannot be opened: quarantined by `claim` (failed, counted in
  `DispatchReport.quarantined`), the rest of the batch delivered.
The message text is personal data: it is never logged, nor stored in `last_error`.

Failures of the database during a round (issue 8): a store error while marking one message does
not escape the loop. The dispatcher keeps the mark that could not be written (delivered for a
message that went out, retry or failed for one that did not), stops the batch, and hands the
rest back (not started: pending again, attempt not counted, for any worker). At the start of
each later round it first writes what it kept, in order, with a short backoff between tries
(`store_backoff`, doubling, at most `store_backoff_cap`); until they have all landed it claims
nothing new. So a message that went out is never sent again, and none stays `sending` once the
database is back. `run_once` raises only when the database fails for what must come first —
the kept marks, recovery, or the claim — and the caller tries again next round.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import partial

from notifications.notice import Notice
from notifications.senders import DeliveryError, Sender
from storage.outbox import (
    ClaimedMessage,
    claim,
    give_back,
    mark_delivered,
    mark_failed,
    mark_retry,
    mark_started,
    recover_expired,
    release,
    step_of,
)
from storage.store import Store, StoreError

logger = logging.getLogger(__name__)

NO_REPLY_SENDER = "该渠道不能补发对话回复 (this channel's sender cannot deliver stored replies)"
LEASE_EXPIRED_BEFORE_SEND = "租约在发送前已过期，未发送 (lease expired before sending; not sent)"


def no_sender_reason(channel: str) -> str:
    return f"没有该渠道的发送器 (no sender for channel {channel})"


def unreadable_notice_reason(kind: str) -> str:
    return f"通知内容无法解析，未发送 (the {kind[:20]!r} notice cannot be read; not sent)"


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What one `run_once` did: messages delivered, put back for a retry, and given up.

    Rows settled by lease recovery count too: requeued or returned ones as retried, the others
    as failed. `quarantined` rows (text cannot be opened) are failed rows too, so they count in
    `failed` as well. `deferred` counts the outcomes the database could not take this round (kept
    for the next rounds: a mark, or the unsent rest of the batch to hand back); a kept write
    counts in the round it lands, a hand-back as retried. `total` is non-zero whenever anything
    happened.
    """

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    quarantined: int = 0
    deferred: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retried + self.failed + self.deferred


class _Outcome(Enum):
    DELIVERED = "delivered"
    RETRIED = "retried"
    FAILED = "failed"
    LOST = "lost"  # the claim was taken over before the send: nothing done, nothing counted


@dataclass(frozen=True, slots=True)
class _Kept:
    """A write the database refused, to try again: what it records and the call that does it."""

    message: ClaimedMessage
    outcome: _Outcome  # counted when it lands (a hand-back: as retried)
    write: Callable[[], bool]


class _StoreDown(Exception):
    """A mark of the current message could not be written; it has been kept."""

    def __init__(self, error: StoreError) -> None:
        super().__init__(str(error))
        self.error = error


class Dispatcher:
    """Delivers the outbox through one sender per channel; see the module docstring."""

    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        *,
        clock: Callable[[], datetime],
        worker_id: str,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 5,
        backoff_base: timedelta = timedelta(seconds=5),
        backoff_cap: timedelta = timedelta(minutes=30),
        batch_size: int = 10,
        recipient: tuple[str, str] | None = None,
        store_backoff: timedelta = timedelta(seconds=1),
        store_backoff_cap: timedelta = timedelta(seconds=30),
    ) -> None:
        """`senders` maps a channel to its sender; `clock` returns aware UTC datetimes;
        `recipient` (channel, id) limits the dispatcher to one person's messages.

        `lease` must exceed the longest time a batch of `batch_size` sends can take: a message
        still unsent when its lease ends is put back instead. A worker that dies leaves at most
        the one message it was sending of unknown outcome; the rest of its batch waits for the
        lease to end, so keep batches small. `store_backoff` is the first wait before writing
        again what the database refused (see the module docstring).
        """
        for channel, sender in senders.items():
            if sender.channel != channel:
                raise ValueError(f"sender for {channel!r} says it is for {sender.channel!r}")
        if max_attempts < 1 or batch_size < 1:
            raise ValueError("max_attempts and batch_size must be at least 1")
        if lease <= timedelta(0) or backoff_base <= timedelta(0) or backoff_cap < backoff_base:
            raise ValueError(
                "lease and backoff_base must be positive, backoff_cap >= backoff_base"
            )
        if store_backoff <= timedelta(0) or store_backoff_cap < store_backoff:
            raise ValueError("store_backoff must be positive, store_backoff_cap >= store_backoff")
        if not worker_id:
            raise ValueError("worker_id must not be empty")
        self._store = store
        self._senders = dict(senders)
        self._clock = clock
        self._worker_id = worker_id
        self._lease = lease
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._batch_size = batch_size
        self._recipient = recipient
        self._store_backoff = store_backoff
        self._store_backoff_cap = store_backoff_cap
        self._idempotent = frozenset(c for c, s in self._senders.items() if s.idempotent)
        # None: every kind of row. A standby `serve` worker sets ("reply",) each round: it sends
        # only the replies of steps whose worker died (they must not wait for a failover); the
        # notices — reminders, status changes, alerts — go out from the leader alone, which
        # paces them against the platform's limits as one sender (bot.server).
        self.kinds: tuple[str, ...] | None = None
        # Writes the database refused, oldest first, and when to try them again.
        self._kept: list[_Kept] = []
        self._store_failures = 0
        self._retry_kept_at: datetime | None = None

    @property
    def unsettled(self) -> int:
        """How many outcomes this worker holds that the database has not taken yet."""
        return len(self._kept)

    def run_once(self) -> DispatchReport:
        """Write what was kept, recover expired leases, claim one batch and deliver it."""
        now = self._now()
        counts = dict.fromkeys(_Outcome, 0)
        if self._kept:
            if self._retry_kept_at is not None and now < self._retry_kept_at:
                return DispatchReport()  # the database failed moments ago: wait a little
            # Before anything is claimed: a kept mark names a claim of this worker, and must
            # land before the same row could be claimed by it again.
            self._write_kept(counts, now)
        recovery = recover_expired(
            self._store,
            now=now,
            idempotent_channels=self._idempotent,
            max_attempts=self._max_attempts,
        )
        batch = claim(
            self._store,
            self._worker_id,
            now=now,
            lease=self._lease,
            limit=self._batch_size,
            recipient=self._recipient,
            channels=self._senders.keys(),
            kinds=self.kinds,
        )
        deferred = 0
        messages = batch.messages
        held: set[str] = set()  # steps whose earlier reply did not go out this round
        for index, message in enumerate(messages):
            step = step_of(message.kind, message.idempotency_key)
            try:
                if step is not None and step in held:
                    # Its earlier reply waits for a retry (or was lost to recovery): this one
                    # goes after it, not now. Pending again, the attempt not counted.
                    outcome = self._record(
                        message, _Outcome.RETRIED, partial(give_back, self._store, message)
                    )
                else:
                    outcome = self._deliver(message)
                counts[outcome] += 1
                if step is not None and outcome in (_Outcome.RETRIED, _Outcome.LOST):
                    held.add(step)
            except _StoreDown as down:
                deferred = self._cut_short(down.error, messages[index + 1 :], counts)
                break
        return DispatchReport(
            delivered=counts[_Outcome.DELIVERED],
            retried=counts[_Outcome.RETRIED] + recovery.requeued + recovery.returned,
            failed=counts[_Outcome.FAILED] + recovery.failed + len(batch.quarantined),
            quarantined=len(batch.quarantined),
            deferred=deferred,
        )

    def release(self) -> int:
        """Settle this worker's claims at shutdown (call after its last `run_once` returned).

        First writes what the database refused earlier; then gives back what was never sent
        (pending again, for the next worker). A send whose outcome could not be recorded is
        settled as after a crash (see `storage.outbox.release`). Returns how many rows were
        settled.
        """
        if self._kept:
            try:
                self._write_kept(dict.fromkeys(_Outcome, 0), self._now())
            except StoreError:
                logger.warning(
                    "outbox worker %s stops with %d outcomes unrecorded: the database refused"
                    " them; lease recovery settles those rows",
                    self._worker_id,
                    len(self._kept),
                )
                raise
        settled = release(self._store, self._worker_id, idempotent_channels=self._idempotent)
        if settled.failed:
            logger.warning(
                "outbox worker %s stops: %d sends of unknown outcome recorded as failed",
                self._worker_id,
                settled.failed,
            )
        return settled.total

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base * 2**(attempts-1), capped."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 * base is past any sane cap
        delay: timedelta = self._backoff_base * 2**exponent
        return min(delay, self._backoff_cap)

    def _deliver(self, message: ClaimedMessage) -> _Outcome:
        sender = self._senders.get(message.channel)
        if sender is None:
            error = no_sender_reason(message.channel)
            return self._record(
                message, _Outcome.FAILED, partial(mark_failed, self._store, message, error=error)
            )
        now = self._now()
        if now >= message.claimed_until:
            # Recovery may already have settled it; sending now could be a second send.
            return self._record(
                message,
                _Outcome.RETRIED,
                partial(
                    mark_retry,
                    self._store,
                    message,
                    error=LEASE_EXPIRED_BEFORE_SEND,
                    next_attempt_at=now,
                ),
            )
        # The sender's own wait (Telegram's flood limit) comes BEFORE the in-flight mark: a
        # worker killed while waiting leaves a row not started, sent later, not one of unknown
        # outcome (issue 13). The reservation is for this row's send, or given up.
        reserve = getattr(sender, "reserve", None)
        reserved = False
        if reserve is not None:
            try:
                reserve(message.recipient_id)
                reserved = True
            except DeliveryError as exc:
                return self._failed(
                    message, exc.reason, retryable=exc.retryable, wait=exc.retry_after
                )
            except Exception as exc:
                return self._unexpected(message, exc)
        try:
            return self._mark_and_send(sender, message)
        finally:
            if reserved:  # a send consumed it; otherwise (claim lost, mark failed) drop it
                self._unreserve(sender, message)

    def _mark_and_send(self, sender: Sender, message: ClaimedMessage) -> _Outcome:
        try:
            started = mark_started(self._store, message, now=self._now())
        except StoreError as exc:
            # Not sent. Whether the in-flight mark landed is unknown, so what is kept clears it:
            # otherwise recovery would take this unsent row for an uncertain send.
            self._kept.append(
                _Kept(message, _Outcome.RETRIED, partial(give_back, self._store, message))
            )
            raise _StoreDown(exc) from exc
        if not started:
            logger.warning(
                "outbox message %s: worker %s lost its claim before sending (lease %s too"
                " short?); not sent",
                message.id,
                self._worker_id,
                self._lease,
            )
            return _Outcome.LOST
        try:
            if message.kind == "reply":
                # A step's replies its channel never took (the process died after the commit).
                send_replies = getattr(sender, "send_replies", None)
                if send_replies is None:
                    raise DeliveryError(NO_REPLY_SENDER, retryable=False)
                send_replies(message.recipient_id, message.text, message.idempotency_key)
            else:
                self._send_notice(sender, message)
        except DeliveryError as exc:
            return self._failed(message, exc.reason, retryable=exc.retryable, wait=exc.retry_after)
        except Exception as exc:
            return self._unexpected(message, exc)
        return self._record(
            message,
            _Outcome.DELIVERED,
            partial(mark_delivered, self._store, message, now=self._now()),
        )

    def _unexpected(self, message: ClaimedMessage, exc: Exception) -> _Outcome:
        """The sender raised something else than DeliveryError: retried, logged without text."""
        # Never the text, nor str(exc): an SDK error may echo the request it failed on.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        logger.warning(
            "outbox message %s (%s): sender raised %s at %s:%s; will retry",
            message.id,
            message.channel,
            type(exc).__name__,
            where.filename,
            where.lineno,
        )
        reason = f"发送器异常 (unexpected {type(exc).__name__} from the {message.channel} sender)"
        return self._failed(message, reason, retryable=True, wait=None)

    def _unreserve(self, sender: Sender, message: ClaimedMessage) -> None:
        """After the row's turn: a reservation its send did not use (the claim was lost, the
        mark failed, the send never reached the sender) is dropped, never kept for later."""
        unreserve = getattr(sender, "unreserve", None)
        if unreserve is None:
            return
        try:
            unreserve(message.recipient_id)
        except Exception as exc:  # noqa: BLE001 - the row's outcome matters more
            logger.warning(
                "outbox message %s: %s sender's unreserve raised %s",
                message.id,
                message.channel,
                type(exc).__name__,
            )

    @staticmethod
    def _send_notice(sender: Sender, message: ClaimedMessage) -> None:
        """A notice row: to the sender's `send_notice` if it renders notices, else as text."""
        try:
            notice = Notice.of_row(message.kind, message.text)
        except (ValueError, KeyError, TypeError, AttributeError):
            # Not JSON, or not a notice of a kind we know: no retry will read it.
            raise DeliveryError(unreadable_notice_reason(message.kind), retryable=False) from None
        send_notice = getattr(sender, "send_notice", None)
        if send_notice is not None:
            send_notice(message.recipient_id, notice, message.idempotency_key)
        else:
            sender.send(message.recipient_id, notice.text(), message.idempotency_key)

    def _failed(
        self, message: ClaimedMessage, reason: str, *, retryable: bool, wait: timedelta | None
    ) -> _Outcome:
        if not retryable or message.attempts >= self._max_attempts:
            return self._record(
                message, _Outcome.FAILED, partial(mark_failed, self._store, message, error=reason)
            )
        delay = self.backoff(message.attempts)
        if wait is not None and wait > delay:
            delay = wait
        mark = partial(
            mark_retry, self._store, message, error=reason, next_attempt_at=self._now() + delay
        )
        return self._record(message, _Outcome.RETRIED, mark)

    def _record(
        self, message: ClaimedMessage, outcome: _Outcome, write: Callable[[], bool]
    ) -> _Outcome:
        """Write an outcome now; if the database refuses, keep it for the next rounds."""
        try:
            applied = write()
        except StoreError as exc:
            self._kept.append(_Kept(message, outcome, write))
            raise _StoreDown(exc) from exc
        if not applied:
            logger.warning(
                "outbox message %s: lease recovery settled it before worker %s could mark it"
                " (lease %s too short?)",
                message.id,
                self._worker_id,
                self._lease,
            )
        return outcome

    def _cut_short(
        self, error: StoreError, rest: Sequence[ClaimedMessage], counts: dict[_Outcome, int]
    ) -> int:
        """The database failed mid-batch: hand the unsent rest back, try at once, else keep it.

        Returns how many outcomes are still kept (the round's `deferred`).
        """
        logger.warning(
            "outbox worker %s: database failed mid-batch (%s); %d unsent notifications handed"
            " back, marks kept for the next rounds",
            self._worker_id,
            type(error).__name__,
            len(rest),
        )
        self._kept.extend(
            _Kept(message, _Outcome.RETRIED, partial(give_back, self._store, message))
            for message in rest
        )
        # Often the database is back already (a blink): then nothing waits for a lease.
        # Otherwise it stays kept, with a backoff, and the next rounds try again.
        with contextlib.suppress(StoreError):
            self._write_kept(counts, self._now())
        return len(self._kept)

    def _write_kept(self, counts: dict[_Outcome, int], now: datetime) -> None:
        """Write the kept marks in order; on the first refusal keep the rest and re-raise."""
        while self._kept:
            kept = self._kept[0]
            try:
                applied = kept.write()
            except StoreError:
                self._store_failures += 1
                exponent = min(self._store_failures - 1, 16)
                wait = min(self._store_backoff * 2**exponent, self._store_backoff_cap)
                self._retry_kept_at = now + wait
                raise
            self._kept.pop(0)
            if not applied:
                # An earlier try may have landed before its answer was lost, or recovery
                # settled the row meanwhile (the outage outlasted the lease).
                logger.info(
                    "outbox message %s: kept mark found nothing to change", kept.message.id
                )
            else:
                counts[kept.outcome] += 1
        self._store_failures = 0
        self._retry_kept_at = None

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"the clock must return aware datetimes, got {now.isoformat()}")
        return now
