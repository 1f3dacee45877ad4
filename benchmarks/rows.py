"""The contract between each benchmark script and `make bench` (benchmarks/run_all.py).

Every script `make bench` runs accepts `--quick` (smoke sizes: seconds, numbers meaningless) and
`--rows-json PATH`, and writes there what it measured, as rows against a target:

    report = Report("bench_http")
    report.row(Row(row="HTTP: serve vs PTB webhook", ours=412.0, baseline=388.0, unit="upd/s",
                   target=1.0, higher_is_better=True, notes="100 closed-loop users"))
    report.check(ok=all_replied, text="every update got its reply")
    report.details["ptb"] = {...}            # anything else worth keeping in results.json
    sys.exit(report.write(path))             # 0 when every check passed, 1 otherwise

`ratio` is ours / baseline (or, without a baseline, ours / target's reference); `met` compares it
with `target`. A row without a baseline compares `ours` itself with `target` (for absolute goals
such as "≤ 150 µs" or "≤ 1 KiB"). run_all prints every script's rows in one table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    row: str  # what is compared, e.g. "durable step (SQLite), mean"
    ours: float
    unit: str  # "upd/s", "µs", "ms", "KiB", "msg/s", ...
    target: float  # the ratio to reach (with a baseline) or the absolute bound (without)
    higher_is_better: bool = True
    baseline: float | None = None
    baseline_name: str = ""  # e.g. "ptb-memory"
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline

    @property
    def met(self) -> bool:
        value = self.ratio if self.baseline is not None else self.ours
        if value is None:
            return False
        return value >= self.target if self.higher_is_better else value <= self.target

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


@dataclass
class Report:
    script: str
    rows: list[Row] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def row(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def check(self, *, ok: bool, text: str) -> bool:
        self.checks.append({"ok": bool(ok), "text": text})
        print(("  ok  " if ok else "  FAILED  ") + text, flush=True)
        return bool(ok)

    @property
    def passed(self) -> bool:
        return all(c["ok"] for c in self.checks)

    def write(self, path: Path | str | None) -> int:
        """Write the report (when a path is given); the exit code: 0 when every check passed."""
        if path is not None:
            data = {
                "script": self.script,
                "rows": [r.as_json() for r in self.rows],
                "checks": self.checks,
                "details": self.details,
            }
            Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0 if self.passed else 1


def load(path: Path | str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


__all__ = ["Report", "Row", "load"]
