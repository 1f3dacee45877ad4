"""The WeCom (企业微信) app: officials talk to the assistant there and receive app messages.

Callbacks (always encrypted):
- `GET /wecom`: URL verification; the decrypted `echostr` is answered at once (WeCom waits 1 s).
- `POST /wecom`: a member's message or event. Order of checks: size (64 KiB, else 413), the
  envelope through the hostile-XML gate (400), the signature (403, nothing done), decryption,
  the inner XML through the gate again (400), then wechatpy parses it.

WeCom waits 5 s for an answer and then retries (3 times). A step that finishes within `budget`
is answered passively (an encrypted reply to the callback); a slower one gets an empty answer
at once and its replies follow as app messages. Retries are answered once: text messages by
MsgId through the gateway, events by FromUserName+CreateTime.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from aiohttp import web
from wechatpy.enterprise import create_reply, parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatException
from wechatpy.messages import BaseMessage

from conversations.engine import Reply
from conversations.keys import Channel, ConversationKey
from handlers.base import Gateway, PushLedger, cdata_safe, read_capped, render_text, utf8_len
from handlers.config import WecomSettings
from handlers.wecom.client import WecomApi, WecomApiError
from handlers.wecom.sender import TEXT_LIMIT, MemberLimit, WecomSender, pieces_of
from handlers.xmlgate import MAX_BODY, XmlRefused, parse_flat
from storage.store import Store

log = logging.getLogger(__name__)

CHANNEL = Channel.WECOM.value
PATH = "/wecom"
DEFAULT_BUDGET = 4.0  # seconds a step may take and still be answered passively (WeCom waits 5)
MAX_WAITS = 3  # times a chat reply waits for the member's per-minute limit before giving up
GREETING_EVENTS = frozenset({"enter_agent", "subscribe"})
TEXT_ONLY = "目前只支持文字消息，请直接输入文字或命令（发送 /help 查看可用命令）。"

Work = Callable[[], Awaitable[list[Reply] | None]]


class WecomAdapter:
    """`GET|POST /wecom` and the app-message sender for one WeCom app (agent)."""

    channel: str = CHANNEL

    def __init__(
        self,
        settings: WecomSettings,
        gateway: Gateway,
        store: Store,
        *,
        clock: Callable[[], datetime],
        budget: float = DEFAULT_BUDGET,
        api_timeout: float = 10.0,
        pushes: PushLedger | None = None,
    ) -> None:
        self._gateway = gateway
        self._crypto = WeChatCrypto(settings.token, settings.aes_key, settings.corp_id)
        self._api = WecomApi(settings, store, clock=clock, timeout=api_timeout)
        self._limit = MemberLimit(store, clock)
        self._sender = WecomSender(self._api, self._limit)
        self._budget = budget
        self._pushes = pushes  # nonces seen (replays refused); None: this process only
        self._events: OrderedDict[str, None] = OrderedDict()  # recent events, for retries

    # ----- ChannelAdapter ------------------------------------------------------------------

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        return [web.get(PATH, self.verify), web.post(PATH, self.receive)]

    async def start(self) -> None:
        """Nothing to start: WeCom calls us."""

    async def stop(self) -> None:
        self._api.close()

    def sender(self) -> WecomSender:
        return self._sender

    # ----- callbacks -------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """URL verification: the decrypted echostr as plain text, if the signature holds."""
        query = request.query
        try:
            echo = self._crypto.check_signature(
                query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
            )
        except (KeyError, InvalidSignatureException):
            return self._refused(403, "signature")
        except (WeChatException, ValueError, IndexError, struct.error):
            return self._refused(400, "decrypt")
        return web.Response(text=str(echo))

    async def receive(self, request: web.Request) -> web.Response:
        """One encrypted message or event from WeCom."""
        if self._gateway.closing:
            return web.Response(status=503)  # WeCom retries; another worker may take it
        query = request.query
        try:
            signature, timestamp, nonce = (
                query["msg_signature"],
                query["timestamp"],
                query["nonce"],
            )
        except KeyError:
            return self._refused(403, "signature")
        body = await read_capped(request, MAX_BODY)
        if body is None:
            return self._refused(413, "too_large")
        try:
            encrypted = parse_flat(body).get("Encrypt")
        except XmlRefused:
            return self._refused(400, "xml")
        if not encrypted:
            return self._refused(400, "xml")
        try:
            inner = self._crypto.decrypt_message(
                {"Encrypt": encrypted}, signature, timestamp, nonce
            )
        except InvalidSignatureException:
            return self._refused(403, "signature")
        except (WeChatException, ValueError, IndexError, struct.error):
            return self._refused(400, "decrypt")
        try:
            fields = parse_flat(inner)
        except XmlRefused:
            return self._refused(400, "xml")
        if not fields.get("MsgType") or not fields.get("FromUserName"):
            return self._refused(400, "xml")
        message = parse_message(inner)  # safe now: no DTD, no entities
        work = self._work_for(message)
        if work is None:
            return web.Response(text="")
        return await self._answer(message, work, nonce, timestamp)

    # ----- what a message means --------------------------------------------------------------

    def _work_for(self, message: BaseMessage) -> Work | None:
        user = str(message.source)
        if message.type == "text":
            delivery = str(message.id) if message.id else f"{user}:{message.time}"
            content = str(message.content or "")
            return lambda: self._gateway.handle(CHANNEL, user, content, delivery_id=delivery)
        if message.type == "event":
            if str(getattr(message, "event", "")).lower() not in GREETING_EVENTS:
                return None  # location reports, menu views, leaving the app: nothing to say
            if not self._first_event(f"{user}:{message.time}"):
                return None
            return lambda: self._open(user)
        return self._note

    async def _open(self, user: str) -> list[Reply]:
        """The member entered the app: the greeting, or the question they were left at."""
        self._gateway.metrics.inc("awardbot_updates_received_total", channel=CHANNEL)
        return await self._gateway.run(self._gateway.steps.open, ConversationKey(CHANNEL, user))

    async def _note(self) -> list[Reply]:
        self._gateway.metrics.inc("awardbot_updates_received_total", channel=CHANNEL)
        return [Reply(TEXT_ONLY)]

    def _first_event(self, key: str) -> bool:
        """False for a retry of an event seen lately in this process.

        Events only greet or re-ask, which is harmless to repeat, so a retry reaching another
        worker is let through rather than recorded in the database.
        """
        if key in self._events:
            return False
        self._events[key] = None
        while len(self._events) > 1024:
            self._events.popitem(last=False)
        return True

    # ----- answering -------------------------------------------------------------------------

    async def _answer(
        self, message: BaseMessage, work: Work, nonce: str, timestamp: str
    ) -> web.Response:
        user = str(message.source)
        task = asyncio.ensure_future(work())
        try:
            replies = await asyncio.wait_for(asyncio.shield(task), self._budget)
        except TimeoutError:
            self._gateway.spawn(self._later(user, task), channel=CHANNEL)
            return web.Response(text="")  # WeCom stops retrying; the answer follows
        if not replies:
            return web.Response(text="")  # a retry answered before, or nothing to say
        text = _joined(replies)
        if utf8_len(text) > TEXT_LIMIT:
            self._gateway.spawn(self._push(user, text), channel=CHANNEL)
            return web.Response(text="")
        reply = create_reply(cdata_safe(text), message)
        body = self._crypto.encrypt_message(reply.render(), nonce, timestamp)
        self._gateway.metrics.inc("awardbot_replies_sent_total", channel=CHANNEL)
        return web.Response(text=body, content_type="text/xml")

    async def _later(self, user: str, task: asyncio.Future[list[Reply] | None]) -> None:
        replies = await task
        if replies:
            await self._push(user, _joined(replies))

    async def _push(self, user: str, text: str) -> None:
        """`text` as app messages, waiting for the member's per-minute limit if need be."""
        for piece in pieces_of(text):
            for _ in range(MAX_WAITS):
                wait = await self._gateway.run(self._limit.reserve, user)
                if wait is None:
                    break
                await asyncio.sleep(wait.total_seconds())
            else:
                self._failed("limit")
                return
            try:
                await self._gateway.run(self._api.send_text, user, piece)
            except WecomApiError as exc:
                self._failed("send")
                log.warning("wecom app message not sent: %s", exc.reason)
                return
            self._gateway.metrics.inc("awardbot_replies_sent_total", channel=CHANNEL)

    def _failed(self, kind: str) -> None:
        self._gateway.metrics.inc("awardbot_errors_total", channel=CHANNEL, kind=kind)

    def _refused(self, status: int, kind: str) -> web.Response:
        self._failed(kind)
        return web.Response(status=status)


def _joined(replies: list[Reply]) -> str:
    return "\n\n".join(render_text(reply) for reply in replies)


def make_adapter(
    settings: WecomSettings,
    gateway: Gateway,
    store: Store,
    *,
    clock: Callable[[], datetime],
    budget: float = DEFAULT_BUDGET,
    pushes: PushLedger | None = None,
) -> WecomAdapter:
    """The WeCom channel for `awardbot serve` (see `bot.channels`)."""
    return WecomAdapter(settings, gateway, store, clock=clock, budget=budget, pushes=pushes)
