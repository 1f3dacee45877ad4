"""/help lists the commands of the person's role, one line each (issue 11: an official's help
lacked /queue, an applicant's was everyone's). The table in conversations.help is checked
against the routers: every command they answer has a help line, every help line a router."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conversations.assistant import ENGINE_ONLY
from conversations.help import COMMANDS, commands_for, help_text, is_command
from conversations.identity import Actor, Level, Role

ROOT = Path(__file__).resolve().parents[2]
ROUTERS = ("conversations/assistant.py", "conversations/engine.py")

EVERYONE = {
    "/back", "/restart", "/status", "/track", "/reminders", "/subscribe", "/unsubscribe",
    "/bind", "/whoami", "/help", "/forget",
}  # fmt: skip
EXPECTED = {
    Role.APPLICANT: EVERYONE,
    Role.CLERK: EVERYONE | {"/mine", "/new", "/cancel", "/documents", "/rank"},
    # issue 12: the documents and the ranking for both; the region's overview for offices
    Role.OFFICIAL: EVERYONE | {"/queue", "/cancel", "/documents", "/rank", "/region", "/quota"},
    Role.ADMIN: EVERYONE,  # admins work on the command line; in the chat, as everyone
}
ACTORS = {
    Role.APPLICANT: None,
    Role.CLERK: Actor(Role.CLERK, region="220104", unit_id=1),
    Role.OFFICIAL: Actor(Role.OFFICIAL, region="220100", level=Level.CITY),
    Role.ADMIN: Actor(Role.ADMIN),
}


def listed(text: str) -> list[str]:
    """The command lines of a help text (between its heading and its closing hint)."""
    lines = text.splitlines()
    assert lines[0] == "可用命令："
    assert lines[-1] == "回答选择题时，回复序号或选项文字都可以。"
    return lines[1:-1]


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_exactly_its_commands_one_line_each(role: Role) -> None:
    lines = listed(help_text(ACTORS[role]))
    names = [line.split()[0] for line in lines]
    assert set(names) == EXPECTED[role]
    assert len(names) == len(set(names))  # one line per command
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # each says what it does


def test_the_roles_differ_where_they_should() -> None:
    official = help_text(ACTORS[Role.OFFICIAL])
    clerk = help_text(ACTORS[Role.CLERK])
    applicant = help_text(None)
    assert "/queue 查看等待您审核的推荐" in official
    assert "/mine" not in official
    assert "/new" not in official
    assert "/queue" not in clerk
    assert "/mine 查看本单位的推荐" in clerk
    assert not any(
        c in applicant
        for c in ("/mine", "/new", "/queue", "/cancel", "/documents", "/rank", "/region", "/quota")
    )
    assert "/region" not in clerk
    assert "/quota" not in clerk
    assert "/rank 设定本单位推荐的排序" in clerk
    assert "/rank 设定本地区推荐的综合排序" in official
    assert "/bind 邀请码 绑定单位经办人或评审办公室身份" in applicant
    assert "/bind 邀请码 用新的邀请码更换身份" in clerk


def routed_commands() -> set[str]:
    """Every `/command` the assistant and the engine compare the typed command with."""
    found: set[str] = set()
    for where in ROUTERS:
        tree = ast.parse((ROOT / where).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)):
                continue
            if node.left.id != "command":
                continue
            for right in node.comparators:
                values = right.elts if isinstance(right, ast.Tuple | ast.Set) else [right]
                found.update(
                    v.value
                    for v in values
                    if isinstance(v, ast.Constant) and str(v.value).startswith("/")
                )
    return found


def test_every_routed_command_has_a_help_line_and_every_line_a_route() -> None:
    routed = routed_commands()
    assert {"/mine", "/queue", "/whoami", "/help", "/status", "/back"} <= routed
    assert sorted(c for c in routed if not is_command(c) and c not in ENGINE_ONLY) == []
    assert sorted({c.name for c in COMMANDS} - routed) == []


def test_commands_for_keeps_the_tables_order() -> None:
    names = [c.name for c in commands_for(Role.CLERK)]
    assert names.index("/mine") < names.index("/new") < names.index("/help")
    assert names[-1] == "/help"
