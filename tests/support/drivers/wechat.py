"""Drive the WeChat Official Account channel as WeChat does: signed (and encrypted) XML pushes.

- `WechatPusher` builds what WeChat would POST (plaintext, or safe mode with `msg_signature`)
  and opens the passive reply (decrypting it with wechatpy's own `WeChatCrypto`).
- `WechatDriver` is the golden replay driver (tests/support/drivers, see the issue-4 brief):
  `send(text)` / `upload(filename, data)` return the passive reply plus every customer-service
  message the fake API server received for this user during that step.
- `wechat_stack(store, ...)` runs the whole channel for a test: a fake WeChat API server, a
  Runtime over `store`, a Gateway, the adapter's routes on an aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from defusedxml.ElementTree import fromstring
from fakes.wechat_api import AES_KEY, APP_ID, SECRET, TOKEN, FakeWechatApi
from wechatpy.crypto import WeChatCrypto

from bot.edges import StoreReplyWindow, StoreTokenCache
from bot.runtime import Runtime
from bot.wiring import workday_end_from
from conversations.assistant import Assistant
from conversations.engine import Engine
from handlers.base import Gateway, Steps
from handlers.config import WechatSettings
from handlers.wechat import WechatAdapter, make_adapter
from notifications.calendar import WorkdayCalendar
from storage.files import FileStore
from storage.store import Store
from support.console_harness import CAMPAIGNS, FIXED_NOW, SHARED_FILES, catalog, regions
from support.outage import FailingSteps

ACCOUNT = "gh_fakeaccount0"  # the account's original id: ToUserName of every push
SUCCESS = "success"

# Hostile documents a push may carry (each must be refused without being expanded).
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(2, 10))
    + '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    + "]><xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
    + "<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"
)
HUGE_TEXT = (
    "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>" + "x" * (1024 * 1024) + "</Content><MsgId>1</MsgId></xml>"
)


class Clock:
    """A clock a test moves by hand (aware datetimes)."""

    def __init__(self, now: dt.datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class WechatPusher:
    """Builds WeChat pushes for one account; `safe=True` encrypts them (安全模式).

    Pushes are signed with the time `clock` says (the adapter's: it refuses a timestamp
    outside its window, issue 8; by default the tests' fixed clock, which `serving()` and
    `wechat_stack()` use too) and a fresh nonce each.
    """

    def __init__(
        self,
        settings: WechatSettings,
        *,
        safe: bool = False,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if safe and not settings.aes_key:
            raise ValueError("safe mode needs settings.aes_key")
        self.settings = settings
        self.safe = safe
        self.clock = clock or (lambda: FIXED_NOW)
        self.crypto = (
            WeChatCrypto(settings.token, settings.aes_key, settings.app_id) if safe else None
        )
        self._ids = itertools.count(6_800_000_000_000_000_001)
        self._times = itertools.count(1_666_230_000)

    def next_msg_id(self) -> str:
        return str(next(self._ids))

    def next_time(self) -> str:
        """A CreateTime: each push its own (events are deduplicated by sender and time)."""
        return str(next(self._times))

    def timestamp(self) -> str:
        """The query's signed timestamp: now, by the clock."""
        return str(int(self.clock().timestamp()))

    def xml(
        self, openid: str, msg_type: str, create_time: str | None = None, **fields: str
    ) -> str:
        parts = [
            f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>",
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
            f"<CreateTime>{create_time or self.next_time()}</CreateTime>",
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
        ]
        parts += [f"<{name}>{escape(value)}</{name}>" for name, value in fields.items()]
        return "<xml>" + "".join(parts) + "</xml>"

    def text(self, openid: str, content: str, msg_id: str | None = None) -> str:
        return self.xml(openid, "text", Content=content, MsgId=msg_id or self.next_msg_id())

    def event(self, openid: str, event: str, key: str | None = None, **kw: str) -> str:
        fields = {"Event": event, **({"EventKey": key} if key is not None else {})}
        return self.xml(openid, "event", **kw, **fields)

    def image(self, openid: str, media_id: str) -> str:
        return self.xml(
            openid,
            "image",
            PicUrl="http://mmbiz.example/pic",
            MediaId=media_id,
            MsgId=self.next_msg_id(),
        )

    def file(self, openid: str, media_id: str, filename: str, size: int) -> str:
        return self.xml(
            openid,
            "file",
            Title=filename,
            FileName=filename,
            FileSize=str(size),
            MediaId=media_id,
            MsgId=self.next_msg_id(),
        )

    def sign(
        self,
        xml: str,
        *,
        token: str | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """The query and body WeChat would POST for `xml` (signed with `token`)."""
        token = token if token is not None else self.settings.token
        timestamp = timestamp or self.timestamp()
        nonce = nonce or secrets.token_hex(5)
        query = {"timestamp": timestamp, "nonce": nonce, "openid": "x"}
        query["signature"] = signature(token, timestamp, nonce)
        if self.crypto is None:
            return query, xml.encode("utf-8")
        envelope = self.crypto.encrypt_message(xml, nonce, timestamp)
        fields = _fields(envelope)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = signature(token, timestamp, nonce, fields["Encrypt"])
        # WeChat's safe-mode body: ToUserName and Encrypt only.
        body = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>"
        )
        return query, body.encode("utf-8")

    def open_reply(self, body: str) -> str:
        """The text of a passive reply ('' for `success` or an empty body)."""
        if body in ("", SUCCESS):
            return ""
        if self.crypto is not None:
            fields = _fields(body)
            body = self.crypto.decrypt_message(
                body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
            )
        fields = _fields(body)
        if fields.get("MsgType") != "text":
            raise AssertionError(f"passive reply is not text: {fields.get('MsgType')}")
        return fields.get("Content", "")


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def _fields(xml: str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in fromstring(xml)}


