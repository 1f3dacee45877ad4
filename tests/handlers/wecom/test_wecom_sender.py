"""The WeCom sender and API client against the fake WeCom API: WeCom's errors as our
DeliveryError, long texts split, and one access-token refresher for every worker."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from fakes.wecom_api import GETTOKEN, SEND

from bot.edges import StoreSendBudget, StoreTokenCache
from handlers.base import utf8_len
from handlers.wecom.client import WecomApi
from handlers.wecom.sender import MemberLimit, WecomSender
from notifications.senders import DeliveryError
from storage.channels import cached_token

if TYPE_CHECKING:
    from conftest import Rig


async def send(rig: Rig, text: str = "您有新的待审推荐。", user: str = "lisi") -> None:
    await asyncio.to_thread(rig.adapter.sender().send, user, text, "key-1")


async def refused(rig: Rig, user: str = "lisi") -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await send(rig, user=user)
    return caught.value


@pytest.mark.parametrize(
    ("errcode", "retryable", "retry_after"),
    [
        (45009, True, timedelta(minutes=1)),  # API frequency limit
        (81013, False, None),  # all recipients invalid
        (60111, False, None),  # user not found
        (-1, True, None),  # system busy
        (60020, False, None),  # anything else: an operator must look (IP not allowed, …)
    ],
)
async def test_wecom_errors_become_delivery_errors(
    rig: Rig, errcode: int, retryable: bool, retry_after: timedelta | None
) -> None:
    rig.fake.fail_next(errcode)
    error = await refused(rig)
    assert (error.retryable, error.retry_after) == (retryable, retry_after)
    assert str(errcode) in error.reason
    assert rig.fake.texts() == []
    await send(rig)  # the next one goes through
    assert len(rig.fake.texts()) == 1


async def test_an_invalid_user_in_an_accepted_call_is_not_delivered(rig: Rig) -> None:
    rig.fake.invalid_users.add("ghost")
    error = await refused(rig, user="ghost")
    assert (error.retryable, "invaliduser" in error.reason) == (False, True)
    assert rig.fake.texts() == []


async def test_network_and_http_failures_are_retryable(rig: Rig) -> None:
    await send(rig)  # a token in the store
    settings = rig.fake.settings(token="t", aes_key="k" * 43)
    api = WecomApi(
        dataclasses.replace(settings, api_base="http://127.0.0.1:9"),  # nothing listens
        StoreTokenCache(rig.store),
        clock=rig.clock,
        timeout=2.0,
    )
    sender = WecomSender(api, MemberLimit(StoreSendBudget(rig.store), rig.clock))
    try:
        with pytest.raises(DeliveryError) as caught:
            await asyncio.to_thread(sender.send, "lisi", "hello", "key-2")
    finally:
        api.close()
    assert caught.value.retryable
    assert "network" in caught.value.reason
    assert "hello" not in caught.value.reason


async def test_a_refused_token_is_refreshed_once_then_the_call_retried(rig: Rig) -> None:
    await send(rig)
    assert len(rig.fake.calls_to(GETTOKEN)) == 1
    rig.fake.expire_tokens()  # WeCom now answers 42001 for the stored token
    await send(rig)
    assert len(rig.fake.calls_to(GETTOKEN)) == 2
    assert len(rig.fake.texts()) == 2
    rig.fake.fail_next(40001)  # once: refresh, retry, delivered
    await send(rig)
    assert len(rig.fake.calls_to(GETTOKEN)) == 3
    assert len(rig.fake.texts()) == 3
    rig.fake.fail_next(40014, times=2)  # refused again after the refresh: retry later
    error = await refused(rig)
    assert error.retryable
    assert len(rig.fake.calls_to(GETTOKEN)) == 4
    assert len(rig.fake.calls_to(SEND)) == 7


async def test_a_wrong_secret_is_not_retried(rig: Rig) -> None:
    rig.fake.secret = "rotated"
    error = await refused(rig)
    assert (error.retryable, "gettoken" in error.reason) == (False, True)
    assert rig.fake.calls_to(SEND) == []


async def test_a_long_notification_is_split_under_2048_bytes(rig: Rig) -> None:
    lines = [f"{n}. 张小三 · 吉林省技术能手 · 县级人社部门审核" for n in range(1, 80)]
    text = "\n".join(lines)
    assert utf8_len(text) > 2 * 2048
    await send(rig, text)
    sent = [content for _, content in rig.fake.texts()]
    assert len(sent) == 3
    assert all(utf8_len(piece) <= 2048 for piece in sent)
    assert "\n".join(sent) == text  # cut between lines, nothing lost


async def test_the_per_member_limit_defers_the_31st_message(rig: Rig) -> None:
    for _ in range(30):
        await send(rig)
    rig.clock.now += timedelta(seconds=20)
    error = await refused(rig)
    assert error.retryable
    assert error.retry_after == timedelta(seconds=40)  # the first send leaves the window
    assert len(rig.fake.texts()) == 30
    await send(rig, user="wangwu")  # another member has a window of their own
    rig.clock.now += timedelta(seconds=40)
    await send(rig)
    assert len(rig.fake.texts()) == 32


async def test_two_workers_share_one_per_member_count(rig: Rig) -> None:
    for _ in range(30):
        await send(rig)  # worker 1 (the rig's sender) uses the member's minute
    settings = rig.fake.settings(token="t", aes_key="k" * 43)
    other = WecomApi(settings, StoreTokenCache(rig.store), clock=rig.clock)
    worker_2 = WecomSender(other, MemberLimit(StoreSendBudget(rig.store), rig.clock))
    try:
        with pytest.raises(DeliveryError) as caught:
            await asyncio.to_thread(worker_2.send, "lisi", "第31条", "key-31")
    finally:
        other.close()
    assert caught.value.retry_after is not None
    assert len(rig.fake.texts()) == 30  # WeCom would have dropped the 31st silently


async def test_workers_share_one_token_refresher(rig: Rig) -> None:
    rig.fake.token_delay = 0.3  # both workers want a token while the first fetch runs
    settings = rig.fake.settings(token="t", aes_key="k" * 43)
    workers = [WecomApi(settings, StoreTokenCache(rig.store), clock=rig.clock) for _ in range(2)]
    start = threading.Barrier(2)

    def work(api: WecomApi, user: str) -> None:
        start.wait()
        api.send_text(user, "您有新的待审推荐。")

    try:
        await asyncio.gather(
            *(asyncio.to_thread(work, api, u) for api, u in zip(workers, ["a", "b"], strict=True))
        )
    finally:
        for api in workers:
            api.close()
    assert len(rig.fake.calls_to(GETTOKEN)) == 1
    assert sorted(user for user, _ in rig.fake.texts()) == ["a", "b"]
    tokens = {call.params["access_token"] for call in rig.fake.calls_to(SEND)}
    stored = cached_token(
        rig.store, workers[0].token_name, now=rig.clock(), margin=timedelta(minutes=5)
    )
    assert stored is not None
    assert tokens == {stored.value}
    assert workers[0].token_name == f"wecom:{rig.fake.corp_id}:{rig.fake.agent_id}"
