"""The gateway every channel shares: repeats, kept answers and the store away (issue 8)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from conversations.engine import Reply
from conversations.keys import ConversationKey
from handlers.base import Gateway, Repeat, Unavailable


class SlowSteps:
    """Answers after `release` is set; a repeat of a delivery gets what the first got."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.ran: list[str] = []
        self.kept: dict[str, list[Reply]] = {}
        self.down = False

    def open(self, key: ConversationKey) -> list[Reply]:
        return []

    def handle_once(
        self,
        key: ConversationKey,
        delivery_id: str | None,
        text: str,
        upload: object = None,
        *,
        keep_answer: bool = False,
        **options: Any,  # answers, sequence, store_replies: as the runtime takes them
    ) -> list[Reply] | Repeat:
        if self.down:
            raise Unavailable("database unavailable")
        if delivery_id in self.kept:
            return Repeat(tuple(self.kept[delivery_id]) if keep_answer else ())
        self.release.wait(10)
        self.ran.append(text)
        replies = [Reply(f"answer to {text}")]
        if delivery_id is not None:
            self.kept[delivery_id] = replies
        return replies


async def test_a_retry_arriving_mid_step_gets_the_first_answer_with_replay() -> None:
    steps = SlowSteps()
    gateway = Gateway(steps)
    first = asyncio.create_task(gateway.handle("wechat", "u", "1", delivery_id="m1", replay=True))
    await asyncio.sleep(0.05)
    retry = asyncio.create_task(gateway.handle("wechat", "u", "1", delivery_id="m1", replay=True))
    await asyncio.sleep(0.05)
    steps.release.set()
    assert await first == [Reply("answer to 1")]
    assert await retry == Repeat((Reply("answer to 1"),))  # not silence: the platform shows it
    assert steps.ran == ["1"]
    later = await gateway.handle("wechat", "u", "1", delivery_id="m1", replay=True)
    assert later == Repeat((Reply("answer to 1"),))  # the kept answer, after the first finished
    gateway.shutdown()


async def test_without_replay_a_repeat_is_answered_nothing() -> None:
    steps = SlowSteps()
    steps.release.set()
    gateway = Gateway(steps)
    assert await gateway.handle("telegram", "u", "1", delivery_id="7") == [Reply("answer to 1")]
    assert await gateway.handle("telegram", "u", "1", delivery_id="7") is None
    assert gateway.metrics.value("awardbot_updates_duplicate_total", channel="telegram") == 1
    gateway.shutdown()


async def test_the_store_away_propagates_as_unavailable() -> None:
    steps = SlowSteps()
    steps.down = True
    gateway = Gateway(steps)
    with pytest.raises(Unavailable):
        await gateway.handle("wechat", "u", "1", delivery_id="m1", replay=True)
    steps.down = False
    steps.release.set()
    # nothing of the failed attempt is left in flight: the retry runs the step
    assert await gateway.handle("wechat", "u", "1", delivery_id="m1", replay=True) == [
        Reply("answer to 1")
    ]
    gateway.shutdown()
