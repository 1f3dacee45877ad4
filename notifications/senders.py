"""Senders: how the outbox dispatcher hands one notification to one channel.

A sender is anything with `channel`, `idempotent` and `send(recipient_id, text,
idempotency_key)` (the `Sender` protocol); the dispatcher (`notifications.outbox`) keeps one per
channel. What the dispatcher needs from `send`:

- Return normally once the platform has ACCEPTED the message; that marks it delivered.
- Raise `DeliveryError(reason, retryable=...)` when it was not accepted: retryable for what may
  pass later (timeouts, 5xx, rate limits — give `retry_after` when the platform says how long),
  not retryable for what will not (blocked by the user, unknown recipient, WeChat 45015 outside
  the customer-service window). Translate SDK exceptions at this edge (STYLE.md, "Adapters are
  translators"). The reason is stored and shown to operators: one line, no message text.
- Any other exception is taken as a retryable failure of unknown cause (logged without the text).
- `idempotent = True` only if a second `send` with the same idempotency key cannot reach the user
  twice (the platform, or the sender itself, dedupes on the key). That allows the outbox to retry
  a message whose worker died mid-send; otherwise such a message is given up (at most once).

Rows of a notice kind (`notifications.notice`: status change, window reminder, deadline alert,
daily digest) go to `send_notice(recipient_id, notice, idempotency_key)` when the sender has it
(`NoticeSender`: WeChat and WeCom render the parts their own way); otherwise to `send` with
`notice.text()` (the title, then the body; a status row's plain text as it is). It answers the
same way `send` does.

A sender that WAITS before its platform call — for a flood limit's slot, say (Telegram: 30
messages/s) — has `reserve(recipient_id)` (`ReservingSender`). The dispatcher calls it just
BEFORE it marks the row in flight, so that the wait happens while the row is merely claimed: a
worker killed during it leaves a row whose send never began (sent again later), not one of
unknown outcome (issue 13). `reserve` waits and takes the slot for the NEXT send to that
recipient on the calling thread, which then does not wait again; it may raise `DeliveryError`
like `send` (the row is retried). After the row's turn the dispatcher calls
`unreserve(recipient_id)` (when the sender has it) whether or not the send happened: a
reservation the send did not use (the claim was lost, the in-flight mark failed) is dropped, so
no later send skips the limit on it. Senders that do not wait inside `send` (console, WeChat;
WeCom refuses at once with `retry_after` when the member's minute is full) need neither.

`send` is synchronous: the dispatcher runs in its own thread or process. An async SDK (aiogram,
python-telegram-bot) can be wrapped by running its coroutine to completion on the channel's event
loop (`asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)`) inside `send`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol, TextIO

from conversations.keys import Channel
from notifications.notice import Notice


class DeliveryError(Exception):
    """The channel did not accept the message; `reason` is one line, safe to store and log."""

    def __init__(
        self, reason: str, *, retryable: bool, retry_after: timedelta | None = None
    ) -> None:
        self.reason = " ".join(reason.split()) or "delivery failed"
        self.retryable = retryable
        self.retry_after = retry_after  # the platform's own wait (e.g. Telegram 429), if any
        super().__init__(self.reason)


class Sender(Protocol):
    """Delivers notifications on one channel (see the module docstring for the contract)."""

    channel: str
    idempotent: bool

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        """Deliver `text` to `recipient_id`, or raise DeliveryError saying why not."""
        ...


class ReservingSender(Sender, Protocol):
    """A sender whose sends wait (a flood limit): the wait is taken before the in-flight mark.

    `reserve` waits for, and takes, what the next send to `recipient_id` on this thread would
    wait for; that send then uses it. `unreserve` drops a reservation not used (no-op after a
    send used it). See the module docstring.
    """

    def reserve(self, recipient_id: str) -> None: ...

    def unreserve(self, recipient_id: str) -> None: ...


class ReplySender(Sender, Protocol):
    """A sender that also delivers a step's stored replies (outbox rows of kind `reply`): the
    replies as JSON (bot.runtime.dump_replies), rendered as the channel renders a step's answer,
    keyboards and files included."""

    def send_replies(self, recipient_id: str, payload: str, idempotency_key: str) -> None: ...


class NoticeSender(Sender, Protocol):
    """A sender that renders a notice itself (outbox rows of a `NoticeKind`): the title, body and
    date apart, e.g. as a WeCom text card or a WeChat template message's fields."""

    def send_notice(self, recipient_id: str, notice: Notice, idempotency_key: str) -> None: ...


class ConsoleSender:
    """Prints notifications to a terminal as `【通知】…` lines, for the console channel.

    Not idempotent: a retry after a crash would print the line again.
    """

    channel: str = Channel.CONSOLE
    idempotent: bool = False

    def __init__(self, out: TextIO, replies: Callable[[str], str] | None = None) -> None:
        self._out = out
        self._replies = replies  # stored replies (JSON) as the console prints them, files saved

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        self._print(f"【通知】{text}")

    def send_replies(self, recipient_id: str, payload: str, idempotency_key: str) -> None:
        """Replies that came later than their step (the documents a job made)."""
        if self._replies is None:
            raise DeliveryError(
                "控制台不能显示这条回复 (console has no reply renderer)", retryable=False
            )
        self._print(self._replies(payload))

    def _print(self, text: str) -> None:
        try:
            print(text, file=self._out, flush=True)
        except (OSError, ValueError) as exc:  # closed or broken stream
            raise DeliveryError(
                f"控制台不可写 (console not writable: {type(exc).__name__})", retryable=False
            ) from exc
