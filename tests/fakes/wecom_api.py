"""A fake WeCom API (qyapi.weixin.qq.com) on 127.0.0.1 for the real wechatpy client.

Serves `/cgi-bin/gettoken`, `/cgi-bin/message/send`, `/cgi-bin/media/get`,
`/cgi-bin/media/upload` (multipart, like WeCom's temporary media) and `/cgi-bin/menu/create`;
checks the access_token of every call like WeCom (40014 unknown, 42001 expired), records what
it was asked, and answers the errcodes a test queues (`fail_next`).

A text card (`msgtype: textcard`) needs a description and a url (44004 / 40058 without); a
title over 128 bytes or a description over 512 bytes of UTF-8 is cut, as WeCom does without a
word, and the cut is recorded in `truncated` (touser, field) so a test can see it happened.

    async with FakeWecomApi() as api:
        settings = api.settings(token=..., aes_key=...)  # api_base points here
        ...
        assert api.texts() == [("zhangsan", "…")]
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from handlers.config import WecomSettings

CORP_ID = "wwfakecorp0000001"
SECRET = "fake-wecom-secret-0123456789"
AGENT_ID = 1000002
SEND = "/cgi-bin/message/send"
CARD_TITLE_LIMIT = 128  # bytes of UTF-8 (WeCom's textcard title)
CARD_DESCRIPTION_LIMIT = 512  # bytes of UTF-8 (its description)
UPLOAD = "/cgi-bin/media/upload"
GETTOKEN = "/cgi-bin/gettoken"

ERRMSG = {
    40001: "invalid credential",
    40004: "invalid media type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40058: "invalid parameter",
    42001: "access_token expired",
    44004: "empty content",
    45009: "api freq out of limit",
    60111: "userid not found",
    81013: "user & party & tag all invalid",
}


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    params: dict[str, str]
    body: dict[str, Any] | None = field(default=None)


class FakeWecomApi:
    """The fake server; an async context manager (binds a free port on 127.0.0.1)."""

    def __init__(
        self,
        *,
        corp_id: str = CORP_ID,
        secret: str = SECRET,
        agent_id: int = AGENT_ID,
        expires_in: int = 7200,
        token_delay: float = 0.0,
        port: int = 0,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.expires_in = expires_in
        self.token_delay = token_delay  # seconds gettoken takes (to make workers race)
        self.port = port  # 0: any free port
        self.calls: list[Call] = []
        self.messages: list[dict[str, Any]] = []  # accepted message/send bodies
        self.menus: list[dict[str, Any]] = []
        self.media: dict[str, tuple[str, bytes]] = {}  # media_id -> (filename, data)
        self.invalid_users: set[str] = set()  # answered in `invaliduser` (errcode 0)
        self.truncated: list[tuple[str, str]] = []  # (touser, textcard field) WeCom cut
        self._errors: dict[str, deque[int]] = defaultdict(deque)
        self._numbers = itertools.count(1)
        self._valid: set[str] = set()
        self._expired: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ----- test controls ---------------------------------------------------------------------

    def fail_next(self, errcode: int, *, path: str = SEND, times: int = 1) -> None:
        """Answer the next `times` calls of `path` with `errcode`."""
        self._errors[path].extend([errcode] * times)

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (42001)."""
        self._expired |= self._valid
        self._valid.clear()

    def settings(
        self, *, token: str, aes_key: str, notice_url: str | None = None
    ) -> WecomSettings:
        return WecomSettings(
            corp_id=self.corp_id,
            secret=self.secret,
            agent_id=self.agent_id,
            token=token,
            aes_key=aes_key,
            api_base=self.url,
            notice_url=notice_url,
        )

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def files(self) -> list[tuple[str, str, str, bytes]]:
        """(touser, msgtype, uploaded file name, bytes) of every accepted file or image
        message, in order, its media as uploaded."""
        out = []
        for m in self.messages:
            if m["msgtype"] in ("file", "image"):
                filename, data = self.media[m[m["msgtype"]]["media_id"]]
                out.append((m["touser"], m["msgtype"], filename, data))
        return out

    def cards(self) -> list[tuple[str, dict[str, Any]]]:
        """(touser, textcard as WeCom shows it) of every accepted text card, in order."""
        return [(m["touser"], m["textcard"]) for m in self.messages if m["msgtype"] == "textcard"]

    def texts(self) -> list[tuple[str, str]]:
        """(touser, content) of every accepted text message, in order."""
        return [
            (m["touser"], m["text"]["content"]) for m in self.messages if m["msgtype"] == "text"
        ]

    # ----- server ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeWecomApi:
        app = web.Application()
        app.router.add_get(GETTOKEN, self._gettoken)
        app.router.add_post(SEND, self._send)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        app.router.add_post(UPLOAD, self._media_upload)
        app.router.add_post("/cgi-bin/menu/create", self._menu_create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _gettoken(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.calls.append(Call(GETTOKEN, params))
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if error := self._queued(GETTOKEN):
            return error
        if params.get("corpid") != self.corp_id:
            return _error(40013)
        if params.get("corpsecret") != self.secret:
            return _error(40001)
        token = f"fake-token-{next(self._numbers)}"
        self._valid.add(token)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}
        )

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(Call(SEND, dict(request.query), body))
        if refused := self._token_refused(request) or self._queued(SEND):
            return refused
        if int(body.get("agentid", 0)) != self.agent_id:
            return _error(40056)  # invalid agentid
        if body.get("msgtype") == "textcard":
            card = body.get("textcard") or {}
            if not card.get("description"):
                return _error(44004)
            if not card.get("url"):
                return _error(40058)
            body = {**body, "textcard": self._cut(str(body.get("touser", "")), card)}
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        invalid = [u for u in users if u in self.invalid_users]
        if len(invalid) < len(users):
            self.messages.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid)})

    def _cut(self, touser: str, card: dict[str, Any]) -> dict[str, Any]:
        """The card as WeCom shows it: title and description cut to their byte limits."""
        shown = dict(card)
        for name, limit in (("title", CARD_TITLE_LIMIT), ("description", CARD_DESCRIPTION_LIMIT)):
            data = str(card.get(name, "")).encode("utf-8")
            if len(data) > limit:
                shown[name] = data[:limit].decode("utf-8", "ignore")
                self.truncated.append((touser, name))
        return shown

    async def _media_get(self, request: web.Request) -> web.Response:
        self.calls.append(Call("/cgi-bin/media/get", dict(request.query)))
        if refused := self._token_refused(request) or self._queued("/cgi-bin/media/get"):
            return refused
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return _error(40007)
        filename, data = found
        return web.Response(
            body=data,
            content_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def _media_upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.calls.append(Call(UPLOAD, dict(request.query)))
        if refused := self._token_refused(request) or self._queued(UPLOAD):
            return refused
        kind = request.query.get("type", "")
        media = form.get("media")
        if kind not in ("image", "voice", "video", "file") or not isinstance(media, web.FileField):
            return _error(40004)  # invalid media type
        data = media.file.read()
        limit = 10 * 1024 * 1024 if kind == "image" else 20 * 1024 * 1024
        if not 5 <= len(data) <= limit:
            return _error(40006)  # invalid file size
        media_id = f"media-{next(self._numbers)}"
        self.media[media_id] = (media.filename, data)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "type": kind, "media_id": media_id,
             "created_at": "1666229400"}
        )  # fmt: skip

    async def _menu_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(Call("/cgi-bin/menu/create", dict(request.query), body))
        if refused := self._token_refused(request) or self._queued("/cgi-bin/menu/create"):
            return refused
        self.menus.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _token_refused(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token in self._valid:
            return None
        return _error(42001 if token in self._expired else 40014)

    def _queued(self, path: str) -> web.Response | None:
        queue = self._errors[path]
        return _error(queue.popleft()) if queue else None


def _error(errcode: int) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")})


# ----- WeCom's side of the callbacks ----------------------------------------------------------


class WecomPusher:
    """What WeCom POSTs to `/wecom`: inner documents encrypted and signed (wechatpy's crypto),
    at the time `clock` says with a fresh nonce each, and our encrypted answers opened."""

    def __init__(
        self,
        *,
        token: str,
        aes_key: str,
        corp_id: str = CORP_ID,
        agent_id: int = AGENT_ID,
        clock: Callable[[], datetime],
    ) -> None:
        from wechatpy.enterprise.crypto import WeChatCrypto

        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.clock = clock
        self._ids = itertools.count(7_100_000_000_000_000_001)

    def text(self, user: str, content: str, msg_id: str | None = None) -> str:
        return self.xml(user, "text", Content=content, MsgId=msg_id or str(next(self._ids)))

    def event(self, user: str, event: str, create_time: str | None = None) -> str:
        return self.xml(user, "event", create_time, Event=event, EventKey="")

    def xml(self, user: str, msg_type: str, create_time: str | None = None, **fields: str) -> str:
        parts = [
            f"<ToUserName><![CDATA[{self.corp_id}]]></ToUserName>",
            f"<FromUserName><![CDATA[{user}]]></FromUserName>",
            f"<CreateTime>{create_time or self.timestamp()}</CreateTime>",
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
            *(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items()),
            f"<AgentID>{self.agent_id}</AgentID>",
        ]
        return "<xml>" + "".join(parts) + "</xml>"

    def timestamp(self) -> str:
        return str(int(self.clock().timestamp()))

    def sign(
        self, inner: str, *, nonce: str | None = None, timestamp: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """(query, body) of the callback carrying `inner`."""
        from handlers.xmlgate import parse_flat

        nonce = nonce or str(secrets.randbelow(10**10))
        timestamp = timestamp or self.timestamp()
        envelope = self.crypto.encrypt_message(inner, nonce, timestamp)
        query = {
            "msg_signature": parse_flat(envelope)["MsgSignature"],
            "timestamp": timestamp,
            "nonce": nonce,
        }
        return query, envelope.encode()

    def open_reply(self, body: str) -> str:
        """The text of our passive reply ('' for an empty answer)."""
        from wechatpy.enterprise import parse_message

        from handlers.xmlgate import parse_flat

        if not body:
            return ""
        fields = parse_flat(body)
        inner = self.crypto.decrypt_message(
            body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
        )
        return str(parse_message(inner).content)


# ----- trying the channel by hand (README: "Try it locally") --------------------------------


def main(argv: list[str] | None = None) -> int:
    """`serve`: run the fake API; `verify` / `say`: play WeCom's side of the callbacks
    against a running `awardbot serve` (token, key and corp id from AWARDBOT_WECOM_*)."""
    import argparse
    import os
    import time

    import requests
    from wechatpy.enterprise import parse_message
    from wechatpy.enterprise.crypto import WeChatCrypto

    from handlers.xmlgate import parse_flat

    parser = argparse.ArgumentParser(prog="python -m tests.fakes.wecom_api")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the fake WeCom API until Ctrl-C")
    serve.add_argument("--port", type=int, default=8090)
    for name in ("verify", "say"):
        command = sub.add_parser(name, help=f"{name} against awardbot serve")
        command.add_argument("--url", default="http://127.0.0.1:8080/wecom")
    sub.choices["say"].add_argument("--user", default="lisi", help="the member's WeCom user id")
    sub.choices["say"].add_argument("text")
    args = parser.parse_args(argv)

    if args.command == "serve":
        try:
            return asyncio.run(_serve_forever(args.port))
        except KeyboardInterrupt:
            return 0
    crypto = WeChatCrypto(
        os.environ["AWARDBOT_WECOM_TOKEN"],
        os.environ["AWARDBOT_WECOM_AES_KEY"],
        os.environ.get("AWARDBOT_WECOM_CORP_ID", CORP_ID),
    )
    # A fresh nonce each time: the bot refuses one it has seen (issue 8).
    nonce, timestamp = str(secrets.randbelow(10**10)), str(int(time.time()))
    if args.command == "verify":
        envelope = parse_flat(crypto.encrypt_message("<xml>echo</xml>", nonce, timestamp))
        echostr = envelope["Encrypt"]
        signature = envelope["MsgSignature"]
        response = requests.get(
            args.url,
            params={"msg_signature": signature, "timestamp": timestamp, "nonce": nonce,
                    "echostr": echostr},
            timeout=5,
        )  # fmt: skip
        print(response.status_code, response.text)
        return 0 if response.ok else 1
    inner = (
        f"<xml><ToUserName><![CDATA[{crypto.corp_id}]]></ToUserName>"
        f"<FromUserName><![CDATA[{args.user}]]></FromUserName><CreateTime>{timestamp}"
        f"</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{args.text}]]>"
        f"</Content><MsgId>{time.time_ns()}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    )
    envelope = crypto.encrypt_message(inner, nonce, timestamp)
    signature = parse_flat(envelope)["MsgSignature"]
    params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
    response = requests.post(args.url, params=params, data=envelope.encode(), timeout=10)
    if not response.ok:
        print("HTTP", response.status_code)
        return 1
    if not response.text:
        print("(empty answer: the reply comes as an app message, see the fake API's output)")
        return 0
    fields = parse_flat(response.text)
    plain = crypto.decrypt_message(
        response.text, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
    )
    print(parse_message(plain).content)
    return 0


async def _serve_forever(port: int) -> int:
    fake = FakeWecomApi(port=port)
    async with fake:
        print(f"fake WeCom API on {fake.url} (app messages are printed below)")
        print(f"AWARDBOT_WECOM_API_BASE={fake.url}")
        print(f"AWARDBOT_WECOM_CORP_ID={fake.corp_id}")
        print(f"AWARDBOT_WECOM_SECRET={fake.secret}")
        print(f"AWARDBOT_WECOM_AGENT_ID={fake.agent_id}", flush=True)
        shown = 0
        try:
            while True:
                await asyncio.sleep(0.5)
                for message in fake.messages[shown:]:
                    user, kind = message["touser"], message["msgtype"]
                    if kind == "text":
                        print(f"→ {user}: {message['text']['content']}", flush=True)
                    elif kind == "textcard":
                        card = message["textcard"]
                        button = card.get("btntxt", "详情")
                        line = f"[卡片] {card['title']} | {card['description']} | {button}"
                        print(f"→ {user}: {line} → {card['url']}", flush=True)
                    else:
                        print(f"→ {user}: [{kind}]", flush=True)
                shown = len(fake.messages)
        finally:
            print("fake WeCom API stopped", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
