"""The outbox dispatcher: claims due notifications and delivers each through its channel's sender.

`Dispatcher.run_once()` is one round: settle rows whose lease expired (`recover_expired`), claim
a small batch (committed as `sending` BEFORE anything is sent), send each message, and record the
outcome. Call it in a loop or from the scheduler; any number of dispatchers may run at once, in
threads or processes, each with its own `worker_id` and the same senders. Why this never sends a
message twice, and what happens to one whose worker died mid-send, is in `storage.outbox`.

Failures (see `notifications.senders` for what senders raise):
- retryable `DeliveryError`, or any unexpected exception: back to pending after
  `backoff_base * 2 ** (attempts - 1)`, at most `backoff_cap` (or the platform's `retry_after`
  if longer), until `max_attempts` are used; then failed with the last reason;
- non-retryable `DeliveryError`: failed at once, with its reason;
- no sender for the channel: failed at once.
The message text is personal data: it is never logged, nor stored in `last_error`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from notifications.senders import DeliveryError, Sender
from storage.outbox import (
    ClaimedMessage,
    claim,
    mark_delivered,
    mark_failed,
    mark_retry,
    recover_expired,
    release,
)
from storage.store import Store

logger = logging.getLogger(__name__)

LEASE_EXPIRED_BEFORE_SEND = "租约在发送前已过期，未发送 (lease expired before sending; not sent)"


def no_sender_reason(channel: str) -> str:
    return f"没有该渠道的发送器 (no sender for channel {channel})"


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What one `run_once` did: messages delivered, put back for a retry, and given up.

    Rows settled by lease recovery count too: requeued ones as retried, the others as failed.
    """

    delivered: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retried + self.failed


class _Outcome(Enum):
    DELIVERED = "delivered"
    RETRIED = "retried"
    FAILED = "failed"


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
    ) -> None:
        """`senders` maps a channel to its sender; `clock` returns aware UTC datetimes;
        `recipient` (channel, id) limits the dispatcher to one person's messages.

        `lease` must exceed the longest time a batch of `batch_size` sends can take: a message
        still unsent when its lease ends is put back instead. A worker that dies loses at most
        its current batch on non-idempotent channels (recorded as failed), so keep it small.
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
        self._idempotent = frozenset(c for c, s in self._senders.items() if s.idempotent)

    def run_once(self) -> DispatchReport:
        """Recover expired leases, then claim one batch of due messages and deliver it."""
        now = self._now()
        recovery = recover_expired(
            self._store,
            now=now,
            idempotent_channels=self._idempotent,
            max_attempts=self._max_attempts,
        )
        counts = {outcome: 0 for outcome in _Outcome}
        batch = claim(
            self._store,
            self._worker_id,
            now=now,
            lease=self._lease,
            limit=self._batch_size,
            recipient=self._recipient,
            channels=self._senders.keys(),
        )
        for message in batch:
            counts[self._deliver(message)] += 1
        return DispatchReport(
            delivered=counts[_Outcome.DELIVERED],
            retried=counts[_Outcome.RETRIED] + recovery.requeued,
            failed=counts[_Outcome.FAILED] + recovery.failed,
        )

    def release(self) -> int:
        """Give back this worker's unsent claims (call after its last `run_once` returned)."""
        return release(self._store, self._worker_id)

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base * 2**(attempts-1), capped."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 * base is past any sane cap
        delay: timedelta = self._backoff_base * 2**exponent
        return min(delay, self._backoff_cap)

    def _deliver(self, message: ClaimedMessage) -> _Outcome:
        sender = self._senders.get(message.channel)
        if sender is None:
            error = no_sender_reason(message.channel)
            self._settle(message, mark_failed(self._store, message, error=error))
            return _Outcome.FAILED
        now = self._now()
        if now >= message.claimed_until:
            # Recovery may already have settled it; sending now could be a second send.
            error = LEASE_EXPIRED_BEFORE_SEND
            self._settle(
                message, mark_retry(self._store, message, error=error, next_attempt_at=now)
            )
            return _Outcome.RETRIED
        try:
            sender.send(message.recipient_id, message.text, message.idempotency_key)
        except DeliveryError as exc:
            return self._failed(message, exc.reason, retryable=exc.retryable, wait=exc.retry_after)
        except Exception as exc:
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
            reason = (
                f"发送器异常 (unexpected {type(exc).__name__} from the {message.channel} sender)"
            )
            return self._failed(message, reason, retryable=True, wait=None)
        self._settle(message, mark_delivered(self._store, message, now=self._now()))
        return _Outcome.DELIVERED

    def _failed(
        self, message: ClaimedMessage, reason: str, *, retryable: bool, wait: timedelta | None
    ) -> _Outcome:
        if not retryable or message.attempts >= self._max_attempts:
            self._settle(message, mark_failed(self._store, message, error=reason))
            return _Outcome.FAILED
        delay = self.backoff(message.attempts)
        if wait is not None and wait > delay:
            delay = wait
        next_at = self._now() + delay
        self._settle(
            message, mark_retry(self._store, message, error=reason, next_attempt_at=next_at)
        )
        return _Outcome.RETRIED

    def _settle(self, message: ClaimedMessage, applied: bool) -> None:
        if not applied:
            logger.warning(
                "outbox message %s: lease recovery settled it before worker %s could mark it"
                " (lease %s too short?)",
                message.id,
                self._worker_id,
                self._lease,
            )

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"the clock must return aware datetimes, got {now.isoformat()}")
        return now
