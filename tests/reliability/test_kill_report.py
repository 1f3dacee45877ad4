"""The kill -9 suite's bookkeeping (issue 8): it sees the losses and doubles it claims to count.

`support.killing.align_replies` matches each committed update's expected reply (from the replay)
to the bot messages a chat got; these cases are the shapes a kill leaves behind.
"""

from __future__ import annotations

from support.killing import Sent, UpdateFate, align_replies


def _fates(*expected: list[str]) -> list[UpdateFate]:
    return [
        UpdateFate(Sent(1000 + i, 1, "1", 2 * i + 1, 1), applied=True, confirmed=True, expected=e)
        for i, e in enumerate(expected)
    ]


def test_every_reply_delivered_once() -> None:
    fates = _fates(["hello", "Q1"], ["Q2"], ["Q3"])
    assert align_replies(fates, ["hello", "Q1", "Q2", "Q3"]) == []
    assert [(f.delivered, f.copies) for f in fates] == [(2, 0), (1, 0), (1, 0)]


def test_a_reply_cut_short_by_a_kill_then_a_start_that_re_asks() -> None:
    # The intro went out, the kill came before the question; the user's /start got it.
    fates = _fates(["intro", "Q1"], ["Q1"], ["Q2"])
    assert align_replies(fates, ["intro", "Q1", "Q2"]) == []
    assert [f.delivered for f in fates] == [1, 1, 1]  # the first one is the lost reply


def test_a_reply_sent_twice_is_a_copy_not_a_re_ask() -> None:
    fates = _fates(["Q1"], ["Q2"])
    assert align_replies(fates, ["Q1", "Q1", "Q2"]) == []
    assert [(f.delivered, f.copies) for f in fates] == [(1, 1), (1, 0)]


def test_a_start_that_re_asks_the_same_question_is_not_a_copy() -> None:
    fates = _fates(["Q1"], ["Q1"], ["Q2"])
    assert align_replies(fates, ["Q1", "Q1", "Q2"]) == []
    assert [(f.delivered, f.copies) for f in fates] == [(1, 0), (1, 0), (1, 0)]


def test_a_message_no_committed_update_explains() -> None:
    # "Q9": the bot said something that no committed step produced (a step rolled back).
    fates = _fates(["Q1"], ["Q2"])
    assert align_replies(fates, ["Q1", "Q9", "Q2"]) == ["Q9"]
    assert [f.delivered for f in fates] == [1, 1]


def test_a_lost_reply_in_the_middle() -> None:
    fates = _fates(["Q1"], ["Q2"], ["Q2"], ["Q3"])
    assert align_replies(fates, ["Q1", "Q2", "Q3"]) == []
    assert sum(f.delivered < len(f.expected) for f in fates) == 1
