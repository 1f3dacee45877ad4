"""Flood limits, 429 retry_after and the outbox sender, against the fake Bot API."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from support.drivers.telegram import CHAT, LIBRARIES, telegram_bot

from handlers.telegram import RateLimiter
from notifications.senders import DeliveryError
from storage.store import Store


class FakeTime:
    """A clock the limiter sleeps on: sleeping moves it forward at once."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_one_message_a_second_per_chat_after_a_short_burst() -> None:
    time = FakeTime()
    limiter = RateLimiter(chat_burst=2, clock=time, sleep=time.sleep)
    stamps = []
    for _ in range(5):
        await limiter.acquire("a")
        stamps.append(time.now - 100)
    assert stamps == pytest.approx([0, 0, 1, 2, 3])
    before = time.now
    await limiter.acquire("b")  # another chat has its own bucket
    assert time.now == before


async def test_thirty_messages_a_second_overall() -> None:
    time = FakeTime()
    limiter = RateLimiter(clock=time, sleep=time.sleep)
    for chat in range(30):
        await limiter.acquire(str(chat))
    assert time.now == 100
    await limiter.acquire("another")
    assert time.now - 100 == pytest.approx(1 / 30)


async def test_a_429_pauses_the_chat_for_retry_after() -> None:
    time = FakeTime()
    limiter = RateLimiter(clock=time, sleep=time.sleep)
    limiter.pause("a", 7)
    await limiter.acquire("b")
    assert time.now == 100
    await limiter.acquire("a")
    assert time.now - 100 == pytest.approx(7)


async def test_messages_to_one_chat_are_spaced_at_the_server(store: Store, tmp_path: Path) -> None:
    limiter = RateLimiter(per_chat_per_second=5, chat_burst=1)  # 0.2 s apart, to keep it short
    async with telegram_bot(
        store, library="ptb", mode="webhook", files_dir=tmp_path, limiter=limiter
    ) as tg:
        await asyncio.gather(*(tg.adapter.notify(str(CHAT), f"第{i}条") for i in range(4)))
        await asyncio.gather(*(tg.adapter.notify(str(CHAT + i), "别的用户") for i in range(1, 4)))
        calls = tg.fake.calls_of("sendMessage")
    ours = [c.at for c in calls if c.params["chat_id"] == CHAT]
    gaps = [b - a for a, b in zip(ours, ours[1:], strict=False)]
    assert len(ours) == 4
    assert min(gaps) >= 0.18
    others = [c.at for c in calls if c.params["chat_id"] != CHAT]
    assert max(others) - min(others) < 0.15  # other chats did not wait for this one


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_reply_hit_by_429_waits_and_is_sent(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        tg.fake.fail("sendMessage", times=1, retry_after=1)
        answer = await tg.driver().send("/start")
        calls = tg.fake.calls_of("sendMessage")
    assert answer.startswith("您好")  # greeting first, nothing lost, order kept
    assert "请选择要自检的评选表彰活动" in answer
    assert len(calls) == 3  # the refused one, its retry, the question
    assert calls[0].params["text"] == calls[1].params["text"]
    assert calls[1].at - calls[0].at >= 0.95


@pytest.mark.parametrize("library", LIBRARIES)
async def test_the_outbox_sender_reports_429_with_retry_after(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="polling", files_dir=tmp_path) as tg:
        sender = tg.adapter.sender()
        assert (sender.channel, sender.idempotent) == ("telegram", False)
        tg.fake.fail("sendMessage", times=1, retry_after=1)
        with pytest.raises(DeliveryError) as refused:
            await asyncio.to_thread(sender.send, str(CHAT), "您的推荐已受理。", "n-1")
        assert refused.value.retryable
        assert refused.value.retry_after == timedelta(seconds=1)
        # The dispatcher tries again later; the limiter holds this chat until retry_after.
        await asyncio.to_thread(sender.send, str(CHAT), "您的推荐已受理。", "n-1")
        assert tg.fake.sent(CHAT)[-1]["text"] == "您的推荐已受理。"
        assert tg.gateway.metrics.value("awardbot_replies_sent_total", channel="telegram") == 1


@pytest.mark.parametrize("library", LIBRARIES)
async def test_sender_errors_say_whether_to_retry(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        sender = tg.adapter.sender()
        tg.fake.block(CHAT)
        with pytest.raises(DeliveryError) as blocked:
            await asyncio.to_thread(sender.send, str(CHAT), "提醒", "n-2")
        assert not blocked.value.retryable
        assert "blocked" in blocked.value.reason
        tg.fake.error("sendMessage", 400, "Bad Request: chat not found")
        with pytest.raises(DeliveryError) as unknown:
            await asyncio.to_thread(sender.send, "777", "提醒", "n-3")
        assert not unknown.value.retryable
        tg.fake.error("sendMessage", 502, "Bad Gateway")
        with pytest.raises(DeliveryError) as down:
            await asyncio.to_thread(sender.send, "777", "提醒", "n-4")
        assert down.value.retryable
        assert "提醒" not in blocked.value.reason + unknown.value.reason + down.value.reason


async def test_the_sender_refuses_when_the_adapter_is_stopped(
    store: Store, tmp_path: Path
) -> None:
    async with telegram_bot(store, library="ptb", mode="webhook", files_dir=tmp_path) as tg:
        sender = tg.adapter.sender()
    with pytest.raises(DeliveryError) as stopped:
        await asyncio.to_thread(sender.send, str(CHAT), "提醒", "n-5")
    assert stopped.value.retryable
