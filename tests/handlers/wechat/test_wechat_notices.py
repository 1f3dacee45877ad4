"""Reminders, deadline alerts and digests on WeChat, through the real Dispatcher, the real
sender and wechatpy against the fake WeChat API: the customer-service window first, then a
subscription notice, then a template message of 20-character fields linking to the whole
notice, else recorded undeliverable; and the detail page behind the link, in `awardbot serve`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.wechat_api import APP_ID, SECRET, SUBSCRIBE, TEMPLATE, TOKEN, FakeWechatApi
from support.drivers.wechat import Clock
from support.serving import serving

from bot.edges import StoreNoticePages, StoreReplyWindow, StoreTokenCache
from bot.settings import SettingsError, load_settings
from handlers.wechat.client import WechatClient
from handlers.wechat.notices import NoticeLinks
from handlers.wechat.sender import WechatSender, undeliverable_reason
from notifications.notice import Notice, NoticeKind
from notifications.outbox import Dispatcher
from storage.channels import WindowOpener, open_window
from storage.outbox import OutboxMessage, OutboxStatus, enqueue, find
from storage.store import Store

T0 = datetime(2022, 11, 3, 1, 30, tzinfo=UTC)
OPENID = "o-clerk-1"
PUBLIC = "https://bot.example.org"
CUSTOM = "/cgi-bin/message/custom/send"
DEADLINE = Notice(
    NoticeKind.DEADLINE,
    "退回的推荐待修改：张三（吉林省技术能手）等",  # 21 characters: one too many for a field
    "张三的推荐被市级人社部门退回：\n缺少单位推荐意见。请于 11月4日 17:00 前修改后重新提交。",
    "2022-11-04 17:00",
)
WINDOW = Notice(NoticeKind.WINDOW, "推荐报送今日开始", "吉林省技术能手评选今日起接受推荐。")
STATUS = "张三的推荐（吉林省技术能手）已进入市级评审。"
NO_DOTENV = Path("/nonexistent/.env")


@dataclass
class Rig:
    fake: FakeWechatApi
    store: Store
    clock: Clock
    dispatcher: Dispatcher

    def notify(self, key: str, notice: Notice, openid: str = OPENID) -> None:
        text = notice.body if notice.kind is NoticeKind.STATUS else notice.dumps()
        row = OutboxMessage(key, "wechat", openid, text, kind=notice.kind.value)
        with self.store.transaction() as conn:
            enqueue(conn, self.store.sealer, [row], now=T0)

    async def deliver(self) -> None:
        await asyncio.to_thread(self.dispatcher.run_once)

    def status(self, key: str) -> tuple[OutboxStatus, str | None]:
        entry = find(self.store, key)
        assert entry is not None
        return entry.status, entry.last_error

    def sent(self) -> list[str]:
        """Which way each accepted message went, in order."""
        names = {CUSTOM: "custom", SUBSCRIBE: "subscribe", TEMPLATE: "template"}
        return [names[c.path] for c in self.fake.calls if c.path in names and c.errcode == 0]


@asynccontextmanager
async def wechat(
    store: Store,
    *,
    status: str | None = None,
    deadline: str | None = None,
    subscribe: dict[NoticeKind, str | None] | None = None,
    public_url: str | None = PUBLIC,
) -> AsyncIterator[Rig]:
    clock = Clock(T0)
    async with FakeWechatApi() as fake:
        client = WechatClient(
            APP_ID, SECRET, api_base=fake.url, tokens=StoreTokenCache(store), clock=clock
        )
        links = (
            None
            if public_url is None
            else NoticeLinks(public_url, StoreNoticePages(store), clock=clock)
        )
        sender = WechatSender(
            client,
            StoreReplyWindow(store),
            clock=clock,
            template_status=status,
            template_deadline=deadline,
            subscribe=subscribe,
            links=links,
        )
        dispatcher = Dispatcher(store, {"wechat": sender}, clock=clock, worker_id="test")
        try:
            yield Rig(fake, store, clock, dispatcher)
        finally:
            client._http.close()


def within_the_2023_rules(data: dict[str, Any]) -> bool:
    values = [field["value"] for field in data.values()]
    return all(0 < len(v) <= 20 and "\n" not in v and "\r" not in v for v in values)


async def test_inside_the_window_the_whole_notice_goes_as_a_customer_service_message(
    store: Store,
) -> None:
    subscribe = {NoticeKind.DEADLINE: "SUB-deadline"}
    async with wechat(store, status="TPL-s", subscribe=subscribe) as rig:
        open_window(store, "wechat", OPENID, WindowOpener.MESSAGE, now=T0 - timedelta(hours=1))
        rig.notify("d-1", DEADLINE)

        await rig.deliver()

        assert rig.fake.sent_texts() == [(OPENID, f"【{DEADLINE.title}】\n{DEADLINE.body}")]
        assert rig.sent() == ["custom"]
        assert rig.status("d-1") == (OutboxStatus.DELIVERED, None)


async def test_outside_the_window_a_subscribed_kind_goes_as_a_subscription_notice(
    store: Store,
) -> None:
    subscribe = {NoticeKind.DEADLINE: "SUB-deadline", NoticeKind.WINDOW: None}
    async with wechat(store, status="TPL-s", subscribe=subscribe) as rig:
        open_window(store, "wechat", OPENID, WindowOpener.MESSAGE, now=T0 - timedelta(hours=49))
        rig.notify("d-1", DEADLINE)

        await rig.deliver()

        assert rig.sent() == ["subscribe"]
        (notice,) = rig.fake.subscriptions()
        assert (notice["touser"], notice["template_id"]) == (OPENID, "SUB-deadline")
        assert notice["data"] == {
            "thing1": {"value": "退回的推荐待修改：张三（吉林省技术能手…"},
            "date2": {"value": "2022年11月4日 17:00"},
            "thing3": {"value": "张三的推荐被市级人社部门退回： 缺少单…"},
        }
        assert within_the_2023_rules(notice["data"])
        assert notice["page"].startswith(f"{PUBLIC}/wechat/notice/")
        assert "张三" not in notice["page"]
        assert rig.status("d-1") == (OutboxStatus.DELIVERED, None)


async def test_without_a_subscription_a_template_message_goes_with_a_link_to_the_detail(
    store: Store,
) -> None:
    subscribe = {NoticeKind.DIGEST: "SUB-digest"}  # for another kind only
    async with wechat(store, status="TPL-s", deadline="TPL-d", subscribe=subscribe) as rig:
        rig.notify("d-1", DEADLINE)
        rig.notify("w-1", WINDOW)
        rig.notify("s-1", Notice(NoticeKind.STATUS, "", STATUS))

        await rig.deliver()

        assert rig.sent() == ["template", "template", "template"]
        deadline, window, status = rig.fake.templates()
        assert [t["template_id"] for t in (deadline, window, status)] == [
            "TPL-d",
            "TPL-d",
            "TPL-s",
        ]
        assert deadline["data"] == {
            "thing1": {"value": "退回的推荐待修改：张三（吉林省技术能手…"},
            "date2": {"value": "2022年11月4日 17:00"},
            "thing3": {"value": "张三的推荐被市级人社部门退回： 缺少单…"},
        }
        assert window["data"]["date2"] == {"value": "2022年11月3日 01:30"}  # no date: when sent
        assert status["data"]["thing1"] == {"value": "状态变更"}
        for template in (deadline, window, status):
            assert "first" not in template["data"]
            assert "remark" not in template["data"]
            assert within_the_2023_rules(template["data"])
            assert template["url"].startswith(f"{PUBLIC}/wechat/notice/")
        assert rig.fake.dropped == []
        assert [rig.status(k)[0] for k in ("d-1", "w-1", "s-1")] == [OutboxStatus.DELIVERED] * 3


async def test_a_user_who_has_not_subscribed_gets_the_template_message(store: Store) -> None:
    async with wechat(store, deadline="TPL-d", subscribe={NoticeKind.DEADLINE: "SUB-d"}) as rig:
        rig.fake.unsubscribed.add(OPENID)
        rig.notify("d-1", DEADLINE)

        await rig.deliver()

        assert [c.errcode for c in rig.fake.calls_to(SUBSCRIBE)] == [43101]
        assert rig.sent() == ["template"]
        assert rig.status("d-1") == (OutboxStatus.DELIVERED, None)


async def test_not_subscribed_and_no_template_is_recorded_undeliverable(store: Store) -> None:
    async with wechat(store, subscribe={NoticeKind.DIGEST: "SUB-digest"}) as rig:
        rig.fake.unsubscribed.add(OPENID)
        digest = Notice(NoticeKind.DIGEST, "今日待办：2 件", "待审推荐 2 件。", "2022-11-03")
        rig.notify("g-1", digest)

        await rig.deliver()

        reason = undeliverable_reason(NoticeKind.DIGEST, not_subscribed=True)
        assert rig.status("g-1") == (OutboxStatus.FAILED, reason)
        assert "43101" in reason
        assert "undeliverable" in reason


async def test_nothing_configured_outside_the_window_is_recorded_undeliverable(
    store: Store,
) -> None:
    async with wechat(store) as rig:
        rig.notify("w-1", WINDOW)  # this user never wrote: no window at all

        await rig.deliver()

        assert rig.fake.calls_to(CUSTOM) == rig.fake.calls_to(TEMPLATE) == []
        assert rig.fake.calls_to(SUBSCRIBE) == []
        state, reason = rig.status("w-1")
        assert (state, reason) == (OutboxStatus.FAILED, undeliverable_reason(NoticeKind.WINDOW))
        assert "无法送达" in (reason or "")
        assert "window" in (reason or "")
        assert WINDOW.body not in (reason or "")


async def test_without_a_public_url_the_template_message_has_no_link(store: Store) -> None:
    async with wechat(store, status="TPL-s", public_url=None) as rig:
        rig.notify("w-1", WINDOW)

        await rig.deliver()

        (template,) = rig.fake.templates()
        assert "url" not in template
        assert template["template_id"] == "TPL-s"  # no deadline template: the status one


async def test_fields_the_platform_refuses_are_not_retried(store: Store) -> None:
    async with wechat(store, status="TPL-s") as rig:
        rig.fake.fail_next(TEMPLATE, 47003)
        rig.notify("w-1", WINDOW)

        await rig.deliver()

        state, reason = rig.status("w-1")
        assert state is OutboxStatus.FAILED
        assert "47003" in (reason or "")


# ----- the detail page, in `awardbot serve` ---------------------------------------------------


@asynccontextmanager
async def serve_wechat(
    store: Store, clock: Clock, **env: str
) -> AsyncIterator[tuple[FakeWechatApi, str]]:
    async with FakeWechatApi() as fake:
        settings = {
            "AWARDBOT_WECHAT_APP_ID": APP_ID,
            "AWARDBOT_WECHAT_APP_SECRET": SECRET,
            "AWARDBOT_WECHAT_TOKEN": TOKEN,
            "AWARDBOT_WECHAT_API_BASE": fake.url,
            "AWARDBOT_PUBLIC_URL": PUBLIC,
            "AWARDBOT_WECHAT_TEMPLATE_DEADLINE": "TPL-d",
            **env,
        }
        async with serving(store, settings, clock=clock) as server:
            yield fake, server.url


async def delivered(fake: FakeWechatApi) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while not fake.templates() and time.monotonic() < deadline:  # noqa: ASYNC110 - a poll
        await asyncio.sleep(0.05)
    (template,) = fake.templates()
    return template


async def get(url: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text(), dict(response.headers)


async def test_the_link_opens_the_whole_notice_on_a_signed_page(store: Store) -> None:
    clock = Clock(T0)
    notice = Notice(
        NoticeKind.DEADLINE, "公示<期>将结束", "第一行 <script>x</script>\n第二行 & 第三行"
    )
    async with serve_wechat(store, clock) as (fake, url):
        with store.transaction() as conn:
            row = OutboxMessage("d-9", "wechat", OPENID, notice.dumps(), kind="deadline")
            enqueue(conn, store.sealer, [row], now=T0)
        template = await delivered(fake)
        link = template["url"].replace(PUBLIC, url)

        status, page, headers = await get(link)
        assert status == 200
        assert "公示&lt;期&gt;将结束" in page
        assert "第一行 &lt;script&gt;x&lt;/script&gt;\n第二行 &amp; 第三行" in page
        assert "<script>" not in page
        assert headers["Cache-Control"] == "private, no-store"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Content-Type"].startswith("text/html")

        token = link.rsplit("/", 1)[1]
        key, expires, signature = token.split(".")
        forged = f"{url}/wechat/notice/{key}.{int(expires) + 86400}.{signature}"
        assert (await get(forged))[0] == 403
        clock.now = T0 + timedelta(days=7, seconds=1)
        assert (await get(link))[0] == 410


async def test_the_page_shows_no_reply_and_no_other_channels_row(store: Store) -> None:
    clock = Clock(T0)
    async with serve_wechat(store, clock) as (_, url):
        with store.transaction() as conn:
            rows = [
                OutboxMessage("r-1", "wechat", OPENID, '{"replies": []}', kind="reply"),
                OutboxMessage("t-1", "telegram", "1", WINDOW.dumps(), kind="window"),
            ]
            enqueue(conn, store.sealer, rows, now=T0 + timedelta(days=1))  # not due yet
        links = NoticeLinks(url, StoreNoticePages(store), clock=clock)
        for key in ("r-1", "t-1", "no-such-row"):
            address = links.url(key)
            assert address is not None
            status, page, _ = await get(address)
            assert status == 404
            assert "replies" not in page
            assert WINDOW.body not in page


def test_the_subscription_templates_and_link_days_are_read_from_env() -> None:
    base = {
        "AWARDBOT_WECHAT_APP_ID": APP_ID,
        "AWARDBOT_WECHAT_APP_SECRET": SECRET,
        "AWARDBOT_WECHAT_TOKEN": TOKEN,
    }
    settings = load_settings(
        {
            **base,
            "AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_WINDOW": "SUB-w",
            "AWARDBOT_WECHAT_SUBSCRIBE_TEMPLATE_DIGEST": "SUB-g",
            "AWARDBOT_WECHAT_NOTICE_LINK_DAYS": "14",
        },
        dotenv=NO_DOTENV,
    )
    wechat = settings.wechat
    assert wechat is not None
    assert (wechat.subscribe_status, wechat.subscribe_window) == (None, "SUB-w")
    assert (wechat.subscribe_deadline, wechat.subscribe_digest) == (None, "SUB-g")
    assert wechat.notice_link_days == 14
    with pytest.raises(SettingsError, match="^AWARDBOT_WECHAT_NOTICE_LINK_DAYS: '0' is not"):
        load_settings(
            {**base, "AWARDBOT_WECHAT_NOTICE_LINK_DAYS": "0"},
            dotenv=NO_DOTENV,
        )
