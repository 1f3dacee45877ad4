"""Outbound WeChat notifications: the customer-service window, else a subscription notice, else
a template message, else recorded undeliverable with the reason — never dropped silently.

Every notice (`notifications.notice`: a status change, window reminder, deadline alert, daily
digest) goes the first way open to it:

1. a customer-service message (客服消息), the whole text (title, then body), only inside the
   window the user's own action opened (a message: 5 sends within 48 h; a menu click or a
   follow: 3 within a minute; DESIGN §6). The window is counted by a shared `ReplyWindow`
   (`handlers.ports`) so every worker shares the quota; WeChat saying it is closed (45015) or
   used up (45047) closes it and the next way is tried;
2. a subscription notice (订阅通知, `message/subscribe/bizsend`) when the account has a
   subscription template for the notice's kind (AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_STATUS,
   _WINDOW, _DEADLINE, _DIGEST). A user who has not subscribed (43101) gets the next way;
3. a template message (模板消息, `message/template/send`): the status template
   (AWARDBOT_WECHAT_TEMPLATE_STATUS) for a status change, the deadline template
   (AWARDBOT_WECHAT_TEMPLATE_DEADLINE, else the status one) for reminders, alerts and digests;
4. otherwise a non-retryable `DeliveryError` saying it is undeliverable and why.

Subscription notices and template messages show short fields only (since 2023 a template has
no `first` line and no `remark`, and each field holds at most 20 characters, without line
breaks), so both carry a link to the notice's detail page where the whole text is
(`handlers.wechat.notices`; no link when no public URL is configured). The templates registered
on the platform, subscription and template alike, must have these keys:

    thing1 : the notice's title (a status change: "状态变更"), at most 20 characters
    date2  : the date it is about, "2022年11月4日" or "2022年11月4日 17:00" (a status change:
             when it was sent, in the clock's zone)
    thing3 : the notice's body on one line, cut to 20 characters with "…"

A field longer than 20 characters is cut to 19 and "…"; line breaks and runs of spaces become
one space.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

from conversations.engine import FileOut
from conversations.keys import Channel
from handlers.base import load_replies, render_text
from handlers.files import NO_PUBLIC_URL
from handlers.ports import ReplyWindow, Slot
from handlers.wechat.client import TOKEN_ERRORS, WechatApiError, WechatClient
from handlers.wechat.notices import NoticeLinks
from notifications.notice import Notice, NoticeKind
from notifications.senders import DeliveryError

OUT_OF_WINDOW = 45015  # response out of time limit: the window is closed
WINDOW_USED_UP = 45047  # customer-service send count exceeded
API_LIMITED = 45009  # API frequency / daily quota
MINUTE_LIMITED = 45011
NOT_FOLLOWING = 43004  # the recipient does not follow the account
NOT_SUBSCRIBED = 43101  # the user has not subscribed to (or refused) this notice
ARGUMENT_INVALID = 47003  # a template field the platform does not take
SYSTEM_BUSY = -1
RETRYABLE = frozenset({API_LIMITED, MINUTE_LIMITED, SYSTEM_BUSY, None, *TOKEN_ERRORS})

FIELD_LIMIT = 20  # characters in a template or subscription field
TITLE_FIELD, DATE_FIELD, BODY_FIELD = "thing1", "date2", "thing3"


def undeliverable_reason(kind: NoticeKind, *, not_subscribed: bool = False) -> str:
    """Why a notice of `kind` reached nobody (one line, no text of it)."""
    if not_subscribed:
        return (
            "无法送达：不在客服消息窗口内，用户未订阅该通知 (43101)，且未配置模板消息 "
            "(undeliverable: outside the 48 h customer-service window; the user has not"
            f" subscribed (43101) and no template message is configured for {kind.value})"
        )
    return (
        "无法送达：不在客服消息窗口内，且未配置该类通知的订阅通知或模板消息 "
        "(undeliverable: outside the 48 h customer-service window; no subscription notice"
        f" or template message configured for {kind.value})"
    )


NO_WINDOW_NO_TEMPLATE = undeliverable_reason(NoticeKind.STATUS)


def delivery_error(exc: WechatApiError, what: str) -> DeliveryError:
    """Our error for a WeChat refusal: retryable only for what may pass later."""
    if exc.errcode == NOT_FOLLOWING:
        return DeliveryError(
            f"用户未关注公众号 (43004: recipient does not follow the account; {what})",
            retryable=False,
        )
    if exc.errcode == API_LIMITED:
        return DeliveryError(
            f"接口调用超过限额 (45009: API quota exceeded; {what})", retryable=True
        )
    if exc.errcode == ARGUMENT_INVALID:
        return DeliveryError(
            f"模板字段不符合平台要求 (47003: argument invalid - do the template's keys match"
            f" thing1/date2/thing3? {what})",
            retryable=False,
        )
    code = "network/HTTP" if exc.errcode is None else str(exc.errcode)
    return DeliveryError(
        f"微信接口错误 (WeChat API error {code}; {what})", retryable=exc.errcode in RETRYABLE
    )


def one_field(text: str, limit: int = FIELD_LIMIT) -> str:
    """`text` as one template field: on one line, at most `limit` characters ("…" if cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_WHEN = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}))?")


