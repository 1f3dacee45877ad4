"""The generated documents reach the chat on the real channels (issue 12): `awardbot serve`'s
document job renders what /documents asked for, and the outbox hands it over the way the
channel hands files — Telegram as documents (python-telegram-bot against the fake Bot API),
WeChat as signed, expiring links that `serve` answers (wechatpy against the fake WeChat API).
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from fakes.telegram_api import FakeTelegram
from fakes.wechat_api import FakeWechatApi
from openpyxl import load_workbook
from PIL import Image
from support.console_harness import FIXED_NOW, regions
from support.drivers.telegram import CHAT, TelegramDriver, telegram_env
from support.drivers.wechat import WechatPusher
from support.review_rig import clerk, place

from conversations.identity import Level, Role
from storage import invites
from storage.quotas import set_quota
from storage.store import Store

SKILLS = "jl-skills-2022"
PUBLIC = "https://bot.example.org/award"


def code_for(store: Store, **invite: object) -> str:
    with store.transaction() as conn:
        return str(
            invites.create_invite(conn, now=FIXED_NOW, ttl=timedelta(days=30), **invite).code  # type: ignore[arg-type]
        )


async def until(condition, within: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a store
        await asyncio.sleep(0.2)


async def test_telegram_receives_the_quota_chart_and_the_summary_as_files(
    store: Store, tmp_path: Path
) -> None:
    from support.serving import serving

    clerk(store)
    place(store, fields={"name": "张小三", "mobile": "13912345678"}, materials=False)
    with store.transaction() as conn:
        set_quota(
            conn, campaign=SKILLS, category="technical_expert", region=regions().get("220100"),
            places=3, now=FIXED_NOW,
        )  # fmt: skip
    code = code_for(store, role=Role.OFFICIAL, region=regions().get("220100"), level=Level.CITY)
    async with FakeTelegram() as tg:
        env = telegram_env(tg, library="ptb", mode="webhook")
        env["AWARDBOT_DOCUMENT_TICK_SECONDS"] = "1"
        async with serving(store, env, files_dir=tmp_path / "files") as server:
            adapter = server.adapters[0]
            tg.webhook = {"url": f"{server.url}/telegram", "secret_token": env[
                "AWARDBOT_TELEGRAM_WEBHOOK_SECRET"]}  # fmt: skip
            user = TelegramDriver(tg, mode="webhook", settled=adapter.settled)  # type: ignore[attr-defined]
            assert "绑定成功" in await user.send(f"/bind {code}")
            assert "已推荐 1 名，名额 3 名" in await user.send(f"/quota {SKILLS}")
            await until(lambda: len(tg.uploads(CHAT)) >= 1)
            (photo,) = tg.uploads(CHAT)
            # The summary alone (the office's whole set is the console's and WeCom's test).
            from storage.exports import request

            with store.transaction() as conn:
                import sqlalchemy as sa

                from storage.tables import users

                me = conn.execute(sa.select(users.c.id).where(users.c.channel == "telegram"))
                request(conn, user_id=me.scalar_one(), campaign=SKILLS, kinds=["summary"],
                        now=FIXED_NOW)  # fmt: skip
            await until(lambda: len(tg.uploads(CHAT)) >= 3)
    method, name, data = photo
    assert (method, name.endswith("推荐名额对照.png")) == ("sendPhoto", True)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
    uploads = tg.uploads(CHAT)[1:]
    assert sorted(m for m, _, _ in uploads) == ["sendDocument", "sendDocument"]
    (xlsx,) = [data for _, name, data in uploads if name.endswith("推荐汇总表.xlsx")]
    book = load_workbook(io.BytesIO(xlsx), read_only=True)
    try:
        rows = list(book.active.iter_rows(min_row=4, values_only=True))
    finally:
        book.close()
    assert [r[1] for r in rows] == ["张小三"]
    assert "139****5678" in rows[0]


async def test_wechat_gets_a_signed_link_to_the_quota_chart(store: Store, tmp_path: Path) -> None:
    from support.serving import serving

    clerk(store)
    place(store)
    with store.transaction() as conn:
        set_quota(
            conn, campaign=SKILLS, category="technical_expert", region=regions().get("220100"),
            places=3, now=FIXED_NOW,
        )  # fmt: skip
    code = code_for(store, role=Role.OFFICIAL, region=regions().get("220100"), level=Level.CITY)
    async with FakeWechatApi() as api:
        wechat = api.settings()
        env = {
            "AWARDBOT_WECHAT_APP_ID": wechat.app_id,
            "AWARDBOT_WECHAT_APP_SECRET": wechat.app_secret,
            "AWARDBOT_WECHAT_TOKEN": wechat.token,
            "AWARDBOT_WECHAT_API_BASE": api.url,
            "AWARDBOT_PUBLIC_URL": PUBLIC,
            "AWARDBOT_DOCUMENT_TICK_SECONDS": "1",
        }
        pusher = WechatPusher(wechat, clock=lambda: FIXED_NOW)
        async with (
            serving(store, env, clock=lambda: FIXED_NOW, files_dir=tmp_path / "files") as server,
            aiohttp.ClientSession() as http,
        ):

            async def say(text: str) -> str:
                query, body = pusher.sign(pusher.text("oOFFICE", text))
                async with http.post(f"{server.url}/wechat", params=query, data=body) as r:
                    assert r.status == 200
                    return pusher.open_reply(await r.text())

            assert "绑定成功" in await say(f"/bind {code}")
            answer = await say(f"/quota {SKILLS}")
            assert "已推荐 1 名，名额 3 名" in answer

            def linked() -> list[str]:
                return [
                    link
                    for user, m in api.sent_texts()
                    if user == "oOFFICE"
                    for link in re.findall(r"https://\S+", m)
                ]

            await until(lambda: bool(linked()))
            (link,) = linked()
            async with http.get(f"{server.url}{urlsplit(link).path.removeprefix('/award')}") as r:
                assert r.status == 200
                assert r.headers["Content-Type"] == "image/png"
                data = await r.read()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"


WECOM_TOKEN = "123456"
WECOM_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


async def test_wecom_sends_the_summary_as_a_file_message(store: Store, tmp_path: Path) -> None:
    from fakes.wecom_api import FakeWecomApi, WecomPusher
    from support.serving import serving

    clerk(store)
    place(store, fields={"name": "张小三"}, materials=False)
    code = code_for(store, role=Role.OFFICIAL, region=regions().get("220100"), level=Level.CITY)
    async with FakeWecomApi() as api:
        env = {
            "AWARDBOT_WECOM_CORP_ID": api.corp_id,
            "AWARDBOT_WECOM_SECRET": api.secret,
            "AWARDBOT_WECOM_AGENT_ID": str(api.agent_id),
            "AWARDBOT_WECOM_TOKEN": WECOM_TOKEN,
            "AWARDBOT_WECOM_AES_KEY": WECOM_AES_KEY,
            "AWARDBOT_WECOM_API_BASE": api.url,
            "AWARDBOT_DOCUMENT_TICK_SECONDS": "1",
        }
        pusher = WecomPusher(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=api.corp_id,
                             agent_id=api.agent_id, clock=lambda: FIXED_NOW)  # fmt: skip
        async with (
            serving(store, env, clock=lambda: FIXED_NOW, files_dir=tmp_path / "files") as server,
            aiohttp.ClientSession() as http,
        ):

            async def say(text: str) -> None:
                query, body = pusher.sign(pusher.text("wangwu", text))
                async with http.post(
                    f"{server.url}/wecom", params=query, data=io.BytesIO(body)
                ) as response:
                    assert response.status == 200

            await say(f"/bind {code}")
            await say(f"/documents {SKILLS}")
            await until(lambda: any(n.endswith("推荐报告.docx") for _, _, n, _ in api.files()))
    sent = api.files()
    (xlsx,) = [data for _, kind, name, data in sent if name.endswith("推荐汇总表.xlsx")]
    book = load_workbook(io.BytesIO(xlsx), read_only=True)
    try:
        assert [r[1] for r in book.active.iter_rows(min_row=4, values_only=True)] == ["张小三"]
    finally:
        book.close()
    assert {kind for _, kind, _, _ in sent} == {"file"}
    assert any(name.endswith("公示名单.pdf") for _, _, name, _ in sent)
