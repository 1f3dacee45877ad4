"""An official opens a nomination's attachments from its detail, on every channel (issue: the
reviewers open the attachments): Telegram sends the document or photo, WeCom a file or image app
message after `media/upload`, WeChat a signed expiring link that `awardbot serve` answers, the
console a file in the downloads folder. Each opening is audited exactly once.

Every channel runs as `awardbot serve` runs it (settings → `bot.channels.build_adapters`) with
the real library against the fake platform on 127.0.0.1, over SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
import sqlalchemy as sa
from fakes.telegram_api import FakeTelegram
from fakes.wechat_api import FakeWechatApi
from fakes.wecom_api import FakeWecomApi, WecomPusher
from support.console_harness import FIXED_NOW, ConsoleHarness, catalog, regions
from support.drivers.telegram import CHAT, TelegramDriver, buttons, telegram_env
from support.drivers.wechat import WechatPusher
from support.serving import serving, settings_for

from bot.channels import attachments_for, file_links
from bot.wiring import build_runtime
from conversations.forms import form_for
from conversations.identity import Level, Role
from conversations.keys import Channel, ConversationKey
from conversations.lifecycle import opinion_departments
from handlers.console import ConsoleChannel
from storage import invites as _invites
from storage import nominations as noms
from storage.files import FileStore
from storage.store import Store

CAMPAIGN, CATEGORY = "jl-skills-2022", "technical_expert"
PDF_NAME, JPG_NAME = "张小三 身份证复印件.pdf", "荣誉证书.jpg"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
JPG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(reversed(range(256))) * 32 + b"\xff\xd9"


class Clock:
    def __init__(self) -> None:
        self.now = FIXED_NOW

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Placed:
    nomination_id: int
    ids: dict[str, int]  # file name -> attachment id


def place_with_files(store: Store, files_dir: Path, *, pdf: bytes = PDF) -> Placed:
    """A technical_expert nomination of a unit in 长春市朝阳区, at the county's review, with a
    PDF and a JPEG stored as a filing stores them (sealed, by keyed hash)."""
    with store.transaction() as conn:
        code = _invites.create_invite(
            conn,
            role=Role.CLERK,
            region=regions().get("220104"),
            unit=_invites.UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K"),
            now=FIXED_NOW,
            ttl=timedelta(days=30),
        ).code
    clerk = ConsoleHarness(store, user="files-clerk")
    clerk.open()
    assert "绑定成功" in clerk.send(f"/bind {code}")
    lifecycle = catalog().get(CAMPAIGN).lifecycle
    assert lifecycle is not None
    form = form_for(catalog().get(CAMPAIGN), CATEGORY)
    assert form is not None
    files = FileStore(files_dir, store.sealer)
    with store.transaction() as conn:
        unit_id = conn.execute(sa.text("SELECT min(id) FROM units")).scalar_one()
        user_id = conn.execute(sa.text("SELECT min(id) FROM users")).scalar_one()
        record = noms.create_draft(
            conn,
            store.sealer,
            campaign=CAMPAIGN,
            category=CATEGORY,
            kind="individual",
            unit_id=unit_id,
            region="220104",
            created_by=user_id,
            payload={
                "fields": {"name": "张小三"},
                "facts": {},
                "opinions": opinion_departments(lifecycle, {"nominee_kind": "individual"}),
            },
            now=FIXED_NOW,
            initial_status="county_review",
        )
        for material, (name, kind, data) in zip(
            form.materials, [(PDF_NAME, "pdf", pdf), (JPG_NAME, "jpg", JPG)], strict=False
        ):
            noms.add_attachment(
                conn, store.sealer, nomination_id=record.id, material_key=material.key,
                file_ref=files.put(data), media_type=kind, size=len(data), filename=name,
                now=FIXED_NOW,
            )  # fmt: skip
        stored = noms.attachments_of(conn, store.sealer, record.id)
    return Placed(record.id, {a.filename: a.id for a in stored})


def official_code(store: Store) -> str:
    with store.transaction() as conn:
        return str(
            _invites.create_invite(
                conn,
                role=Role.OFFICIAL,
                region=regions().get("220104"),
                level=Level.COUNTY,
                now=FIXED_NOW,
                ttl=timedelta(days=30),
            ).code
        )


def openings(store: Store, nomination_id: int) -> list[dict[str, object]]:
    with store.reading() as conn:
        trail = noms.audit_trail(conn, store.sealer, nomination_id=nomination_id)
    return [dict(a.detail or {}) for a in trail if a.action == "open_attachment" and a.allowed]


def numbered(text: str, starts: str) -> str:
    """The number of the first numbered choice whose label starts with `starts`."""
    for line in text.splitlines():
        head, sep, label = line.partition(". ")
        if sep and head.isdigit() and label.startswith(starts):
            return head
    raise AssertionError(f"no choice starting {starts!r} in:\n{text}")


# ----- console ---------------------------------------------------------------------------------


def test_console_saves_the_file_and_prints_where(store: Store, tmp_path: Path) -> None:
    placed = place_with_files(store, tmp_path / "attachments")
    settings = settings_for(
        {"AWARDBOT_DOWNLOADS_DIR": str(tmp_path / "downloads")},
        files_dir=tmp_path / "attachments",
    )
    runtime = build_runtime(settings, catalog(), store, clock=lambda: FIXED_NOW)
    key = ConversationKey(Channel.CONSOLE.value, "files-official")
    console = ConsoleChannel(
        lambda: runtime.open(key),
        lambda text, upload=None: runtime.handle(key, text, upload),
        attachments=attachments_for(settings, store),
        downloads=settings.downloads_dir,
    )
    console.open()
    assert "绑定成功" in console.send(f"/bind {official_code(store)}")
    queue = console.send("/queue")
    detail = console.send(numbered(queue, "张*三"))
    out = console.send(numbered(detail, f"查看附件：{_material_name(0)}"))
    [saved] = re.findall(r"已保存到：(.+)", out)
    path = Path(saved)
    assert path.parent == tmp_path / "downloads"
    assert path.name == f"{placed.ids[PDF_NAME]}-{PDF_NAME}"
    assert path.read_bytes() == PDF
    assert path.stat().st_mode & 0o077 == 0  # personal data: the owner's only
    assert openings(store, placed.nomination_id) == [{"material": _material(0)}]


def _material(index: int) -> str:
    form = form_for(catalog().get(CAMPAIGN), CATEGORY)
    assert form is not None
    return form.materials[index].key


# ----- Telegram --------------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["ptb", "aiogram"])
async def test_telegram_sends_the_document_and_the_photo(
    store: Store, tmp_path: Path, library: str
) -> None:
    placed = place_with_files(store, tmp_path / "attachments")
    async with FakeTelegram() as tg:
        env = telegram_env(tg, library=library, mode="webhook")
        async with serving(store, env, files_dir=tmp_path / "attachments") as server:
            adapter = server.adapters[0]
            tg.webhook = {"url": f"{server.url}/telegram", "secret_token": env[
                "AWARDBOT_TELEGRAM_WEBHOOK_SECRET"]}  # fmt: skip
            user = TelegramDriver(tg, mode="webhook", settled=adapter.settled)  # type: ignore[attr-defined]
            assert "绑定成功" in await user.send(f"/bind {official_code(store)}")
            await user.send(numbered(await user.send("/queue"), "张*三"))
            for index, name in enumerate([PDF_NAME, JPG_NAME]):
                labels = [b["text"] for b in buttons(user._keyboard or {})]
                number = next(i for i, t in enumerate(labels, 1) if name in t)
                text = await user.send(str(number))
                assert f"附件：{_material_name(index)}（{name}）" in text
    assert tg.uploads(CHAT) == [("sendDocument", PDF_NAME, PDF), ("sendPhoto", JPG_NAME, JPG)]
    # The file follows the reply's text, and the question (with its buttons) comes last.
    bot_messages = tg.sent(CHAT)
    kinds = ["document" if "document" in m else "photo" if "photo" in m else "text"
             for m in bot_messages[-3:]]  # fmt: skip
    assert kinds == ["text", "photo", "text"]
    assert buttons(bot_messages[-1])
    assert openings(store, placed.nomination_id) == [
        {"material": _material(0)},
        {"material": _material(1)},
    ]


def _material_name(index: int) -> str:
    form = form_for(catalog().get(CAMPAIGN), CATEGORY)
    assert form is not None
    return form.materials[index].name


# ----- WeCom -----------------------------------------------------------------------------------

WECOM_TOKEN = "123456"
WECOM_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


async def test_wecom_uploads_and_sends_file_and_image_messages(
    store: Store, tmp_path: Path
) -> None:
    placed = place_with_files(store, tmp_path / "attachments")
    async with FakeWecomApi() as api:
        env = {
            "AWARDBOT_WECOM_CORP_ID": api.corp_id,
            "AWARDBOT_WECOM_SECRET": api.secret,
            "AWARDBOT_WECOM_AGENT_ID": str(api.agent_id),
            "AWARDBOT_WECOM_TOKEN": WECOM_TOKEN,
            "AWARDBOT_WECOM_AES_KEY": WECOM_AES_KEY,
            "AWARDBOT_WECOM_API_BASE": api.url,
        }
        pusher = WecomPusher(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=api.corp_id,
                             agent_id=api.agent_id, clock=lambda: FIXED_NOW)  # fmt: skip
        async with (
            serving(store, env, files_dir=tmp_path / "attachments") as server,
            aiohttp.ClientSession() as http,
        ):

            async def say(text: str) -> str:
                query, body = pusher.sign(pusher.text("lisi", text))
                async with http.post(
                    f"{server.url}/wecom", params=query, data=io.BytesIO(body)
                ) as response:
                    assert response.status == 200
                    answer = pusher.open_reply(await response.text())
                assert await server.gateway.drain(10)
                server.gateway.closing = False
                return answer

            assert "绑定成功" in await say(f"/bind {official_code(store)}")
            detail = await say(numbered(await say("/queue"), "张*三"))
            assert await say(numbered(detail, f"查看附件：{_material_name(0)}")) == ""
            assert await say(numbered(detail, f"查看附件：{_material_name(1)}")) == ""
    assert api.files() == [("lisi", "file", PDF_NAME, PDF), ("lisi", "image", JPG_NAME, JPG)]
    uploads = [c.params["type"] for c in api.calls_to("/cgi-bin/media/upload")]
    assert uploads == ["file", "image"]
    # In order: the reply's text, its file, then the question again.
    # The reminder ticker may hand lisi the day's digest (【…评选工作汇总】) at any point of the
    # run: it is not a reply, so it is left out of the order checked here.
    replies = [m for m in api.messages if not _is_notice(m)]
    kinds = [m["msgtype"] for m in replies]
    assert kinds == ["text", "file", "text", "text", "image", "text"]
    assert f"附件：{_material_name(0)}（{PDF_NAME}）" in replies[0]["text"]["content"]
    assert len(openings(store, placed.nomination_id)) == 2


def _is_notice(message: dict[str, Any]) -> bool:
    """A reminder, alert or digest (【title】 then the text), not a step's reply."""
    return message["msgtype"] == "text" and message["text"]["content"].startswith("【")


