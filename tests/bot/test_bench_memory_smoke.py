"""benchmarks/bench_memory.py still runs and checks its own work: a few conversations.

Not a timed test: at this size the bytes per conversation are noise. What must hold is that the
script wrote its row with both measurements and that its checks passed: one sealed session per
conversation in the database, and a sample resumed from the file by a new Store and Runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_memory.py"
CONVERSATIONS, WARM = 40, 10


def test_the_memory_benchmark_reports_its_row_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--conversations", str(CONVERSATIONS),
         "--warm", str(WARM), "--rows-json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text("utf-8"))
    assert data["script"] == "bench_memory"
    [row] = data["rows"]
    assert row["unit"] == "KiB"
    assert row["target"] == 1.0
    assert row["higher_is_better"] is False
    checks = data["checks"]
    assert len(checks) == 3
    assert all(c["ok"] for c in checks), checks
    texts = " | ".join(c["text"] for c in checks)
    assert f"{2 * (CONVERSATIONS + WARM)} sessions in the database" in texts
    assert "resumed" in texts
    details = data["details"]
    assert details["conversations"] == CONVERSATIONS
    assert details["rss_after"] > 0
    assert details["traced_after"] > 0
    assert "rss_per_conversation_bytes" in details
    assert "traced_per_conversation_bytes" in details
