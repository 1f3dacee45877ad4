"""A province-wide 附件5 推荐汇总表: time and peak memory of ours against the obvious way.

One process, one database: N nominations (default 3,000) of the skills campaign, spread over
every county of campaigns/regions.yaml (one unit each), their form values sealed as the bot
stores them, a /rank order set for half of them. Then the province's summary is made twice:

  ours-streamed   bot.exports.produce(SUMMARY) for the province scope: ONE snapshot, the ids in
                  ranking order, then BATCH (200) rows at a time decrypted into entries and
                  written by openpyxl's write-only workbook, row by row
  ours-pdf        the summary's printable twin (documents.pdf.summary_pdf), streamed the same
                  way; fpdf2 keeps the pages until it writes the file
  naive-loaded    the same rows read with one query into a list, every payload decrypted, the
                  entries built, then an ordinary (not write-only) openpyxl workbook filled, each
                  cell given the same font, and saved — what one writes without thinking about
                  a province

Both are checked: the file reopened has exactly N data rows, in the ranking order. Time is one
run's wall time; peak memory is Python's own allocations during a second run (tracemalloc, which
would slow the timed run), so it is not skewed by what the process already holds. It runs at
N/3 and N, to show that ours stays flat while the naive one grows.

Run:  .venv/bin/python benchmarks/bench_exports.py [--nominations 3000] [--json PATH]
Exit code 0 when every sanity check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from openpyxl import Workbook, load_workbook  # noqa: E402
from openpyxl.styles import Alignment, Font  # noqa: E402

from bot.catalog import load_catalog  # noqa: E402
from bot.exports import produce  # noqa: E402
from bot.wiring import workday_end_from  # noqa: E402
from conversations.documents import DocKind, Header, ranked  # noqa: E402
from conversations.idnumber import check_digit  # noqa: E402
from documents.pdf import summary_pdf  # noqa: E402
from documents.sheet import BODY_FONT, HEADER_ROWS, TITLE_FONT, cell_text, columns  # noqa: E402
from notifications.calendar import WorkdayCalendar  # noqa: E402
from storage import exports  # noqa: E402
from storage import nominations as noms  # noqa: E402
from storage.crypto import Sealer  # noqa: E402
from storage.rankings import set_ranking  # noqa: E402
from storage.regions import load_regions  # noqa: E402
from storage.store import Store  # noqa: E402
from storage.tables import units, users  # noqa: E402

CAMPAIGNS = ROOT / "campaigns"
DEFAULT_JSON = ROOT / "benchmarks" / "results_exports.json"
NOW = dt.datetime(2022, 11, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SKILLS = "jl-skills-2022"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"


class CheckFailed(Exception):
    pass


def fill(store: Store, n: int) -> list[int]:
    """N filed nominations over every county (one unit each); returns their ids."""
    regions = load_regions(CAMPAIGNS / "regions.yaml")
    counties = [r.code for r in regions if r.code[4:] != "00"]
    ids = []
    with store.transaction() as conn:
        user = conn.execute(
            users.insert().values(channel="console", external_id="bench", created_at=NOW)
            .returning(users.c.id)
        ).scalar_one()  # fmt: skip
        unit_ids = {}
        for i, code in enumerate(counties):
            unit_ids[code] = conn.execute(
                units.insert()
                .values(name=f"单位{code}", uscc=f"9122{i:014d}", region_code=code, created_at=NOW)
                .returning(units.c.id)
            ).scalar_one()
        for i in range(n):
            code = counties[i % len(counties)]
            body = f"{code}1980{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i % 1000:03d}"
            fields = {
                "name": SURNAMES[i % len(SURNAMES)] + "小" + "一二三四五六七八九十"[i % 10],
                "id_number": body + check_digit(body),
                "mobile": f"139{i:08d}",
                "ethnicity": "汉族", "political_status": "中共党员", "education": "大学本科",
                "employer": f"单位{code}", "position": "班长", "occupation": "钳工",
                "skill_level": "senior_technician", "years_in_occupation": 10 + i % 20,
            }  # fmt: skip
            record = noms.create_draft(
                conn, store.sealer, campaign=SKILLS, category="technical_expert",
                kind="individual", unit_id=unit_ids[code], region=code, created_by=user,
                payload={"fields": fields, "facts": {}, "opinions": []}, now=NOW,
                initial_status="city_review",
            )  # fmt: skip
            ids.append(record.id)
        # The province ranked every other nomination, newest first.
        set_ranking(
            conn, campaign=SKILLS, scope="region:220000:province", order=tuple(ids[::-2]),
            user_id=user, now=NOW,
        )  # fmt: skip
    return ids


def measure(run: Callable[[], Path]) -> tuple[float, int, Path]:
    """Wall time of one run, then the peak of Python's allocations in another (tracemalloc
    slows allocation-heavy code several times, so it never runs while the time is taken)."""
    gc.collect()
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    path = run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, path


def check(path: Path, expected_first: list[str], n: int) -> None:
    book = load_workbook(path, read_only=True)
    try:
        rows = list(book.active.iter_rows(min_row=HEADER_ROWS + 1, values_only=True))
    finally:
        book.close()
    if len(rows) != n:
        raise CheckFailed(f"{path.name}: {len(rows)} rows, expected {n}")
    got = [r[1] for r in rows[: len(expected_first)]]
    if got != expected_first:
        raise CheckFailed(f"{path.name}: order {got} != {expected_first}")


def run_size(n: int, workdir: Path) -> dict[str, Any]:
    db = workdir / f"bench-{n}.db"
    store = Store(f"sqlite:///{db}", sealer=Sealer([Fernet.generate_key()]))
    catalog = load_catalog(CAMPAIGNS)
    regions = load_regions(CAMPAIGNS / "regions.yaml")
    workday_end = workday_end_from(WorkdayCalendar(CAMPAIGNS / "calendar.yaml"))
    try:
        fill(store, n)
        scope = exports.region_scope(regions, SKILLS, "220000")
        out = workdir / f"ours-{n}"

        def ours() -> Path:
            with exports.snapshot(store) as conn:
                result = produce(
                    conn, store.sealer, catalog, regions, scope, [DocKind.SUMMARY], out,
                    now=NOW, workday_end=workday_end, read_file=lambda line: None,
                    summary_pdf=False,
                )  # fmt: skip
            (produced,) = result.files
            return produced.path

        def ours_pdf() -> Path:
            path = workdir / f"ours-{n}.pdf"
            with exports.snapshot(store) as conn:
                header = Header(SKILLS, catalog.get(SKILLS).title, scope.name, scope.audience, NOW)
                entries = exports.entries(
                    conn, store.sealer, catalog, regions, scope, DocKind.SUMMARY
                )
                if summary_pdf(header, "person", entries, path) != n:
                    raise CheckFailed(f"{path.name}: not {n} rows")
            return path

        def naive() -> Path:
            campaign = catalog.get(SKILLS)
            with exports.snapshot(store) as conn:
                order = exports.ordered(conn, campaign, scope)
                everything = list(
                    exports.entries(
                        conn, store.sealer, catalog, regions, scope, DocKind.SUMMARY,
                        order=order, batch=len(order) or 1,
                    )
                )  # fmt: skip
            entries = ranked(everything)
            header = Header(SKILLS, campaign.title, scope.name, scope.audience, NOW)
            cols = columns(SKILLS, "person")
            book = Workbook()
            sheet = book.active
            body, wrap = Font(name=BODY_FONT, size=11), Alignment(wrap_text=True)
            sheet.append([f"{header.campaign_title}推荐汇总表"])
            sheet["A1"].font = Font(name=TITLE_FONT, size=16)
            sheet.append([f"推荐单位（地区）：{header.scope}"])
            sheet.append([c.label for c in cols])
            for seq, entry in enumerate(entries, 1):
                sheet.append([cell_text(c, entry, seq) for c in cols])
            for row in sheet.iter_rows(min_row=HEADER_ROWS + 1):
                for cell in row:
                    cell.font, cell.alignment = body, wrap
            path = workdir / f"naive-{n}.xlsx"
            book.save(path)
            return path

        with exports.snapshot(store) as conn:
            first_ids = [i for i, _ in exports.ordered(conn, catalog.get(SKILLS), scope)[:5]]
            first = [
                noms.get(conn, store.sealer, i).payload["fields"]["name"]  # type: ignore[union-attr]
                for i in first_ids
            ]
        rows = {}
        for name, fn in (("ours-streamed", ours), ("naive-loaded", naive), ("ours-pdf", ours_pdf)):
            seconds, peak, path = measure(fn)
            if path.suffix == ".xlsx":
                check(path, first, n)
            elif not path.read_bytes().startswith(b"%PDF"):
                raise CheckFailed(f"{path.name}: not a PDF")
            rows[name] = {
                "seconds": round(seconds, 3),
                "rows_per_s": round(n / seconds),
                "peak_mib": round(peak / 2**20, 2),
                "bytes": path.stat().st_size,
            }
        return rows
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nominations", type=int, default=3000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if args.nominations < 3:
        parser.error("--nominations: at least 3")
    sizes = sorted({max(3, args.nominations // 3), args.nominations})
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "sizes": {},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="awardbot-bench-") as tmp:
            warm = Path(tmp) / "warm-up"  # its own files: a database is never reused
            warm.mkdir()
            run_size(min(10, args.nominations), warm)  # warm-up: imports, caches
            for n in sizes:
                results["sizes"][str(n)] = run_size(n, Path(tmp))
    except CheckFailed as exc:
        print(f"FAILED {exc}", file=sys.stderr)
        return 1
    print(f"{'nominations':>11}  {'stack':<14} {'seconds':>8} {'rows/s':>8} {'peak MiB':>9}")
    for n, rows in results["sizes"].items():
        for name, r in rows.items():
            print(
                f"{n:>11}  {name:<14} {r['seconds']:>8.2f} {r['rows_per_s']:>8} "
                f"{r['peak_mib']:>9.2f}"
            )
        ours, naive = rows["ours-streamed"], rows["naive-loaded"]
        print(
            f"{n:>11}  ratio ours/naive: time {ours['seconds'] / naive['seconds']:.2f}×, "
            f"peak memory {ours['peak_mib'] / naive['peak_mib']:.2f}×"
        )
    args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
