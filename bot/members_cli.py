"""`awardbot member list|remove`: who is bound to what, and taking a binding away.

- `member list [--region CODE] [--unit UNIT] [--role clerk|official]`: every current binding —
  member number, channel, the platform's user id (masked where it is personal), role, region,
  unit or review level, since when, by which invitation code.
- `member remove (--id N | --user CHANNEL:ID) --reason TEXT [--by NAME]`: the identity becomes
  an applicant; its pending notices and reminders are cancelled, and the removal is audited
  with the operator (--by, default the OS user), the time and the reason (storage.members).

Results go to stdout; bad input is one line on stderr, exit 2 (see bot.admin).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from sqlalchemy.engine import Connection

from bot.admin import (
    ERRORS,
    fail,
    local_time,
    masked_id,
    now_of,
    reading,
    regions_of,
    render_table,
    shown_identity,
    store_of,
)
from bot.settings import Settings
from conversations.identity import Role
from storage.invites import format_hint
from storage.members import Identity, Member, MemberError, identities, identity, members
from storage.members import remove_member as remove_binding

COMMANDS = frozenset({"member"})
ROLES = (Role.CLERK.value, Role.OFFICIAL.value)
MAX_REASON = 200
LIST_HEADINGS = ("编号", "渠道", "用户", "角色", "地区", "单位或层级", "绑定于", "邀请码")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `member` to the awardbot command line."""
    member = subparsers.add_parser("member", help="who is bound to what; remove a binding")
    sub = member.add_subparsers(dest="member_command", required=True, metavar="{list,remove}")
    listing = sub.add_parser("list", help="current bindings (role, unit, region, channel)")
    listing.add_argument("--region", help="region code: it and the regions inside it")
    listing.add_argument("--unit", help="the unit's USCC, number (单位编号) or part of its name")
    listing.add_argument("--role", choices=ROLES)
    remove = sub.add_parser("remove", help="take one identity's binding away (audited)")
    who = remove.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", type=int, help="the member number (编号) 'member list' shows")
    who.add_argument("--user", help="CHANNEL:ID, or the platform ID alone")
    remove.add_argument("--reason", required=True, help=f"why (audited; {MAX_REASON} at most)")
    remove.add_argument("--by", help="who removes it (audited; default: the OS user)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.member_command == "list":
            return _list(args, settings)
        return _remove(args, settings)
    except (*ERRORS, MemberError) as exc:
        return fail(exc)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    regions = regions_of(settings)
    if args.region is not None:
        regions.get(args.region)  # an unknown code is an error, not an empty list
    with reading(settings) as conn:
        found = members(
            conn,
            regions,
            region=args.region,
            unit=args.unit,
            role=None if args.role is None else Role(args.role),
        )
    rows = [
        [str(m.user_id), m.channel, masked_id(m.channel, m.external_id), m.role.value,
         regions.full_name(m.region_code), _detail(m), local_time(m.bound_at, settings),
         format_hint(m.invite_hint)]
        for m in found
    ]  # fmt: skip
    if rows:
        print(render_table(LIST_HEADINGS, rows), end="")
    print(f"# {len(rows)} 名 (members)", file=sys.stderr)
    return 0


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    reason = " ".join(args.reason.split())
    if not reason or len(reason) > MAX_REASON:
        raise MemberError(
            f"--reason: 请写明原因，1 至 {MAX_REASON} 字 (give a reason of 1 to {MAX_REASON} "
            "characters)"
        )
    operator = args.by.strip() if args.by is not None else _os_user()
    if not operator:
        raise MemberError("--by: 请写明操作人 (give who removes it)")
    regions = regions_of(settings)
    with store_of(settings) as store, store.transaction() as conn:
        who = _one(conn, args)
        done = remove_binding(
            conn, store.sealer, who.user_id, reason=reason, operator=operator,
            now=now_of(settings),
        )  # fmt: skip
    m = done.member
    line = (
        f"已解除 编号{m.user_id} {shown_identity(m.channel, m.external_id)} 的绑定"
        f"（{m.role.value}，{regions.full_name(m.region_code)}，{_detail(m)}）；"
        f"已取消待发通知 {done.notices} 条、提醒 {done.reminders} 条"
    )
    if done.in_flight:
        line += f"；另有 {done.in_flight} 条通知正在发送，无法撤回"
    print(line)
    return 0


def _detail(m: Member) -> str:
    """A clerk's unit, an official's review level."""
    if m.unit_name is not None:
        return m.unit_name
    return "-" if m.level is None else m.level.value


def _one(conn: Connection, args: argparse.Namespace) -> Identity:
    """The one identity --id or --user names; a bare platform ID known on two channels is
    ambiguous (say which)."""
    if args.id is not None:
        found = identity(conn, args.id) if 0 < args.id < 2**31 else None
        if found is None:
            raise MemberError(
                f"--id: 没有编号为 {args.id} 的用户，见 awardbot member list "
                f"(no user number {args.id}; see 'awardbot member list')"
            )
        return found
    matches = identities(conn, args.user)
    if not matches:
        raise MemberError(
            f"--user: 没有用户 {args.user!r} 与机器人对话过，请写 渠道:编号，如 wecom:zhangsan"
            f" (nobody {args.user!r} has talked to the bot; give CHANNEL:ID)"
        )
    if len(matches) > 1:
        known = "、".join(f"{i.channel}:{args.user}" for i in matches)
        raise MemberError(
            f"--user: {args.user!r} 在多个渠道上都有，请写明渠道：{known} "
            f"({args.user!r} is known on {len(matches)} channels; give CHANNEL:ID)"
        )
    return matches[0]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")


__all__ = ["COMMANDS", "register", "run"]
