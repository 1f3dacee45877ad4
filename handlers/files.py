"""Attachments handed to reviewers: what every channel shares, and WeChat's signed links.

The core offers an official (and the unit's clerk) 「查看附件」 on a nomination's detail and
answers it with a `Reply` whose `files` name the attachments (it checked who may see them and
audited the opening). Each channel hands the file over its own way: Telegram as a document or
photo, WeCom as a file or image app message, the console into a folder — and WeChat, whose
customer-service messages cannot carry arbitrary files, as a link to `awardbot serve`:

    https://<AWARDBOT_PUBLIC_URL>/files/<attachment id>.<expiry, unix seconds>.<signature>

The signature is HMAC-SHA256 of `<id>.<expiry>` under a key derived from AWARDBOT_SECRET_KEY
for this purpose only (`handlers.ports.LinkSigner`), so a link names one attachment until one
moment and nobody can make or stretch one without the key. `GET /files/<token>` answers 403
for a token whose signature does not hold (checked first: a forged link learns nothing more),
410 once it expired, 404 when the attachment is gone, else the bytes with their type and name.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from conversations.engine import FileOut
from handlers.base import Gateway, Unavailable
from handlers.ports import AttachmentMissing, Attachments, EdgeError, LinkSigner, StoredFile

log = logging.getLogger(__name__)

MEDIA_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    # the documents the bot generates (bot.exports) besides PDF, DOCX and PNG
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "zip": "application/zip",
}
IMAGES = frozenset({"jpg", "png"})
ROUTE = "/files/{token}"
MAX_NAME = 120

# What a channel says about a file it could not hand over (the core said which file it was).
READ_FAILED = "附件暂时无法读取，请稍后再试。"
SEND_FAILED = "附件没有发出，请稍后再试。"
LINK_LINE = "下载链接（{minutes} 分钟内有效，请勿转发）：{url}"
LINK_TOO_BIG = "附件超过 {mb} MB，无法生成下载链接，请在其他渠道（如企业微信、Telegram）查看。"
NO_PUBLIC_URL = "暂时无法生成下载链接：管理员尚未设置本服务的公开访问地址（AWARDBOT_PUBLIC_URL）。"
SAVED_TO = "已保存到：{path}"


def media_type(kind: str) -> str:
    return MEDIA_TYPES.get(kind, "application/octet-stream")


def is_image(kind: str) -> bool:
    return kind in IMAGES


def safe_name(name: str, attachment_id: int, kind: str) -> str:
    """A file name safe on any disk and in a header: the last path part, no controls, no
    leading dot; a stand-in when nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[-MAX_NAME:] or f"attachment-{attachment_id}.{kind}"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real one as RFC 5987 `filename*`
    (browsers and WeChat's own show the Chinese name from the latter)."""
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    ascii_stem = re.sub(r"[^A-Za-z0-9._ -]", "_", stem).strip() or "attachment"
    ascii_ext = re.sub(r"[^A-Za-z0-9]", "", ext)
    fallback = ascii_stem + (f".{ascii_ext}" if ascii_ext else "")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ----- signed links (WeChat) ------------------------------------------------------------------


class LinkRefused(Exception):
    """No link for this file; `str(exc)` is what the user is told instead."""


class BadLink(Exception):
    """A token whose signature does not hold (or that is not a token at all): 403."""


class ExpiredLink(Exception):
    """A genuine token past its expiry: 410."""


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """AWARDBOT_PUBLIC_URL (None: no links), AWARDBOT_FILE_LINK_MINUTES and _MAX_MB."""

    public_url: str | None
    minutes: int = 30
    max_bytes: int = 20 * 1024 * 1024


class FileLinks:
    """Makes and checks the signed download links of `awardbot serve`."""

    def __init__(
        self, settings: LinkSettings, signer: LinkSigner, *, clock: Callable[[], dt.datetime]
    ) -> None:
        self.settings = settings
        self._signer = signer
        self._clock = clock

    def link(self, attachment_id: int, size: int) -> str:
        """The link line to show; LinkRefused (with the text to show) when there is none."""
        settings = self.settings
        if settings.public_url is None:
            raise LinkRefused(NO_PUBLIC_URL)
        if size > settings.max_bytes:
            raise LinkRefused(LINK_TOO_BIG.format(mb=settings.max_bytes // (1024 * 1024)))
        expires = int(self._clock().timestamp()) + settings.minutes * 60
        token = self.token(attachment_id, expires)
        url = f"{settings.public_url}/files/{token}"
        return LINK_LINE.format(minutes=settings.minutes, url=url)

    def token(self, attachment_id: int, expires: int) -> str:
        payload = f"{attachment_id}.{expires}"
        return f"{payload}.{self._signer.signatures(payload.encode('ascii'))[0]}"

    def check(self, token: str) -> int:
        """The attachment id a token names; BadLink, or ExpiredLink once it expired."""
        match = re.fullmatch(r"(-?[1-9][0-9]{0,18})\.([0-9]{1,12})\.([0-9a-f]{64})", token)
        if match is None:
            raise BadLink("not a file link")
        ident, expires, given = match.groups()
        payload = f"{ident}.{expires}".encode("ascii")
        if not any(hmac.compare_digest(given, s) for s in self._signer.signatures(payload)):
            raise BadLink("signature does not hold")
        if int(expires) <= int(self._clock().timestamp()):
            raise ExpiredLink("link expired")
        return int(ident)


def file_routes(
    links: FileLinks, attachments: Attachments, gateway: Gateway
) -> list[web.RouteDef]:
    """`GET /files/<token>` for `awardbot serve`."""

    async def download(request: web.Request) -> web.Response:
        try:
            attachment_id = links.check(request.match_info["token"])
        except BadLink:
            return web.Response(status=403, text="下载链接无效。")
        except ExpiredLink:
            return web.Response(status=410, text="此下载链接已过期，请回到对话中重新打开附件。")
        try:
            stored = await gateway.run(attachments.read, attachment_id)
        except AttachmentMissing:
            return web.Response(status=404, text="附件已不存在。")
        except Unavailable:
            raise  # the serve middleware answers 503
        except EdgeError as exc:
            log.error("file link: attachment %s cannot be read: %s", attachment_id, exc)
            return web.Response(status=500, text="暂时无法读取附件，请稍后再试。")
        name = safe_name(stored.filename, attachment_id, stored.kind)
        return web.Response(
            body=stored.data,
            headers={
                "Content-Type": media_type(stored.kind),
                "Content-Disposition": content_disposition(name),
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    return [web.get(ROUTE, download)]


# ----- the console ------------------------------------------------------------------------------


def save_file(folder: Path, file: FileOut, stored: StoredFile) -> Path:
    """Write an opened attachment into `folder` (owner-only: it is personal data); the path.

    The name is prefixed with the attachment's id (`g<id>` for a file the bot generated: a
    negative id), so two files of the same name do not overwrite each other, and opening the
    same one again rewrites it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ident = file.attachment_id
    prefix = str(ident) if ident > 0 else f"g{-ident}"
    path = folder / f"{prefix}-{safe_name(stored.filename, ident, stored.kind)}"
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(stored.data)
    os.replace(tmp, path)
    return path
