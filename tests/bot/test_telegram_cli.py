"""`awardbot telegram set-webhook`: https only, and the bot token never whole in an error."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from fakes.telegram_api import FakeTelegram
from support.drivers.telegram import LIBRARIES, SECRET
from support.keys import TEST_KEY

from bot.cli import main
from bot.telegram_cli import hide_token, masked_token

URL = "https://bot.example.cn/telegram"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("AWARDBOT_TELEGRAM_WEBHOOK_SECRET", SECRET)
    return monkeypatch


async def awardbot(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))  # main runs its own event loop
    out, err = capsys.readouterr()
    return code, out, err


def _calls(fake: FakeTelegram) -> list[str]:
    return [c.method for c in fake.calls if c.method != "getMe"]


@pytest.mark.parametrize(
    "url",
    ["http://bot.example.cn/telegram", "ftp://bot.example.cn/telegram", "https:///telegram"],
)
async def test_a_url_that_is_not_https_is_refused_before_telegram_is_asked(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    async with FakeTelegram() as fake:
        env.setenv("AWARDBOT_TELEGRAM_TOKEN", fake.token)
        env.setenv("AWARDBOT_TELEGRAM_API_BASE", fake.url)
        code, out, err = await awardbot(capsys, "telegram", "set-webhook", "--url", url)
        assert (code, out) == (2, "")
        assert err == (
            "awardbot: --url: expected https://host/telegram (Telegram sends webhooks to https"
            f" URLs only), got {url!r}\n"
        )
        assert _calls(fake) == []
        assert fake.webhook == {}


@pytest.mark.parametrize("library", LIBRARIES)
async def test_an_api_error_naming_the_token_shows_it_masked(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], library: str
) -> None:
    async with FakeTelegram() as fake:
        env.setenv("AWARDBOT_TELEGRAM_TOKEN", fake.token)
        env.setenv("AWARDBOT_TELEGRAM_LIBRARY", library)
        env.setenv("AWARDBOT_TELEGRAM_API_BASE", fake.url)
        # A proxy or a local Bot API server may echo the request, token and all.
        fake.error("setWebhook", 400, f"Bad Request: no route for /bot{fake.token}/setWebhook")
        code, out, err = await awardbot(capsys, "telegram", "set-webhook", "--url", URL)
        assert (code, out) == (2, "")
        assert err.startswith("awardbot: telegram set-webhook failed: ")
        assert len(err.splitlines()) == 1
        shown = err.lower()  # python-telegram-bot lowers all but the first letter
        assert fake.token.lower() not in shown
        assert fake.token.split(":")[1].lower() not in shown
        assert f"/bot{masked_token(fake.token)}/setwebhook".lower() in shown
        assert _calls(fake) == ["setWebhook"]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("command", [["set-webhook", "--url", URL], ["delete-webhook"]])
async def test_an_unreachable_bot_api_is_one_line_without_the_token(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], library: str, command: list[str]
) -> None:
    token = "987654321:AAUnreachableBotToken_x9"
    env.setenv("AWARDBOT_TELEGRAM_TOKEN", token)
    env.setenv("AWARDBOT_TELEGRAM_LIBRARY", library)
    env.setenv("AWARDBOT_TELEGRAM_API_BASE", "http://127.0.0.1:9")  # nothing listens
    code, out, err = await awardbot(capsys, "telegram", *command)
    assert (code, out) == (2, "")
    assert err.startswith(f"awardbot: telegram {command[0]} failed: ")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err
    assert token not in err
    assert token.split(":")[1] not in err


def test_the_mask_keeps_only_the_ends_of_a_token() -> None:
    token = "123456789:AAFakeTokenForTests_only-abcd"
    assert masked_token(token) == "1234…abcd"
    assert masked_token("1:a") == "…"  # too short to show any of it
    text = f"at https://api.example/bot{token}/setWebhook and bot42:OtherToken_1/getMe"
    assert hide_token(text, token) == (
        "at https://api.example/bot1234…abcd/setWebhook and bot<token>/getMe"
    )
    assert hide_token(f"No route for /bot{token.lower()}", token) == "No route for /bot1234…abcd"
