"""`make bench` (benchmarks/run_all.py) still runs, prints one table and fails on a failed check.

Not a timed test: at smoke sizes the numbers mean nothing. What must hold is that the scripts'
rows reach one table and benchmarks/results.json, and that a script whose sanity check failed
makes the whole run exit non-zero (a missed target does not).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

RUN_ALL = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_bench_at_smoke_sizes_prints_one_table_and_writes_the_results(
    tmp_path: Path,
) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(RUN_ALL), "--quick", "--only", "steps", "memory",
         "--json", str(out)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout[done.stdout.index("script  ") :]
    assert "durable step, SQLite: mean" in table
    assert "durable step, PostgreSQL: mean / SQLite's" in table or "PostgreSQL" not in table
    assert "process memory per active conversation" in table
    data = json.loads(out.read_text("utf-8"))
    assert data["ok"] is True
    assert data["quick"] is True
    assert set(data["scripts"]) == {"steps", "memory"}
    for report in data["scripts"].values():
        assert report["exit"] == 0
        assert report["rows"]
        assert report["checks"]
        assert all(c["ok"] for c in report["checks"])
    assert data["rows"] == sum(len(r["rows"]) for r in data["scripts"].values())


def test_a_failed_sanity_check_fails_the_run_and_a_missed_target_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "bench_fake.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(RUN_ALL.parent)!r})
            from rows import Report, Row
            args = sys.argv[1:]
            path = args[args.index("--rows-json") + 1]
            report = Report("bench_fake")
            report.row(Row("a row that misses its target", 10.0, "upd/s", 20.0))
            report.check(ok="--fail" not in args, text="the work was done")
            sys.exit(report.write(path))
            """
        ),
        "utf-8",
    )
    run_all = _load()
    for extra, expected in (([], 0), (["--fail"], 1)):
        monkeypatch.setattr(run_all, "_scripts", lambda tmp, e=extra: {"fake": [str(script), *e]})
        monkeypatch.setattr(run_all, "NAMES", ("fake",))
        out = tmp_path / f"results{len(extra)}.json"
        assert run_all.run(["--json", str(out)]) == expected
        data = json.loads(out.read_text("utf-8"))
        assert data["ok"] is (expected == 0)
        [row] = data["scripts"]["fake"]["rows"]
        assert row["met"] is False
        printed = capsys.readouterr().out
        assert "a row that misses its target" in printed
        assert ("FAILED the work was done" in printed) is (expected == 1)