@dataclass
class Answer:
    status: int
    body: str  # as received (encrypted in safe mode)
    text: str  # the passive reply's text, '' for `success`


class WechatDriver:
    """One WeChat user talking to the bot (the golden replay driver; see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        fake: FakeWechatApi,
        settings: WechatSettings,
        *,
        safe: bool = False,
        openid: str = "o-golden-user",
        gateway: Gateway | None = None,
        settle: float = 0.2,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/wechat"
        self.fake = fake
        self.pusher = WechatPusher(settings, safe=safe, clock=clock)
        self.openid = openid
        self.gateway = gateway
        self.settle = settle  # without a gateway to watch: how long to wait for late messages
        self.server: Any = None  # the `awardbot serve` Server, when `wechat_driver` made it
        self._session: aiohttp.ClientSession | None = None
        self._media = itertools.count(1)

    async def __aenter__(self) -> WechatDriver:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, xml: str, *, token: str | None = None) -> Answer:
        """POST one push; the raw answer."""
        return await self.post_signed(*self.pusher.sign(xml, token=token))

    async def post_signed(self, query: dict[str, str], body: bytes) -> Answer:
        """POST a push signed before (the identical request again: a platform retry)."""
        assert self._session is not None, "use `async with WechatDriver(...)`"
        async with self._session.post(self.url, params=query, data=body) as response:
            text = await response.text()
            status = response.status
        opened = self.pusher.open_reply(text) if status == 200 else ""
        return Answer(status, text, opened)

    async def exchange(self, xml: str) -> str:
        """POST a push; the passive reply and the customer-service messages that followed."""
        before = len(self.fake.sent_texts())
        answer = await self.post(xml)
        if answer.status != 200:
            raise AssertionError(f"POST /wechat answered {answer.status}: {answer.body[:200]}")
        await self.idle()
        later = [text for who, text in self.fake.sent_texts()[before:] if who == self.openid]
        return "\n\n".join(part for part in [answer.text, *later] if part)

    async def idle(self) -> None:
        """Until the bot has nothing in flight (background sends included)."""
        if self.gateway is None:
            await asyncio.sleep(self.settle)
            return
        async with asyncio.timeout(10):
            while self.gateway.busy:  # noqa: ASYNC110 - the gateway offers no public event
                await asyncio.sleep(0.01)

    async def send(self, text: str) -> str:
        return await self.exchange(self.pusher.text(self.openid, text))

    async def upload(self, filename: str, data: bytes) -> str:
        """The user sends a file (a `file` push; its MediaId is served by the fake API)."""
        media_id = f"MEDIA{next(self._media):04d}"
        self.fake.add_media(media_id, data, filename=filename)
        return await self.exchange(self.pusher.file(self.openid, media_id, filename, len(data)))

    async def event(self, event: str, key: str | None = None) -> str:
        return await self.exchange(self.pusher.event(self.openid, event, key))


# ----- a whole channel for a test -------------------------------------------------------------


def build_runtime(store: Store, clock: Callable[[], dt.datetime]) -> Runtime:
    engine = Engine(catalog(), clock=clock)
    return Runtime(
        Assistant(catalog(), engine),
        store,
        regions(),
        files=FileStore(SHARED_FILES, store.sealer),
        workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
    )


@dataclass
class WechatStack:
    fake: FakeWechatApi
    settings: WechatSettings
    runtime: Runtime
    gateway: Gateway
    adapter: WechatAdapter
    url: str
    clock: Clock
    safe: bool

    def driver(self, openid: str = "o-golden-user") -> WechatDriver:
        return WechatDriver(
            self.url,
            self.fake,
            self.settings,
            safe=self.safe,
            openid=openid,
            gateway=self.gateway,
            clock=self.clock,
        )


@asynccontextmanager
async def wechat_stack(
    store: Store,
    *,
    safe: bool = False,
    template_status: str | None = None,
    reply_budget: float = 4.0,
    wrap_steps: Callable[[Steps], Steps] | None = None,
    clock: Clock | None = None,
    **adapter_options: Any,
) -> AsyncIterator[WechatStack]:
    """The WeChat channel over `store` against a fake API server (see the module docstring)."""
    clock = clock or Clock()
    async with FakeWechatApi() as fake:
        settings = fake.settings(
            aes_key=AES_KEY if safe else None, template_status=template_status
        )
        runtime = build_runtime(store, clock)
        steps: Steps = wrap_steps(runtime) if wrap_steps else runtime
        gateway = Gateway(steps)
        adapter = make_adapter(
            settings,
            gateway,
            tokens=StoreTokenCache(store),
            windows=StoreReplyWindow(store),
            clock=clock,
            reply_budget=reply_budget,
            **adapter_options,
        )
        app = web.Application(client_max_size=1024 * 1024)
        app.add_routes(adapter.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await adapter.start()
        try:
            yield WechatStack(
                fake, settings, runtime, gateway, adapter, f"http://127.0.0.1:{port}", clock, safe
            )
        finally:
            await gateway.drain(10)
            await adapter.stop()
            await runner.cleanup()
            gateway.shutdown()


@asynccontextmanager
async def wechat_driver(
    store: Store,
    *,
    mode: str = "plaintext",
    files_dir: Path | None = None,
    openid: str = "o-golden-user",
    clock: Callable[[], dt.datetime] | None = None,
    **options: Any,
) -> AsyncIterator[WechatDriver]:
    """The golden driver on `awardbot serve` (tests/support/serving.py), configured like a user
    would (AWARDBOT_WECHAT_*), against a fake WeChat API; `mode` is "plaintext" or "safe".
    `options` go to `serving` (and the Server); the driver's `server` is the one running."""
    from support.serving import serving

    if mode not in ("plaintext", "safe"):
        raise ValueError(f"mode must be plaintext or safe, not {mode!r}")
    safe = mode == "safe"
    async with FakeWechatApi() as fake:
        env = {
            "AWARDBOT_WECHAT_APP_ID": APP_ID,
            "AWARDBOT_WECHAT_APP_SECRET": SECRET,
            "AWARDBOT_WECHAT_TOKEN": TOKEN,
            "AWARDBOT_WECHAT_AES_KEY": AES_KEY if safe else "",
            "AWARDBOT_WECHAT_API_BASE": fake.url,
        }
        async with serving(store, env, clock=clock, files_dir=files_dir, **options) as server:
            settings = server.settings.wechat
            assert settings is not None
            driver = WechatDriver(
                server.url,
                fake,
                settings,
                safe=safe,
                openid=openid,
                gateway=server.gateway,
                clock=server.clock,
            )
            driver.server = server
            async with driver:
                yield driver


