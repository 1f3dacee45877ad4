"""Polling and webhook modes of both libraries: /start and a button press, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.drivers.telegram import CHAT, SETUPS, buttons, telegram_bot

from storage.store import Store


@pytest.mark.parametrize(("library", "mode"), SETUPS)
async def test_start_and_press_a_button(
    store: Store, tmp_path: Path, library: str, mode: str
) -> None:
    async with telegram_bot(store, library=library, mode=mode, files_dir=tmp_path) as tg:
        user = tg.driver()
        greeting = await user.send("/start")
        assert "1. " in greeting  # the campaigns as buttons
        keyboard = tg.fake.sent(CHAT)[-1]
        first = buttons(keyboard)[0]
        answer = await user.send(first["callback_data"])
        assert answer
        assert tg.fake.calls_of("answerCallbackQuery")
        # the pressed message shows the choice and lost its keyboard
        pressed = tg.fake.messages[CHAT][keyboard["message_id"]]
        assert "reply_markup" not in pressed
        assert first["text"] in pressed["text"]
        if mode == "polling":
            assert tg.fake.calls_of("getUpdates")
        else:
            assert not tg.fake.calls_of("getUpdates")
