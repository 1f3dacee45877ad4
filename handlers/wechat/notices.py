"""A notice's detail page: what a WeChat template message or subscription notice links to.

Outside the customer-service window a notice reaches a WeChat user as a template message or a
subscription notice, whose fields hold at most 20 characters each (`handlers.wechat.sender`);
the whole text is behind the message's link, a signed, expiring URL served by `awardbot serve`:

    https://<AWARDBOT_PUBLIC_URL>/wechat/notice/<key>.<expiry, unix seconds>.<signature>

`<key>` is the outbox row's idempotency key (base64url; it names no person), the signature
HMAC-SHA256 of `<key>.<expiry>` under a key derived from AWARDBOT_SECRET_KEY for notice links
only (`handlers.ports.LinkSigner`), so nobody can make or stretch a link without the key, and
the text itself never travels in a URL. `GET /wechat/notice/<token>` answers 403 for a token
whose signature does not hold (checked first), 410 once it expired, 404 when the row is gone
or is not a WeChat notice, else a small HTML page of the notice's title, date and body
(escaped; never cached, no referrer, nothing loaded from elsewhere).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import html
import logging
import re
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from handlers.base import Gateway, Unavailable
from handlers.files import BadLink, ExpiredLink
from handlers.ports import EdgeError, LinkSigner
from notifications.notice import Notice

log = logging.getLogger(__name__)

ROUTE = "/wechat/notice/{token}"
PATH = "/wechat/notice/"
MAX_KEY = 200  # bytes of an idempotency key a link carries; a longer one gets no link
TOKEN = re.compile(r"([A-Za-z0-9_-]{1,270})\.([0-9]{1,12})\.([0-9a-f]{64})")

EXPIRED = "此通知链接已过期。请在公众号内发送任意消息，查看最新进度。"
NOT_FOUND = "未找到此通知。"
HEADERS = {
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


class NoticeReader(Protocol):
    """The notice an outbox row holds, for its detail page (`bot.edges.StoreNoticePages`).

    None when there is no such row, or it is not a WeChat notice (a step's stored replies are
    not shown). Raises `handlers.base.Unavailable` or `handlers.ports.EdgeError` like any port.
    """

    def notice(self, idempotency_key: str) -> Notice | None: ...


class NoticeLinks:
    """Makes and checks the detail links (see the module docstring)."""

    def __init__(
        self,
        public_url: str,
        signer: LinkSigner,
        *,
        clock: Callable[[], dt.datetime],
        days: int = 7,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.days = days
        self._signer = signer
        self._clock = clock

    def url(self, idempotency_key: str) -> str | None:
        """The link to this notice's page; None for a key too long to carry."""
        raw = idempotency_key.encode("utf-8")
        if not raw or len(raw) > MAX_KEY:
            return None
        key = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        expires = int(self._clock().timestamp()) + self.days * 24 * 3600
        payload = f"{key}.{expires}"
        signature = self._signer.signatures(payload.encode("ascii"))[0]
        return f"{self.public_url}{PATH}{payload}.{signature}"

    def check(self, token: str) -> str:
        """The idempotency key a token names; BadLink, or ExpiredLink once it expired."""
        match = TOKEN.fullmatch(token)
        if match is None:
            raise BadLink("not a notice link")
        key, expires, given = match.groups()
        payload = f"{key}.{expires}".encode("ascii")
        if not any(hmac.compare_digest(given, s) for s in self._signer.signatures(payload)):
            raise BadLink("signature does not hold")
        if int(expires) <= int(self._clock().timestamp()):
            raise ExpiredLink("link expired")
        try:
            return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadLink("not a key") from None  # signed by us: cannot happen


def page(notice: Notice) -> str:
    """The notice as a small HTML page, every part escaped."""
    title = html.escape(notice.title or notice.kind.label)
    when = f'<p class="when">{html.escape(notice.when)}</p>' if notice.when else ""
    body = html.escape(notice.body)
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>"
        "body{font:17px/1.7 -apple-system,'PingFang SC','Microsoft YaHei',sans-serif;"
        "margin:1.2em;color:#222}h1{font-size:1.25em;margin:0 0 .3em}"
        ".when{color:#888;margin:0 0 1em}.body{white-space:pre-wrap;word-break:break-word}"
        f'</style></head><body><h1>{title}</h1>{when}<div class="body">{body}</div>'
        "</body></html>"
    )


def _message(status: int, text: str) -> web.Response:
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(text)}</title></head><body><p>{html.escape(text)}</p></body></html>"
    )
    return web.Response(
        status=status, text=body, content_type="text/html", charset="utf-8", headers=HEADERS
    )


def notice_routes(
    links: NoticeLinks, reader: NoticeReader, gateway: Gateway
) -> list[web.RouteDef]:
    """`GET /wechat/notice/<token>` for the WeChat adapter's routes."""

    async def show(request: web.Request) -> web.Response:
        try:
            key = links.check(request.match_info["token"])
        except BadLink:
            return web.Response(status=403, text="forbidden")
        except ExpiredLink:
            return _message(410, EXPIRED)
        try:
            notice = await gateway.run(reader.notice, key)
        except Unavailable:
            raise  # the serve middleware answers 503
        except EdgeError as exc:
            log.error("notice page cannot be read: %s", exc)
            return web.Response(status=500, text="internal error")
        if notice is None:
            return _message(404, NOT_FOUND)
        return web.Response(
            text=page(notice), content_type="text/html", charset="utf-8", headers=HEADERS
        )

    return [web.get(ROUTE, show)]
