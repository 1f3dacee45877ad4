"""WeChat notifications through a real outbox Dispatcher: the customer-service window, the
template fallback, undeliverable reasons, platform errors, and the shared access_token."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fakes.wechat_api import APP_ID, SECRET, FakeWechatApi
from support.drivers.wechat import Clock

from bot.edges import StoreReplyWindow, StoreTokenCache
from handlers.wechat.client import WechatApiError, WechatClient
from handlers.wechat.sender import NO_WINDOW_NO_TEMPLATE, WechatSender
from notifications.outbox import Dispatcher
from storage.channels import Slot, WindowOpener, open_window, take_window_slot
from storage.outbox import OutboxMessage, OutboxStatus, enqueue, find
from storage.store import Store

T0 = datetime(2022, 11, 3, 1, 30, tzinfo=UTC)
OPENID = "o-clerk-1"
TEXT = "张三的推荐（吉林省技术能手）已进入市级评审。"
TEMPLATE = "TPL-status-0001"
CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE_SEND = "/cgi-bin/message/template/send"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@asynccontextmanager
async def wechat(
    store: Store, clock: Clock, *, template: str | None = TEMPLATE, token_delay: float = 0.0
) -> AsyncIterator[tuple[FakeWechatApi, WechatClient, Dispatcher]]:
    async with FakeWechatApi(token_delay=token_delay) as fake:
        client = WechatClient(
            APP_ID, SECRET, api_base=fake.url, tokens=StoreTokenCache(store), clock=clock
        )
        sender = WechatSender(
            client, StoreReplyWindow(store), clock=clock, template_status=template
        )
        dispatcher = Dispatcher(store, {"wechat": sender}, clock=clock, worker_id="test-worker")
        try:
            yield fake, client, dispatcher
        finally:
            client._http.close()


def notify(store: Store, key: str = "n-1", openid: str = OPENID) -> str:
    with store.transaction() as conn:
        enqueue(conn, store.sealer, [OutboxMessage(key, "wechat", openid, TEXT)], now=T0)
    return key


async def deliver(dispatcher: Dispatcher) -> None:
    await asyncio.to_thread(dispatcher.run_once)


def status(store: Store, key: str = "n-1") -> tuple[OutboxStatus, str | None]:
    entry = find(store, key)
    assert entry is not None
    return entry.status, entry.last_error


async def test_inside_the_window_a_customer_service_message_goes(
    store: Store, clock: Clock
) -> None:
    async with wechat(store, clock) as (fake, _, dispatcher):
        open_window(store, "wechat", OPENID, WindowOpener.MESSAGE, now=T0)
        notify(store)

        await deliver(dispatcher)

        assert fake.sent_texts() == [(OPENID, TEXT)]
        assert fake.templates() == []
        assert status(store) == (OutboxStatus.DELIVERED, None)


async def test_outside_the_window_the_template_message_goes(store: Store, clock: Clock) -> None:
    async with wechat(store, clock) as (fake, _, dispatcher):
        open_window(store, "wechat", OPENID, WindowOpener.MESSAGE, now=T0 - timedelta(hours=49))
        notify(store)

        await deliver(dispatcher)

        assert fake.calls_to(CUSTOM) == []
        (template,) = fake.templates()
        assert template["touser"] == OPENID
        assert template["template_id"] == TEMPLATE
        # Since 2023: no first/remark, each field at most 20 characters (issue 10)
        assert template["data"] == {
            "thing1": {"value": "状态变更"},
            "date2": {"value": "2022年11月3日 01:30"},
            "thing3": {"value": TEXT[:19] + "…"},
        }
        assert status(store)[0] is OutboxStatus.DELIVERED


async def test_outside_the_window_without_a_template_it_is_recorded_undeliverable(
    store: Store, clock: Clock
) -> None:
    async with wechat(store, clock, template=None) as (fake, _, dispatcher):
        notify(store)  # this user never wrote: no window at all

        await deliver(dispatcher)

        assert fake.calls_to(CUSTOM) == []
        assert fake.calls_to(TEMPLATE_SEND) == []
        assert status(store) == (OutboxStatus.FAILED, NO_WINDOW_NO_TEMPLATE)


async def test_a_used_up_window_falls_back_to_the_template(store: Store, clock: Clock) -> None:
    async with wechat(store, clock) as (fake, _, dispatcher):
        open_window(store, "wechat", OPENID, WindowOpener.EVENT, now=T0)  # 3 within a minute
        for n in range(4):
            notify(store, f"n-{n}")

        await deliver(dispatcher)

        assert len(fake.sent_texts()) == 3
        assert len(fake.templates()) == 1


@pytest.mark.parametrize(("errcode", "after"), [(45015, Slot.CLOSED), (45047, Slot.USED_UP)])
async def test_the_platform_saying_the_window_is_gone_falls_back_to_the_template(
    store: Store, clock: Clock, errcode: int, after: Slot
) -> None:
    async with wechat(store, clock) as (fake, _, dispatcher):
        open_window(store, "wechat", OPENID, WindowOpener.MESSAGE, now=T0)
        fake.fail_next(CUSTOM, errcode)
        notify(store)

        await deliver(dispatcher)

        assert [c.errcode for c in fake.calls_to(CUSTOM)] == [errcode]
        assert len(fake.templates()) == 1
        assert status(store)[0] is OutboxStatus.DELIVERED
        assert take_window_slot(store, "wechat", OPENID, now=T0) is after


async def test_45015_without_a_template_is_recorded_undeliverable(
    store: Store, clock: Clock
) -> None:
    async with wechat(store, clock, template=None) as (fake, _, dispatcher):
        open_window(store, "wechat", OPENID, WindowOpener.MESSAGE, now=T0)
        fake.fail_next(CUSTOM, 45015)
        notify(store)

        await deliver(dispatcher)

        assert status(store) == (OutboxStatus.FAILED, NO_WINDOW_NO_TEMPLATE)


async def test_45009_is_retried_later(store: Store, clock: Clock) -> None:
    async with wechat(store, clock) as (fake, _, dispatcher):
        open_window(store, "wechat", OPENID, WindowOpener.MESSAGE, now=T0)
        fake.fail_next(CUSTOM, 45009)
        notify(store)

        await deliver(dispatcher)

        state, reason = status(store)
        assert state is OutboxStatus.PENDING
        assert "45009" in (reason or "")
        assert TEXT not in (reason or "")
        clock.now = T0 + timedelta(minutes=1)
        await deliver(dispatcher)
        assert fake.sent_texts() == [(OPENID, TEXT)]


async def test_a_recipient_not_following_is_not_retried(store: Store, clock: Clock) -> None:
    async with wechat(store, clock) as (fake, _, dispatcher):
        fake.fail_next(TEMPLATE_SEND, 43004)
        notify(store)

        await deliver(dispatcher)

        state, reason = status(store)
        assert state is OutboxStatus.FAILED
        assert "43004" in (reason or "")


# ----- the access_token -----------------------------------------------------------------------


async def test_a_refused_token_is_fetched_again_once_and_the_call_retried(
    store: Store, clock: Clock
) -> None:
    async with wechat(store, clock) as (fake, client, _):
        await asyncio.to_thread(client.send_text, OPENID, "一")
        fake.fail_next(CUSTOM, 40001)

        await asyncio.to_thread(client.send_text, OPENID, "二")

        assert fake.tokens_issued == ["fake-token-1", "fake-token-2"]
        assert fake.sent_texts() == [(OPENID, "一"), (OPENID, "二")]
        fake.fail_next(CUSTOM, 40001, times=2)
        with pytest.raises(WechatApiError) as refused:
            await asyncio.to_thread(client.send_text, OPENID, "三")
        assert refused.value.errcode == 40001
        assert len(fake.tokens_issued) == 3  # once per call, never in a loop


async def test_two_workers_needing_a_token_at_once_fetch_it_once(
    store: Store, clock: Clock
) -> None:
    async with wechat(store, clock, token_delay=0.3) as (fake, first, _):
        second = WechatClient(
            APP_ID, SECRET, api_base=fake.url, tokens=StoreTokenCache(store), clock=clock
        )
        barrier = threading.Barrier(2)

        def worker(client: WechatClient) -> str:
            barrier.wait()
            return client.token().value

        try:
            tokens = await asyncio.gather(
                asyncio.to_thread(worker, first), asyncio.to_thread(worker, second)
            )
        finally:
            second._http.close()

        assert tokens == ["fake-token-1", "fake-token-1"]
        assert len(fake.calls_to("/cgi-bin/token")) == 1


async def test_an_expiring_token_is_renewed(store: Store, clock: Clock) -> None:
    async with wechat(store, clock) as (fake, client, _):
        assert (await asyncio.to_thread(client.token)).value == "fake-token-1"
        clock.now = T0 + timedelta(seconds=7200 - 299)  # inside the 5-minute margin

        assert (await asyncio.to_thread(client.token)).value == "fake-token-2"


def test_the_sender_contract() -> None:
    assert (WechatSender.channel, WechatSender.idempotent) == ("wechat", False)
