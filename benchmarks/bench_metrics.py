"""What `/metrics` costs a step (issue 13): prometheus_client counters and histograms.

Three measurements, one process:

  bare        the metric calls one webhook step makes, alone, in a loop: updates received,
              the step's histogram, the request's outcome counter, the webhook's histogram and
              one reply sent (5 calls; the labels as a Telegram step has them)
  gateway     `Gateway.handle` over a step that does nothing (returns one reply), the real
              Metrics against one whose calls do nothing: the difference is the metrics' share
              of the gateway's own overhead (a thread hop per step)
  durable     the same over the real runtime on a SQLite file (one transaction per step,
              `/start` for a new user each time): the overhead against a real step
  scrape      rendering the page after those steps (what one Prometheus scrape costs a worker)

Blocks of calls alternate real/null (ABBA) in one event loop so load drifts hit both; the medians
of the blocks are reported, and the median of the pairwise differences.

Run:  .venv/bin/python benchmarks/bench_metrics.py [--quick] [--rows-json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from rows import Report, Row  # noqa: E402

from conversations.engine import Reply  # noqa: E402
from handlers.base import Gateway, Metrics  # noqa: E402


class NullMetrics(Metrics):
    """The same registry, every call a no-op: the gateway without the metrics' work."""

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        pass

    def observe_step(self, channel: str, kind: str, seconds: float) -> None:
        pass

    def observe_webhook(self, channel: str, seconds: float) -> None:
        pass


class Nothing:
    """A step that does nothing: what is left is the gateway's (and the metrics') cost."""

    def open(self, key: Any) -> list[Reply]:
        return [Reply("hi")]

    def handle_once(
        self, key: Any, delivery_id: Any, text: str, upload: Any = None, **_: Any
    ) -> list[Reply]:
        return [Reply("hi")]


def bare(n: int) -> float:
    """µs per step for the 5 metric calls a webhook step makes."""
    metrics = Metrics("bench")
    started = time.perf_counter()
    for _ in range(n):
        metrics.inc("awardbot_updates_received_total", channel="telegram")
        metrics.observe_step("telegram", "command", 0.0021)
        metrics.inc("awardbot_requests_total", channel="telegram", outcome="accepted", reason="")
        metrics.observe_webhook("telegram", 0.0034)
        metrics.inc("awardbot_replies_sent_total", channel="telegram")
    return (time.perf_counter() - started) / n * 1e6


async def interleaved(
    steps: Any, blocks: int, block: int, offset: int = 0
) -> tuple[list[float], list[float]]:
    """µs per `Gateway.handle` (sequential, like one user's chat, plus the request's outcome
    counter and webhook histogram the middleware adds), in blocks of `block` calls alternating
    between a gateway with the real metrics and one with no-op metrics (ABBA: whichever runs
    first in a pair is slower here), so load drifts hit both."""
    gateways = {"real": Gateway(steps, Metrics("bench")), "null": Gateway(steps, NullMetrics("b"))}
    out: dict[str, list[float]] = {"real": [], "null": []}
    i = offset
    try:
        for b in range(blocks):
            for which in ("real", "null") if b % 2 == 0 else ("null", "real"):
                gateway = gateways[which]
                started = time.perf_counter()
                for _ in range(block):
                    i += 1
                    await gateway.handle("telegram", f"u{i}", "/start", delivery_id=f"d{i}")
                    gateway.metrics.inc(
                        "awardbot_requests_total",
                        channel="telegram",
                        outcome="accepted",
                        reason="",
                    )
                    gateway.metrics.observe_webhook("telegram", 0.003)
                out[which].append((time.perf_counter() - started) / block * 1e6)
    finally:
        for gateway in gateways.values():
            gateway.shutdown()
    return out["real"], out["null"]


def durable_steps(workdir: Path) -> Any:
    from support.console_harness import FIXED_NOW, catalog
    from support.keys import TEST_SEALER
    from support.serving import settings_for

    from bot.wiring import build_runtime
    from storage.store import Store

    store = Store(f"sqlite:///{workdir / 'bench.db'}", sealer=TEST_SEALER)
    settings = settings_for({}, files_dir=workdir / "files")
    return build_runtime(settings, catalog(), store, clock=lambda: FIXED_NOW), store


