"""The WeCom (企业微信) app: officials talk to the assistant there and receive app messages.

Callbacks (always encrypted):
- `GET /wecom`: URL verification; the decrypted `echostr` is answered at once (WeCom waits 1 s).
- `POST /wecom`: a member's message or event. Order of checks: size (64 KiB, else 413), the
  envelope through the hostile-XML gate (400), the signature (403, nothing done), decryption,
  the inner XML through the gate again (400), then wechatpy parses it.

Then (issue 8), before anything is recorded: the timestamp within ±`push_max_age` of our
clock (403), the inner document's shape (`xmlgate.check_shape`: MsgId, CreateTime and AgentID
numbers, an event's Event... else 400), the nonce (`handlers.pushes`: a replay is a 403).

WeCom waits 5 s for an answer and then retries (3 times). A step that finishes within `budget`
is answered passively (an encrypted reply to the callback); a slower one gets an empty answer
at once and its replies follow as app messages. A retry runs nothing twice and gets the answer
the first got (its answer may have been lost): text messages by MsgId through the gateway,
which keeps the answer with the delivery; entering the app by FromUserName+CreateTime, kept in
this process. Only what a member writes is answered: system pushes (sender `sys`, contact
changes, calendar, schedule, meeting and approval events, any type we do not know) are taken
with an empty answer and nothing said.

An answer handing over attachments (a reviewer opened one: `Reply.files`) goes entirely as app
messages, in order — each reply's text, then its files (`media/upload`, then a file or image
message) — since a passive reply carries text only; the callback gets an empty answer.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from xml.parsers.expat import ExpatError

from aiohttp import web
from wechatpy.enterprise import create_reply, parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatException
from wechatpy.messages import BaseMessage

from conversations.engine import Reply
from conversations.keys import Channel, ConversationKey
from handlers.base import (
    Gateway,
    PushLedger,
    Repeat,
    Unavailable,
    cdata_safe,
    note_outcome,
    read_capped,
    render_text,
    utf8_len,
)
from handlers.config import WecomSettings
from handlers.files import READ_FAILED, SEND_FAILED, safe_name
from handlers.ports import Attachments, EdgeError, SendBudget, TokenCache
from handlers.pushes import PushGuard, PushRefused
from handlers.wecom.client import WecomApi, WecomApiError
from handlers.wecom.sender import TEXT_LIMIT, MemberLimit, WecomSender, pieces_of
from handlers.xmlgate import (
    MAX_BODY,
    MEMBER_MESSAGES,
    Fields,
    ShapeRefused,
    XmlRefused,
    check_shape,
    parse_flat,
)

log = logging.getLogger(__name__)

CHANNEL = Channel.WECOM.value
PATH = "/wecom"
DEFAULT_BUDGET = 4.0  # seconds a step may take and still be answered passively (WeCom waits 5)
MAX_WAITS = 3  # times a chat reply waits for the member's per-minute limit before giving up
GREETING_EVENTS = frozenset({"enter_agent", "subscribe"})
SYSTEM = "sys"  # the sender of WeCom's own pushes (contacts, calendar, approvals...)
EVENTS_KEPT = 1024  # entries of recent greetings kept for retries
TEXT_ONLY = "目前只支持文字消息，请直接输入文字或命令（发送 /help 查看可用命令）。"


@dataclass(frozen=True, slots=True)
class Answer:
    """What a callback is answered with; `repeat`: the answer kept for one taken before."""

    replies: list[Reply]
    repeat: bool = False


Work = Callable[[], Awaitable[Answer]]


class WecomAdapter:
    """`GET|POST /wecom` and the app-message sender for one WeCom app (agent)."""

    channel: str = CHANNEL

    def __init__(
        self,
        settings: WecomSettings,
        gateway: Gateway,
        *,
        tokens: TokenCache,
        sends: SendBudget,
        clock: Callable[[], datetime],
        budget: float = DEFAULT_BUDGET,
        api_timeout: float = 10.0,
        pushes: PushLedger | None = None,
        attachments: Attachments | None = None,
    ) -> None:
        self._gateway = gateway
        self._attachments = attachments  # the files reviewers open
        self._crypto = WeChatCrypto(settings.token, settings.aes_key, settings.corp_id)
        self._api = WecomApi(settings, tokens, clock=clock, timeout=api_timeout)
        self._limit = MemberLimit(sends, clock)
        self._sender = WecomSender(self._api, self._limit, attachments)
        self._budget = budget
        # nonces seen (replays refused); None: this process only
        self._guard = PushGuard(CHANNEL, pushes, max_age=settings.push_max_age, clock=clock)
        # recent greetings (FromUserName:CreateTime), for retries: the answer, or its task
        self._events: OrderedDict[str, asyncio.Future[list[Reply]]] = OrderedDict()

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
            return self._refused(400, "bad_xml")
        if not encrypted:
            return self._refused(400, "bad_xml")
        try:
            inner = self._crypto.decrypt_message(
                {"Encrypt": encrypted}, signature, timestamp, nonce
            )
        except InvalidSignatureException:
            return self._refused(403, "signature")
        except (WeChatException, ValueError, IndexError, struct.error):
            return self._refused(400, "decrypt")
        try:
            self._guard.check_time(timestamp)
            fields = parse_flat(inner)
            check_shape(fields)
            message = parse_message(inner)  # safe now: no DTD, no entities, fields checked
        except PushRefused as exc:
            return self._refused(403, exc.reason)
        except ShapeRefused as exc:
            log.warning("wecom callback refused: %s", exc)
            return self._refused(400, "shape")
        except (XmlRefused, KeyError, ValueError, TypeError, AttributeError, ExpatError) as exc:
            log.warning("wecom callback refused: %s", type(exc).__name__)
            return self._refused(400, "bad_xml")
        try:
            await self._guard.check_nonce(self._gateway, nonce, signature)
        except PushRefused as exc:
            return self._refused(403, exc.reason)
        work = self._work_for(fields)
        if work is None:
            note_outcome("ignored")
            return web.Response(text="")
        return await self._answer(message, work, nonce, timestamp)

    # ----- what a message means --------------------------------------------------------------

    def _work_for(self, fields: Fields) -> Work | None:
        """What answers a callback (None: nothing), from its gated and shape-checked fields."""
        user = fields["FromUserName"]
        kind = fields["MsgType"].lower()
        if user == SYSTEM:
            return None  # WeCom's own pushes: contacts, calendar, meetings, approvals...
        if kind == "text":
            delivery = fields["MsgId"]
            content = fields["Content"].strip()  # as wechatpy reads it
            return lambda: self._step(user, content, delivery)
        if kind == "event":
            if fields["Event"].lower() not in GREETING_EVENTS:
                return None  # location reports, menu views, leaving the app: nothing to say
            key = f"{user}:{fields['CreateTime']}"
            return lambda: self._greet(user, key)
        if kind in MEMBER_MESSAGES:
            return self._note  # a member's image, voice, file...: we only read text
        return None  # a type wechatpy does not know: not a member writing

    async def _step(self, user: str, content: str, delivery: str) -> Answer:
        result = await self._gateway.handle(
            CHANNEL, user, content, delivery_id=delivery, replay=True
        )
        if isinstance(result, Repeat):
            return Answer(list(result.replies), repeat=True)
        return Answer(result or [], repeat=False)

    async def _greet(self, user: str, key: str) -> Answer:
        """The member entered the app; a retry of that event gets the same greeting.

        Events only greet or re-ask, which is harmless to repeat, so a retry reaching another
        worker runs it again rather than being recorded in the database.
        """
        first = self._events.get(key)
        if first is not None:
            note_outcome("duplicate")
            return Answer(list(await asyncio.shield(first)), repeat=True)
        task = asyncio.ensure_future(self._open(user))
        self._events[key] = task
        while len(self._events) > EVENTS_KEPT:
            self._events.popitem(last=False)
        try:
            replies = await asyncio.shield(task)
        except BaseException:
            if self._events.get(key) is task:  # failed (the store down: 503): retry it anew
                del self._events[key]
            raise
        note_outcome("accepted")
        return Answer(replies)

    async def _open(self, user: str) -> list[Reply]:
        """The greeting, or the question the member was left at."""
        self._gateway.metrics.inc("awardbot_updates_received_total", channel=CHANNEL)
        return await self._gateway.run(
            self._gateway.steps.open, ConversationKey(CHANNEL, user), step=(CHANNEL, "open")
        )

    async def _note(self) -> Answer:
        note_outcome("ignored")
        self._gateway.metrics.inc("awardbot_updates_received_total", channel=CHANNEL)
        return Answer([Reply(TEXT_ONLY)])

    # ----- answering -------------------------------------------------------------------------

    async def _answer(
        self, message: BaseMessage, work: Work, nonce: str, timestamp: str
    ) -> web.Response:
        user = str(message.source)
        task = asyncio.ensure_future(work())
        try:
            answer = await asyncio.wait_for(asyncio.shield(task), self._budget)
        except TimeoutError:
            self._gateway.spawn(self._later(user, task), channel=CHANNEL)
            return web.Response(text="")  # WeCom stops retrying; the answer follows
        if not answer.replies:
            return web.Response(text="")  # nothing to say
        if any(reply.files for reply in answer.replies):
            if not answer.repeat:  # a repeat's files went out with the first
                self._gateway.spawn(self._push_replies(user, answer.replies), channel=CHANNEL)
            return web.Response(text="")
        text = _joined(answer.replies)
        if utf8_len(text) > TEXT_LIMIT:
            if not answer.repeat:  # a repeat's app messages went out with the first
                self._gateway.spawn(self._push(user, text), channel=CHANNEL)
            return web.Response(text="")
        reply = create_reply(cdata_safe(text), message)
        body = self._crypto.encrypt_message(reply.render(), nonce, timestamp)
        self._gateway.metrics.inc("awardbot_replies_sent_total", channel=CHANNEL)
        return web.Response(text=body, content_type="text/xml")

    async def _later(self, user: str, task: asyncio.Future[Answer]) -> None:
        answer = await task
        if answer.replies:
            await self._push_replies(user, answer.replies)

    async def _push_replies(self, user: str, replies: list[Reply]) -> None:
        """Replies as app messages: the texts joined up to each reply with files, its files
        after them, and so on; stops at the first that is not sent."""
        texts: list[Reply] = []
        for reply in replies:
            texts.append(reply)
            if not reply.files:
                continue
            if not await self._push(user, _joined(texts)):
                return
            texts = []
            for file in reply.files:
                if not await self._push_file(user, file.attachment_id):
                    return
        if texts:
            await self._push(user, _joined(texts))

    async def _push_file(self, user: str, attachment_id: int) -> bool:
        """One attachment as a file or image message; a line saying why when it cannot be."""
        if self._attachments is None:
            return await self._push(user, READ_FAILED)
        try:
            stored = await self._gateway.run(self._attachments.read, attachment_id)
        except (EdgeError, Unavailable) as exc:
            log.warning("wecom attachment not read: %s", type(exc).__name__)
            return await self._push(user, READ_FAILED)
        if not await self._slot(user):
            return False
        name = safe_name(stored.filename, attachment_id, stored.kind)
        try:
            await self._gateway.run(self._api.send_file, user, name, stored.kind, stored.data)
        except WecomApiError as exc:
            self._failed("send_file")
            log.warning("wecom file message not sent: %s", exc.reason)
            return await self._push(user, SEND_FAILED)
        self._gateway.metrics.inc("awardbot_replies_sent_total", channel=CHANNEL)
        return True

    async def _slot(self, user: str) -> bool:
        """Wait (a little) for room under the member's per-minute limit; False if none."""
        for _ in range(MAX_WAITS):
            wait = await self._gateway.run(self._limit.reserve, user)
            if wait is None:
                return True
            await asyncio.sleep(wait.total_seconds())
        self._failed("limit")
        return False

    async def _push(self, user: str, text: str) -> bool:
        """`text` as app messages, waiting for the member's per-minute limit if need be;
        False if a piece was not sent (the rest are not tried)."""
        for piece in pieces_of(text):
            if not await self._slot(user):
                return False
            try:
                await self._gateway.run(self._api.send_text, user, piece)
            except WecomApiError as exc:
                self._failed("send")
                log.warning("wecom app message not sent: %s", exc.reason)
                return False
            self._gateway.metrics.inc("awardbot_replies_sent_total", channel=CHANNEL)
        return True

    def _failed(self, kind: str) -> None:
        self._gateway.metrics.inc("awardbot_errors_total", channel=CHANNEL, kind=kind)

    def _refused(self, status: int, reason: str) -> web.Response:
        """A callback refused before anything was done, counted by its reason."""
        self._failed(reason)
        note_outcome("refused", reason)
        return web.Response(status=status)


def _joined(replies: list[Reply]) -> str:
    return "\n\n".join(render_text(reply) for reply in replies)


def make_adapter(
    settings: WecomSettings,
    gateway: Gateway,
    *,
    tokens: TokenCache,
    sends: SendBudget,
    clock: Callable[[], datetime],
    budget: float = DEFAULT_BUDGET,
    pushes: PushLedger | None = None,
    attachments: Attachments | None = None,
) -> WecomAdapter:
    """The WeCom channel for `awardbot serve` (see `bot.channels`)."""
    return WecomAdapter(
        settings,
        gateway,
        tokens=tokens,
        sends=sends,
        clock=clock,
        budget=budget,
        pushes=pushes,
        attachments=attachments,
    )
