"""benchmarks/bench_fanout.py still runs and checks its own work: a few reminders, one kill -9.

Not a timed test: at this size the rate is meaningless (the limiter's initial burst covers the
run). What must hold is that the script wrote its three rows and that every sanity check passed:
two real `awardbot serve` processes, the first SIGKILLed part-way, each reminder planned and
handed off by the ticker, the outbox settled, and no chat but the kill's one uncertain row
without its message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fanout.py"
REMINDERS = 40


def test_the_fanout_benchmark_kills_a_serve_and_reports_its_rows(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--reminders", str(REMINDERS), "--lead", "2",
         "--quiet", "0.5", "--rows-json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text("utf-8"))
    assert data["script"] == "bench_fanout"
    rows = {r["row"]: r for r in data["rows"]}
    assert len(rows) == 3
    rate = next(r for name, r in rows.items() if "rate" in name)
    assert rate["ours"] > 0
    assert rate["target"] == 0.95
    assert {r["target"] for name, r in rows.items() if name != rate["row"]} == {0}
    checks = data["checks"]
    assert len(checks) >= 8
    assert all(c["ok"] for c in checks), checks
    texts = " | ".join(c["text"] for c in checks)
    assert "distinct chats" in texts
    assert "outbox:" in texts
    details = data["details"]
    assert details["reminders"] == REMINDERS
    assert 0 < details["sends_at_kill"] < REMINDERS  # killed part-way
    assert details["generation_2"]["messages"] > 0  # the second serve sent the rest
    assert details["reminders_of_the_day"] == {"sent": REMINDERS}
