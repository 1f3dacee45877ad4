"""A WeCom rig: the real runtime over the test store, the adapter's routes on a local aiohttp
server, the fake WeCom API, and the WeCom side of the callback crypto (wechatpy's own)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fakes.wecom_api import FakeWecomApi
from support.console_harness import CAMPAIGNS, FIXED_NOW, catalog, regions
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.edges import StoreSendBudget, StoreTokenCache
from bot.runtime import Runtime
from bot.wiring import workday_end_from
from conversations.assistant import Assistant
from conversations.engine import Engine, Reply
from conversations.filing import Upload
from conversations.keys import ConversationKey
from handlers.base import Gateway, Repeat
from handlers.wecom import WecomAdapter
from handlers.xmlgate import parse_flat
from notifications.calendar import WorkdayCalendar
from storage.files import FileStore
from storage.store import Store

# wechatpy's own WeCom test vector C (../shared/reference/platforms.md §1.5)
TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"


class Clock:
    def __init__(self) -> None:
        self.now = FIXED_NOW

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Recorded:
    key: ConversationKey
    delivery_id: str | None
    text: str
    replies: list[Reply] | Repeat


class RecordingSteps:
    """The runtime as the gateway sees it, recording each step; `delay` makes steps slow."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.steps: list[Recorded] = []
        self.opened: list[ConversationKey] = []
        self.delay = 0.0
        self.canned: list[Reply] | None = None  # answer this instead of stepping the runtime
        self._lock = threading.Lock()

    def open(self, key: ConversationKey) -> list[Reply]:
        replies = self.runtime.open(key)
        with self._lock:
            self.opened.append(key)
        return replies

    def handle_once(
        self,
        key: ConversationKey,
        delivery_id: str | None,
        text: str,
        upload: Upload | None = None,
        *,
        keep_answer: bool = False,
        **options: Any,  # answers, sequence, store_replies: as the runtime takes them
    ) -> list[Reply] | Repeat:
        if self.delay:
            time.sleep(self.delay)
        if self.canned is not None:
            replies: list[Reply] | Repeat = self.canned
        else:
            replies = self.runtime.handle_once(
                key, delivery_id, text, upload, keep_answer=keep_answer
            )
        with self._lock:
            self.steps.append(Recorded(key, delivery_id, text, replies))
        return replies


@dataclass
class Rig:
    fake: FakeWecomApi
    adapter: WecomAdapter
    gateway: Gateway
    steps: RecordingSteps
    client: TestClient[web.Request, web.Application]
    clock: Clock
    store: Store
    wecom: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, CORP_ID))
    _count: int = 0

    def text_xml(self, user: str, text: str, msg_id: int | None = None) -> str:
        self._count += 1
        msg_id = msg_id or 7000000000000000000 + self._count
        text = text.replace("]]>", "]]]]><![CDATA[>")  # as any XML writer would
        return (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{1666229400 + self._count}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
            f"<MsgId>{msg_id}</MsgId><AgentID>{self.fake.agent_id}</AgentID></xml>"
        )

    def event_xml(self, user: str, event: str, create_time: int = 1666229999) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey>"
            f"<AgentID>{self.fake.agent_id}</AgentID></xml>"
        )

    def signed(
        self, inner: str, *, nonce: str | None = None, timestamp: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """(body, query) WeCom would POST for `inner`: encrypted, signed at the rig's clock
        with a fresh nonce (the adapter refuses other times and seen nonces, issue 8)."""
        nonce = nonce or str(secrets.randbelow(10**10))
        timestamp = timestamp or str(int(self.clock().timestamp()))
        envelope = self.wecom.encrypt_message(inner, nonce, timestamp)
        params = {
            "msg_signature": parse_flat(envelope)["MsgSignature"],
            "timestamp": timestamp,
            "nonce": nonce,
        }
        return envelope.encode(), params

    async def post(
        self, inner: str, *, nonce: str | None = None, timestamp: str | None = None, **query: str
    ) -> tuple[int, str]:
        """POST `inner` encrypted by WeCom's side; (status, raw body)."""
        body, params = self.signed(inner, nonce=nonce, timestamp=timestamp)
        return await self.post_raw(body, {**params, **query})

    async def post_raw(self, body: bytes, params: dict[str, str]) -> tuple[int, str]:
        response = await self.client.post("/wecom", params=params, data=io.BytesIO(body))
        return response.status, await response.text()

    def opened(self, body: str) -> Any:
        """Our encrypted passive reply, decrypted and parsed by wechatpy (None if empty)."""
        if not body:
            return None
        fields = parse_flat(body)
        inner = self.wecom.decrypt_message(
            body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
        )
        return parse_message(inner)

    async def say(self, user: str, text: str) -> str:
        """The passive reply's text ('' when the answer was empty)."""
        status, body = await self.post(self.text_xml(user, text))
        assert status == 200
        reply = self.opened(body)
        return "" if reply is None else str(reply.content)

    async def settle(self) -> None:
        """Wait for background sends (slow answers) to finish."""
        assert await self.gateway.drain(10)
        self.gateway.closing = False


def build_runtime(store: Store, tmp_path: Path, clock: Clock) -> Runtime:
    engine = Engine(catalog(), clock=clock)
    return Runtime(
        Assistant(catalog(), engine),
        store,
        regions(),
        files=FileStore(tmp_path / "attachments", store.sealer),
        workday_end=workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml")),
    )


@pytest.fixture
async def rig(store: Store, tmp_path: Path) -> AsyncIterator[Rig]:
    clock = Clock()
    steps = RecordingSteps(build_runtime(store, tmp_path, clock))
    gateway = Gateway(steps)
    async with FakeWecomApi(corp_id=CORP_ID) as fake:
        adapter = WecomAdapter(
            fake.settings(token=TOKEN, aes_key=AES_KEY),
            gateway,
            tokens=StoreTokenCache(store),
            sends=StoreSendBudget(store),
            clock=clock,
            budget=2.0,
        )
        app = web.Application()
        app.add_routes(adapter.routes())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await adapter.start()
            try:
                yield Rig(fake, adapter, gateway, steps, client, clock, store)
            finally:
                await gateway.drain(10)
                await adapter.stop()
                await asyncio.to_thread(gateway.shutdown)