def date_field(when: str | None, sent: dt.datetime) -> str:
    """The `date2` field: the notice's date (and time), else when it was sent."""
    match = _WHEN.fullmatch(when.strip()) if when else None
    if match is None:
        return f"{sent.year}年{sent.month}月{sent.day}日 {sent:%H:%M}"
    year, month, day, hour, minute = match.groups()
    date = f"{int(year)}年{int(month)}月{int(day)}日"
    return f"{date} {hour}:{minute}" if hour is not None else date


OUT_OF_WINDOW_REPLY = "用户超过 48 小时未与公众号互动，客服消息无法送达"


class WechatSender:
    """The outbox sender for channel "wechat" (sync; called from a dispatcher thread)."""

    channel: str = Channel.WECHAT.value
    idempotent: bool = False  # WeChat does not dedupe sends: a retried send reaches twice

    def __init__(
        self,
        client: WechatClient,
        windows: ReplyWindow,
        *,
        clock: Callable[[], dt.datetime],
        template_status: str | None,
        template_deadline: str | None = None,
        subscribe: Mapping[NoticeKind, str | None] | None = None,
        links: NoticeLinks | None = None,
        file_line: Callable[[FileOut], str] | None = None,
    ) -> None:
        """`subscribe`: the subscription template id of each notice kind that has one;
        `links`: the detail links (None: no public URL, messages go without a link);
        `file_line`: a file a later reply hands over, as its download link line."""
        self._client = client
        self._windows = windows
        self._clock = clock
        self._template_status = template_status
        self._template_deadline = template_deadline
        self._subscribe = {kind: tid for kind, tid in (subscribe or {}).items() if tid}
        self._links = links
        self._file_line = file_line

    def send_replies(self, recipient_id: str, payload: str, idempotency_key: str) -> None:
        """Replies that come later than their step (the documents a job made): one
        customer-service message, each file a signed download link line under the text. Only
        inside the user's window (they just asked); outside it they are undeliverable."""
        lines = []
        for reply in load_replies(payload):
            lines.append(render_text(reply))
            for file in reply.files:
                lines.append(self._file_line(file) if self._file_line else NO_PUBLIC_URL)
        if not self._send_in_window(recipient_id, "\n".join(lines)):
            raise DeliveryError(OUT_OF_WINDOW_REPLY, retryable=False)

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        """A status change's plain text (the dispatcher gives notices to `send_notice`)."""
        self.send_notice(recipient_id, Notice(NoticeKind.STATUS, "", text), idempotency_key)

    def send_notice(self, recipient_id: str, notice: Notice, idempotency_key: str) -> None:
        """The first way open to this notice (see the module docstring)."""
        if self._send_in_window(recipient_id, notice.text()):
            return
        data = self.template_data(notice)
        url = self._links.url(idempotency_key) if self._links is not None else None
        not_subscribed = False
        subscription = self._subscribe.get(notice.kind)
        if subscription:
            try:
                self._client.send_subscribe(recipient_id, subscription, data, page=url)
                return
            except WechatApiError as exc:
                if exc.errcode != NOT_SUBSCRIBED:
                    raise delivery_error(exc, "subscription notice") from None
                not_subscribed = True
        template = self.template_for(notice.kind)
        if not template:
            raise DeliveryError(
                undeliverable_reason(notice.kind, not_subscribed=not_subscribed),
                retryable=False,
            )
        try:
            self._client.send_template(recipient_id, template, data, url=url)
        except WechatApiError as exc:
            raise delivery_error(exc, "template message") from None

    def template_for(self, kind: NoticeKind) -> str | None:
        """The template message id for a notice of `kind`, if the account has one."""
        if kind is NoticeKind.STATUS:
            return self._template_status
        return self._template_deadline or self._template_status

    def template_data(self, notice: Notice) -> dict[str, Any]:
        """The fields of a template message or subscription notice (see the module docstring)."""
        return {
            TITLE_FIELD: {"value": one_field(notice.title or notice.kind.label)},
            DATE_FIELD: {"value": date_field(notice.when, self._clock())},
            BODY_FIELD: {"value": one_field(notice.body or notice.title or notice.kind.label)},
        }

    def _send_in_window(self, recipient_id: str, text: str) -> bool:
        """A customer-service message if the user's window is open; False if it is not."""
        slot = self._windows.take(self.channel, recipient_id, now=self._clock())
        if slot is not Slot.TAKEN:
            return False
        try:
            self._client.send_text(recipient_id, text)
        except WechatApiError as exc:
            if exc.errcode not in (OUT_OF_WINDOW, WINDOW_USED_UP):
                raise delivery_error(exc, "customer-service message") from None
            self._windows.close(self.channel, recipient_id, used_up=exc.errcode == WINDOW_USED_UP)
            return False
        return True
