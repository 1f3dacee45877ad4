"""A fake WeChat API server on 127.0.0.1 that the real wechatpy client talks to.

Routes are a table (`self.routes`: path -> handler) so a subclass can add its own (the WeCom
fake adds `gettoken` and `message/send`). Every API call is recorded (`calls`), every call but
the token fetch must carry the token last issued (else 40001, like a token another fetch
invalidated), and `fail_next(path, errcode)` makes the next calls to a path answer an errcode
(45015, 45047, 45009, 40001, 43004…).

Template messages and subscription notices (`message/subscribe/bizsend`) are checked like the
platform does since 2023: a field value over 20 characters, or with a line break, is refused
with 47003 (argument invalid); `first` and `remark` are no longer shown, so a template message
carrying them is recorded in `dropped` (what the user would not see). A subscription notice to
a user in `unsubscribed` is refused with 43101 (the user has not subscribed).

    async with FakeWechatApi() as api:
        client = WechatClient(..., api_base=api.url, ...)
        api.add_media("MEDIA1", b"...", filename="a.pdf")
        api.fail_next("/cgi-bin/message/custom/send", 45015)
        ...
        api.sent_texts()  # [(openid, text), ...]
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from handlers.config import WechatSettings

Handler = Callable[["Call"], Awaitable[web.StreamResponse]]

APP_ID = "wxfakeapp00000001"
SECRET = "fake-wechat-secret"
TOKEN = "fake-push-token"  # the 令牌 pushes are signed with
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters (platforms.md §1.5 B)

ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40007: "invalid media_id",
    43004: "require subscribe",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    43101: "user refuse to accept the msg",
    47001: "data format error",
    47003: "argument invalid! data.value invalid",
}
FIELD_LIMIT = 20  # characters of a template field since 2023-05
SUBSCRIBE = "/cgi-bin/message/subscribe/bizsend"
TEMPLATE = "/cgi-bin/message/template/send"


@dataclass
class Call:
    """One request the fake received."""

    path: str
    params: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    errcode: int = 0  # what the fake answered (0: accepted)


class FakeWechatApi:
    """The WeChat Official Account API, just enough for the bot (see the module docstring)."""

    token_path = "/cgi-bin/token"

    def __init__(self, *, expires_in: int = 7200, token_delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.token_delay = token_delay  # seconds a token fetch takes (to overlap two fetches)
        self.calls: list[Call] = []
        self.tokens_issued: list[str] = []
        self.media: dict[str, tuple[str, str, bytes]] = {}  # id -> (filename, type, data)
        self.unsubscribed: set[str] = set()  # openids whose subscription notices get 43101
        self.dropped: list[tuple[str, str]] = []  # (openid, template key not shown anymore)
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self.routes: dict[str, Handler] = {
            self.token_path: self.token,
            "/cgi-bin/message/custom/send": self.ok,
            TEMPLATE: self.template_send,
            SUBSCRIBE: self.subscribe_send,
            "/cgi-bin/media/get": self.media_get,
            "/cgi-bin/menu/create": self.ok,
        }
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.changed = asyncio.Condition()

    # ----- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> FakeWechatApi:
        return await self.start()

    async def start(self, port: int = 0) -> FakeWechatApi:
        """Serve on 127.0.0.1:`port` (0: any free port); `self.url` says where."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def settings(
        self,
        *,
        token: str = TOKEN,
        aes_key: str | None = None,
        app_id: str = APP_ID,
        template_status: str | None = None,
        template_deadline: str | None = None,
        **options: Any,
    ) -> WechatSettings:
        """Account settings whose API base is this fake (`options`: more WechatSettings
        fields, e.g. subscribe_window)."""
        return WechatSettings(
            app_id=app_id,
            app_secret=SECRET,
            token=token,
            aes_key=aes_key,
            api_base=self.url,
            template_status=template_status,
            template_deadline=template_deadline,
            **options,
        )

    # ----- steering and inspecting ------------------------------------------------------

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next `times` calls to `path` answer `errcode` (and have no effect)."""
        self._failures[path].extend([errcode] * times)

    def add_media(
        self,
        media_id: str,
        data: bytes,
        *,
        filename: str = "file.bin",
        content_type: str = "application/octet-stream",
    ) -> None:
        self.media[media_id] = (filename, content_type, data)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def sent_texts(self) -> list[tuple[str, str]]:
        """(openid, text) of every customer-service text message accepted."""
        return [
            (c.body["touser"], c.body["text"]["content"])
            for c in self.accepted("/cgi-bin/message/custom/send")
        ]

    def templates(self) -> list[dict[str, Any]]:
        return [c.body for c in self.accepted(TEMPLATE)]

    def subscriptions(self) -> list[dict[str, Any]]:
        """The accepted subscription notices: touser, template_id, data, page (if any)."""
        return [c.body for c in self.accepted(SUBSCRIBE)]

    def accepted(self, path: str) -> list[Call]:
        return [c for c in self.calls_to(path) if c.errcode == 0]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 5.0) -> None:
        """Until `predicate()` holds (checked after every call); TimeoutError if it never does."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), seconds)

    # ----- the server -------------------------------------------------------------------

    @property
    def current_token(self) -> str | None:
        return self.tokens_issued[-1] if self.tokens_issued else None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        call = Call(request.path, dict(request.query), body)
        self.calls.append(call)
        try:
            handler = self.routes.get(request.path)
            if handler is None:
                return web.json_response({"errcode": 404, "errmsg": "no such API"}, status=404)
            if request.path != self.token_path:
                refusal = self._refusal(call)
                if refusal is not None:
                    call.errcode = refusal
                    return _error(refusal)
            return await handler(call)
        finally:
            async with self.changed:
                self.changed.notify_all()

    def _refusal(self, call: Call) -> int | None:
        if call.params.get("access_token") != self.current_token:
            return 40001
        queue = self._failures.get(call.path)
        if queue:
            return queue.popleft()
        return None

    async def token(self, call: Call) -> web.StreamResponse:
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if call.params.get("grant_type") != "client_credential" or not call.params.get("secret"):
            call.errcode = 40002
            return _error(40002)
        token = f"fake-token-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def ok(self, call: Call) -> web.StreamResponse:
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def template_send(self, call: Call) -> web.StreamResponse:
        if refusal := self._invalid_fields(call):
            return refusal
        for key in ("first", "remark"):
            if key in (call.body.get("data") or {}):
                self.dropped.append((str(call.body.get("touser")), key))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": len(self.calls)})

    async def subscribe_send(self, call: Call) -> web.StreamResponse:
        if not call.body.get("template_id") or not call.body.get("touser"):
            call.errcode = 47001  # data format error
            return _error(47001)
        if call.body["touser"] in self.unsubscribed:
            call.errcode = 43101
            return _error(43101)
        if refusal := self._invalid_fields(call):
            return refusal
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _invalid_fields(self, call: Call) -> web.Response | None:
        """47003 for a field over 20 characters or with a line break (the 2023 rules)."""
        data = call.body.get("data")
        if not isinstance(data, dict):
            call.errcode = 47001
            return _error(47001)
        for key, item in data.items():
            value = str(item.get("value", "")) if isinstance(item, dict) else ""
            if key in ("first", "remark"):
                continue  # not shown any more, not checked
            if not value or len(value) > FIELD_LIMIT or any(ch in value for ch in "\r\n"):
                call.errcode = 47003
                return _error(47003)
        return None

    async def media_get(self, call: Call) -> web.StreamResponse:
        media = self.media.get(call.params.get("media_id", ""))
        if media is None:
            call.errcode = 40007
            return _error(40007)
        filename, content_type, data = media
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def _error(errcode: int) -> web.Response:
    # WeChat answers errors with HTTP 200 and a JSON errcode.
    return web.json_response({"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")})


async def _serve_forever(port: int) -> None:
    fake = await FakeWechatApi().start(port)
    try:
        print(f"fake WeChat API on {fake.url} (Ctrl-C to stop)", flush=True)
        seen = 0
        while True:
            await asyncio.sleep(0.5)
            for call in fake.calls[seen:]:
                body = json.dumps(call.body, ensure_ascii=False)[:300]
                print(call.path, call.errcode, body, flush=True)
            seen = len(fake.calls)
    finally:
        await fake.__aexit__()


if __name__ == "__main__":  # PYTHONPATH=tests python -m fakes.wechat_api [port]
    import contextlib
    import sys

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
