"""benchmarks/bench_http.py and benchmarks/bench_workers.py still run, at smoke size, as `make
bench` runs them (a subprocess, `--quick --rows-json`).

The benchmarks are outside testpaths; this keeps them from rotting. The numbers of a smoke run
mean nothing and the targets are not asserted: only that every row and every sanity check is
there and the checks passed (ours stepped each update once and sent its replies as delivered
reply rows, each baseline's storage holds the answers, every WeChat push got its reply; for the
workers, each update recorded and stepped once and each chat's replies in order).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTTP_ROWS = {
    "HTTP Telegram: serve (PTB) / PTB webhook": "ptb-webhook",
    "HTTP Telegram: serve (aiogram) / aiogram webhook": "aiogram-webhook",
    "HTTP WeChat safe mode: ours / bare wechatpy": "wechatpy-aes",
}


def _run(script: str, out: Path, *extra: str, env: dict[str, str] | None = None) -> dict:
    run = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "benchmarks" / script), "--quick"]
        + ["--rows-json", str(out), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report: dict = json.loads(out.read_text("utf-8"))
    assert report["checks"]
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    return report


def test_bench_http_runs_every_stack_and_passes_its_checks(tmp_path: Path) -> None:
    report = _run("bench_http.py", tmp_path / "rows.json")
    assert report["script"] == "bench_http"
    texts = [c["text"] for c in report["checks"]]
    for ours in ("ours-tg-ptb", "ours-tg-aiogram"):
        assert any(t.startswith(f"{ours}: the ") and "reply rows, all delivered" in t
                   for t in texts), texts  # fmt: skip
    for base in ("ptb-webhook", "aiogram-webhook"):
        assert any(t.startswith(f"{base}: ") and "in its storage" in t for t in texts), texts
    got = {r["row"]: r for r in report["rows"]}
    for name, baseline in HTTP_ROWS.items():
        row = got[name]
        assert row["baseline_name"] == baseline
        assert row["ours"] > 0
        assert row["baseline"] > 0
    p99 = [r for name, r in got.items() if name.startswith("HTTP WeChat safe mode: ours p99")]
    assert len(p99) == 1
    assert p99[0]["unit"] == "ms"
    assert p99[0]["higher_is_better"] is False


def test_bench_workers_runs_on_postgres_and_passes_its_checks(tmp_path: Path) -> None:
    if not os.environ.get("AWARDBOT_TEST_POSTGRES_URL"):
        pytest.skip("AWARDBOT_TEST_POSTGRES_URL is not set: bench_workers needs PostgreSQL")
    report = _run("bench_workers.py", tmp_path / "rows.json", env=dict(os.environ))
    assert report["script"] == "bench_workers"
    results = report["details"]["results"]
    assert set(results) == {"1", "2"}
    for result in results.values():
        assert result["updates"] == 6 * 7
        assert result["updates_per_s"] > 0
    texts = [c["text"] for c in report["checks"]]
    assert any(t.startswith("2 workers: each worker stepped its share") for t in texts), texts
    [row] = report["rows"]
    assert row["baseline_name"] == "1 worker"
    assert row["ratio"] == row["ours"] / row["baseline"]
