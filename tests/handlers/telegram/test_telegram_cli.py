"""`awardbot telegram set-webhook` / `delete-webhook` against the fake Bot API."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from fakes.telegram_api import FakeTelegram
from support.drivers.telegram import LIBRARIES, SECRET
from support.keys import TEST_KEY

from bot.cli import main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)
    return monkeypatch


async def awardbot(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))  # main runs its own event loop
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("library", LIBRARIES)
async def test_set_and_delete_webhook(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], library: str
) -> None:
    async with FakeTelegram() as fake:
        env.setenv("AWARDBOT_TELEGRAM_TOKEN", fake.token)
        env.setenv("AWARDBOT_TELEGRAM_LIBRARY", library)
        env.setenv("AWARDBOT_TELEGRAM_API_BASE", fake.url)
        env.setenv("AWARDBOT_TELEGRAM_WEBHOOK_SECRET", SECRET)
        url = "https://bot.example.cn/telegram"
        code, out, err = await awardbot(capsys, "telegram", "set-webhook", "--url", url)
        assert (code, err) == (0, "")
        assert len(out.splitlines()) == 1
        assert url in out
        assert fake.webhook == {
            "url": url,
            "secret_token": SECRET,
            "allowed_updates": ["message", "callback_query"],
        }
        code, out, err = await awardbot(capsys, "telegram", "delete-webhook")
        assert (code, err) == (0, "")
        assert len(out.splitlines()) == 1
        assert fake.webhook == {}
        assert [c.method for c in fake.calls if c.method != "getMe"] == [
            "setWebhook",
            "deleteWebhook",
        ]


async def test_errors_are_one_line_and_exit_2(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await awardbot(capsys, "telegram", "delete-webhook")
    assert (code, out) == (2, "")
    assert "AWARDBOT_TELEGRAM_TOKEN" in err
    assert len(err.splitlines()) == 1
    async with FakeTelegram() as fake:
        env.setenv("AWARDBOT_TELEGRAM_TOKEN", fake.token)
        env.setenv("AWARDBOT_TELEGRAM_API_BASE", fake.url)
        env.setenv("AWARDBOT_TELEGRAM_MODE", "polling")
        code, _, err = await awardbot(
            capsys, "telegram", "set-webhook", "--url", "https://bot.example.cn/telegram"
        )
        assert code == 2
        assert "AWARDBOT_TELEGRAM_WEBHOOK_SECRET" in err
        env.setenv("AWARDBOT_TELEGRAM_WEBHOOK_SECRET", SECRET)
        code, _, err = await awardbot(capsys, "telegram", "set-webhook", "--url", "bot.example")
        assert code == 2
        assert len(err.splitlines()) == 1
        code, _, err = await awardbot(
            capsys, "telegram", "set-webhook", "--url", "http://bot.example.cn/telegram"
        )
        assert code == 2
        assert "https" in err  # refused here: Telegram is not asked (tests/bot/test_telegram_cli)
        assert len(err.splitlines()) == 1
        fake.error("setWebhook", 400, "Bad Request: bad webhook: Failed to resolve host")
        code, _, err = await awardbot(
            capsys, "telegram", "set-webhook", "--url", "https://bot.example.cn/telegram"
        )
        assert code == 2
        assert err.startswith("awardbot: telegram set-webhook failed:")
        assert "failed to resolve host" in err.lower()
        assert len(err.splitlines()) == 1
        assert fake.webhook == {}
