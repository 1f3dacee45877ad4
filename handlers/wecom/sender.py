"""WeCom app messages: the outbox sender, and the per-member limit both it and the chat share.

WeCom takes at most 30 messages a minute to the same member and silently DROPS the excess, so
the limit is kept here, before sending: a sliding window of send times per member. A message
that does not fit is not sent; the outbox is told when a slot frees (`retry_after`).

The window is kept by a shared `SendBudget` (`handlers.ports`; the database's in `serve`), so
several `serve` workers share one count per member.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from handlers.base import split_text, utf8_len
from handlers.ports import SendBudget
from handlers.wecom.client import RATE_LIMITED, WecomApi, WecomApiError
from notifications.senders import DeliveryError

CHANNEL = "wecom"
TEXT_LIMIT = 2048  # bytes of UTF-8 in one text message (WeCom truncates longer ones)
PER_MEMBER = 30  # messages per member ...
WINDOW = timedelta(minutes=1)  # ... per minute
RATE_LIMIT_WAIT = timedelta(minutes=1)  # after 45009, which says no more


class MemberLimit:
    """At most `limit` sends to one member in any `window`, counted by `sends` so every
    `serve` worker shares it (`handlers.ports.SendBudget`). Blocking: call it from a
    worker thread (the outbox's, or `Gateway.run`)."""

    def __init__(
        self,
        sends: SendBudget,
        clock: Callable[[], datetime],
        *,
        limit: int = PER_MEMBER,
        window: timedelta = WINDOW,
    ) -> None:
        self._sends = sends
        self._clock = clock
        self._limit = limit
        self._window = window

    @property
    def limit(self) -> int:
        return self._limit

    def reserve(self, member: str, count: int = 1) -> timedelta | None:
        """Take `count` slots now and return None, or take none and return how long until
        they free up. `count` above the limit can never fit: ValueError."""
        if count > self._limit:
            raise ValueError(f"{count} messages exceed the limit of {self._limit} per window")
        return self._sends.reserve(
            CHANNEL,
            member,
            count=count,
            limit=self._limit,
            window=self._window,
            now=self._clock().astimezone(UTC),
        )


def pieces_of(text: str) -> list[str]:
    """`text` cut to WeCom's text size (2048 bytes of UTF-8)."""
    return split_text(text, TEXT_LIMIT, measure=utf8_len)


class WecomSender:
    """Sends outbox notifications (alerts, digests, review requests) as app text messages.

    Not idempotent: WeCom has no idempotency key (its duplicate check is off by default and
    keyed on content), so a message whose worker died mid-send is not sent again.
    """

    channel: str = CHANNEL
    idempotent: bool = False

    def __init__(self, api: WecomApi, limit: MemberLimit) -> None:
        self._api = api
        self._limit = limit

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        pieces = pieces_of(text)
        if not pieces:
            raise DeliveryError("消息为空，未发送 (empty message)", retryable=False)
        try:
            wait = self._limit.reserve(recipient_id, len(pieces))
        except ValueError:
            raise DeliveryError(
                f"消息过长，超过每分钟条数上限 (needs {len(pieces)} messages, limit"
                f" {self._limit.limit}/min)",
                retryable=False,
            ) from None
        if wait is not None:
            raise DeliveryError(
                f"已达每位成员每分钟 {self._limit.limit} 条上限 (WeCom per-member limit)",
                retryable=True,
                retry_after=wait,
            )
        for piece in pieces:
            try:
                self._api.send_text(recipient_id, piece)
            except WecomApiError as exc:
                retry_after = RATE_LIMIT_WAIT if exc.errcode == RATE_LIMITED else None
                raise DeliveryError(
                    exc.reason, retryable=exc.retryable, retry_after=retry_after
                ) from None
