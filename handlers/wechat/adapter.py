"""The WeChat Official Account channel: `GET|POST /wechat`, passive replies within 5 s.

WeChat drops a push that is not answered within 5 seconds and retries it (3 times in total;
platforms.md §1.1). So a step runs as a task and the request waits at most `reply_budget`:
- done in time: the replies go back as ONE passive text reply (numbered choices; OA accounts
  have no buttons), encrypted when the push was; text over ~2000 UTF-8 bytes is cut and the
  rest follows as customer-service messages;
- still running: answer `success` at once (WeChat stops retrying) and send the replies as
  customer-service messages when the step finishes (`Gateway.spawn`).
Retries are deduplicated by the gateway: MsgId for messages, FromUserName:CreateTime for events.
Every user action opens the customer-service window the outbox sender counts against
(`handlers.ports.ReplyWindow`; the adapter is given it, and the token cache, never the store).

Before anything is recorded (issue 8): the signature (`inbound.Codec`: with an AES key only
encrypted pushes), the shape of the push (`handlers.xmlgate.check_shape`), the timestamp window
and the nonce (`handlers.pushes`). A retry whose answer was lost is answered with the answer
kept with the first delivery (`Gateway.handle(..., replay=True)`). The store being down during
the step is a 503 (the `serve` middleware), so WeChat retries it.

Customer-service messages cannot carry arbitrary files, so an attachment a reviewer opens
(`Reply.files`) is answered with a signed, expiring download link served by `awardbot serve`
(`handlers.files.FileLinks`), written under the reply's text.

Notices outside the window go as subscription notices or template messages of 20-character
fields (`handlers.wechat.sender`); their link opens the whole notice on a signed page these
routes serve too (`GET /wechat/notice/<token>`, `handlers.wechat.notices`) when `serve` knows
its public URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from wechatpy.events import ClickEvent, SubscribeEvent, SubscribeScanEvent
from wechatpy.replies import TextReply

from conversations.engine import FileOut, Reply
from conversations.filing import Upload
from conversations.form_files import format_mb
from conversations.keys import Channel
from handlers.base import (
    MAX_FILE,
    Gateway,
    PushLedger,
    Repeat,
    Unavailable,
    cdata_safe,
    note_outcome,
    read_capped,
    render_text,
    split_text,
    utf8_len,
)
from handlers.config import WechatSettings
from handlers.files import NO_PUBLIC_URL, READ_FAILED, FileLinks, LinkRefused
from handlers.ports import Attachments, EdgeError, ReplyWindow, Slot, TokenCache, WindowOpener
from handlers.pushes import PushGuard, PushRefused
from handlers.wechat.client import MediaTooLarge, WechatApiError, WechatClient
from handlers.wechat.inbound import Codec, Push, SignatureRefused
from handlers.wechat.menu import CLICK_COMMANDS, FOLLOW_NOTE
from handlers.wechat.notices import NoticeLinks, NoticeReader, notice_routes
from handlers.wechat.sender import OUT_OF_WINDOW, WINDOW_USED_UP, WechatSender
from handlers.xmlgate import MAX_BODY, MEMBER_MESSAGES, ShapeRefused, XmlRefused
from notifications.notice import NoticeKind

log = logging.getLogger(__name__)

REPLY_BUDGET = 4.0  # seconds a push waits for its step before answering `success`
PASSIVE_LIMIT = 2000  # UTF-8 bytes of a passive text reply (undocumented; ~2048 measured)
SUCCESS = "success"  # tells WeChat to stop retrying, shows nothing to the user

UNSUPPORTED = "暂不支持语音、视频、位置和链接消息。请发送文字回答问题；提交材料请发送图片或文件。"
TOO_LARGE = "文件超过 20 MB，无法接收。请压缩或拆分后重新发送。"


def too_large(size: int | None) -> str:
    """The refusal of a file over 20 MB, with its real size when the API declared it."""
    if size is None:
        return TOO_LARGE
    return f"文件太大：{format_mb(size)}，超过 20 MB，无法接收。请压缩或拆分后重新发送。"


DOWNLOAD_FAILED = "文件接收失败，请重新发送。"  # the step records nothing (issue 8)
NOTE_TYPES = MEMBER_MESSAGES - {"image", "file"}  # a person wrote, but nothing we can read
WINDOW_EVENTS = frozenset({"click", "view", "scan", "scancode_push", "scancode_waitmsg"})
MAX_FILENAME = 120


@dataclass(frozen=True, slots=True)
class Answer:
    """What a push is answered with; `repeat`: the answer kept for a delivery taken before."""

    replies: list[Reply]
    repeat: bool = False


Work = Coroutine[Any, Any, Answer]


class WechatAdapter:
    """One Official Account inside `awardbot serve` (see `handlers.base.ChannelAdapter`)."""

    channel: str = Channel.WECHAT.value

    def __init__(
        self,
        settings: WechatSettings,
        gateway: Gateway,
        *,
        tokens: TokenCache,
        windows: ReplyWindow,
        clock: Callable[[], dt.datetime],
        client: WechatClient | None = None,
        reply_budget: float = REPLY_BUDGET,
        passive_limit: int = PASSIVE_LIMIT,
        pushes: PushLedger | None = None,
        attachments: Attachments | None = None,
        links: FileLinks | None = None,
        notice_links: NoticeLinks | None = None,
        notices: NoticeReader | None = None,
    ) -> None:
        self.settings = settings
        self.attachments = attachments  # the files reviewers open, handed over as ...
        self.links = links  # ... signed download links (None: no public URL known)
        # A notice's detail page, linked from template messages (None: no public URL known)
        self.notice_links = notice_links if notices is not None else None
        self.notices = notices
        self.gateway = gateway
        self.windows = windows
        self.clock = clock
        self.codec = Codec(settings.token, settings.aes_key, settings.app_id)
        self.client = client or WechatClient(
            settings.app_id,
            settings.app_secret,
            api_base=settings.api_base,
            tokens=tokens,
            clock=clock,
        )
        self.reply_budget = reply_budget
        self.passive_limit = passive_limit
        # nonces seen (replays refused); None: this process only
        self.guard = PushGuard(self.channel, pushes, max_age=settings.push_max_age, clock=clock)

    # ----- ChannelAdapter ---------------------------------------------------------------

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        routes: list[web.AbstractRouteDef] = [
            web.get("/wechat", self.verify),
            web.post("/wechat", self.receive),
        ]
        if self.notice_links is not None and self.notices is not None:
            routes.extend(notice_routes(self.notice_links, self.notices, self.gateway))
        return routes

    async def start(self) -> None:
        """Nothing to start: WeChat pushes to us."""

    async def stop(self) -> None:
        self.client._http.close()  # the requests session wechatpy opened

    def sender(self) -> WechatSender:
        return WechatSender(
            self.client,
            self.windows,
            clock=self.clock,
            template_status=self.settings.template_status,
            template_deadline=self.settings.template_deadline,
            subscribe={
                NoticeKind.STATUS: self.settings.subscribe_status,
                NoticeKind.WINDOW: self.settings.subscribe_window,
                NoticeKind.DEADLINE: self.settings.subscribe_deadline,
                NoticeKind.DIGEST: self.settings.subscribe_digest,
            },
            links=self.notice_links,
            file_line=self._link_now,
        )

    def _link_now(self, file: FileOut) -> str:
        """A file a reply hands over, as its download link line (or why there is none); run
        off the event loop: in the gateway's thread, or the outbox's for a later reply."""
        if self.links is None or self.attachments is None:
            return NO_PUBLIC_URL
        try:
            size = self.attachments.size(file.attachment_id)
        except (EdgeError, Unavailable) as exc:
            log.warning("wechat file link not made: %s", type(exc).__name__)
            return READ_FAILED
        try:
            return self.links.link(file.attachment_id, size)
        except LinkRefused as exc:
            return str(exc)

    # ----- HTTP -------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """The server-URL check: echo `echostr` when the signature holds."""
        try:
            echo = self.codec.verify_url(request.query)
        except SignatureRefused:
            return self._refused(403, "signature")
        return web.Response(text=echo)

    async def receive(self, request: web.Request) -> web.Response:
        if self.gateway.closing:
            return web.Response(status=503, text="shutting down")
        body = await read_capped(request, MAX_BODY)
        if body is None:
            return self._refused(413, "too_large")
        try:
            push = self.codec.decode(request.query, body)
        except SignatureRefused as exc:
            return self._refused(403, exc.reason)
        except ShapeRefused as exc:
            log.warning("wechat push refused: %s", exc)
            return self._refused(400, "shape")
        except XmlRefused as exc:
            log.warning("wechat push refused: %s", exc)
            return self._refused(400, "bad_xml")
        try:
            self.guard.check_time(request.query.get("timestamp", ""))
            await self.guard.check_nonce(
                self.gateway, request.query.get("nonce", ""), push.signature
            )
        except PushRefused as exc:
            return self._refused(403, exc.reason)
        work = self._work(push)
        if work is None:
            note_outcome("ignored")
            return web.Response(text=SUCCESS)
        task = asyncio.get_running_loop().create_task(work)
        try:
            answer = await asyncio.wait_for(asyncio.shield(task), self.reply_budget)
        except TimeoutError:
            openid = push.fields["FromUserName"]
            self.gateway.spawn(self._answer_later(task, openid), channel=self.channel)
            return web.Response(text=SUCCESS)
        return self._passive(push, answer)

    # ----- what a push means ------------------------------------------------------------

    def _work(self, push: Push) -> Work | None:
        """The coroutine answering `push`, or None when it needs no answer.

        Read from the gated fields, whose shape `xmlgate.check_shape` vouched for.
        """
        message, fields, kind = push.message, push.fields, push.kind
        openid = fields["FromUserName"]
        if kind == "text":
            text = message.content or ""
            return self._step(openid, text, None, fields, WindowOpener.MESSAGE)
        if kind in ("image", "file"):  # wechatpy has no file type: the gated fields
            filename = fields.get("FileName") if kind == "file" else None
            return self._media(openid, fields["MediaId"].strip(), filename, fields)
        if kind in NOTE_TYPES:
            return self._note(openid, UNSUPPORTED, WindowOpener.MESSAGE)
        if kind != "event":
            return None  # a type no person sends from the chat: nothing to say
        if isinstance(message, SubscribeEvent | SubscribeScanEvent):
            return self._follow(openid, fields)
        if isinstance(message, ClickEvent):
            command = CLICK_COMMANDS.get(message.key or "")
            if command is not None:
                return self._step(openid, command, None, fields, WindowOpener.EVENT)
        if fields["Event"].lower() in WINDOW_EVENTS:
            return self._touch(openid)  # a user action: it opens the window, says nothing
        return None  # unsubscribe, LOCATION, TEMPLATESENDJOBFINISH…: nothing to say

    async def _step(
        self,
        openid: str,
        text: str,
        upload: Upload | None,
        fields: dict[str, str],
        opener: WindowOpener,
    ) -> Answer:
        """One step; a repeat gets the answer kept with the first (issue 8: its answer may
        have been lost) and opens nothing: the window was counted the first time."""
        result = await self.gateway.handle(
            self.channel, openid, text, upload, delivery_id=delivery_id(fields), replay=True
        )
        if isinstance(result, Repeat):
            return Answer(await self._with_links(list(result.replies)), repeat=True)
        await self._open_window(openid, opener)
        return Answer(await self._with_links(result or []), repeat=False)

    async def _with_links(self, replies: list[Reply]) -> list[Reply]:
        """Each file a reply hands over as a download link line under its text."""
        out = []
        for reply in replies:
            if reply.files:
                lines = [await self._link(file) for file in reply.files]
                reply = dataclasses.replace(reply, text="\n".join([reply.text, *lines]), files=())
            out.append(reply)
        return out

    async def _link(self, file: FileOut) -> str:
        return await self.gateway.run(self._link_now, file)  # the size is a database read

    async def _follow(self, openid: str, fields: dict[str, str]) -> Answer:
        """A new follower: point at the menu, then the engine's greeting and first question."""
        answer = await self._step(openid, "/start", None, fields, WindowOpener.EVENT)
        return Answer([Reply(FOLLOW_NOTE), *answer.replies], answer.repeat)

    async def _media(
        self, openid: str, media_id: str, filename: str | None, fields: dict[str, str]
    ) -> Answer:
        try:
            served, data = await self.gateway.run(
                functools.partial(self.client.download, media_id, limit=MAX_FILE)
            )
        except MediaTooLarge as exc:
            return await self._note(
                openid, too_large(exc.size), WindowOpener.MESSAGE, "media_too_large"
            )
        except WechatApiError as exc:
            self._error("media")
            log.warning("wechat media download failed: errcode %s", exc.errcode)
            return await self._note(openid, DOWNLOAD_FAILED, WindowOpener.MESSAGE, "media")
        name = _safe_name(filename or served) or (
            "image.jpg" if fields["MsgType"].lower() == "image" else "file"
        )
        return await self._step(openid, "", Upload(name, data), fields, WindowOpener.MESSAGE)

    async def _touch(self, openid: str) -> Answer:
        note_outcome("ignored")
        await self._open_window(openid, WindowOpener.EVENT)
        return Answer([])

    async def _note(
        self, openid: str, text: str, opener: WindowOpener, reason: str = ""
    ) -> Answer:
        """Answered without a step (nothing recorded but the window the user opened)."""
        note_outcome("ignored", reason)
        await self._open_window(openid, opener)
        return Answer([Reply(text)])

    async def _open_window(self, openid: str, opener: WindowOpener) -> None:
        try:
            await self.gateway.run(
                functools.partial(
                    self.windows.open, self.channel, openid, opener, now=self.clock()
                )
            )
        except Exception as exc:  # noqa: BLE001 - the answer matters more than the count
            self._error("window")
            log.error("wechat window not opened: %s", type(exc).__name__)

    # ----- answering --------------------------------------------------------------------

    def _pieces(self, replies: list[Reply] | None) -> list[str]:
        text = "\n\n".join(render_text(reply) for reply in replies or [])
        return split_text(text, self.passive_limit, utf8_len) if text.strip() else []

    def _passive(self, push: Push, answer: Answer) -> web.Response:
        pieces = self._pieces(answer.replies)
        if not pieces:
            return web.Response(text=SUCCESS)
        first, rest = pieces[0], pieces[1:]
        if rest and not answer.repeat:  # a repeat's rest went out with the first delivery
            openid = push.fields["FromUserName"]
            self.gateway.spawn(self._send_pieces(openid, rest), channel=self.channel)
        xml = TextReply(message=push.message, content=cdata_safe(first)).render()
        body = self.codec.encode_reply(xml, encrypted=push.encrypted)
        self.gateway.metrics.inc("awardbot_replies_sent_total", channel=self.channel)
        return web.Response(text=body, content_type="application/xml")

    async def _answer_later(self, task: asyncio.Task[Answer], openid: str) -> None:
        """The slow step's replies, as customer-service messages once it has finished."""
        await self._send_pieces(openid, self._pieces((await task).replies))

    async def _send_pieces(self, openid: str, pieces: list[str]) -> None:
        for piece in pieces:
            if not await self._send_custom(openid, piece):
                return

    async def _send_custom(self, openid: str, text: str) -> bool:
        """One customer-service message counted against the user's window; False if refused."""
        slot = await self.gateway.run(
            functools.partial(self.windows.take, self.channel, openid, now=self.clock())
        )
        if slot is not Slot.TAKEN:
            self._error("window_closed")
            return False
        try:
            await self.gateway.run(self.client.send_text, openid, text)
        except WechatApiError as exc:
            self._error("send")
            log.warning("wechat customer-service message refused: errcode %s", exc.errcode)
            if exc.errcode in (OUT_OF_WINDOW, WINDOW_USED_UP):
                await self.gateway.run(
                    functools.partial(
                        self.windows.close,
                        self.channel,
                        openid,
                        used_up=exc.errcode == WINDOW_USED_UP,
                    )
                )
            return False
        self.gateway.metrics.inc("awardbot_replies_sent_total", channel=self.channel)
        return True

    def _error(self, kind: str) -> None:
        self.gateway.metrics.inc("awardbot_errors_total", channel=self.channel, kind=kind)

    def _refused(self, status: int, reason: str) -> web.Response:
        """A push refused before anything was done, counted by its reason."""
        self._error(reason)
        note_outcome("refused", reason)
        texts = {400: "bad request", 403: "forbidden", 413: "too large"}
        return web.Response(status=status, text=texts.get(status, "refused"))


def delivery_id(fields: dict[str, str]) -> str:
    """WeChat's retry key: MsgId for messages, FromUserName:CreateTime for events."""
    msg_id = fields.get("MsgId", "")
    if msg_id and msg_id != "0":
        return msg_id
    return f"{fields['FromUserName']}:{fields.get('CreateTime', '')}"


def _safe_name(name: str | None) -> str:
    """The last path part of a name the user (or the platform) chose, without controls."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[-MAX_FILENAME:]


def make_adapter(
    settings: WechatSettings,
    gateway: Gateway,
    *,
    tokens: TokenCache,
    windows: ReplyWindow,
    clock: Callable[[], dt.datetime],
    **options: Any,
) -> WechatAdapter:
    """The WeChat channel for `bot.channels` (options: `client`, `reply_budget`, ...)."""
    return WechatAdapter(settings, gateway, tokens=tokens, windows=windows, clock=clock, **options)
