"""Channel settings: read as a user writes them in .env, refused in one line when unusable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings
from handlers.config import TelegramLibrary, TelegramMode

ROOT = Path(__file__).resolve().parents[2]
NO_DOTENV = Path("/nonexistent/.env")
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def test_every_setting_the_code_reads_is_in_env_example() -> None:
    read = set(re.findall(r'"(AWARDBOT_[A-Z_]+)"', (ROOT / "bot" / "settings.py").read_text()))
    listed = set(re.findall(r"^(AWARDBOT_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read - listed == set()
    assert {
        "AWARDBOT_TELEGRAM_TOKEN",
        "AWARDBOT_WECHAT_AES_KEY",
        "AWARDBOT_WECOM_AGENT_ID",
    } <= read


def test_no_channel_configured_says_why_each_is_off() -> None:
    settings = load_settings({}, dotenv=NO_DOTENV)
    assert (settings.telegram, settings.wechat, settings.wecom) == (None, None, None)
    assert settings.off == (
        "telegram: off (AWARDBOT_TELEGRAM_TOKEN is not set)",
        "wechat: off (AWARDBOT_WECHAT_APP_ID is not set)",
        "wecom: off (AWARDBOT_WECOM_CORP_ID is not set)",
    )


def test_channels_are_read_with_their_defaults_and_secrets_kept_out_of_reprs() -> None:
    settings = load_settings(
        {
            "AWARDBOT_TELEGRAM_TOKEN": "123456:ABC-def_0",
            "AWARDBOT_TELEGRAM_MODE": "polling",
            "AWARDBOT_TELEGRAM_LIBRARY": "aiogram",
            "AWARDBOT_WECHAT_APP_ID": "wx123",
            "AWARDBOT_WECHAT_APP_SECRET": "app-secret",
            "AWARDBOT_WECHAT_TOKEN": "tok",
            "AWARDBOT_WECOM_CORP_ID": "ww1",
            "AWARDBOT_WECOM_SECRET": "corp-secret",
            "AWARDBOT_WECOM_AGENT_ID": "1000002",
            "AWARDBOT_WECOM_TOKEN": "tok2",
            "AWARDBOT_WECOM_AES_KEY": AES,
            "AWARDBOT_WECOM_API_BASE": "http://127.0.0.1:9999/",
        },
        dotenv=NO_DOTENV,
    )
    assert settings.off == ()
    assert settings.telegram is not None
    assert settings.telegram.library is TelegramLibrary.AIOGRAM
    assert settings.telegram.mode is TelegramMode.POLLING
    assert settings.telegram.api_base == "https://api.telegram.org"
    assert settings.wechat is not None
    assert settings.wechat.aes_key is None  # plaintext mode
    assert settings.wechat.api_base == "https://api.weixin.qq.com"
    assert settings.wecom is not None
    assert settings.wecom.agent_id == 1000002
    assert settings.wecom.api_base == "http://127.0.0.1:9999"
    shown = repr(settings)
    for secret in ("123456:ABC", "app-secret", "corp-secret", AES, "tok2"):
        assert secret not in shown


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AWARDBOT_TELEGRAM_TOKEN": "1:a", "AWARDBOT_TELEGRAM_LIBRARY": "telethon"}, "not ptb"),
        ({"AWARDBOT_TELEGRAM_TOKEN": "1:a", "AWARDBOT_TELEGRAM_MODE": "push"}, "not webhook"),
        (
            {"AWARDBOT_TELEGRAM_TOKEN": "1:a", "AWARDBOT_TELEGRAM_WEBHOOK_SECRET": "has space"},
            "1-256 characters",
        ),
        (
            {
                "AWARDBOT_TELEGRAM_TOKEN": "1:a",
                "AWARDBOT_TELEGRAM_MODE": "polling",
                "AWARDBOT_TELEGRAM_API_BASE": "ftp://x",
            },
            "not an http(s) URL",
        ),
        (
            {
                "AWARDBOT_WECHAT_APP_ID": "wx",
                "AWARDBOT_WECHAT_APP_SECRET": "s",
                "AWARDBOT_WECHAT_TOKEN": "t",
                "AWARDBOT_WECHAT_AES_KEY": "short",
            },
            "43 letters and digits",
        ),
        (
            {
                "AWARDBOT_WECOM_CORP_ID": "ww",
                "AWARDBOT_WECOM_SECRET": "s",
                "AWARDBOT_WECOM_AGENT_ID": "abc",
                "AWARDBOT_WECOM_TOKEN": "t",
                "AWARDBOT_WECOM_AES_KEY": AES,
            },
            "is not a number",
        ),
        ({"AWARDBOT_MAX_REQUEST_BYTES": "12"}, "AWARDBOT_MAX_REQUEST_BYTES"),
    ],
)
def test_unusable_channel_settings_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as raised:
        load_settings(env, dotenv=NO_DOTENV)
    assert "\n" not in str(raised.value)
