"""WeCom app messages: the outbox sender, and the per-member limit both it and the chat share.

WeCom takes at most 30 messages a minute to the same member and silently DROPS the excess, so
the limit is kept here, before sending: a sliding window of send times per member. A message
that does not fit is not sent; the outbox is told when a slot frees (`retry_after`).

The window is kept by a shared `SendBudget` (`handlers.ports`; the database's in `serve`), so
several `serve` workers share one count per member.

Notices (`notifications.notice`) go to officials as WeCom shows them best:
- a window reminder, deadline alert or daily digest as a text card (`textcard`): the notice's
  title in bold (at most 128 bytes, WeCom's limit), a description of the date it is about (grey)
  and the body (at most 512 bytes of UTF-8 together, WeCom's limit; line breaks as `<br>`,
  the text HTML-escaped), and a 「详情」 button leading to the configured notice URL
  (AWARDBOT_WECOM_NOTICE_URL, else AWARDBOT_PUBLIC_URL). One card is one send of the member's
  30 a minute;
- as text instead (the title, then the body; cut at 2048 bytes like any notification) when no
  notice URL is configured (a card must have a link), when the body does not fit a card's
  description (WeCom would cut it without a word, and the link does not show the notice), and
  for a status change, which is plain text by nature.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from handlers.base import Unavailable, load_replies, render_text, split_text, utf8_len
from handlers.files import safe_name
from handlers.ports import Attachments, EdgeError, SendBudget
from handlers.wecom.client import RATE_LIMITED, WecomApi, WecomApiError
from notifications.notice import Notice, NoticeKind
from notifications.senders import DeliveryError

CHANNEL = "wecom"
TEXT_LIMIT = 2048  # bytes of UTF-8 in one text message (WeCom truncates longer ones)
PER_MEMBER = 30  # messages per member ...
WINDOW = timedelta(minutes=1)  # ... per minute
RATE_LIMIT_WAIT = timedelta(minutes=1)  # after 45009, which says no more
CARD_TITLE_LIMIT = 128  # bytes of UTF-8 in a text card's title (WeCom cuts longer ones)
CARD_DESCRIPTION_LIMIT = 512  # bytes of UTF-8 in its description (cut likewise)
CARD_BUTTON = "详情"  # at most 4 characters


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


@dataclass(frozen=True, slots=True)
class TextCard:
    title: str
    description: str
    url: str
    button: str = CARD_BUTTON


def text_card(notice: Notice, url: str | None) -> TextCard | None:
    """The notice as a text card leading to `url`; None when it should go as text (see the
    module docstring: a status change, no URL, or a body too long for the description)."""
    if notice.kind is NoticeKind.STATUS or not url:
        return None
    lines = html.escape(notice.body.strip(), quote=False).splitlines()
    parts = [f'<div class="gray">{html.escape(notice.when)}</div>'] if notice.when else []
    parts.append(f'<div class="normal">{"<br>".join(lines)}</div>')
    description = "".join(parts)
    if utf8_len(description) > CARD_DESCRIPTION_LIMIT:
        return None
    title = " ".join((notice.title or notice.kind.label).split())
    return TextCard(cut_bytes(title, CARD_TITLE_LIMIT), description, url)


def cut_bytes(text: str, limit: int) -> str:
    """`text` in at most `limit` bytes of UTF-8, ending in "…" if it had to be cut."""
    if utf8_len(text) <= limit:
        return text
    while utf8_len(text) > limit - utf8_len("…"):
        text = text[:-1]
    return text + "…"


class WecomSender:
    """Sends outbox notifications (alerts, digests, review requests) as app messages: text,
    and text cards for notices (see the module docstring).

    Not idempotent: WeCom has no idempotency key (its duplicate check is off by default and
    keyed on content), so a message whose worker died mid-send is not sent again.
    """

    channel: str = CHANNEL
    idempotent: bool = False

    def __init__(
        self, api: WecomApi, limit: MemberLimit, attachments: Attachments | None = None
    ) -> None:
        self._api = api
        self._limit = limit
        self._attachments = attachments  # the files later replies hand over (generated ones)

    def send_replies(self, recipient_id: str, payload: str, idempotency_key: str) -> None:
        """Replies that come later than their step (the documents a job made): the text, then
        each file as a file (or image) message after `media/upload`."""
        for reply in load_replies(payload):
            self.send(recipient_id, render_text(reply), idempotency_key)
            for file in reply.files:
                if self._attachments is None:
                    raise DeliveryError("附件无法读取：未配置附件存储", retryable=False)
                try:
                    stored = self._attachments.read(file.attachment_id)
                except (EdgeError, Unavailable) as exc:
                    raise DeliveryError(f"附件暂时无法读取 ({exc})", retryable=True) from None
                self._reserve(recipient_id, 1)
                name = safe_name(stored.filename, file.attachment_id, stored.kind)
                try:
                    self._api.send_file(recipient_id, name, stored.kind, stored.data)
                except WecomApiError as exc:
                    raise _delivery_error(exc) from None

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        pieces = pieces_of(text)
        if not pieces:
            raise DeliveryError("消息为空，未发送 (empty message)", retryable=False)
        self._reserve(recipient_id, len(pieces))
        for piece in pieces:
            try:
                self._api.send_text(recipient_id, piece)
            except WecomApiError as exc:
                raise _delivery_error(exc) from None

    def send_notice(self, recipient_id: str, notice: Notice, idempotency_key: str) -> None:
        """A reminder, alert or digest as a text card; as text where a card does not fit."""
        card = text_card(notice, self._api.notice_url)
        if card is None:
            self.send(recipient_id, notice.text(), idempotency_key)
            return
        self._reserve(recipient_id, 1)
        try:
            self._api.send_text_card(
                recipient_id,
                title=card.title,
                description=card.description,
                url=card.url,
                button=card.button,
            )
        except WecomApiError as exc:
            raise _delivery_error(exc) from None

    def _reserve(self, recipient_id: str, count: int) -> None:
        """Take `count` of the member's sends this minute, or say when to try again."""
        try:
            wait = self._limit.reserve(recipient_id, count)
        except ValueError:
            raise DeliveryError(
                f"消息过长，超过每分钟条数上限 (needs {count} messages, limit"
                f" {self._limit.limit}/min)",
                retryable=False,
            ) from None
        if wait is not None:
            raise DeliveryError(
                f"已达每位成员每分钟 {self._limit.limit} 条上限 (WeCom per-member limit)",
                retryable=True,
                retry_after=wait,
            )


def _delivery_error(exc: WecomApiError) -> DeliveryError:
    retry_after = RATE_LIMIT_WAIT if exc.errcode == RATE_LIMITED else None
    return DeliveryError(exc.reason, retryable=exc.retryable, retry_after=retry_after)
