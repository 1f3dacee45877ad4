"""`make bench`: every benchmark of issue 13 in one run on this machine, one table of ratios.

Each script runs as a child process of this one (one process tree, one after the other, so no two
compete for the 2 cores), writes its rows against their targets (benchmarks/rows.py), and exits 1
when one of its sanity checks failed (the work was not really done: an answer not stored, a reply
not sent, a message lost). The table compares ours with each baseline *measured in the same run*,
so the ratios hold on a noisy machine even when the absolute numbers move.

    .venv/bin/python benchmarks/run_all.py            # the full run (~20 minutes on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick    # smoke sizes: every row, numbers meaningless
    .venv/bin/python benchmarks/run_all.py --only steps memory

Writes benchmarks/results.json (every row, check and detail, the machine, the load) and exits 0
only when every script ran and every sanity check passed. A missed target is printed (and kept in
the results) but is not a failure of the run: the README says by how much and why.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"
PROFILES = HERE / "profiles"


def _scripts(tmp: Path) -> dict[str, list[str]]:
    """Name -> the script and its arguments (the rows file and --quick are added)."""
    return {
        "steps": [
            "bench_steps.py", "--only", "ours-durable", "ours-durable-pg",
            "ours-durable-pg-async", "ours-engine", "--json", str(tmp / "steps-full.json"),
            "--profile", str(PROFILES / "durable-step.txt"),
        ],
        "library": ["bench_library.py"],
        "http": ["bench_http.py"],
        "workers-ptb": ["bench_workers.py", "--library", "ptb"],
        "workers-aiogram": ["bench_workers.py", "--library", "aiogram"],
        "fanout": ["bench_fanout.py"],
        "memory": ["bench_memory.py"],
        "metrics": ["bench_metrics.py"],
    }  # fmt: skip


NAMES = tuple(_scripts(Path()))


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (numbers meaningless)")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME",
                        help=f"run only these: {' '.join(NAMES)}")  # fmt: skip
    parser.add_argument("--json", type=Path, default=RESULTS, help="results file")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds one script may take (default 1800)"
    )
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    load_start = _loadavg()
    print(f"make bench: {'quick (smoke sizes) ' if args.quick else ''}on {_machine()['cpu']}, "
          f"{os.cpu_count()} CPUs, load {load_start}", flush=True)  # fmt: skip
    reports: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    kept: dict[str, dict[str, Any]] = {}
    if args.only and args.json.exists():
        # The scripts not run now keep their last report (with its date), so the table and
        # the file still show every row; their checks count as they were.
        previous = json.loads(args.json.read_text("utf-8"))
        for name, report in previous.get("scripts", {}).items():
            if name not in args.only:
                kept[name] = {"date": report.get("date", previous.get("date")), **report}
    with tempfile.TemporaryDirectory(prefix="awardbot-bench-") as tmpdir:
        tmp = Path(tmpdir)
        scripts = _scripts(tmp)
        for name in args.only or NAMES:
            rows_file = tmp / f"{name}.json"
            command = [sys.executable, str(HERE / scripts[name][0]), *scripts[name][1:]]
            command += ["--rows-json", str(rows_file)] + (["--quick"] if args.quick else [])
            print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
            t0 = time.monotonic()
            try:
                done = subprocess.run(command, cwd=ROOT, timeout=args.timeout, check=False)
                code: int | str = done.returncode
            except subprocess.TimeoutExpired:
                code = f"timed out after {args.timeout:g} s"
            took = time.monotonic() - t0
            report: dict[str, Any] = {
                "exit": code,
                "seconds": round(took, 1),
                "date": started.isoformat(timespec="seconds"),
            }
            if rows_file.exists():
                report.update(json.loads(rows_file.read_text("utf-8")))
            else:
                problems.append(f"{name}: wrote no rows (exit {code})")
            if code != 0:
                problems.append(f"{name}: exit {code} (a sanity check failed or it crashed)")
            failed = [c["text"] for c in report.get("checks", []) if not c["ok"]]
            problems += [f"{name}: FAILED {text}" for text in failed]
            reports[name] = report
            print(f"=== {name}: exit {code} in {took:.0f} s", flush=True)
    for name, report in kept.items():
        print(f"(kept from {report['date']}: {name})")
        reports[name] = report
        problems += [
            f"{name}: FAILED {c['text']} (kept)" for c in report.get("checks", []) if not c["ok"]
        ]
    reports = {n: reports[n] for n in NAMES if n in reports}
    print()
    print(_table(reports))
    met = sum(r["met"] for rep in reports.values() for r in rep.get("rows", []))
    total = sum(len(rep.get("rows", [])) for rep in reports.values())
    print(f"\n{met} of {total} rows meet their target; load average {load_start} at the start, "
          f"{_loadavg()} at the end.")  # fmt: skip
    for problem in problems:
        print(f"  {problem}")
    results = {
        "benchmark": "make bench (benchmarks/run_all.py): issue 13's rows in one run",
        "date": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": _machine(),
        "load_average_at_start": load_start,
        "load_average_at_end": _loadavg(),
        "rows_met": met,
        "rows": total,
        "problems": problems,
        "ok": not problems,
        "scripts": reports,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"wrote {args.json}")
    if problems:
        print(f"FAILED: {len(problems)} problem(s) above; the numbers of those scripts are void")
        return 1
    return 0


def _table(reports: dict[str, dict[str, Any]]) -> str:
    head = ("script", "row", "ours", "baseline", "ratio", "target", "met")
    lines = [head]
    for name, report in reports.items():
        for r in report.get("rows", []):
            unit = r["unit"]
            bound = "≤" if not r["higher_is_better"] else "≥"
            if r["baseline"] is not None:
                base = f"{_num(r['baseline'])} {unit} {r['baseline_name']}".strip()
                ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "-"
                target = f"{bound} {r['target']:g}×"
            else:
                base, ratio, target = "-", "-", f"{bound} {_num(r['target'])} {unit}"
            met = "yes" if r["met"] else "NO"
            lines.append((name, r["row"], f"{_num(r['ours'])} {unit}", base, ratio, target, met))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libraries = {}
    for dist in ("python-telegram-bot", "aiogram", "wechatpy", "SQLAlchemy", "psycopg",
                 "aiohttp", "prometheus_client", "cryptography", "pydantic"):  # fmt: skip
        with contextlib.suppress(metadata.PackageNotFoundError):
            libraries[dist] = metadata.version(dist)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "libraries": libraries,
    }


if __name__ == "__main__":
    sys.exit(run())
