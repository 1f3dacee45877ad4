"""Settings as pydantic-settings reads them: the environment over `.env`, every bad value named
in one line, and no secret in a repr, a str or an error message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.keys import TEST_KEY
from support.process import awardbot_env, run_awardbot

from bot.settings import SettingsError, load_settings

NO_DOTENV = Path("/nonexistent/.env")
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SECRETS = {
    "AWARDBOT_SECRET_KEY": TEST_KEY,
    "AWARDBOT_DATABASE_URL": "postgresql+psycopg://award:pg-pass-8812@db.internal/award",
    "AWARDBOT_TELEGRAM_TOKEN": "123456:TG-secret-token_0",
    "AWARDBOT_TELEGRAM_WEBHOOK_SECRET": "hook-secret-77",
    "AWARDBOT_WECHAT_APP_ID": "wx123",
    "AWARDBOT_WECHAT_APP_SECRET": "wechat-app-secret",
    "AWARDBOT_WECHAT_TOKEN": "wechat-token-5",
    "AWARDBOT_WECHAT_AES_KEY": AES,
    "AWARDBOT_WECOM_CORP_ID": "ww1",
    "AWARDBOT_WECOM_SECRET": "wecom-corp-secret",
    "AWARDBOT_WECOM_AGENT_ID": "1000002",
    "AWARDBOT_WECOM_TOKEN": "wecom-token-9",
    "AWARDBOT_WECOM_AES_KEY": AES[::-1],
}
SECRET_VALUES = [TEST_KEY, "pg-pass-8812", "TG-secret", "hook-secret-77", "wechat-app-secret"]
SECRET_VALUES += ["wechat-token-5", AES, "wecom-corp-secret", "wecom-token-9", AES[::-1]]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AWARDBOT_* variable in os.environ, and an empty current directory."""
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_secret_appears_in_the_repr_or_str_of_the_settings() -> None:
    settings = load_settings(SECRETS, dotenv=NO_DOTENV)
    assert settings.secret_key == TEST_KEY  # read, only not shown
    assert settings.database_url == SECRETS["AWARDBOT_DATABASE_URL"]
    assert settings.telegram is not None
    assert settings.telegram.token == SECRETS["AWARDBOT_TELEGRAM_TOKEN"]
    assert settings.wecom is not None
    assert settings.wecom.secret == "wecom-corp-secret"
    for shown in (repr(settings), str(settings)):
        for secret in SECRET_VALUES:
            assert secret not in shown


def test_a_bad_secret_is_refused_without_repeating_it() -> None:
    bad = {
        "AWARDBOT_TELEGRAM_TOKEN": "hunter2-not-a-token",
        "AWARDBOT_TELEGRAM_WEBHOOK_SECRET": "has space hunter3",
        "AWARDBOT_WECOM_AES_KEY": "short-hunter4",
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(bad, dotenv=NO_DOTENV)
    message = str(caught.value)
    for name in bad:
        assert f"{name}: " in message
    for secret in ("hunter2", "hunter3", "hunter4"):
        assert secret not in message


def test_several_bad_values_are_each_named_in_one_line() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "AWARDBOT_TIMEZONE": "Mars/Olympus",
                "AWARDBOT_LOG_LEVEL": "loud",
                "AWARDBOT_FILE_LINK_MINUTES": "forever",
                "AWARDBOT_PUBLIC_URL": "bot.example.org",
                "AWARDBOT_WECHAT_NOTICE_LINK_DAYS": "0",
            },
            dotenv=NO_DOTENV,
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.split("; ") == [
        "AWARDBOT_TIMEZONE: unknown time zone 'Mars/Olympus'",
        "AWARDBOT_LOG_LEVEL: 'LOUD' is not DEBUG, INFO, WARNING or ERROR",
        "AWARDBOT_PUBLIC_URL: 'bot.example.org' is not an http(s) URL",
        "AWARDBOT_FILE_LINK_MINUTES: 'forever' is not a number of minutes from 1 to 1440",
        "AWARDBOT_WECHAT_NOTICE_LINK_DAYS: '0' is not a number of days from 1 to 90",
    ]


def test_each_missing_setting_of_a_channel_is_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"AWARDBOT_WECOM_CORP_ID": "ww1"}, dotenv=NO_DOTENV)
    assert str(caught.value).split("; ") == [
        f"AWARDBOT_WECOM_{name}: required when AWARDBOT_WECOM_CORP_ID is set"
        for name in ("SECRET", "AGENT_ID", "TOKEN", "AES_KEY")
    ]


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# a comment\n"
        "\n"
        "AWARDBOT_TIMEZONE='Asia/Tokyo'\n"
        'AWARDBOT_FILE_LINK_MINUTES="45"\n'
        "AWARDBOT_LOG_LEVEL=info\n"
        "AWARDBOT_PUBLIC_URL=\n"  # empty, as .env.example writes it: the default
        "OTHER_TOOL_SETTING=1\n",  # not ours: ignored
        encoding="utf-8",
    )
    settings = load_settings({}, dotenv=dotenv)
    assert str(settings.timezone) == "Asia/Tokyo"
    assert settings.file_link_minutes == 45
    assert settings.log_level == "INFO"
    assert settings.public_url is None


def test_the_environment_wins_over_the_dotenv_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "AWARDBOT_TIMEZONE=Asia/Tokyo\nAWARDBOT_FILE_LINK_MINUTES=45\nAWARDBOT_LOG_LEVEL=ERROR\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWARDBOT_FILE_LINK_MINUTES", "50")
    monkeypatch.setenv("AWARDBOT_LOG_LEVEL", "")  # empty: not set, so .env's value stands
    settings = load_settings()  # os.environ over ./.env
    assert str(settings.timezone) == "Asia/Tokyo"
    assert settings.file_link_minutes == 50
    assert settings.log_level == "ERROR"
    # A mapping handed in stands for the environment the same way.
    given = load_settings({"AWARDBOT_TIMEZONE": "Europe/Paris"}, dotenv=clean_env / ".env")
    assert (str(given.timezone), given.file_link_minutes) == ("Europe/Paris", 45)


def test_a_bad_value_in_the_dotenv_file_is_named(clean_env: Path) -> None:
    (clean_env / ".env").write_text("AWARDBOT_REMINDER_TICK_SECONDS=0\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"^AWARDBOT_REMINDER_TICK_SECONDS: '0' is not a "):
        load_settings()


def test_a_line_of_the_dotenv_file_that_is_not_key_value_is_one_line(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("AWARDBOT_LOG_LEVEL=INFO\nthis is not a setting\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({}, dotenv=dotenv)
    assert str(caught.value) == f"{dotenv}:2: expected KEY=VALUE, got 'this is not a setting'"


def test_several_bad_values_stop_awardbot_with_one_line_and_exit_2(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db", AWARDBOT_ENV="staging", AWARDBOT_MAX_REQUEST_BYTES="12")
    done = run_awardbot(["campaigns"], cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "awardbot: AWARDBOT_ENV: 'staging' is not development or production; "
        "AWARDBOT_MAX_REQUEST_BYTES: '12' is not a byte count from 1024 to 67108864\n"
    )
