"""Answers land on the question they answer (issue 9, §3), through both libraries against the
fake Bot API: a double tap answers one question, a button pressed on another worker or after a
restart is judged by the question it names, and one chat's updates apply in update_id order.

On the main before this (callback_data carried only the option's value, the live keyboard lived
in one process's memory): the second tap answered the next question; a press on the current
keyboard handled by a second worker was refused as expired; after a restart an old keyboard's
press was trusted and applied; an older update arriving late was applied over a newer one.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from support.drivers.telegram import CHAT, LIBRARIES, SECRET, buttons, telegram_bot

from handlers.telegram.render import STALE_BUTTON
from storage.store import Store


def webhook_to(fake: Any, url: str) -> None:
    """Telegram now posts to this worker (each one serves the same bot)."""
    fake.webhook = {"url": f"{url}/telegram", "secret_token": SECRET}


async def press(tg: Any, message: dict[str, Any], number: int) -> dict[str, Any]:
    update = tg.fake.callback_update(CHAT, message, buttons(message)[number]["callback_data"])
    assert await tg.fake.post_webhook(update) == 200
    await tg.adapter.settled(update["update_id"])
    return update


def last_toast(tg: Any) -> str | None:
    params: dict[str, Any] = tg.fake.calls_of("answerCallbackQuery")[-1].params
    return params.get("text")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_double_tap_answers_one_question(store: Store, library: str) -> None:
    async with telegram_bot(store, library=library, mode="webhook") as tg:
        user = tg.driver()
        await user.send("/start")
        question = copy.deepcopy(tg.fake.sent(CHAT)[-1])  # 请选择要自检的评选表彰活动
        sent = len(tg.fake.calls_of("sendMessage"))
        # Two taps on one button: two updates, which Telegram may hand over at once.
        data = buttons(question)[1]["callback_data"]
        taps = [tg.fake.callback_update(CHAT, question, data) for _ in range(2)]
        statuses = await asyncio.gather(*(tg.fake.post_webhook(u) for u in taps))
        assert statuses == [200, 200]
        for tap in taps:
            await tg.adapter.settled(tap["update_id"])
        toasts = [c.params.get("text") for c in tg.fake.calls_of("answerCallbackQuery")]
        assert toasts.count(STALE_BUTTON) == 1  # one tap taken, the other refused
        questions = [m["text"] for m in tg.fake.sent(CHAT)[-1:]]
        assert "请选择申报类别" in questions[0]  # the campaign answered once: its next question
        # One answer's messages, not two (the second would have answered the category).
        assert len(tg.fake.calls_of("sendMessage")) - sent == 1


@pytest.mark.parametrize("library", LIBRARIES)
async def test_presses_handled_by_another_worker_are_taken(store: Store, library: str) -> None:
    async with (
        telegram_bot(store, library=library, mode="webhook") as a,
        telegram_bot(store, library=library, mode="webhook", fake=a.fake) as b,
    ):
        webhook_to(a.fake, a.url)
        await a.driver().send("/start")  # worker A sends the campaign question
        webhook_to(a.fake, b.url)
        await press(b, tg_last(a), 1)  # B takes the press on A's keyboard
        assert "请选择申报类别" in tg_last(a)["text"]
        webhook_to(a.fake, a.url)
        await press(a, tg_last(a), 1)  # and A the press on B's keyboard
        assert last_toast(a) is None  # not refused as expired
        assert "请选择申报类别" not in tg_last(a)["text"]  # the category was taken


def tg_last(bot: Any) -> dict[str, Any]:
    return copy.deepcopy(bot.fake.sent(CHAT)[-1])


@pytest.mark.parametrize("library", LIBRARIES)
async def test_after_a_restart_an_old_keyboard_changes_nothing(store: Store, library: str) -> None:
    async with telegram_bot(store, library=library, mode="webhook") as first:
        await first.driver().send("/start")
        old = tg_last(first)
        await press(first, old, 1)
        fake = first.fake
        shown = tg_last(first)["text"]
        async with telegram_bot(store, library=library, mode="webhook", fake=fake) as second:
            sent = len(fake.calls_of("sendMessage"))
            await press(second, old, 0)  # the campaign question's keyboard, long answered
            assert last_toast(second) == STALE_BUTTON
            assert len(fake.calls_of("sendMessage")) == sent
            await press(second, tg_last(second), 0)  # the current one is taken
            assert tg_last(second)["text"] != shown


@pytest.mark.parametrize("library", LIBRARIES)
async def test_an_older_update_arriving_late_is_not_applied(store: Store, library: str) -> None:
    async with telegram_bot(store, library=library, mode="webhook") as tg:
        await tg.driver().send("/start")
        earlier = tg.fake.text_update(CHAT, "2")  # update n: the skills campaign...
        later = tg.fake.text_update(CHAT, "1")  # update n+1 (employment), sent after it
        assert await tg.fake.post_webhook(later) == 200  # ...but n+1 arrives first
        await tg.adapter.settled(later["update_id"])
        after_later = tg_last(tg)["text"]
        assert await tg.fake.post_webhook(earlier) == 200
        await tg.adapter.settled(earlier["update_id"])
        assert "晚到" in tg.fake.sent(CHAT)[-1]["text"]
        # update n+1's answer stands: the employment campaign (1), not the skills one (2)
        assert "促进就业创业" in after_later
        assert tg.fake.sent(CHAT)[-2]["text"] == after_later  # nothing applied in between
