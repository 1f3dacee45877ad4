"""`awardbot wechat menu` against the fake WeChat API: the three CLICK buttons, or exit 2."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from fakes.wechat_api import APP_ID, SECRET, TOKEN, FakeWechatApi
from support.keys import TEST_KEY

from bot.cli import main
from handlers.wechat.menu import CLICK_COMMANDS


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("AWARDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWARDBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("AWARDBOT_SECRET_KEY", TEST_KEY)


def configure(monkeypatch: pytest.MonkeyPatch, api_base: str) -> None:
    monkeypatch.setenv("AWARDBOT_WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("AWARDBOT_WECHAT_APP_SECRET", SECRET)
    monkeypatch.setenv("AWARDBOT_WECHAT_TOKEN", TOKEN)
    monkeypatch.setenv("AWARDBOT_WECHAT_API_BASE", api_base)


@pytest.mark.usefixtures("env")
async def test_menu_creates_the_three_click_buttons(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeWechatApi() as fake:
        configure(monkeypatch, fake.url)

        code = await asyncio.to_thread(main, ["wechat", "menu"])

        out, err = capsys.readouterr()
        assert (code, err) == (0, "")
        assert out.count("\n") == 1
        assert "菜单已创建" in out
        (call,) = fake.calls_to("/cgi-bin/menu/create")
        assert call.body == {
            "button": [
                {"type": "click", "name": "自查资格", "key": "SELF_CHECK"},
                {"type": "click", "name": "填报推荐", "key": "FILING"},
                {"type": "click", "name": "查询进度", "key": "TRACK"},
            ]
        }
        assert set(CLICK_COMMANDS) == {b["key"] for b in call.body["button"]}


@pytest.mark.usefixtures("env")
async def test_a_refused_menu_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeWechatApi() as fake:
        configure(monkeypatch, fake.url)
        fake.fail_next("/cgi-bin/menu/create", 45009)

        code = await asyncio.to_thread(main, ["wechat", "menu"])

        out, err = capsys.readouterr()
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1
        assert "45009" in err


@pytest.mark.usefixtures("env")
def test_menu_without_wechat_settings_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["wechat", "menu"])

    _, err = capsys.readouterr()
    assert code == 2
    assert "AWARDBOT_WECHAT_APP_ID" in err
