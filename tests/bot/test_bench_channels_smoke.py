"""benchmarks/bench_channels.py still runs: every stack once, 2 users x 2 messages, in-process.

The benchmark itself is not part of `make test` (benchmarks/ is outside testpaths); this only
keeps it from rotting. The numbers are meaningless at this size; they must merely exist.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_channels.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_channels", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def test_every_stack_runs_and_reports_numbers(tmp_path: Path) -> None:
    saved_path = list(sys.path)  # the script puts the root and tests/ on it
    try:
        bench = _load()
        out = tmp_path / "results.json"
        out.write_text(json.dumps({"kept": 1}), "utf-8")
        report = bench.run(
            ["--users", "2", "--messages", "2", "--warmup", "1", "--json", str(out)]
        )
    finally:
        sys.modules.pop("bench_channels", None)
        sys.path[:] = saved_path

    assert report["ok"], report["failures"]
    results = {r["name"]: r for r in report["results"]}
    assert list(results) == list(bench.STACKS)
    for r in results.values():
        assert r["updates"] == 4
        assert r["updates_per_s"] > 0
        assert r["request_p50_ms"] > 0
        assert r["solo_p50_ms"] > 0
        assert r["cpu_ms_per_update"] > 0
        if r["channel"] == "telegram":
            assert r["reply_p50_ms"] > 0
    for ours, base in bench.BASELINE_OF.items():
        assert results[ours]["baseline"] == base
        assert results[ours]["ratio_updates_per_s"] > 0
        assert results[ours]["step_ms_mean"] > 0
    written = json.loads(out.read_text("utf-8"))
    assert written["kept"] == 1  # other keys of the results file stay
    assert written[bench.JSON_KEY]["users"] == 2
