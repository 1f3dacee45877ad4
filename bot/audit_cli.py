"""`awardbot audit --nomination CODE | --user CHANNEL:ID | --id N [--action ACTION]`.

The audit trail for an official's question — who saw this ID number, who moved this
nomination, what did this person do: each row's time, who acted (member number, chat identity
masked where personal, and the role, unit or level and region they held then), what (a read of
full personal data, a move, an opened attachment, a refused attempt, a removed binding...),
allowed or refused, on which nomination, and the detail (statuses, reason). `--user` / `--id`
also list the removals of that user's bindings, made by an admin.

Results go to stdout, the count to stderr; bad input is one line on stderr, exit 2 (see
bot.admin).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from bot.admin import (
    ERRORS,
    fail,
    local_time,
    regions_of,
    render_table,
    shown_identity,
    store_of,
)
from bot.catalog import load_catalog
from bot.settings import Settings
from conversations.campaign import Catalog
from storage import nominations as noms
from storage.audits import AuditEntry, trail
from storage.members import REMOVE_ACTION, MemberError, identities, identity
from storage.regions import Regions

COMMANDS = frozenset({"audit"})
HEADINGS = ("时间", "操作人", "角色", "单位或层级", "地区", "操作", "结果", "推荐", "说明")
# What each audited action is, in words (the moves' own labels come from the campaign).
ACTION_NAMES: Mapping[str, str] = {
    "read_personal_data": "查看完整个人信息（身份证号、手机号）",
    "open_attachment": "打开附件",
    "open": "打开推荐",
    "queue": "查看待审列表",
    "mine": "查看本单位推荐",
    "bind": "绑定邀请码",
    "track": "跟踪推荐",
    "move": "办理",
    "export": "导出",
    "nominee_consent": "记录推荐对象同意",
    "nominee_consent_revoked": "撤回推荐对象同意",
    "privacy_purge": "到期清除个人信息",
    REMOVE_ACTION: "解除绑定",
    "submit": "上报",
    "resubmit": "重新上报",
    "approve": "审核通过",
    "return": "退回",
    "reject": "不予推荐",
    "withdraw": "撤回",
    "award": "表彰",
    "revoke": "撤销",
    "start_publicity": "开始公示",
    "finish_publicity": "公示期满",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `audit` to the awardbot command line."""
    audit = subparsers.add_parser(
        "audit", help="the audit trail of a nomination or a user (who saw, moved, removed)"
    )
    which = audit.add_mutually_exclusive_group(required=True)
    which.add_argument("--nomination", metavar="CODE", help="tracking code (or number)")
    which.add_argument("--user", help="CHANNEL:ID, or the platform ID alone (every channel)")
    which.add_argument("--id", type=int, help="the member number (编号) 'member list' shows")
    audit.add_argument(
        "--action", help="only this action, e.g. read_personal_data (who saw the ID number)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _audit(args, settings)
    except (*ERRORS, MemberError) as exc:
        return fail(exc)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_catalog(settings.campaigns_dir)
    regions = regions_of(settings)
    with store_of(settings) as store, store.reading() as conn:
        nomination_id, user_ids = _subject(conn, store.sealer, args)
        entries = trail(
            conn, store.sealer, nomination_id=nomination_id, user_ids=user_ids,
            action=args.action,
        )  # fmt: skip
        subjects = _subjects(conn, entries)
    rows = [_row(e, catalog, regions, subjects, settings) for e in entries]
    if rows:
        print(render_table(HEADINGS, rows), end="")
    print(f"# {len(rows)} 条记录 (audit rows)", file=sys.stderr)
    return 0


def _subject(conn: Connection, sealer: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """(nomination id, None) or (None, user ids) for the options given."""
    if args.nomination is not None:
        code = args.nomination.strip()
        record = noms.by_tracking_code(conn, sealer, code)
        if record is None and code.isdigit() and len(code) <= 9:
            record = noms.get(conn, sealer, int(code))
        if record is None:
            raise MemberError(
                f"--nomination: 没有跟踪码为 {args.nomination!r} 的推荐 "
                f"(no nomination {args.nomination!r}: give its tracking code)"
            )
        return record.id, None
    if args.id is not None:
        if not 0 < args.id < 2**31 or identity(conn, args.id) is None:
            raise MemberError(
                f"--id: 没有编号为 {args.id} 的用户，见 awardbot member list "
                f"(no user number {args.id}; see 'awardbot member list')"
            )
        return None, {args.id}
    found = identities(conn, args.user)
    if not found:
        raise MemberError(
            f"--user: 没有用户 {args.user!r} 与机器人对话过，请写 渠道:编号，如 wecom:zhangsan"
            f" (nobody {args.user!r} has talked to the bot; give CHANNEL:ID)"
        )
    return None, {i.user_id for i in found}


def _subjects(conn: Connection, entries: list[AuditEntry]) -> dict[int, str]:
    """The identities removals name, as lists show them."""
    out = {}
    for e in entries:
        subject = (e.detail or {}).get("subject") if e.action == REMOVE_ACTION else None
        if isinstance(subject, int):
            found = identity(conn, subject)
            if found is not None:
                out[subject] = shown_identity(found.channel, found.external_id)
    return out


def _row(
    e: AuditEntry,
    catalog: Catalog,
    regions: Regions,
    subjects: Mapping[int, str],
    settings: Settings,
) -> list[str]:
    detail = e.detail or {}
    if e.user_id is None:
        who = f"命令行 {detail.get('operator') or '-'}"
    else:
        shown = shown_identity(e.channel or "?", e.external_id or "?")
        who = f"编号{e.user_id} {shown}"
    held = e.held
    unit = "-"
    region = "-"
    if held is not None:
        unit = held.unit_name or held.level or "-"
        region = regions.full_name(held.region_code)
    return [
        local_time(e.at, settings),
        _one_line(who),
        e.role,
        _one_line(unit),
        region,
        _action(e, catalog),
        "允许" if e.allowed else "拒绝",
        e.tracking_code or (str(e.nomination_id) if e.nomination_id is not None else "-"),
        _one_line(_said(e, catalog, regions, subjects)) or "-",
    ]


def _action(e: AuditEntry, catalog: Catalog) -> str:
    """The move's own label in its campaign (上报, 审核通过...), else the action's name."""
    if e.campaign in catalog and e.to_status is not None:
        lifecycle = catalog.get(e.campaign).lifecycle
        for t in lifecycle.transitions if lifecycle is not None else []:
            if t.action.value == e.action and t.to == e.to_status and e.from_status in t.from_:
                return t.label
    return ACTION_NAMES.get(e.action, e.action)


def _status(e: AuditEntry, catalog: Catalog, key: str) -> str:
    lifecycle = catalog.get(e.campaign).lifecycle if e.campaign in catalog else None
    if lifecycle is not None and lifecycle.has_status(key):
        return lifecycle.status(key).label
    return key


def _said(e: AuditEntry, catalog: Catalog, regions: Regions, subjects: Mapping[int, str]) -> str:
    detail = e.detail or {}
    parts = []
    if e.action == REMOVE_ACTION:
        binding = detail.get("binding") or {}
        subject = detail.get("subject")
        whose = subjects.get(subject, "?") if isinstance(subject, int) else "?"
        where = regions.full_name(str(binding.get("region", "")))
        what = binding.get("unit") or binding.get("level") or "-"
        parts.append(
            f"解除 编号{subject} {whose} 的绑定（{binding.get('role')}，{where}，{what}）"
        )
        cancelled = detail.get("cancelled") or {}
        parts.append(
            f"取消通知 {cancelled.get('notices', 0)} 条、提醒 {cancelled.get('reminders', 0)} 条"
        )
    if e.from_status is not None and e.to_status is not None:
        parts.append(f"{_status(e, catalog, e.from_status)}→{_status(e, catalog, e.to_status)}")
    if detail.get("material"):
        parts.append(f"材料 {detail['material']}")
    if detail.get("reason"):
        parts.append(f"原因：{detail['reason']}")
    if detail.get("why") and not e.allowed:
        parts.append(f"拒绝原因：{detail['why']}")
    return "；".join(parts)


def _one_line(text: str) -> str:
    """Cells are two spaces apart: a cell holds single spaces only."""
    return " ".join(str(text).split())


__all__ = ["COMMANDS", "register", "run"]
