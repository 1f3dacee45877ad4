"""The admin's commands: `awardbot invite create|list|revoke` and `awardbot quota set|list`.

Results go to stdout; bad input is one line on stderr and exit 2, like every command. This module
prints its own errors instead of raising `bot.cli.CliError`: under `python -m bot.cli` the CLI
module is `__main__`, and importing `bot.cli` from here would load a second copy whose CliError
the running one does not catch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from bot.clock import clock_for
from bot.settings import Settings, SettingsError
from conversations.campaign import Campaign, CampaignError
from conversations.crossrules import limits_for, quota_band
from conversations.identity import Level, Role
from conversations.keys import Channel
from storage.invites import (
    InviteBinding,
    InviteError,
    UnitSpec,
    UnitType,
    create_invite,
    format_hint,
    list_invites,
    revoke_invite,
)
from storage.quotas import QuotaError, put_forward, quotas, set_quota
from storage.regions import RegionError, Regions, load_regions
from storage.store import Store, StoreError

COMMANDS = frozenset({"invite", "quota"})
EXIT_USAGE = 2
REGIONS_FILE = "regions.yaml"  # in the campaigns directory
DEFAULT_DAYS = 7
MAX_DAYS = 365
INVITE_ROLES = (Role.CLERK.value, Role.OFFICIAL.value)


class AdminError(Exception):
    """Bad admin input; printed as one line, exit 2."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `invite` and `quota` to the awardbot command line."""
    invite = subparsers.add_parser(
        "invite", help="invitation codes that make a chat user a clerk or an official"
    )
    invite_sub = invite.add_subparsers(
        dest="invite_command", required=True, metavar="{create,list,revoke}"
    )
    create = invite_sub.add_parser("create", help="issue a code (shown only now)")
    create.add_argument("--role", required=True, choices=INVITE_ROLES)
    create.add_argument(
        "--region", required=True, help="region code (GB/T 2260), see campaigns/regions.yaml"
    )
    create.add_argument("--unit-name", help="clerk: the unit's name")
    create.add_argument("--unit-code", help="clerk: the unit's unified social credit code")
    create.add_argument("--unit-type", choices=[t.value for t in UnitType], help="clerk")
    create.add_argument(
        "--level", choices=[level.value for level in Level], help="official: review level"
    )
    create.add_argument(
        "--days", type=int, default=DEFAULT_DAYS, help=f"valid for N days (default {DEFAULT_DAYS})"
    )
    invite_sub.add_parser("list", help="every code by its hint, with its status")
    revoke = invite_sub.add_parser("revoke", help="revoke an unused code")
    revoke.add_argument("code", metavar="CODE|HINT", help="the code, or its first 4 characters")

    quota = subparsers.add_parser("quota", help="regional quotas (推荐名额) per category")
    quota_sub = quota.add_subparsers(dest="quota_command", required=True, metavar="{set,list}")
    set_ = quota_sub.add_parser("set", help="set a region's quota in one category")
    set_.add_argument("--campaign", required=True, help="campaign id")
    set_.add_argument("--category", required=True, help="category id")
    set_.add_argument("--region", required=True, help="region code, see campaigns/regions.yaml")
    set_.add_argument("--places", required=True, type=int, help="N >= 0")
    list_ = quota_sub.add_parser("list", help="a campaign's quotas")
    list_.add_argument("--campaign", required=True, help="campaign id")
    list_.add_argument("--category", help="only this category")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run an `invite` or `quota` command; 0, or 2 after one line on stderr."""
    try:
        if args.command == "invite":
            if args.invite_command == "create":
                return _invite_create(args, settings)
            if args.invite_command == "list":
                return _invite_list(settings)
            return _invite_revoke(args, settings)
        if args.quota_command == "set":
            return _quota_set(args, settings)
        return _quota_list(args, settings)
    except ERRORS as exc:
        return fail(exc)


# What the admin commands (this module, bot.members_cli, bot.audit_cli) say as one line, exit 2.
ERRORS: tuple[type[Exception], ...] = (
    AdminError,
    InviteError,
    QuotaError,
    RegionError,
    StoreError,
    SettingsError,
    CampaignError,
)


def fail(exc: Exception) -> int:
    print(f"awardbot: {exc}", file=sys.stderr)
    return EXIT_USAGE


# --- invite ----------------------------------------------------------------------------------


def _invite_create(args: argparse.Namespace, settings: Settings) -> int:
    region = regions_of(settings).get(args.region)
    role = Role(args.role)
    unit: UnitSpec | None = None
    level: Level | None = None
    unit_flags = [args.unit_name, args.unit_code, args.unit_type]
    if role is Role.CLERK:
        if not args.unit_name or not args.unit_code:
            raise AdminError(
                "经办人邀请码须指定单位 (--role clerk needs --unit-name and --unit-code)"
            )
        if args.level is not None:
            raise AdminError("--level is for --role official only (a clerk's is their unit's)")
        unit_type = None if args.unit_type is None else UnitType(args.unit_type)
        unit = UnitSpec(name=args.unit_name, uscc=args.unit_code, unit_type=unit_type)
    else:
        if any(flag is not None for flag in unit_flags):
            raise AdminError("--unit-name, --unit-code and --unit-type are for --role clerk only")
        if args.level is None:
            raise AdminError(
                f"审核人员邀请码须指定层级 (--role official needs --level: {region.full_name} "
                f"{region.code} reviews at {region.review_level})"
            )
        level = Level(args.level)
    if not 1 <= args.days <= MAX_DAYS:
        raise AdminError(f"--days: give 1 to {MAX_DAYS}, got {args.days}")
    now = now_of(settings)
    with transaction(settings) as conn:
        issued = create_invite(
            conn,
            role=role,
            region=region,
            level=level,
            unit=unit,
            now=now,
            ttl=dt.timedelta(days=args.days),
        )
    detail = unit.name if unit is not None else str(level)
    expires = local_time(issued.expires_at, settings)
    print(f"邀请码 {issued.code}（{role}，{region.full_name}，{detail}，有效至 {expires}）")
    return 0


INVITE_HEADINGS = (
    "邀请码", "角色", "地区", "单位或层级", "状态", "有效至", "使用或作废", "使用者",
)  # fmt: skip
BINDING_NAMES = {
    InviteBinding.CURRENT: "绑定中",
    InviteBinding.REPLACED: "已被新邀请码替换",
    InviteBinding.REMOVED: "已解除",
}


def _invite_list(settings: Settings) -> int:
    """Every code by its hint; a used one with who used it (member number, chat identity
    masked where personal) and whether that binding is still theirs."""
    regions = regions_of(settings)
    with reading(settings) as conn:
        records = list_invites(conn, now=now_of(settings))
    rows = []
    for r in records:
        detail = r.unit_name if r.unit_name is not None else str(r.level or "-")
        when, who = "-", "-"
        if r.used_at is not None:
            when = local_time(r.used_at, settings)
            if r.used_by_channel is not None and r.used_by_external_id is not None:
                identity = shown_identity(r.used_by_channel, r.used_by_external_id)
                who = f"编号{r.used_by_user_id} {identity}"
            if r.binding is not None:
                who += f"（{BINDING_NAMES[r.binding]}）"
        elif r.revoked_at is not None:
            when = local_time(r.revoked_at, settings)
        rows.append(
            [format_hint(r.hint), r.role, regions.full_name(r.region_code), detail, r.status,
             local_time(r.expires_at, settings), when, who]
        )  # fmt: skip
    if rows:
        print(render_table(INVITE_HEADINGS, rows), end="")
    return 0


def _invite_revoke(args: argparse.Namespace, settings: Settings) -> int:
    regions = regions_of(settings)
    with transaction(settings) as conn:
        record = revoke_invite(conn, args.code, now=now_of(settings))
    detail = record.unit_name if record.unit_name is not None else str(record.level)
    print(
        f"已作废 {format_hint(record.hint)}（{record.role}，"
        f"{regions.full_name(record.region_code)}，{detail}）"
    )
    return 0


# --- quota -----------------------------------------------------------------------------------


def _quota_set(args: argparse.Namespace, settings: Settings) -> int:
    campaign = _check_campaign(settings, args.campaign, args.category)
    region = regions_of(settings).get(args.region)
    if args.places < 0:
        raise AdminError(f"--places: must be 0 or more, got {args.places}")
    category = next(c for c in campaign.categories if c.id == args.category)
    if category.places is not None and args.places > category.places:
        raise AdminError(
            f"--places: {args.places} 超过「{category.name}」的评选总数 {category.places} 名 "
            f"(places {args.places} exceed the category's total of {category.places})"
        )
    with transaction(settings) as conn:
        set_quota(
            conn,
            campaign=args.campaign,
            category=args.category,
            region=region,
            places=args.places,
            now=now_of(settings),
        )
    print(
        f"名额 {args.campaign} {args.category} {region.full_name}（{region.code}）：{args.places}"
    )
    return 0


QUOTA_HEADINGS = ("类别", "地区代码", "地区", "名额", "已推荐", "应推荐", "情况")


def _quota_list(args: argparse.Namespace, settings: Settings) -> int:
    """Each quota with what its region has put forward against it (nominations that use a
    place) and the band the notice asks for (按照名额的150%-200%推荐); regions that nominated
    in a category without a quota follow, with 名额 `-`."""
    campaign = _check_campaign(settings, args.campaign, args.category)
    regions = regions_of(settings)
    limits = limits_for(campaign)
    with reading(settings) as conn:
        records = quotas(conn, args.campaign, args.category)
        used = put_forward(
            conn, args.campaign, regions, not_places=limits.not_places, category=args.category
        )
    rows = []
    for q in records:
        count = used.pop((q.category, q.region_code), 0)
        band, state = "-", "-"
        if limits.quota_ratio is not None:
            least, most = quota_band(q.places, limits.quota_ratio)
            band = f"{least}-{most}"  # ASCII: an en dash is two columns in some terminals
            state = "不足" if count < least else "超出" if count > most else "符合"
        rows.append(
            [q.category, q.region_code, regions.full_name(q.region_code), str(q.places),
             str(count), band, state]
        )  # fmt: skip
    order = {c.id: i for i, c in enumerate(campaign.categories)}
    for (category, region), count in sorted(used.items(), key=lambda i: (order[i[0][0]], i[0])):
        rows.append(
            [category, region, regions.full_name(region), "-", str(count), "-", "未分配名额"]
        )
    if rows:
        print(render_table(QUOTA_HEADINGS, rows), end="")
    return 0


def _check_campaign(settings: Settings, campaign_id: str, category: str | None) -> Campaign:
    from bot.catalog import load_catalog

    catalog = load_catalog(settings.campaigns_dir)
    if campaign_id not in catalog:
        known = ", ".join(c.id for c in catalog)
        raise AdminError(f"unknown campaign '{campaign_id}' (known: {known})")
    campaign = catalog.get(campaign_id)
    ids = [c.id for c in campaign.categories]
    if category is not None and category not in ids:
        raise AdminError(
            f"unknown category '{category}' of {campaign_id} (known: {', '.join(ids)})"
        )
    return campaign


# --- output ----------------------------------------------------------------------------------

# Chat identities whose ids are personal (a Telegram user id, a WeChat openid, a WeCom userid
# often the person's name): shown masked. Console users are this machine's own accounts.
MASKED_CHANNELS = frozenset({Channel.TELEGRAM.value, Channel.WECHAT.value, Channel.WECOM.value})


def masked_id(channel: str, external_id: str) -> str:
    """`12*****89`: a platform user id as lists show it, masked where it is personal."""
    if channel not in MASKED_CHANNELS:
        return external_id
    keep = 2 if len(external_id) >= 8 else 1 if len(external_id) >= 3 else 0
    head, tail = external_id[:keep], external_id[len(external_id) - keep :]
    stars = min(max(len(external_id) - 2 * keep, 1), 6)  # a long openid: six are enough
    return f"{head}{'*' * stars}{tail}"


def shown_identity(channel: str, external_id: str) -> str:
    """`telegram:12*****89`: a chat identity as lists show it."""
    return f"{channel}:{masked_id(channel, external_id)}"


def display_width(text: str) -> int:
    """Columns a terminal gives `text`: two for each wide (CJK, full-width) character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def render_table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Headings and rows in columns two spaces apart, aligned by display width (Chinese
    characters are two columns wide); no trailing spaces. One line each, newline-terminated."""
    widths = [
        max(display_width(str(line[i])) for line in [headings, *rows])
        for i in range(len(headings))
    ]
    out = []
    for line in [headings, *rows]:
        cells = [
            str(cell) + " " * (width - display_width(str(cell)))
            for cell, width in zip(line, widths, strict=True)
        ]
        out.append("  ".join(cells).rstrip() + "\n")
    return "".join(out)


# --- plumbing --------------------------------------------------------------------------------


def now_of(settings: Settings) -> dt.datetime:
    """The bot's clock (AWARDBOT_NOW's demo clock too): an invitation made for a demo timeline
    is valid on that timeline."""
    return clock_for(settings)()


def regions_of(settings: Settings) -> Regions:
    return load_regions(settings.campaigns_dir / REGIONS_FILE)


def local_time(when: dt.datetime, settings: Settings) -> str:
    return when.astimezone(settings.timezone).strftime("%Y-%m-%d %H:%M")


@contextmanager
def store_of(settings: Settings) -> Iterator[Store]:
    from bot.keys import sealer_for

    with Store(settings.database_url, sealer=sealer_for(settings)) as store:
        yield store


@contextmanager
def transaction(settings: Settings) -> Iterator[Connection]:
    with store_of(settings) as store, store.transaction() as conn:
        yield conn


@contextmanager
def reading(settings: Settings) -> Iterator[Connection]:
    with store_of(settings) as store, store.reading() as conn:
        yield conn


__all__ = ["COMMANDS", "AdminError", "register", "run"]
