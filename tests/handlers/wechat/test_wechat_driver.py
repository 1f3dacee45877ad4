"""The golden replay driver: a self-check on WeChat (plaintext and safe mode) reads exactly as
on the console, choices as numbered lines, whether the answers come passively or late."""

from __future__ import annotations

import pytest
from support.console_harness import ConsoleHarness
from support.drivers.wechat import wechat_stack
from support.filing import SELF_CHECK_EXPERT

from storage.store import Store


def normalised(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("safe", "budget"),
    [(False, 4.0), (True, 4.0), (False, 0.0)],
    ids=["plaintext", "safe", "all-late"],
)
async def test_a_self_check_reads_as_on_the_console(
    store: Store, safe: bool, budget: float
) -> None:
    console = ConsoleHarness(store, user="console-user", show_keys=False)
    expected = [console.open()] + [console.send(answer) for answer in SELF_CHECK_EXPERT]

    channel = wechat_stack(store, safe=safe, reply_budget=budget)
    async with channel as stack, stack.driver("o-wechat-user") as user:
        shown = [await user.send("/start")]
        shown += [await user.send(answer) for answer in SELF_CHECK_EXPERT]
        late = len(stack.fake.sent_texts())

    assert [normalised(s) for s in shown] == [normalised(e) for e in expected]
    assert "符合" in shown[-1]
    if budget == 0.0:  # every answer came as customer-service messages
        assert late >= len(shown)
    else:  # passive replies; only text over ~2000 bytes (the verdict) continues late
        assert late < len(shown) // 2


async def test_upload_reaches_the_engine_as_a_file(store: Store) -> None:
    async with wechat_stack(store) as stack, stack.driver() as user:
        await user.send("/start")

        shown = await user.upload("审批表.pdf", b"%PDF-1.4 test")

        assert "现在不需要文件" in shown
        assert stack.fake.calls_to("/cgi-bin/media/get")[0].params["media_id"] == "MEDIA0001"


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe"])
async def test_text_echoed_from_the_user_cannot_break_our_reply_xml(
    store: Store, safe: bool
) -> None:
    # wechatpy wraps reply text in CDATA without escaping: a "]]>" we quote back would end it.
    async with wechat_stack(store, safe=safe) as stack, stack.driver() as user:
        await user.send("/start")
        shown = await user.send("/a]]><x>b")
    assert "/a]]><x>b" in shown