# ----- WeChat and WeCom pushes through `awardbot serve` (tests/reliability) -------------------

WECOM_TOKEN = "fake-wecom-token"
PUSH_TARGETS = ("wechat-plaintext", "wechat-safe", "wecom")


@dataclass
class PushTarget:
    """One signed-push channel of a running `serve`: build, sign and post pushes, open answers.

    `sign(inner, nonce=..., timestamp=...)` gives the (query, body) the platform would POST;
    `open_reply(body)` the text of our passive reply ('' for `success` or an empty answer).
    """

    name: str  # one of PUSH_TARGETS
    server: Any  # bot.server.Server
    path: str
    text: Callable[..., str]  # (user, content, msg_id=None) -> inner XML
    xml: Callable[..., str]  # (user, msg_type, create_time=None, **fields) -> inner XML
    sign: Callable[..., tuple[dict[str, str], bytes]]
    open_reply: Callable[[str], str]
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"{self.server.url}{self.path}"

    async def post(self, query: dict[str, str], body: bytes) -> tuple[int, str]:
        async with self.session.post(self.url, params=query, data=body) as response:
            return response.status, await response.text()

    async def push(self, inner: str, **signing: str) -> tuple[int, str]:
        """POST `inner` signed now (or with the given nonce/timestamp); (status, reply text)."""
        status, body = await self.post(*self.sign(inner, **signing))
        return status, self.open_reply(body) if status == 200 else body


