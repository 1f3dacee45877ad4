"""`/metrics` (issue 13): prometheus_client's exposition, one registry per worker with a `worker`
label, the counters moving with real steps through the channels, and latency histograms of the
steps (per channel and kind) and of the webhook requests (per channel).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fakes.telegram_api import FakeTelegram
from prometheus_client.parser import text_string_to_metric_families
from support.console_harness import FIXED_NOW as FIXED
from support.drivers.telegram import telegram_bot
from support.drivers.wechat import PUSH_TARGETS, push_target
from support.outage import own_database
from support.scrape import families, sample, samples
from support.serving import serving
from support.workers import WEBHOOK_SECRET, workers_of

from handlers.base import COUNTERS, LATENCY_BUCKETS, Gateway, Metrics
from notifications.senders import Sender
from storage.crypto import Sealer
from storage.store import Store

PATIENCE = 30.0


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.text()


async def until(condition: Callable[[], bool], within: float = PATIENCE) -> None:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls counters
        await asyncio.sleep(0.05)


def step_count(metrics: Metrics, channel: str, kind: str) -> float:
    labels = {"worker": metrics.worker, "channel": channel, "kind": kind}
    return metrics.registry.get_sample_value("awardbot_step_seconds_count", labels) or 0


# ----- the page itself ---------------------------------------------------------------------


def test_every_metric_is_on_a_fresh_page_with_its_help_and_type() -> None:
    page = Metrics("w1").render({"awardbot_in_flight": ("Steps running.", 0)})
    parsed = {family.name: family for family in text_string_to_metric_families(page)}
    for name in COUNTERS:
        family = parsed[name.removesuffix("_total")]  # the parser names the family without it
        assert family.type == "counter"
        assert family.documentation
        assert family.documentation != name
    for name in ("awardbot_step_seconds", "awardbot_webhook_seconds"):
        assert parsed[name].type == "histogram"
        assert "channel" in parsed[name].documentation
    assert parsed["awardbot_in_flight"].type == "gauge"
    # counters without labels of their own show 0 before anything happened, as before
    assert sample(page, "awardbot_reminders_sent_total") == 0
    assert all(s.labels["worker"] == "w1" for f in parsed.values() for s in f.samples)
    assert "_created" not in page


def test_histogram_buckets_resolve_milliseconds() -> None:
    metrics = Metrics("w1")
    for seconds in (0.0004, 0.0018, 0.004, 0.03):
        metrics.observe_step("telegram", "command", seconds)
    page = metrics.render()
    buckets = {
        s.labels["le"]: s.value
        for s in samples(page, "awardbot_step_seconds_bucket")
        if s.labels["channel"] == "telegram"
    }
    assert LATENCY_BUCKETS[0] <= 0.001  # a sub-millisecond step is told apart from a 2 ms one
    assert (buckets["0.0005"], buckets["0.001"], buckets["0.0025"], buckets["0.005"]) == (
        1,
        1,
        2,
        3,
    )
    assert buckets["+Inf"] == 4
    assert sample(page, "awardbot_step_seconds_sum", channel="telegram", kind="command") == (
        pytest.approx(0.0362)
    )


def test_an_unknown_counter_is_refused_not_invented() -> None:
    with pytest.raises(KeyError):
        Metrics("w1").inc("awardbot_typo_total", channel="x")


# ----- real steps through each channel -------------------------------------------------------


async def test_a_telegram_step_moves_the_counters_and_both_histograms(
    store: Store, tmp_path: Path
) -> None:
    async with telegram_bot(store, library="ptb", mode="webhook", files_dir=tmp_path) as tg:
        metrics = tg.gateway.metrics
        driver = tg.driver()
        assert "您好" in await driver.send("/start")
        await driver.send("你好")
        await until(lambda: metrics.value("awardbot_replies_sent_total", channel="telegram") >= 2)
        page = await scrape(tg.url)
    assert sample(page, "awardbot_updates_received_total", channel="telegram") == 2
    assert (
        sample(page, "awardbot_requests_total", channel="telegram", outcome="accepted", reason="")
        == 2
    )
    assert (sample(page, "awardbot_replies_sent_total", channel="telegram") or 0) >= 2
    assert sample(page, "awardbot_step_seconds_count", channel="telegram", kind="command") == 1
    assert sample(page, "awardbot_step_seconds_count", channel="telegram", kind="text") == 1
    assert (sample(page, "awardbot_step_seconds_sum", channel="telegram", kind="command") or 0) > 0
    assert sample(page, "awardbot_webhook_seconds_count", channel="telegram") == 2
    # a webhook request holds its step: it takes at least as long
    webhook = sample(page, "awardbot_webhook_seconds_sum", channel="telegram")
    steps = sum(
        s.value
        for s in samples(page, "awardbot_step_seconds_sum")
        if s.labels["channel"] == "telegram"
    )
    assert webhook is not None
    assert webhook >= steps > 0


@pytest.mark.parametrize("name", PUSH_TARGETS)
async def test_a_signed_push_moves_the_counters_and_both_histograms(
    store: Store, name: str, tmp_path: Path
) -> None:
    async with push_target(store, name, clock=lambda: FIXED, files_dir=tmp_path) as target:
        channel = target.path.strip("/")
        status, answer = await target.push(target.text("o-user-1", "/start", msg_id="1001"))
        assert status == 200
        assert "您好" in answer
        status, _ = await target.push(target.text("o-user-1", "/start", msg_id="1001"))
        assert status == 200  # the platform's retry: answered, not a second step
        page = await scrape(target.server.url)
    assert sample(page, "awardbot_updates_received_total", channel=channel) == 2
    assert sample(page, "awardbot_updates_duplicate_total", channel=channel) == 1
    assert sample(page, "awardbot_step_seconds_count", channel=channel, kind="command") == 2
    assert sample(page, "awardbot_webhook_seconds_count", channel=channel) == 2
    assert sample(page, "awardbot_step_seconds_count", channel="telegram", kind="command") is None


async def test_a_step_the_store_refuses_is_timed_and_counted_as_unavailable(
    store: Store, tmp_path: Path
) -> None:
    from support.outage import FailingSteps

    async with push_target(store, "wecom", clock=lambda: FIXED, files_dir=tmp_path) as target:
        target.server.gateway.steps = FailingSteps()
        status, _ = await target.push(target.text("zhangsan", "/start", msg_id="2002"))
        assert status == 503
        page = await scrape(target.server.url)
    assert sample(page, "awardbot_step_seconds_count", channel="wecom", kind="command") == 1
    assert sample(page, "awardbot_webhook_seconds_count", channel="wecom") == 1
    assert (
        sample(page, "awardbot_requests_total", channel="wecom", outcome="unavailable", reason="")
        == 1
    )


class _Quiet:
    channel = "console"
    idempotent = True

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        self.sent.append(idempotency_key)


class _SendOnly:
    """A channel with no routes, only an outbox sender: the dispatcher's rounds run."""

    channel = "console"

    def __init__(self) -> None:
        self._sender = _Quiet()

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def sender(self) -> Sender:
        return self._sender


