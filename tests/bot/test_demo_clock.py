"""The demo clock (issue 10, "Trying it without waiting"): AWARDBOT_NOW starts the bot's clock at
a local time and it runs on from there; refused in production; one-line errors.

The end-to-end cases run `awardbot console` as a real process (tests/support/process.py), as a
newcomer would: at 2022-10-20 the skills campaign's strict window (2022-11-03/04) is ahead, so
the verdict offers its reminders; on the real clock it is over and choosing the campaign says so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.keys import TEST_KEY
from support.process import awardbot_env, run_awardbot

from bot.clock import clock_for
from bot.settings import SettingsError, load_settings

NO_DOTENV = Path("/nonexistent/.env")
SHANGHAI = ZoneInfo("Asia/Shanghai")
CLOSED = "本次评选的报送推荐材料已于 2022-11-04 截止"
OFFER = "发送 /subscribe 订阅本次评选的报送时间提醒"

# skills_grand_award, eligible (as in tests/handlers/test_console_process.py), then confirm.
GRAND_ANSWERS = [
    "jl-skills-2022", "skills_grand_award", "是", "是", "否", "否", "否", "否", "是", "6",
    "12年", "否", "是", "否", "否", "否", "同意", "否", "否", "否", "否", "否", "1",
]  # fmt: skip


def settings_with(**env: str):  # type: ignore[no-untyped-def]
    return load_settings(env, dotenv=NO_DOTENV)


class Ticking:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_awardbot_now_is_an_aware_local_time() -> None:
    settings = settings_with(AWARDBOT_NOW="2022-11-02 08:00")
    assert settings.now == dt.datetime(2022, 11, 2, 8, 0, tzinfo=SHANGHAI)
    assert settings.now is not None
    assert settings.now.utcoffset() == dt.timedelta(hours=8)
    assert settings_with().now is None


def test_the_demo_clock_starts_there_and_runs_on_at_the_real_pace() -> None:
    ticking = Ticking()
    clock = clock_for(settings_with(AWARDBOT_NOW="2022-11-02 08:00"), monotonic=ticking)
    start = clock()
    assert start == dt.datetime(2022, 11, 2, 8, 0, tzinfo=SHANGHAI)
    assert start.utcoffset() == dt.timedelta(hours=8)
    ticking.now += 90 * 60 + 1.5
    assert clock() == dt.datetime(2022, 11, 2, 9, 30, 1, 500000, tzinfo=SHANGHAI)
    ticking.now += 24 * 3600
    assert clock().date() == dt.date(2022, 11, 3)


def test_a_time_with_an_offset_is_shown_in_the_bots_time_zone() -> None:
    clock = clock_for(settings_with(AWARDBOT_NOW="2022-11-02T00:30+00:00"), monotonic=Ticking())
    moment = clock()
    assert (moment.hour, moment.minute, moment.utcoffset()) == (8, 30, dt.timedelta(hours=8))


def test_without_awardbot_now_the_clock_is_the_systems() -> None:
    clock = clock_for(settings_with(), monotonic=lambda: 0.0)  # the monotonic one is not used
    before = dt.datetime.now(dt.UTC)
    moment = clock()
    assert moment.utcoffset() == dt.timedelta(hours=8)
    assert before <= moment <= dt.datetime.now(dt.UTC)


@pytest.mark.parametrize("value", ["garbage", "2022-11-02 25:00", "02/11/2022 08:00", "tomorrow"])
def test_garbage_is_one_line_naming_the_setting_and_the_format(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_with(AWARDBOT_NOW=value)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("AWARDBOT_NOW: ")
    assert "YYYY-MM-DD HH:MM" in message
    assert repr(value) in message


def test_production_refuses_the_demo_clock() -> None:
    with pytest.raises(SettingsError) as caught:
        settings_with(
            AWARDBOT_ENV="production", AWARDBOT_SECRET_KEY=TEST_KEY,
            AWARDBOT_NOW="2022-11-02 08:00",
        )  # fmt: skip
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("AWARDBOT_NOW: ")
    assert "production" in message
    # Production without it starts (the refusal is the demo clock's, not production's).
    assert settings_with(AWARDBOT_ENV="production", AWARDBOT_SECRET_KEY=TEST_KEY).now is None


# ----- the console as a real process ---------------------------------------------------------


def console(tmp_path: Path, **extra: str):  # type: ignore[no-untyped-def]
    env = awardbot_env(tmp_path / "bot.db", **extra)
    return run_awardbot(
        ["console", "--user", "kim", "--show-keys"],
        cwd=tmp_path,
        env=env,
        stdin="".join(f"{line}\n" for line in GRAND_ANSWERS),
    )


def test_console_at_the_demo_time_the_campaign_is_open_and_offers_reminders(
    tmp_path: Path,
) -> None:
    done = console(tmp_path, AWARDBOT_NOW="2022-10-20 09:00")
    assert done.returncode == 0, done.stderr
    assert "[verdict] eligible" in done.stdout
    assert "已于" not in done.stdout, "no 'closed' note: the window is ahead at 2022-10-20"
    verdict = done.stdout.split("[verdict] eligible")[1]
    assert OFFER in verdict
    assert "开始前 7、3、1 天和报送期间每天 08:30" in verdict
    assert "Traceback" not in done.stderr


def test_console_on_the_real_clock_says_the_campaign_is_over(tmp_path: Path) -> None:
    done = console(tmp_path)  # AWARDBOT_NOW unset: today, after 2022-11-04
    assert done.returncode == 0, done.stderr
    chosen = done.stdout.split("[category]")[0]
    assert CLOSED in chosen, "said when the campaign is chosen"
    assert "[verdict] eligible" in done.stdout
    assert OFFER not in done.stdout, "no reminders offered for a window that is over"


def test_console_in_production_with_the_demo_clock_exits_with_one_line(tmp_path: Path) -> None:
    done = console(tmp_path, AWARDBOT_ENV="production", AWARDBOT_NOW="2022-10-20 09:00")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("awardbot: AWARDBOT_NOW: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bot.db").exists(), "refused before anything is opened"
