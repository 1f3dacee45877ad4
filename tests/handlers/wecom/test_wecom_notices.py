"""Notices to officials on WeCom, through the real Dispatcher, the real sender and wechatpy
against the fake WeCom API: reminders, alerts and digests as text cards within WeCom's limits,
as text where a card would not do, each counted in the member's 30 a minute."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.wecom_api import SEND, FakeWecomApi

from bot.edges import StoreSendBudget, StoreTokenCache
from bot.settings import SettingsError, load_settings
from handlers.base import utf8_len
from handlers.wecom.client import WecomApi
from handlers.wecom.sender import MemberLimit, WecomSender
from notifications.notice import Notice, NoticeKind
from notifications.outbox import Dispatcher
from notifications.senders import DeliveryError
from storage.outbox import OutboxMessage, OutboxStatus, enqueue, find
from storage.store import Store

T0 = datetime(2022, 11, 3, 0, 0, tzinfo=UTC)  # 08:00 in Jilin: the digest's hour
NOTICE_URL = "https://awardbot.example.gov.cn/officials"
OFFICIAL = "lisi"
DIGEST = Notice(
    NoticeKind.DIGEST,
    "今日待办：3 件",
    "待审推荐 2 件（吉林省技术能手）\n退回待改 1 件，11月4日截止",
    "2022-11-03",
)
STATUS = "张三的推荐（吉林省技术能手）已进入市级评审。"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Officials:
    fake: FakeWecomApi
    store: Store
    clock: Clock
    sender: WecomSender
    dispatcher: Dispatcher

    def notify(self, key: str, notice: Notice, to: str = OFFICIAL) -> None:
        text = notice.body if notice.kind is NoticeKind.STATUS else notice.dumps()
        row = OutboxMessage(key, "wecom", to, text, kind=notice.kind.value)
        with self.store.transaction() as conn:
            enqueue(conn, self.store.sealer, [row], now=self.clock())

    async def deliver(self) -> None:
        while (await asyncio.to_thread(self.dispatcher.run_once)).total:
            pass

    def status(self, key: str) -> tuple[OutboxStatus, str | None]:
        entry = find(self.store, key)
        assert entry is not None
        return entry.status, entry.last_error


@pytest.fixture
async def officials(store: Store) -> AsyncIterator[Callable[[str | None], Officials]]:
    """Make the rig with a notice URL (or None); the fake WeCom API serves it."""
    clock = Clock()
    async with FakeWecomApi() as fake:
        apis: list[WecomApi] = []

        def make(notice_url: str | None = NOTICE_URL) -> Officials:
            settings = fake.settings(token="t", aes_key="k" * 43, notice_url=notice_url)
            api = WecomApi(settings, StoreTokenCache(store), clock=clock)
            apis.append(api)
            sender = WecomSender(api, MemberLimit(StoreSendBudget(store), clock))
            dispatcher = Dispatcher(store, {"wecom": sender}, clock=clock, worker_id="test")
            return Officials(fake, store, clock, sender, dispatcher)

        try:
            yield make
        finally:
            for api in apis:
                api.close()


async def test_a_digest_is_a_text_card_within_wecoms_limits(
    officials: Callable[[str | None], Officials],
) -> None:
    rig = officials(NOTICE_URL)
    rig.notify("digest-1", DIGEST)
    rig.notify("status-1", Notice(NoticeKind.STATUS, "", STATUS))

    await rig.deliver()

    ((touser, card),) = rig.fake.cards()
    assert touser == OFFICIAL
    assert card == {
        "title": "今日待办：3 件",
        "description": '<div class="gray">2022-11-03</div><div class="normal">'
        "待审推荐 2 件（吉林省技术能手）<br>退回待改 1 件，11月4日截止</div>",
        "url": NOTICE_URL,
        "btntxt": "详情",
    }
    assert rig.fake.truncated == []
    assert rig.fake.texts() == [(OFFICIAL, STATUS)]  # a status change stays plain text
    assert rig.status("digest-1") == (OutboxStatus.DELIVERED, None)
    assert rig.status("status-1") == (OutboxStatus.DELIVERED, None)


async def test_the_card_keeps_to_the_byte_limits_and_escapes_the_text(
    officials: Callable[[str | None], Officials],
) -> None:
    rig = officials(NOTICE_URL)
    title = "长" * 60  # 180 bytes of UTF-8: WeCom would cut it mid-way without a word
    rig.notify("alert-1", Notice(NoticeKind.DEADLINE, title, "材料 <附件2> & 公示 <br>", None))

    await rig.deliver()

    ((_, card),) = rig.fake.cards()
    assert rig.fake.truncated == []
    assert utf8_len(card["title"]) <= 128
    assert card["title"].endswith("…")
    assert card["description"] == (
        '<div class="normal">材料 &lt;附件2&gt; &amp; 公示 &lt;br&gt;</div>'
    )


async def test_a_body_too_long_for_a_card_goes_whole_as_text(
    officials: Callable[[str | None], Officials],
) -> None:
    rig = officials(NOTICE_URL)
    lines = [f"{n}. 张小三 · 吉林省技术能手 · 待县级人社部门审核" for n in range(1, 20)]
    digest = Notice(NoticeKind.DIGEST, "今日待办：19 件", "\n".join(lines), "2022-11-03")
    assert utf8_len(digest.body) > 512
    rig.notify("digest-long", digest)

    await rig.deliver()

    assert rig.fake.cards() == []
    assert "\n".join(text for _, text in rig.fake.texts()) == digest.text()
    assert rig.status("digest-long")[0] is OutboxStatus.DELIVERED


async def test_without_a_notice_url_a_reminder_goes_as_text(
    officials: Callable[[str | None], Officials],
) -> None:
    rig = officials(None)
    window = Notice(NoticeKind.WINDOW, "推荐报送今日开始", "吉林省技术能手评选今日起接受推荐。")
    rig.notify("window-1", window)

    await rig.deliver()

    assert rig.fake.cards() == []
    assert rig.fake.texts() == [
        (OFFICIAL, "【推荐报送今日开始】\n吉林省技术能手评选今日起接受推荐。")
    ]


async def test_cards_count_in_the_members_thirty_a_minute(
    officials: Callable[[str | None], Officials],
) -> None:
    rig = officials(NOTICE_URL)
    for n in range(29):
        await asyncio.to_thread(rig.sender.send, OFFICIAL, f"第{n}条", f"t-{n}")
    await asyncio.to_thread(rig.sender.send_notice, OFFICIAL, DIGEST, "digest-30")
    rig.clock.now = T0 + timedelta(seconds=10)

    with pytest.raises(DeliveryError) as deferred:
        await asyncio.to_thread(rig.sender.send_notice, OFFICIAL, DIGEST, "digest-31")

    assert deferred.value.retryable
    assert deferred.value.retry_after == timedelta(seconds=50)
    assert len(rig.fake.cards()) == 1
    assert len(rig.fake.texts()) == 29


async def test_a_refused_card_says_why_without_the_text(
    officials: Callable[[str | None], Officials],
) -> None:
    rig = officials(NOTICE_URL)
    rig.fake.invalid_users.add("ghost")
    rig.notify("digest-ghost", DIGEST, to="ghost")

    await rig.deliver()

    assert [call.body and call.body["msgtype"] for call in rig.fake.calls_to(SEND)] == ["textcard"]
    state, reason = rig.status("digest-ghost")
    assert state is OutboxStatus.FAILED
    assert "invaliduser" in (reason or "")
    assert DIGEST.title not in (reason or "")


WECOM_ENV = {
    "AWARDBOT_WECOM_CORP_ID": "ww1",
    "AWARDBOT_WECOM_SECRET": "corp-secret",
    "AWARDBOT_WECOM_AGENT_ID": "1000002",
    "AWARDBOT_WECOM_TOKEN": "tok2",
    "AWARDBOT_WECOM_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, None),
        ({"AWARDBOT_PUBLIC_URL": "https://bot.example.org/"}, "https://bot.example.org"),
        (
            {
                "AWARDBOT_PUBLIC_URL": "https://bot.example.org",
                "AWARDBOT_WECOM_NOTICE_URL": "https://portal.example.org/todo/",
            },
            "https://portal.example.org/todo",
        ),
    ],
)
def test_the_card_link_is_the_notice_url_else_the_public_url(
    env: dict[str, str], url: str | None
) -> None:
    settings = load_settings({**WECOM_ENV, **env}, dotenv=Path("/nonexistent/.env"))
    assert settings.wecom is not None
    assert settings.wecom.notice_url == url


def test_a_notice_url_that_is_no_url_is_refused_in_one_line() -> None:
    with pytest.raises(SettingsError, match="^AWARDBOT_WECOM_NOTICE_URL: 'portal' is not"):
        load_settings(
            {**WECOM_ENV, "AWARDBOT_WECOM_NOTICE_URL": "portal"}, dotenv=Path("/nonexistent/.env")
        )
