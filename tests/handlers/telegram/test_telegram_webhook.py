"""The webhook route: the secret header, malformed bodies, repeats of one update_id."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import ClientSession
from fakes.telegram_api import FakeTelegram
from support.drivers.telegram import CHAT, LIBRARIES, SECRET, telegram_bot

from storage.store import Store

RECEIVED = "awardbot_updates_received_total"


@pytest.mark.parametrize("library", LIBRARIES)
async def test_wrong_or_missing_secret_is_refused_without_effect(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg:
        update = tg.fake.text_update(CHAT, "/start")
        assert await tg.fake.post_webhook(update, secret=None) == 403
        assert await tg.fake.post_webhook(update, secret="not-" + SECRET) == 403
        assert await tg.fake.post_webhook(update, secret=SECRET[:-1]) == 403
        await tg.gateway.drain(0.5)
        tg.gateway.closing = False
        assert tg.fake.calls_of("sendMessage") == []
        assert tg.gateway.metrics.value(RECEIVED, channel="telegram") == 0
        assert tg.gateway.metrics.value("awardbot_errors_total", channel="telegram",
                                        kind="bad_secret") == 3  # fmt: skip
        # Nothing was recorded either: the same update with the right secret is new.
        assert await tg.fake.post_webhook(update) == 200
        await tg.adapter.settled(update["update_id"])
        assert len(tg.fake.calls_of("sendMessage")) == 2  # greeting + the campaign question


@pytest.mark.parametrize("library", LIBRARIES)
async def test_the_same_update_id_is_answered_once(
    store: Store, tmp_path: Path, library: str
) -> None:
    async with FakeTelegram() as fake:
        async with telegram_bot(
            store, library=library, mode="webhook", files_dir=tmp_path, fake=fake
        ) as tg:
            start = fake.text_update(CHAT, "/start")
            assert await fake.post_webhook(start) == 200
            await tg.adapter.settled(start["update_id"])
            greeting = len(fake.calls_of("sendMessage"))
            choice = fake.text_update(CHAT, "1")
            assert await fake.post_webhook(choice) == 200
            assert await fake.post_webhook(choice) == 200  # Telegram's retry
            await tg.adapter.settled(choice["update_id"])
            await tg.gateway.drain(2)
            answered = len(fake.calls_of("sendMessage"))
            assert answered > greeting
        # A restarted bot (nothing in memory) still knows it from the store.
        async with telegram_bot(
            store, library=library, mode="webhook", files_dir=tmp_path, fake=fake
        ) as again:
            assert await fake.post_webhook(choice) == 200
            await again.adapter.settled(choice["update_id"])
            await again.gateway.drain(2)
            assert len(fake.calls_of("sendMessage")) == answered
            assert (
                again.gateway.metrics.value("awardbot_updates_duplicate_total", channel="telegram")
                == 1
            )


@pytest.mark.parametrize("library", LIBRARIES)
async def test_malformed_bodies_are_400(store: Store, tmp_path: Path, library: str) -> None:
    async with (
        telegram_bot(store, library=library, mode="webhook", files_dir=tmp_path) as tg,
        ClientSession() as http,
    ):
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        for body in (b"{not json", b"[1, 2]", b'{"message": {}}', b"\xff\xfe"):
            async with http.post(f"{tg.url}/telegram", data=body, headers=headers) as resp:
                assert resp.status == 400, body
        assert tg.fake.calls_of("sendMessage") == []


async def test_new_updates_wait_while_shutting_down(store: Store, tmp_path: Path) -> None:
    async with telegram_bot(store, library="ptb", mode="webhook", files_dir=tmp_path) as tg:
        tg.gateway.closing = True
        assert await tg.fake.post_webhook(tg.fake.text_update(CHAT, "/start")) == 503
        tg.gateway.closing = False
        assert tg.fake.calls_of("sendMessage") == []
