"""A database that blinks during conversations (issue 8): nothing recorded, nothing lost.

The database is one of this test's own behind a TCP proxy that the test cuts
(`support.outage`); the shared server's connections are never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from support.console_harness import FIXED_NOW, ConsoleHarness, catalog
from support.drivers.telegram import CHAT, telegram_bot
from support.drivers.wechat import PUSH_TARGETS, push_target
from support.keys import TEST_SEALER
from support.outage import BlinkingProxy, blinking_store
from support.serving import settings_for

from bot.wiring import build_runtime
from conversations.keys import ConversationKey
from handlers.base import Repeat, Unavailable
from storage.channels import inbound_deliveries
from storage.store import Store
from storage.tables import users

KEY = ConversationKey("wechat", "o-user-1")


@pytest.fixture
def blinking() -> Iterator[tuple[Store, BlinkingProxy]]:
    with blinking_store() as pair:
        yield pair


def counts(store: Store) -> tuple[int, int]:
    with store.reading() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(inbound_deliveries)).scalar_one(),
        )


def test_a_step_while_the_store_is_away_raises_unavailable_and_records_nothing(
    blinking: tuple[Store, BlinkingProxy],
) -> None:
    store, proxy = blinking
    runtime = build_runtime(settings_for({}), catalog(), store, clock=lambda: FIXED_NOW)
    first = runtime.handle_once(KEY, "m1", "/start", keep_answer=True)
    assert isinstance(first, list)
    assert first
    before, state = counts(store), store.load_state(KEY)
    proxy.cut()
    # The webhook answers 503 on this (issue 8: it used to answer 200 with an apology, so the
    # platform never retried and the user had to type again).
    with pytest.raises(Unavailable):
        runtime.handle_once(KEY, "m2", "1", keep_answer=True)
    proxy.restore()
    assert counts(store) == before
    assert store.load_state(KEY) == state
    retried = runtime.handle_once(KEY, "m2", "1", keep_answer=True)  # the platform's retry
    assert isinstance(retried, list)
    assert retried
    assert store.load_state(KEY) != state
    again = runtime.handle_once(KEY, "m2", "1", keep_answer=True)  # and its lost answer
    assert again == Repeat(tuple(retried))


def test_the_console_says_the_store_is_away_and_keeps_the_conversation(
    blinking: tuple[Store, BlinkingProxy],
) -> None:
    store, proxy = blinking
    console = ConsoleHarness(store, user="kim")
    console.open()
    key = ConversationKey("console", "kim")
    before = store.load_state(key)
    proxy.cut()
    out = console.send("1")
    assert "数据库暂时无法访问，这条消息还没有记下" in out
    proxy.restore()
    assert store.load_state(key) == before  # nothing moved meanwhile
    after = console.send("1")  # sent again, it is answered
    assert "数据库暂时无法访问" not in after
    assert store.load_state(key) != before


# ----- through `awardbot serve`, on every channel ---------------------------------------------


@pytest.mark.parametrize("library", ["ptb", "aiogram"])
async def test_telegram_gets_503_while_the_store_is_away_and_its_retry_is_answered_once(
    blinking: tuple[Store, BlinkingProxy], library: str, tmp_path: Path
) -> None:
    store, proxy = blinking
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as bot:
        update = bot.fake.text_update(CHAT, "/start")
        proxy.cut()
        assert await bot.fake.post_webhook(update) == 503  # Telegram delivers it again later
        assert bot.fake.sent(CHAT) == []
        proxy.restore()
        assert await bot.fake.post_webhook(update) == 200  # the retry
        await bot.adapter.settled(update["update_id"])
        greeted = len(bot.fake.sent(CHAT))
        assert greeted >= 1
        assert await bot.fake.post_webhook(update) == 200  # and a retry of that: nothing more
        await asyncio.sleep(0.2)
        assert len(bot.fake.sent(CHAT)) == greeted
        page = await _metrics(bot.url)
    assert 'outcome="unavailable"' in page


@pytest.mark.parametrize("name", PUSH_TARGETS)
async def test_signed_pushes_get_503_while_the_store_is_away_and_their_retry_is_answered(
    blinking: tuple[Store, BlinkingProxy], name: str, tmp_path: Path
) -> None:
    store, proxy = blinking
    async with push_target(store, name, clock=lambda: FIXED_NOW, files_dir=tmp_path) as target:
        push = target.text("o-user-9", "/start", msg_id="4242")
        proxy.cut()
        status, _ = await target.push(push)
        assert status == 503  # WeChat/WeCom retry it; 200 with an apology would end it here
        proxy.restore()
        status, answer = await target.push(push)  # the platform's retry, newly signed
        assert status == 200
        assert "您好！这里是吉林省评选表彰申报助手" in answer
    with store.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one() == 1


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        return await response.text()


def test_opening_a_conversation_that_cannot_be_opened_is_answered_not_raised(
    tmp_path: Path,
) -> None:
    # WeCom's enter_agent opens the conversation (Runtime.open); a failure there was a 500,
    # which WeCom retries forever. Now it is answered like a failed step.
    store = Store(f"sqlite:///{tmp_path / 'bot.db'}", sealer=TEST_SEALER)
    runtime = build_runtime(settings_for({}), catalog(), store, clock=lambda: FIXED_NOW)
    key = ConversationKey("wecom", "zhangsan")
    with store.conversation(key) as tx:
        tx.save({"flow": "filing", "stage": "no-such-stage"})
    [reply] = runtime.open(key)
    assert "处理这条消息时出错了" in reply.text
    assert store.load_state(key) == {"flow": "filing", "stage": "no-such-stage"}  # kept
    store.close()