# ----- WeChat ----------------------------------------------------------------------------------

PUBLIC = "https://bot.example.org/award"


async def test_wechat_answers_with_a_signed_link_that_serve_honours(
    store: Store, tmp_path: Path
) -> None:
    placed = place_with_files(store, tmp_path / "attachments")
    clock = Clock()
    async with FakeWechatApi() as api:
        wechat = api.settings()
        env = {
            "AWARDBOT_WECHAT_APP_ID": wechat.app_id,
            "AWARDBOT_WECHAT_APP_SECRET": wechat.app_secret,
            "AWARDBOT_WECHAT_TOKEN": wechat.token,
            "AWARDBOT_WECHAT_API_BASE": api.url,
            "AWARDBOT_PUBLIC_URL": PUBLIC,
            "AWARDBOT_FILE_LINK_MINUTES": "30",
        }
        pusher = WechatPusher(wechat, clock=clock)
        async with (
            serving(store, env, clock=clock, files_dir=tmp_path / "attachments") as server,
            aiohttp.ClientSession() as http,
        ):

            async def say(text: str) -> str:
                query, body = pusher.sign(pusher.text("oFILES", text))
                async with http.post(f"{server.url}/wechat", params=query, data=body) as r:
                    assert r.status == 200
                    return pusher.open_reply(await r.text())

            async def get(path: str) -> tuple[int, bytes, dict[str, str]]:
                async with http.get(f"{server.url}{path}") as r:
                    return r.status, await r.read(), dict(r.headers)

            assert "绑定成功" in await say(f"/bind {official_code(store)}")
            detail = await say(numbered(await say("/queue"), "张*三"))
            answer = await say(numbered(detail, f"查看附件：{_material_name(0)}"))
            assert f"附件：{_material_name(0)}（{PDF_NAME}）" in answer
            assert "下载链接（30 分钟内有效，请勿转发）：" in answer
            [link] = re.findall(r"https://\S+", answer)
            assert link.startswith(f"{PUBLIC}/files/")
            path = urlsplit(link).path.removeprefix("/award")

            status, body, headers = await get(path)
            assert (status, body) == (200, PDF)
            assert headers["Content-Type"] == "application/pdf"
            disposition = headers["Content-Disposition"]
            [encoded] = re.findall(r"filename\*=UTF-8''(\S+)", disposition)
            assert unquote(encoded) == PDF_NAME
            assert 'filename="_' in disposition  # an ASCII fallback for old clients

            token = path.removeprefix("/files/")
            ident, expires, signature = token.split(".")
            other = placed.ids[JPG_NAME]
            flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
            for forged in (
                f"{other}.{expires}.{signature}",  # another attachment under this signature
                f"{ident}.{int(expires) + 3600}.{signature}",  # stretched
                f"{ident}.{expires}.{flipped}",  # tampered
                f"{ident}.{expires}",  # unsigned
            ):
                assert (await get(f"/files/{forged}"))[0] == 403, forged

            # A genuine link to an attachment that is not (or no longer) there.
            links = file_links(server.settings, store, clock=clock)
            assert (await get(f"/files/{links.token(987654, int(expires))}"))[0] == 404

            clock.now = FIXED_NOW + timedelta(minutes=30)
            assert (await get(path))[0] == 410  # expired: useless even with its signature
    assert openings(store, placed.nomination_id) == [{"material": _material(0)}]  # once


