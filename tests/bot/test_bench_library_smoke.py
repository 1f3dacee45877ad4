"""benchmarks/bench_library.py still runs: every stack once at smoke size, as `make bench` runs it.

The benchmark is not part of `make test` (benchmarks/ is outside testpaths); this only keeps it
from rotting. It runs as a subprocess, as run_all does, with 6 users; the numbers are meaningless
at this size, and the targets are not asserted: only that every row and every sanity check is
there and the checks passed (each stack's replies were serialized by its library, the data is in
the pickle file, Redis, the SQLite files).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_library.py"
STACKS = [
    "ptb-memory",
    "ptb-pickle",
    "ours-ptb",
    "aiogram-memory",
    "aiogram-redis",
    "aiogram-sqlite",
    "ours-aiogram",
]
ROWS = {
    "ours via PTB / ptb-memory": "ptb-memory",
    "ours via PTB / ptb-pickle (1 s flush)": "ptb-pickle",
    "ours via aiogram / aiogram-memory": "aiogram-memory",
    "ours via aiogram / aiogram-redis": "aiogram-redis",
    "ours via aiogram / aiogram-sqlite": "aiogram-sqlite",
}


def test_every_stack_runs_and_passes_its_sanity_checks(tmp_path: Path) -> None:
    stacks = list(STACKS)
    rows = dict(ROWS)
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        stacks.remove("aiogram-redis")  # the benchmark starts its own redis-server
        del rows["ours via aiogram / aiogram-redis"]
    out = tmp_path / "rows.json"
    run = subprocess.run(
        [sys.executable, "-W", "error", str(BENCH), "--quick", "--users", "6", "--warm", "2"]
        + ["--rows-json", str(out), "--only", *stacks],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text("utf-8"))
    assert report["script"] == "bench_library"
    assert report["checks"]
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    for stack in stacks:
        texts = [c["text"] for c in report["checks"] if c["text"].startswith(f"{stack}: ")]
        # replies counted at the fake request layer, and the data read back
        assert len(texts) >= 2, (stack, texts)
        assert any("60 sendMessage calls serialized by the library" in t for t in texts)
        measured = report["details"]["stacks"][stack]
        assert measured["updates"] == 6 * 7
        assert measured["messages"] == 60
        assert measured["updates_per_s"] > 0
        assert 0 < measured["p50_ms"] <= measured["p99_ms"]
    got = {r["row"]: r for r in report["rows"]}
    assert set(got) == set(rows)
    for name, baseline in rows.items():
        row = got[name]
        assert row["baseline_name"] == baseline
        assert row["unit"] == "upd/s"
        assert row["ours"] > 0
        assert row["baseline"] > 0
        assert row["ratio"] == row["ours"] / row["baseline"]
