"""What each kind of update becomes, and how replies look on Telegram (both libraries)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from support.drivers.telegram import CHAT, LIBRARIES, buttons, telegram_bot

from conversations.engine import Option, Reply
from handlers.telegram.render import (
    MAX_CALLBACK_DATA,
    MAX_TEXT,
    STALE_BUTTON,
    UNSUPPORTED,
    callback_data,
    command_text,
    keyboard,
    render_reply,
    utf16_len,
)
from storage.store import Store

LONG_VALUE = "edit:" + "very_long_fact_key_" * 4  # 81 bytes
CHINESE_VALUE = "选项" * 11  # 66 bytes in UTF-8, 22 characters


def test_callback_data_is_the_value_when_it_fits_else_the_number() -> None:
    options = (
        Option("同意", "agree"),
        Option("修改", LONG_VALUE),
        Option("中文", CHINESE_VALUE),
        Option("刚好", "x" * MAX_CALLBACK_DATA),
    )
    board = keyboard(options)
    data = [b.data for row in board for b in row]
    assert data == ["agree", "2", "3", "x" * MAX_CALLBACK_DATA]
    assert all(len(d.encode()) <= MAX_CALLBACK_DATA for d in data)
    assert callback_data(Option("空", ""), 7) == "7"


def test_short_labels_go_two_to_a_row_long_ones_alone() -> None:
    short = keyboard((Option("是", "yes"), Option("否", "no"), Option("不确定", "maybe")))
    assert [[b.label for b in row] for row in short] == [["是", "否"], ["不确定"]]
    long = keyboard((Option("吉林省促进就业创业先进集体", "a"), Option("否", "b")))
    assert [len(row) for row in long] == [1, 1]


def test_long_text_is_split_under_4096_with_the_keyboard_on_the_last_piece() -> None:
    paragraph = "这是一段很长的说明文字。" * 40 + "\n\n"
    reply = Reply(paragraph * 30, hint="请回复序号。", options=(Option("好", "ok"),))
    messages = render_reply(reply)
    assert len(messages) > 1
    assert all(utf16_len(m.text) <= MAX_TEXT for m in messages)
    assert [bool(m.keyboard) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert "".join(m.text for m in messages).replace("\n", "") == (
        paragraph * 30 + "\n请回复序号。"
    ).replace("\n", "")
    astral = render_reply(Reply("😀" * 3000))  # two UTF-16 units each
    assert all(utf16_len(m.text) <= MAX_TEXT for m in astral)
    assert "".join(m.text for m in astral) == "😀" * 3000


def test_commands_lose_the_bot_name() -> None:
    assert command_text("/start@award_test_bot") == "/start"
    assert command_text("/bind@award_test_bot ABCD") == "/bind ABCD"
    assert command_text("你好@某人") == "你好@某人"


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_long_notification_arrives_in_pieces(
    store: Store, tmp_path: Path, library: str
) -> None:
    text = ("第一段通知内容。" * 100 + "\n") * 12  # ~9,700 characters
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        await tg.adapter.notify(str(CHAT), text)
        sent = [c.params["text"] for c in tg.fake.calls_of("sendMessage")]
    assert len(sent) == 3
    assert all(utf16_len(t) <= MAX_TEXT for t in sent)
    assert "".join(sent).replace("\n", "") == text.replace("\n", "")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_button_carrying_a_number_chooses_that_option(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        user = tg.driver()
        await user.send("/start")
        question = tg.fake.sent(CHAT)[-1]
        second = buttons(question)[1]
        # As if the value had been too long for callback_data: the button sends "2".
        update = tg.fake.callback_update(CHAT, question, "2")
        assert await tg.fake.post_webhook(update) == 200
        await tg.adapter.settled(update["update_id"])
        assert second["text"] in tg.fake.sent(CHAT)[-1]["text"]  # 请选择申报类别（<campaign>）
        for message in tg.fake.sent(CHAT):
            for button in buttons(message):
                assert len(button["callback_data"].encode()) <= MAX_CALLBACK_DATA


@pytest.mark.parametrize("library", LIBRARIES)
async def test_an_old_button_is_answered_but_changes_nothing(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        user = tg.driver()
        await user.send("/start")
        old = copy.deepcopy(tg.fake.sent(CHAT)[-1])  # as a second device still shows it
        await user.send("1")  # pressed: the category question comes
        count = len(tg.fake.calls_of("sendMessage"))
        update = tg.fake.callback_update(CHAT, old, buttons(old)[1]["callback_data"])
        assert await tg.fake.post_webhook(update) == 200
        await tg.adapter.settled(update["update_id"])
        answers = tg.fake.calls_of("answerCallbackQuery")
        assert answers[-1].params["text"] == STALE_BUTTON
        assert len(tg.fake.calls_of("sendMessage")) == count


@pytest.mark.parametrize("library", LIBRARIES)
async def test_photos_and_documents_reach_the_conversation(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="polling", files_dir=tmp_path) as tg:
        user = tg.driver()
        await user.send("/start")
        tg.fake.add_file("photo1", b"\xff\xd8\xff\xe0 jpeg bytes", path="photos/file_1.jpg")
        before = len(tg.fake.sent(CHAT))
        update = tg.fake.push_update(tg.fake.photo_update(CHAT, "photo1"))
        await tg.adapter.settled(update["update_id"])
        # The self-check does not take files: the runtime's own answer proves it got one.
        unexpected, again = [m["text"] for m in tg.fake.sent(CHAT)[before:]]
        assert "文件" in unexpected
        assert again.startswith("请选择要自检的评选表彰活动")
        assert [c.params["file_id"] for c in tg.fake.calls_of("getFile")] == ["photo1"]
        assert [c.params["file_path"] for c in tg.fake.calls_of("download")] == [
            "photos/file_1.jpg"
        ]
        answer = await user.upload("材料.pdf", b"%PDF-1.7 test")
        assert answer.startswith(unexpected)
        assert len(tg.fake.calls_of("download")) == 2


@pytest.mark.parametrize("library", LIBRARIES)
async def test_files_over_20_mb_are_refused_without_download(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        user = tg.driver()
        question = await user.send("/start")
        tg.fake.add_file("big", None, size=21 * 1024 * 1024 + 300 * 1024)
        for update in (
            tg.fake.document_update(CHAT, "big", "扫描件.pdf"),
            tg.fake.photo_update(CHAT, "big"),
        ):
            assert await tg.fake.post_webhook(update) == 200
            await tg.adapter.settled(update["update_id"])
            # The size Telegram declared, not the limit: 「21.3 MB」, not 「20 MB」.
            assert tg.fake.sent(CHAT)[-1]["text"].startswith("文件太大：21.3 MB，超过 20 MB")
        assert tg.fake.calls_of("getFile") == []
        assert tg.fake.calls_of("download") == []
        # The conversation is where it was: choosing still works.
        assert "请选择申报类别" in await user.send("1")
        assert question


@pytest.mark.parametrize("library", LIBRARIES)
async def test_stickers_get_a_short_note_and_groups_are_declined(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        sticker = tg.fake.sticker_update(CHAT)
        assert await tg.fake.post_webhook(sticker) == 200
        await tg.adapter.settled(sticker["update_id"])
        assert tg.fake.sent(CHAT)[-1]["text"] == UNSUPPORTED
        group = tg.fake.text_update(-100123, "/start@award_test_bot", chat_type="supergroup")
        assert await tg.fake.post_webhook(group) == 200
        await tg.adapter.settled(group["update_id"])
        assert "私聊" in tg.fake.messages[-100123][max(tg.fake.messages[-100123])]["text"]
        assert tg.gateway.metrics.value("awardbot_updates_received_total", channel="telegram") == 0