BIG_PDF = b"%PDF-1.7\n" + b"0" * (1024 * 1024) + b"\n%%EOF\n"  # just over 1 MB


@pytest.mark.parametrize(
    ("extra", "pdf", "expected"),
    [
        ({}, PDF, "管理员尚未设置本服务的公开访问地址（AWARDBOT_PUBLIC_URL）"),
        (
            {"AWARDBOT_PUBLIC_URL": PUBLIC, "AWARDBOT_FILE_LINK_MAX_MB": "1"},
            BIG_PDF,
            "附件超过 1 MB，无法生成下载链接",
        ),
    ],
    ids=["no_public_url", "too_big"],
)
async def test_wechat_says_why_there_is_no_link(
    store: Store, tmp_path: Path, extra: dict[str, str], pdf: bytes, expected: str
) -> None:
    placed = place_with_files(store, tmp_path / "attachments", pdf=pdf)
    async with FakeWechatApi() as api:
        wechat = api.settings()
        env = {
            "AWARDBOT_WECHAT_APP_ID": wechat.app_id,
            "AWARDBOT_WECHAT_APP_SECRET": wechat.app_secret,
            "AWARDBOT_WECHAT_TOKEN": wechat.token,
            "AWARDBOT_WECHAT_API_BASE": api.url,
            **extra,
        }
        pusher = WechatPusher(wechat)
        async with (
            serving(store, env, files_dir=tmp_path / "attachments") as server,
            aiohttp.ClientSession() as http,
        ):

            async def say(text: str) -> str:
                query, body = pusher.sign(pusher.text("oREFUSE", text))
                async with http.post(f"{server.url}/wechat", params=query, data=body) as r:
                    return pusher.open_reply(await r.text())

            assert "绑定成功" in await say(f"/bind {official_code(store)}")
            detail = await say(numbered(await say("/queue"), "张*三"))
            answer = await say(numbered(detail, f"查看附件：{_material_name(0)}"))
    assert expected in answer
    assert "/files/" not in answer
    assert len(openings(store, placed.nomination_id)) == 1
