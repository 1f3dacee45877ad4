"""`/help`: the chat commands each role can use, one line each (issue 11).

One table names every command once with the roles that may use it; `/help` (and the help
after an unknown command) shows a person exactly the lines of their role. An applicant does
not see `/mine` or `/queue`, an official sees `/queue` and not `/new`; `/documents` and
`/rank` are for clerks and officials, `/region` and `/quota` for officials (issue 12). Admins
work on the command line; in the chat they have what everyone has.
"""

from __future__ import annotations

from dataclasses import dataclass

from conversations.identity import Actor, Role
from conversations.texts import render

EVERYONE = frozenset(Role)
CLERKS = frozenset({Role.CLERK})
OFFICIALS = frozenset({Role.OFFICIAL})
UNBOUND = frozenset({Role.APPLICANT, Role.ADMIN})
BOUND = CLERKS | OFFICIALS


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # as typed: /mine
    line: str  # the help line, Chinese
    roles: frozenset[Role]


COMMANDS: tuple[Command, ...] = (
    Command("/back", "/back 返回上一题", EVERYONE),
    Command("/restart", "/restart 重新开始资格自检", EVERYONE),
    Command("/status", "/status 查看自检进度", EVERYONE),
    Command("/mine", "/mine 查看本单位的推荐，回复序号办理", CLERKS),
    Command("/new", "/new 填报一项推荐", CLERKS),
    Command("/queue", "/queue 查看等待您审核的推荐，回复序号办理", OFFICIALS),
    Command(
        "/region",
        "/region 查看本地区的全部推荐和统计（可加姓名、单位或跟踪码搜索）",
        OFFICIALS,
    ),
    Command("/quota", "/quota 查看本地区各类别的推荐名额对照（文字和图表）", OFFICIALS),
    Command("/rank", "/rank 设定本单位推荐的排序（推荐汇总表按此排列）", CLERKS),
    Command("/rank", "/rank 设定本地区推荐的综合排序（推荐汇总表按此排列）", OFFICIALS),
    Command("/documents", "/documents 生成本单位的推荐审批表、汇总表等申报文件", CLERKS),
    Command("/documents", "/documents 生成本地区的推荐汇总表、公示名单等文件", OFFICIALS),
    Command("/cancel", "/cancel 暂停填报（草稿保留），或放弃正在填写的理由", CLERKS),
    Command("/cancel", "/cancel 放弃正在填写的理由", OFFICIALS),
    Command("/track", "/track 跟踪码 关注一项推荐的进展；不带跟踪码：列出已关注的", EVERYONE),
    Command("/reminders", "/reminders 查看将收到的提醒和提醒设置", EVERYONE),
    Command("/subscribe", "/subscribe 开启提醒（可加类型和活动序号，见 /reminders）", EVERYONE),
    Command("/unsubscribe", "/unsubscribe 关闭提醒（可加类型和活动序号）", EVERYONE),
    Command("/bind", "/bind 邀请码 绑定单位经办人或评审办公室身份", UNBOUND),
    Command("/bind", "/bind 邀请码 用新的邀请码更换身份", BOUND),
    Command("/whoami", "/whoami 查看当前身份", EVERYONE),
    Command("/forget", "/forget 删除您的自检记录、提醒设置和关注（先确认）", EVERYONE),
    Command("/help", "/help 显示本帮助", EVERYONE),
)


def role_of(actor: Actor | None) -> Role:
    """Whoever has no binding is an applicant."""
    return actor.role if actor is not None else Role.APPLICANT


def commands_for(role: Role) -> list[Command]:
    """The commands `role` can use, in the order /help lists them."""
    return [c for c in COMMANDS if role in c.roles]


def help_text(actor: Actor | None = None) -> str:
    """The /help text for `actor` (None: an applicant)."""
    return render("help", lines=[c.line for c in commands_for(role_of(actor))])


def is_command(word: str) -> bool:
    """Whether `word` (`/mine`) is a chat command of any role."""
    return any(c.name == word for c in COMMANDS)
