"""Helpers for filing by chat in tests: a bound clerk, the answers of an eligible nominee."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from conversations.identity import Role
from storage import invites
from storage.store import Store
from support.console_harness import FIXED_NOW, ConsoleHarness, regions

UNIT = invites.UnitSpec(name="长春市朝阳区示例有限公司", uscc="91220104MA14ABCD3K")
ID_NUMBER = "220104199001010028"  # valid; 220104199001010024 has a wrong check digit
ACHIEVEMENTS = (
    "张小三从事数控车工十二年，带徒二十余人，其中五人获得技师资格。他主持的工艺改进项目使"
    "零件合格率由百分之九十二提高到百分之九十九点五，每年为企业节约成本约一百二十万元，"
    "总结的操作法在全省推广，多次在省市技能竞赛中获奖。"
)
ELIGIBLE_EXPERT = [
    "jl-skills-2022", "technical_expert", "是", "是", "否", "否", "否", "否", "高级工", "6",
    "是", "否", "否", "否", "否", "否", "否", "否", "否", "1",
]  # fmt: skip
# The same as a self-check of one's own: consent comes before the integrity questions.
SELF_CHECK_EXPERT = [*ELIGIBLE_EXPERT[:14], "同意", *ELIGIBLE_EXPERT[14:]]
FORM = [
    "张小三", "汉族", ID_NUMBER, "中共党员", "大学本科", "长春市朝阳区示例有限公司", "车工班长",
    "车工", "GZ-2020-001", "2019年 长春市技术能手 长春市人社局", "完成", ACHIEVEMENTS,
    "13912345678", "否",
]  # fmt: skip
REQUIRED = ["approval_form", "id_card", "qualification_certificate", "diploma",
            "skill_achievements", "opinions"]  # fmt: skip


def bound_clerk(
    store: Store,
    tmp_path: Path,
    user: str = "clerk",
    clock: Callable[[], dt.datetime] | None = None,
) -> ConsoleHarness:
    with store.transaction() as conn:
        code = invites.create_invite(
            conn,
            role=Role.CLERK,
            region=regions().get("220104"),
            unit=UNIT,
            now=FIXED_NOW,
            ttl=timedelta(days=7),
        ).code
    console = ConsoleHarness(store, user=user, files_dir=tmp_path / "attachments", clock=clock)
    console.open()
    console.send(f"/bind {code}")
    return console


def choose(console: ConsoleHarness, value: str) -> str:
    number = dict((v, n) for n, v in console.options())[value]
    return console.send(number)


def attach(console: ConsoleHarness, material: str, path: Path) -> str:
    choose(console, f"upload:{material}")
    return console.send(f"/file {path}")


def file_to_attachments(console: ConsoleHarness) -> None:
    assert "[consent]" in console.send("/new")
    console.send("同意")
    for answer in ELIGIBLE_EXPERT:
        console.send(answer)
    assert "[verdict] eligible" in console.last
    assert "已建立推荐草稿，跟踪码：" in console.last
    for answer in FORM:
        console.send(answer)
    assert console.asking() == "attach"
