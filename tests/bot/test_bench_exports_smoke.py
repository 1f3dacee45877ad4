"""benchmarks/bench_exports.py still runs and checks its own work: a few nominations, both ways.

Not a timed test: the numbers are meaningless at this size; they must merely exist, and a
summary whose rows or order were wrong must fail the run (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_exports.py"


def test_the_export_benchmark_runs_and_reports_both_stacks(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--nominations", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text("utf-8"))
    assert set(results["sizes"]) == {"3"}
    for rows in results["sizes"].values():
        assert set(rows) == {"ours-streamed", "naive-loaded", "ours-pdf"}
        assert all(r["seconds"] > 0 and r["peak_mib"] > 0 for r in rows.values())
    assert "ratio ours/naive" in done.stdout
