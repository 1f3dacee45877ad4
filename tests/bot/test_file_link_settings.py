"""The settings of the attachments reviewers open: defaults, and bad values refused by name in
one line (`awardbot` exits 2), like every other setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.process import awardbot_env, run_awardbot

from bot.settings import SettingsError, load_settings

NO_DOTENV = Path("/nonexistent/.env")


def test_defaults() -> None:
    settings = load_settings({}, dotenv=NO_DOTENV)
    assert settings.public_url is None  # WeChat says no link can be made
    assert settings.file_link_minutes == 30
    assert settings.file_link_max_bytes == 20 * 1024 * 1024
    assert settings.downloads_dir == Path("data/downloads")


def test_values_are_read() -> None:
    settings = load_settings(
        {
            "AWARDBOT_PUBLIC_URL": "https://bot.example.org/award/",
            "AWARDBOT_FILE_LINK_MINUTES": "90",
            "AWARDBOT_FILE_LINK_MAX_MB": "5",
            "AWARDBOT_DOWNLOADS_DIR": "/srv/award/downloads",
        },
        dotenv=NO_DOTENV,
    )
    assert settings.public_url == "https://bot.example.org/award"
    assert settings.file_link_minutes == 90
    assert settings.file_link_max_bytes == 5 * 1024 * 1024
    assert settings.downloads_dir == Path("/srv/award/downloads")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AWARDBOT_PUBLIC_URL": "bot.example.org"}, "AWARDBOT_PUBLIC_URL: 'bot.example.org'"),
        ({"AWARDBOT_FILE_LINK_MINUTES": "0"}, "AWARDBOT_FILE_LINK_MINUTES: '0'"),
        ({"AWARDBOT_FILE_LINK_MINUTES": "half"}, "AWARDBOT_FILE_LINK_MINUTES: 'half'"),
        ({"AWARDBOT_FILE_LINK_MAX_MB": "50"}, "AWARDBOT_FILE_LINK_MAX_MB: '50'"),
        ({"AWARDBOT_FILE_LINK_MAX_MB": "-1"}, "AWARDBOT_FILE_LINK_MAX_MB: '-1'"),
    ],
)
def test_bad_values_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as raised:
        load_settings(env, dotenv=NO_DOTENV)
    assert "\n" not in str(raised.value)


def test_a_bad_value_stops_awardbot_with_one_line(tmp_path: Path) -> None:
    env = awardbot_env(tmp_path / "x.db", AWARDBOT_FILE_LINK_MINUTES="forever")
    done = run_awardbot(["campaigns"], cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "awardbot: AWARDBOT_FILE_LINK_MINUTES: 'forever' is not a number of minutes from 1 to 1440"
    )