def _loadavg() -> list[str]:
    path = Path("/proc/loadavg")
    return path.read_text().split()[:3] if path.exists() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (numbers meaningless)")
    parser.add_argument("--rows-json", type=Path)
    args = parser.parse_args()
    report = Report("bench_metrics")
    loadavg = _loadavg()
    report.details["loadavg_before"] = loadavg

    n_bare, n_gw, n_durable, count = (2000, 50, 5, 2) if args.quick else (200_000, 200, 20, 7)
    blocks = 4 if args.quick else 60
    bare_us = statistics.median(bare(n_bare) for _ in range(count))
    report.row(
        Row(
            row="metrics calls of one webhook step (5 calls)",
            ours=bare_us,
            unit="µs",
            target=20.0,
            higher_is_better=False,
            notes="counters + 2 histograms",
        )
    )

    real, null = asyncio.run(interleaved(Nothing(), blocks, n_gw))
    gw_real, gw_null = statistics.median(real), statistics.median(null)
    report.row(
        Row(
            row="Gateway.handle, no-op step, real metrics",
            ours=gw_real,
            unit="µs",
            baseline=gw_null,
            baseline_name="no-op metrics",
            target=1.10,
            higher_is_better=False,
            notes="thread hop per step",
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        runtime, store = durable_steps(Path(tmp))
        try:
            asyncio.run(interleaved(runtime, 2, 5, offset=10**6))  # warm: caches
            real_d, null_d = asyncio.run(interleaved(runtime, blocks, n_durable, 2 * 10**6))
        finally:
            store.close()
    d_real, d_null = statistics.median(real_d), statistics.median(null_d)
    report.row(
        Row(
            row="Gateway.handle, durable /start (SQLite), real metrics",
            ours=d_real,
            unit="µs",
            baseline=d_null,
            baseline_name="no-op metrics",
            target=1.05,
            higher_is_better=False,
            notes="one transaction per step",
        )
    )

    page_metrics = Metrics("bench")
    for channel in ("telegram", "wechat", "wecom"):
        for kind in ("command", "text", "button", "upload"):
            page_metrics.observe_step(channel, kind, 0.002)
        page_metrics.observe_webhook(channel, 0.003)
        page_metrics.inc("awardbot_updates_received_total", channel=channel)
    started = time.perf_counter()
    renders = 50 if args.quick else 2000
    for _ in range(renders):
        page = page_metrics.render({"awardbot_in_flight": ("Steps running.", 0)})
    scrape_us = (time.perf_counter() - started) / renders * 1e6
    report.row(
        Row(
            row="one scrape's render (3 channels x 4 kinds)",
            ours=scrape_us,
            unit="µs",
            target=5000.0,
            higher_is_better=False,
            notes=f"{len(page)} bytes",
        )
    )

    report.check(ok=bare_us > 0 and gw_real > 0, text="every measurement ran")
    report.check(ok=d_null > 200, text="the durable step really wrote (≥ 0.2 ms per step)")
    report.details.update(
        gateway_blocks_us={"real": real, "null": null},
        durable_blocks_us={"real": real_d, "null": null_d},
        loadavg_after=_loadavg(),
    )
    for row in report.rows:
        ratio = f"  ({row.ratio:.3f} × {row.baseline_name})" if row.ratio is not None else ""
        print(f"{row.row}: {row.ours:.2f} {row.unit}{ratio}")
    gw_diff = statistics.median(a - b for a, b in zip(real, null, strict=True))
    d_diff = statistics.median(a - b for a, b in zip(real_d, null_d, strict=True))
    report.details.update(pair_diff_us={"gateway": gw_diff, "durable": d_diff})
    print(
        f"overhead per no-op step: {gw_diff:+.2f} µs (median of pairs);"
        f" per durable step: {d_diff:+.2f} µs of {d_null:.0f} µs"
    )
    print("loadavg before/after:", loadavg, report.details["loadavg_after"])
    return report.write(args.rows_json)


if __name__ == "__main__":
    raise SystemExit(main())
