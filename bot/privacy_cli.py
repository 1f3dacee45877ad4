"""`awardbot privacy purge --campaign ID [--dry-run]`: delete a campaign's personal data past
its retention (issue 11; storage.privacy), as `serve` does every night on its leader.

Once the campaign's last stage (the end of its last window as in force, or its `as_of` date if
later) is AWARDBOT_RETENTION_DAYS behind (by the bot's clock: AWARDBOT_NOW in a demo), its
drafts that never left the unit with their files, the self-check results, the conversations
still holding a self-check or filing of it, its reminder settings, the tracking subscriptions to
its nominations and its reminders whose time is over are deleted, in one transaction, and the
purge is audited. Submitted nominations and the audit trail are kept. It prints the counts per
kind; `--dry-run` prints them and deletes nothing; before the due day nothing is deleted and the
counts say what will go then.

Errors are one line on stderr, Chinese first with English in parentheses, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.catalog import load_catalog
from bot.clock import clock_for
from bot.settings import Settings
from bot.wiring import open_store
from conversations.campaign import CampaignError
from storage.files import FileStore, FileStoreError
from storage.privacy import PurgeReport, purge
from storage.store import StoreError

COMMANDS = frozenset({"privacy"})
EXIT_USAGE = 2

LABELS = {
    "drafts": "未报送的草稿",
    "attachments": "草稿的附件",
    "selfchecks": "资格自检记录",
    "sessions": "进行中的自检或填报会话",
    "reminder_settings": "提醒设置",
    "subscriptions": "关注的推荐",
    "reminders": "已过期的提醒",
}


class _Error(Exception):
    """Bad input or configuration; printed as one line, exit 2."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    privacy = subparsers.add_parser("privacy", help="personal data: the retention purge")
    sub = privacy.add_subparsers(dest="privacy_command", required=True, metavar="{purge}")
    purge_ = sub.add_parser(
        "purge", help="delete a campaign's drafts, self-checks and subscriptions past retention"
    )
    purge_.add_argument("--campaign", required=True, help="campaign id, see 'awardbot campaigns'")
    purge_.add_argument("--dry-run", action="store_true", help="print the counts, delete nothing")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        report = _purge(args, settings)
    except _Error as exc:
        print(f"awardbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(render(report, days=settings.retention_days, dry_run=args.dry_run))
    return 0


def _purge(args: argparse.Namespace, settings: Settings) -> PurgeReport:
    try:
        catalog = load_catalog(settings.campaigns_dir)
    except CampaignError as exc:
        raise _Error(str(exc)) from None
    if args.campaign not in catalog:
        known = ", ".join(c.id for c in catalog)
        raise _Error(
            f"--campaign: 没有评选 {args.campaign!r}（已有：{known}）"
            f" (no campaign {args.campaign!r}; known: {known})"
        )
    now = clock_for(settings)()
    try:
        store = open_store(settings)
    except StoreError as exc:
        raise _Error(str(exc)) from None
    try:
        return purge(
            store,
            catalog.get(args.campaign),
            days=settings.retention_days,
            now=now,
            today=now.date(),
            files=FileStore(settings.attachments_dir, store.sealer),
            dry_run=args.dry_run,
        )
    except (StoreError, FileStoreError) as exc:
        raise _Error(str(exc)) from None
    finally:
        store.close()


def render(report: PurgeReport, *, days: int, dry_run: bool) -> str:
    """The counts per kind, under a line that says what was done and why."""
    head = (
        f"评选 {report.campaign}：最后阶段 {report.last_stage} 结束，保留 {days} 天，"
        f"{report.due} 起删除。"
    )
    if report.deleted:
        said = "已删除 (deleted)："
    elif dry_run:
        said = "试运行，未删除任何数据；将删除 (dry run, nothing deleted; would delete)："
    elif report.counts.total == 0:
        said = "没有需要删除的数据 (nothing to delete)："
    else:
        said = f"尚未到期，未删除任何数据；{report.due} 起将删除 (not due yet; from then)："
    width = max(len(label) for label in LABELS.values())
    lines = [
        f"  {LABELS[kind]}{'　' * (width - len(LABELS[kind]))}  {kind:<18} {count}"
        for kind, count in report.counts.items()
    ]
    return "\n".join([head, said, *lines])


__all__ = ["COMMANDS", "register", "render", "run"]