@asynccontextmanager
async def push_target(
    store: Store,
    name: str,
    *,
    clock: Callable[[], dt.datetime],
    files_dir: Path | None = None,
    **options: Any,
) -> AsyncIterator[PushTarget]:
    """`serve` over `store` with one channel configured as a user would (env), against its
    fake API, and the platform's side of its pushes (`name`: one of PUSH_TARGETS)."""
    from fakes.wecom_api import FakeWecomApi, WecomPusher

    from support.serving import serving

    if name not in PUSH_TARGETS:
        raise ValueError(f"unknown push target {name!r}")
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        if name == "wecom":
            wecom = await stack.enter_async_context(FakeWecomApi())
            env = {
                "AWARDBOT_WECOM_CORP_ID": wecom.corp_id,
                "AWARDBOT_WECOM_SECRET": wecom.secret,
                "AWARDBOT_WECOM_AGENT_ID": str(wecom.agent_id),
                "AWARDBOT_WECOM_TOKEN": WECOM_TOKEN,
                "AWARDBOT_WECOM_AES_KEY": AES_KEY,
                "AWARDBOT_WECOM_API_BASE": wecom.url,
            }
            pusher = WecomPusher(
                token=WECOM_TOKEN,
                aes_key=AES_KEY,
                corp_id=wecom.corp_id,
                agent_id=wecom.agent_id,
                clock=clock,
            )
            text, xml, sign, opened = pusher.text, pusher.xml, pusher.sign, pusher.open_reply
        else:
            fake = await stack.enter_async_context(FakeWechatApi())
            safe = name == "wechat-safe"
            env = {
                "AWARDBOT_WECHAT_APP_ID": APP_ID,
                "AWARDBOT_WECHAT_APP_SECRET": SECRET,
                "AWARDBOT_WECHAT_TOKEN": TOKEN,
                "AWARDBOT_WECHAT_AES_KEY": AES_KEY if safe else "",
                "AWARDBOT_WECHAT_API_BASE": fake.url,
            }
            wechat = WechatPusher(fake.settings(aes_key=AES_KEY if safe else None), safe=safe)
            wechat.clock = clock
            text, xml, sign, opened = wechat.text, wechat.xml, wechat.sign, wechat.open_reply
        server = await stack.enter_async_context(
            serving(store, env, clock=clock, files_dir=files_dir, **options)
        )
        path = "/wecom" if name == "wecom" else "/wechat"
        yield PushTarget(name, server, path, text, xml, sign, opened, session)


def Unreachable() -> FailingSteps:  # noqa: N802 - reads as the state it stands for
    """The runtime while its database is down: every step raises Unavailable."""
    return FailingSteps()


# ----- by hand: push one message to a running `awardbot serve` --------------------------------


async def _push_once(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="POST one signed WeChat text push; print reply")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the bot's base URL")
    parser.add_argument("--token", required=True, help="AWARDBOT_WECHAT_TOKEN")
    parser.add_argument("--app-id", required=True, help="AWARDBOT_WECHAT_APP_ID")
    parser.add_argument("--aes-key", help="AWARDBOT_WECHAT_AES_KEY: push in safe mode")
    parser.add_argument("--openid", default="o-local-tester")
    parser.add_argument("text")
    args = parser.parse_args(argv)
    settings = WechatSettings(
        args.app_id, "", args.token, args.aes_key, "http://unused", None, None
    )
    pusher = WechatPusher(settings, safe=bool(args.aes_key), clock=lambda: dt.datetime.now(dt.UTC))
    query, body = pusher.sign(pusher.text(args.openid, args.text))
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{args.url.rstrip('/')}/wechat", params=query, data=body) as response,
    ):
        text = await response.text()
        if response.status != 200:
            print(f"HTTP {response.status}: {text}")
            return 1
    print(pusher.open_reply(text) or "(success: the answer follows as a customer-service message)")
    return 0


if __name__ == "__main__":  # PYTHONPATH=tests python -m support.drivers.wechat --help
    import sys

    raise SystemExit(asyncio.run(_push_once(sys.argv[1:])))
