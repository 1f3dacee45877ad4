"""A chat's updates apply in the platform's order, buttons answer only their own question, and a
step's replies are stored with it (issue 9, §3) — at the runtime, on both stores.

The channel-level proofs (two taps on Telegram, a kill -9 after the commit) are in
tests/handlers/telegram and tests/reliability; these pin the runtime's part of each.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.console_harness import FIXED_NOW, ConsoleHarness

from bot.runtime import REPLY_GRACE
from conversations.keys import ConversationKey
from handlers.base import Repeat, load_replies, reply_key, reply_part
from notifications.outbox import Dispatcher
from storage import outbox
from storage.store import Store

KEY = ConversationKey("telegram", "42")


def state(store: Store) -> dict[str, object]:
    with store.conversation(KEY) as tx:
        return dict(tx.state or {})


def test_an_older_update_arriving_after_a_newer_one_is_not_applied_over_it(store: Store) -> None:
    rt = ConsoleHarness(store, user="unused").runtime
    rt.open(KEY)
    # Updates 11 (the campaign) and 10 (/help) were sent in that order... the other way round:
    # 11 arrives first and is applied; 10 arrives late and must not be applied over it.
    assert rt.handle_once(KEY, "11", "1", sequence=11)
    after_11 = state(store)
    late = rt.handle_once(KEY, "10", "2", sequence=10)
    assert isinstance(late, list)
    assert "晚到" in late[0].text
    assert state(store) == after_11  # 10's answer landed nowhere
    assert rt.handle_once(KEY, "12", "/status", sequence=12)  # newer ones go on


def test_a_button_of_another_question_changes_nothing(store: Store) -> None:
    rt = ConsoleHarness(store, user="unused").runtime
    [question] = [r for r in rt.open(KEY) if r.asks]
    first = rt.handle_once(KEY, "1", "jl-skills-2022", answers=question.asks)
    assert isinstance(first, list)
    before = state(store)
    # The same button again (a double tap): it belonged to the question just answered.
    again = rt.handle_once(KEY, "2", "jl-skills-2022", answers=question.asks)
    assert again == []  # quietly: the channel says the button is out of date
    assert {k: v for k, v in state(store).items() if k != "turn"} == {
        k: v for k, v in before.items() if k != "turn"
    }
    # The button of the current question is taken.
    current = [r for r in first if r.asks][-1]
    assert current.asks != question.asks
    ok = rt.handle_once(KEY, "3", current.options[0].value, answers=current.asks)
    assert isinstance(ok, list)
    assert ok  # answered: the next question


class Replies:
    channel = "telegram"
    idempotent = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        raise AssertionError("only replies here")

    def send_replies(self, recipient_id: str, payload: str, idempotency_key: str) -> None:
        self.sent.append((recipient_id, [r.text for r in load_replies(payload)]))


def test_a_steps_replies_are_stored_with_it_and_taken_once(store: Store) -> None:
    rt = ConsoleHarness(store, user="unused").runtime
    rt.open(KEY)
    replies = rt.handle_once(KEY, "7", "1", store_replies=True)
    assert isinstance(replies, list)
    assert replies
    key = reply_key("telegram", reply_part("7", 0))  # one row per reply, in order
    row = outbox.find(store, key)
    assert row is not None
    assert (row.kind, row.status) == ("reply", "pending")
    taken = outbox.take(store, key, "edge", now=FIXED_NOW, lease=timedelta(minutes=1))
    assert taken is not None
    assert [r.text for r in load_replies(taken.text)] == [replies[0].text]
    assert outbox.take(store, key, "edge2", now=FIXED_NOW, lease=timedelta(minutes=1)) is None


def test_replies_no_channel_took_are_delivered_by_the_dispatcher_once_due(store: Store) -> None:
    """The process died after the step committed: nobody took the replies. They wait out the
    grace (the channel would have taken them by then), then go like a notification."""
    rt = ConsoleHarness(store, user="unused").runtime
    rt.open(KEY)
    replies = rt.handle_once(KEY, "8", "1", store_replies=True)
    assert isinstance(replies, list)
    sender = Replies()
    now = [FIXED_NOW]
    dispatcher = Dispatcher(store, {"telegram": sender}, clock=lambda: now[0], worker_id="d")
    dispatcher.run_once()
    assert sender.sent == []  # not yet due: the channel may still be sending them
    now[0] = FIXED_NOW + REPLY_GRACE + timedelta(seconds=1)
    dispatcher.run_once()
    dispatcher.run_once()
    assert sender.sent == [("42", [r.text]) for r in replies]  # each once, in order


@pytest.mark.parametrize("sequence", [None, 5])
def test_a_repeat_of_an_applied_update_is_still_a_repeat(
    store: Store, sequence: int | None
) -> None:
    rt = ConsoleHarness(store, user="unused").runtime
    rt.open(KEY)
    rt.handle_once(KEY, "5", "1", sequence=sequence)
    assert isinstance(rt.handle_once(KEY, "5", "1", sequence=sequence), Repeat)
