"""The dispatcher hands a notice row to its channel by kind: `send_notice` to a sender that
renders notices, the notice as text (title, then body) to one that does not; a status row's
plain text as it always was; a row that is no notice is failed, not retried."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.console_harness import FIXED_NOW
from support.drivers.telegram import CHAT, telegram_bot

from notifications.notice import Notice, NoticeKind
from notifications.outbox import Dispatcher, unreadable_notice_reason
from storage.outbox import OutboxMessage, OutboxStatus, enqueue, find
from storage.store import Store

T0 = datetime(2022, 11, 3, 1, 30, tzinfo=UTC)
WINDOW = Notice(
    NoticeKind.WINDOW,
    "推荐报送明日截止",
    "吉林省技术能手评选的推荐报送将于 2022-11-04 17:00 截止。\n请尽快提交。",
    "2022-11-04 17:00",
)
STATUS_TEXT = "张三的推荐（吉林省技术能手）已进入市级评审。"


class TextSender:
    """A sender that only sends text (like Telegram's and the console's)."""

    idempotent = False

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[tuple[str, str, str]] = []

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        self.sent.append((recipient_id, text, idempotency_key))


class NoticeRecorder(TextSender):
    """A sender that renders notices itself (like WeChat's and WeCom's)."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.notices: list[tuple[str, Notice, str]] = []

    def send_notice(self, recipient_id: str, notice: Notice, idempotency_key: str) -> None:
        self.notices.append((recipient_id, notice, idempotency_key))


def put(store: Store, *messages: OutboxMessage, now: datetime = T0) -> None:
    with store.transaction() as conn:
        enqueue(conn, store.sealer, messages, now=now)


def row(key: str, channel: str, kind: str, text: str, to: str = "u-1") -> OutboxMessage:
    return OutboxMessage(key, channel, to, text, kind=kind)


def test_a_notice_goes_to_send_notice_and_as_text_where_there_is_none(store: Store) -> None:
    renders, texts = NoticeRecorder("wecom"), TextSender("console")
    put(
        store,
        row("w-1", "wecom", "window", WINDOW.dumps()),
        row("w-2", "console", "window", WINDOW.dumps()),
        row("s-1", "wecom", "notice", STATUS_TEXT),
        row("s-2", "console", "notice", STATUS_TEXT),
    )
    dispatcher = Dispatcher(
        store, {"wecom": renders, "console": texts}, clock=lambda: T0, worker_id="w"
    )

    assert dispatcher.run_once().delivered == 4

    assert renders.notices == [
        ("u-1", WINDOW, "w-1"),
        ("u-1", Notice(NoticeKind.STATUS, "", STATUS_TEXT), "s-1"),
    ]
    assert renders.sent == []
    assert texts.sent == [
        ("u-1", f"【{WINDOW.title}】\n{WINDOW.body}", "w-2"),
        ("u-1", STATUS_TEXT, "s-2"),  # a status row's plain text, exactly as before
    ]


@pytest.mark.parametrize(
    ("kind", "text"),
    [("window", "not json"), ("digest", '{"kind": "nonsense", "title": "", "body": ""}')],
)
def test_a_row_that_is_no_notice_fails_at_once(store: Store, kind: str, text: str) -> None:
    sender = NoticeRecorder("wecom")
    put(store, row("bad", "wecom", kind, text))
    dispatcher = Dispatcher(store, {"wecom": sender}, clock=lambda: T0, worker_id="w")

    assert dispatcher.run_once().failed == 1

    entry = find(store, "bad")
    assert entry is not None
    assert entry.status is OutboxStatus.FAILED
    assert entry.last_error == unreadable_notice_reason(kind)
    assert sender.notices == sender.sent == []


async def test_telegram_gets_a_window_reminder_as_title_and_body(
    store: Store, tmp_path: Path
) -> None:
    # `awardbot serve` with Telegram: its own dispatcher, the real sender, the fake Bot API.
    async with telegram_bot(store, library="ptb", mode="webhook", files_dir=tmp_path) as tg:
        put(store, row("tg-w-1", "telegram", "window", WINDOW.dumps(), str(CHAT)), now=FIXED_NOW)
        deadline = time.monotonic() + 10
        while not tg.fake.sent(CHAT) and time.monotonic() < deadline:  # noqa: ASYNC110 - a poll
            await asyncio.sleep(0.05)
        texts = [m["text"] for m in tg.fake.sent(CHAT)]

    assert texts == [f"【推荐报送明日截止】\n{WINDOW.body}"]
    entry = find(store, "tg-w-1")
    assert entry is not None
    assert entry.status is OutboxStatus.DELIVERED