async def test_the_scheduled_jobs_are_timed_as_steps_of_their_own(store: Store) -> None:
    options: dict[str, Any] = {"adapters": [_SendOnly()], "dispatch_every": 0.05}
    async with serving(store, {"AWARDBOT_DOCUMENT_TICK_SECONDS": "1"}, **options) as server:
        await until(lambda: step_count(server.metrics, "outbox", "dispatch") >= 2)
        await until(lambda: step_count(server.metrics, "documents", "render") >= 1)
        page = await scrape(server.url)
    dispatch = sample(page, "awardbot_step_seconds_count", channel="outbox", kind="dispatch")
    render = sample(page, "awardbot_step_seconds_count", channel="documents", kind="render")
    assert (dispatch or 0) >= 2
    assert (render or 0) >= 1
    # no webhook: nothing to time there
    assert samples(page, "awardbot_webhook_seconds_count") == []


# ----- several workers: one registry each, told apart by `worker` ----------------------------


class _Echo:
    channel = "echo"

    def __init__(self) -> None:
        self.gateway: Gateway | None = None

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        return [web.post("/echo/{user}", self.post)]

    async def post(self, request: web.Request) -> web.Response:
        assert self.gateway is not None
        replies = await self.gateway.handle(
            "echo", request.match_info["user"], await request.text(), delivery_id=None
        )
        assert isinstance(replies, list)
        return web.Response(text=str(len(replies)))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def sender(self) -> None:
        return None


