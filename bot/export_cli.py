"""`awardbot export KIND --campaign ID [--region CODE | --unit UNIT] [--for AUDIENCE] --out DIR`:
the documents `/documents` sends, written to a folder (issue 12; bot.exports.produce).

KIND is summary, forms, cover, opinions, publicity, book, report, quota or all. The scope is a
unit (`--unit` its id, its unified social credit code or its registered name), a region
(`--region` a code of campaigns/regions.yaml: every unit in it), or without either the whole
province. The audience — and with it the masking — follows the scope (a unit's own set, the
county, the city, the province) unless `--for` says otherwise (`--for public` masks like the
posted 公示名单). Everything is read in one snapshot; a progress bar on stderr counts the
nominations rendered; each export is audited (role `admin`, who ran it is the machine's user).

Errors are one line on stderr, Chinese first with English in parentheses, exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.catalog import load_catalog
from bot.clock import clock_for
from bot.settings import Settings
from bot.wiring import REGIONS_FILE, open_store, workday_end_from
from conversations.campaign import CampaignError, Catalog
from conversations.documents import DOC_TITLES, Audience, DocKind
from notifications.calendar import CalendarError, WorkdayCalendar
from storage import exports
from storage import nominations as noms
from storage.files import FileStore, FileStoreError
from storage.regions import RegionError, load_regions
from storage.store import StoreError
from storage.tables import units

COMMANDS = frozenset({"export"})
EXIT_USAGE = 2
KINDS = {k.value: k for k in DocKind}  # summary forms cover opinions book report publicity quota
PROVINCE = "220000"  # 吉林省: the scope without --region or --unit


class _Error(Exception):
    """Bad input or configuration; printed as one line, exit 2."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    export = subparsers.add_parser(
        "export", help="write the official documents (汇总表, 推荐审批表, …) to a folder"
    )
    export.add_argument("kind", choices=[*KINDS, "all"], help="which document, or all")
    export.add_argument("--campaign", required=True, help="campaign id, see 'awardbot campaigns'")
    where = export.add_mutually_exclusive_group()
    where.add_argument("--region", help="region code: every unit in it (default: the province)")
    where.add_argument("--unit", help="one unit: its id, credit code (USCC) or registered name")
    export.add_argument(
        "--for",
        dest="audience",
        choices=[a.value for a in Audience],
        help="whom the files are for (decides the masking; default: the scope's own)",
    )
    export.add_argument("--out", required=True, type=Path, help="folder to write the files to")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        written, nominations = _export(args, settings)
    except _Error as exc:
        print(f"awardbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(path)
    print(
        f"共 {len(written)} 个文件，{nominations} 件推荐 ({len(written)} files)", file=sys.stderr
    )
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> tuple[list[Path], int]:
    from tqdm import tqdm

    from bot.exports import produce, stored_file_reader

    catalog = _catalog(settings, args.campaign)
    try:
        regions = load_regions(settings.campaigns_dir / REGIONS_FILE)
        workday_end = workday_end_from(WorkdayCalendar(settings.calendar_file))
    except (RegionError, CalendarError) as exc:
        raise _Error(str(exc)) from None
    kinds = list(KINDS.values()) if args.kind == "all" else [KINDS[args.kind]]
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise _Error(f"--out: {out} 不是文件夹 (not a folder)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _Error(f"--out: 无法创建 {out}：{exc.strerror or exc} (cannot create it)") from None
    now = clock_for(settings)()
    try:
        store = open_store(settings)
    except StoreError as exc:
        raise _Error(str(exc)) from None
    files = FileStore(Path(settings.attachments_dir), store.sealer)
    try:
        with exports.snapshot(store) as conn:
            scope = _scope(conn, regions, args)
            if args.audience:
                scope = exports.with_audience(scope, Audience(args.audience))
            if DocKind.QUOTA in kinds and scope.region is None:
                if args.kind == "quota":
                    raise _Error(
                        "--unit: 名额对照图按地区生成，请用 --region (quota is per region)"
                    )
                kinds.remove(DocKind.QUOTA)
            total = len(exports.ordered(conn, catalog.get(args.campaign), scope)) * len(kinds)
            with tqdm(
                total=total, unit="件", desc="生成文件", file=sys.stderr, disable=None, leave=False
            ) as bar:
                result = produce(
                    conn, store.sealer, catalog, regions, scope, kinds, out, now=now,
                    workday_end=workday_end, read_file=stored_file_reader(conn, files),
                    progress=bar.update, bundle_over=None,
                )  # fmt: skip
        with store.transaction() as conn:
            noms.audit(
                conn, store.sealer, user_id=None, role="admin", action="export", allowed=True,
                now=now,
                detail={
                    "campaign": args.campaign, "kinds": [k.value for k in kinds],
                    "audience": scope.audience.value, "scope": scope.name,
                    "files": len(result.files), "nominations": result.nominations,
                    "by": _who(), "out": str(out),
                },
            )  # fmt: skip
    except (StoreError, FileStoreError, RegionError, LookupError) as exc:
        raise _Error(str(exc).splitlines()[0]) from None
    except Exception as exc:
        if type(exc).__name__ in {"FontMissing", "TemplateError"}:
            raise _Error(str(exc)) from None
        raise
    finally:
        store.close()
    if result.text:
        print(result.text, file=sys.stderr)
    if not result.files:
        titles = "、".join(DOC_TITLES[k] for k in kinds)
        print(
            f"没有可生成的{titles}：本范围内暂无已提交的推荐 (nothing to export)", file=sys.stderr
        )
    return [f.path for f in result.files], result.nominations


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - a container without a passwd entry
        return "unknown"


def _catalog(settings: Settings, campaign: str) -> Catalog:
    try:
        catalog = load_catalog(settings.campaigns_dir)
    except CampaignError as exc:
        raise _Error(str(exc)) from None
    if campaign not in catalog:
        known = ", ".join(c.id for c in catalog)
        raise _Error(
            f"--campaign: 没有评选 {campaign!r}（已有：{known}）"
            f" (no campaign {campaign!r}; known: {known})"
        )
    return catalog


def _scope(conn: Any, regions: Any, args: argparse.Namespace) -> exports.ExportScope:
    if args.unit is not None:
        return exports.unit_scope(conn, args.campaign, _unit_id(conn, args.unit))
    code = args.region or PROVINCE
    if code not in regions:
        raise _Error(
            f"--region: 未知地区代码 {code!r}，见 campaigns/regions.yaml (unknown region)"
        )
    return exports.region_scope(regions, args.campaign, code)


def _unit_id(conn: Any, given: str) -> int:
    text = given.strip()
    query = sa.select(units.c.id)
    if text.isdigit():
        found = conn.execute(query.where(units.c.id == int(text))).scalars().all()
    else:
        found = (
            conn.execute(query.where(sa.or_(units.c.uscc == text.upper(), units.c.name == text)))
            .scalars()
            .all()
        )
    if not found:
        raise _Error(
            f"--unit: 没有单位 {given!r}（请写单位编号、统一社会信用代码或名称） (no such unit)"
        )
    return int(found[0])


__all__ = ["COMMANDS", "KINDS", "register", "run"]
