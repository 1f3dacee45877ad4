"""Outbound WeChat notifications: customer-service message inside the window, else template.

DESIGN §6: a customer-service message (客服消息) reaches a user only inside the window their own
action opened (a message: 5 sends within 48 h; a menu click or a follow: 3 within a minute).
The window is counted by a shared `ReplyWindow` (`handlers.ports`) so every worker shares the
quota.
Outside it, or when WeChat says it is closed (45015) or used up (45047), a template message
(模板消息, status template) goes instead if the account has one; otherwise the notification is
recorded undeliverable with the reason — never dropped silently.

Template data (the status-change template registered on the platform must use these keys):
    first    : "评选表彰申报通知"
    keyword1 : the notification text (cut to 200 characters)
    keyword2 : the time it was sent, YYYY-MM-DD HH:MM in the clock's zone
    remark   : "回复任意消息查看详情。"
The deadline template (`template_deadline`) is not used yet: the outbox does not say which
notifications are deadline reminders, so every notification goes with the status template.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from conversations.keys import Channel
from handlers.ports import ReplyWindow, Slot
from handlers.wechat.client import TOKEN_ERRORS, WechatApiError, WechatClient
from notifications.senders import DeliveryError

OUT_OF_WINDOW = 45015  # response out of time limit: the window is closed
WINDOW_USED_UP = 45047  # customer-service send count exceeded
API_LIMITED = 45009  # API frequency / daily quota
MINUTE_LIMITED = 45011
NOT_FOLLOWING = 43004  # the recipient does not follow the account
SYSTEM_BUSY = -1
RETRYABLE = frozenset({API_LIMITED, MINUTE_LIMITED, SYSTEM_BUSY, None, *TOKEN_ERRORS})

NO_WINDOW_NO_TEMPLATE = (
    "不在客服消息窗口内且未配置模板消息 (outside the 48 h customer-service window; "
    "no template configured)"
)
TEMPLATE_TEXT_LIMIT = 200


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
    code = "network/HTTP" if exc.errcode is None else str(exc.errcode)
    return DeliveryError(
        f"微信接口错误 (WeChat API error {code}; {what})", retryable=exc.errcode in RETRYABLE
    )


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
    ) -> None:
        self._client = client
        self._windows = windows
        self._clock = clock
        self._template_status = template_status
        self._template_deadline = template_deadline  # reserved, see the module docstring

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        slot = self._windows.take(self.channel, recipient_id, now=self._clock())
        if slot is Slot.TAKEN:
            try:
                self._client.send_text(recipient_id, text)
                return
            except WechatApiError as exc:
                if exc.errcode not in (OUT_OF_WINDOW, WINDOW_USED_UP):
                    raise delivery_error(exc, "customer-service message") from None
                self._windows.close(
                    self.channel, recipient_id, used_up=exc.errcode == WINDOW_USED_UP
                )
        self._send_template(recipient_id, text)

    def _send_template(self, recipient_id: str, text: str) -> None:
        if not self._template_status:
            raise DeliveryError(NO_WINDOW_NO_TEMPLATE, retryable=False)
        try:
            self._client.send_template(
                recipient_id, self._template_status, self.template_data(text)
            )
        except WechatApiError as exc:
            raise delivery_error(exc, "template message") from None

    def template_data(self, text: str) -> dict[str, Any]:
        """The status template's fields (see the module docstring)."""
        if len(text) > TEMPLATE_TEXT_LIMIT:
            text = text[: TEMPLATE_TEXT_LIMIT - 1] + "…"
        sent = self._clock().strftime("%Y-%m-%d %H:%M")
        return {
            "first": {"value": "评选表彰申报通知"},
            "keyword1": {"value": text},
            "keyword2": {"value": sent},
            "remark": {"value": "回复任意消息查看详情。"},
        }