def _series(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


async def test_two_workers_in_one_process_keep_their_own_counts_under_their_labels(
    store: Store,
) -> None:
    # Two Servers in one process (as tests run them): no shared global registry, no clash.
    a_echo, b_echo = _Echo(), _Echo()
    async with (
        serving(store, {"AWARDBOT_WORKER_NAME": "a"}, adapters=[a_echo]) as a,
        serving(store, {"AWARDBOT_WORKER_NAME": "b"}, adapters=[b_echo]) as b,
        aiohttp.ClientSession() as http,
    ):
        a_echo.gateway, b_echo.gateway = a.gateway, b.gateway
        for url, user in ((a.url, "u1"), (a.url, "u2"), (b.url, "u3")):
            async with http.post(f"{url}/echo/{user}", data="/help") as response:
                assert response.status == 200
        pages = {"a": await scrape(a.url), "b": await scrape(b.url)}
    for worker, page in pages.items():
        assert {s.labels["worker"] for f in text_string_to_metric_families(page)
                for s in f.samples} == {worker}  # fmt: skip
    assert sample(pages["a"], "awardbot_updates_received_total", channel="echo") == 2
    assert sample(pages["b"], "awardbot_updates_received_total", channel="echo") == 1
    series_a, series_b = _series(pages["a"]), _series(pages["b"])
    assert not series_a.keys() & series_b.keys()  # Prometheus keeps both; none overwrites
    # what `sum without (worker) (awardbot_updates_received_total)` shows
    received = [
        v
        for (name, labels), v in {**series_a, **series_b}.items()
        if name == "awardbot_updates_received_total" and ("channel", "echo") in labels
    ]
    assert sum(received) == 3
    assert families(pages["a"]) == families(pages["b"])  # the same names on every worker


async def test_the_worker_label_defaults_to_host_and_process(store: Store) -> None:
    async with serving(store) as server:
        page = await scrape(server.url)
    assert server.metrics.worker == f"{socket.gethostname()}:{os.getpid()}"
    depth = samples(page, "awardbot_outbox_depth")
    assert [s.labels for s in depth] == [{"worker": server.metrics.worker}]


async def test_two_serve_processes_are_each_scraped_with_their_own_worker_label(
    tmp_path: Path,
) -> None:
    """Two real `awardbot serve` child processes on one PostgreSQL database behind one bot."""
    key = Sealer.new_key()
    with own_database() as url:
        Store(url, sealer=Sealer([key])).close()  # migrated: the workers find the schema
        async with (
            FakeTelegram() as fake,
            workers_of(fake, database=url, key=key, workdir=tmp_path) as start,
        ):
            a = await start("a", AWARDBOT_WORKER_NAME="web-1:a")
            b = await start("b", AWARDBOT_WORKER_NAME="web-1:b")
            for worker, chats in ((a, (7001, 7002)), (b, (7003,))):
                fake.webhook = {"url": f"{worker.url}/telegram", "secret_token": WEBHOOK_SECRET}
                for chat in chats:
                    assert await fake.post_webhook(fake.text_update(chat, "/start")) == 200
            async with aiohttp.ClientSession() as http:
                pages = {}
                for worker in (a, b):
                    async with http.get(f"{worker.url}/metrics") as response:
                        pages[worker.name] = await response.text()
    got = {
        name: {
            s.labels["worker"]: s.value
            for s in samples(page, "awardbot_updates_received_total")
            if s.labels["channel"] == "telegram"
        }
        for name, page in pages.items()
    }
    assert got == {"a": {"web-1:a": 2}, "b": {"web-1:b": 1}}
    for name, page in pages.items():
        label = f"web-1:{name}"
        timed = [
            (s.labels["worker"], s.labels["kind"], s.value)
            for s in samples(page, "awardbot_step_seconds_count")
            if s.labels["channel"] == "telegram"
        ]
        assert timed == [(label, "command", got[name][label])]
        assert (
            sample(page, "awardbot_webhook_seconds_count", channel="telegram")
            == (got[name][label])
        )
