"""`awardbot serve`: health, metrics, request limits, graceful shutdown, and the process itself."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from support.outage import FailingSteps
from support.process import awardbot_env
from support.scrape import families, sample, samples
from support.serving import serving

from conversations.keys import ConversationKey
from handlers.base import Gateway
from notifications.senders import DeliveryError, Sender
from storage import outbox
from storage.store import Store

# How long a test waits for the server's own jobs. Under pytest-xdist on two cores a job can wait
# seconds for the CPU (CI once saw a dispatch not start within 5 s, after which shutdown took its
# claim back); the checks after each wait still fail if the thing never happens.
PATIENCE = 30.0


async def until(condition: Callable[[], bool], within: float = PATIENCE) -> None:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a store
        await asyncio.sleep(0.05)


class EchoAdapter:
    """A minimal channel: POST /echo/{user} runs one step and answers the replies' texts.

    It stands for a chat platform's webhook in tests of the server itself (the real channels
    have their own tests against fake platform servers).
    """

    channel = "echo"

    def __init__(self, sender: Sender | None = None, pause: float = 0.0) -> None:
        self.gateway: Gateway | None = None
        self._sender = sender
        self.pause = pause
        self.entered = asyncio.Event()
        self.stopped = False

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        return [web.post("/echo/{user}", self.post)]

    async def post(self, request: web.Request) -> web.Response:
        assert self.gateway is not None
        text = await request.text()
        self.entered.set()
        await asyncio.sleep(self.pause)
        replies = await self.gateway.handle(
            "echo", request.match_info["user"], text, delivery_id=request.headers.get("X-Id")
        )
        if replies is None:
            return web.Response(text="duplicate")
        return web.Response(text="\n\n".join(r.text for r in replies))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def sender(self) -> Sender | None:
        return self._sender


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def test_healthz_reports_database_scheduler_and_why_channels_are_off(store: Store) -> None:
    async with serving(store) as server:
        status, body = await get(f"{server.url}/healthz")
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert health["scheduler"] == "running"
    assert health["channels"] == {
        "telegram": "off (AWARDBOT_TELEGRAM_TOKEN is not set)",
        "wechat": "off (AWARDBOT_WECHAT_APP_ID is not set)",
        "wecom": "off (AWARDBOT_WECOM_CORP_ID is not set)",
    }
    assert "reminders" in health["jobs"]


async def test_healthz_says_whether_this_worker_runs_the_reminder_ticker(store: Store) -> None:
    async with serving(store) as server:
        deadline = time.monotonic() + PATIENCE  # its first tick runs at start
        while time.monotonic() < deadline:
            status, body = await get(f"{server.url}/healthz")
            if json.loads(body)["reminders"] == "leader":
                break
            await asyncio.sleep(0.05)
    assert json.loads(body)["reminders"] == "leader"  # alone on its database, it leads


async def test_healthz_is_503_when_the_database_is_gone(store: Store) -> None:
    async with serving(store) as server:
        store.close()  # pool disposed; a file-less database URL cannot reconnect
        server.store = _BrokenStore()  # type: ignore[assignment]
        status, body = await get(f"{server.url}/healthz")
    assert status == 503
    assert json.loads(body)["database"].startswith("error")


class _BrokenStore:
    def reading(self) -> object:
        raise OSError("database unreachable")


async def test_metrics_count_updates_duplicates_and_outbox_depth(store: Store) -> None:
    adapter = EchoAdapter()
    async with serving(store, adapters=[adapter]) as server:
        adapter.gateway = server.gateway
        async with aiohttp.ClientSession() as http:
            for delivery in ("1", "1", "2"):
                async with http.post(
                    f"{server.url}/echo/u1", data="/help", headers={"X-Id": delivery}
                ) as response:
                    assert response.status == 200
        with store.transaction() as conn:
            outbox.enqueue(
                conn,
                store.sealer,
                [outbox.OutboxMessage("k1", "console", "someone", "您的推荐已受理")],
                now=datetime(2026, 11, 27, tzinfo=UTC),
            )
        status, page = await get(f"{server.url}/metrics")
    assert status == 200
    assert sample(page, "awardbot_updates_received_total", channel="echo") == 3
    assert sample(page, "awardbot_updates_duplicate_total", channel="echo") == 1
    assert sample(page, "awardbot_outbox_depth") == 1
    assert families(page)["awardbot_outbox_depth"] == "gauge"


async def test_every_request_is_counted_by_outcome(store: Store) -> None:
    # Issue 8: awardbot_updates_received_total counted only updates that reached the gateway
    # (861 of 1320 posts in one run); refused and failed requests went uncounted.
    adapter = EchoAdapter()
    async with serving(store, adapters=[adapter], max_request_bytes=2048) as server:
        adapter.gateway = server.gateway
        async with aiohttp.ClientSession() as http:
            for delivery in ("1", "1", "2"):
                async with http.post(
                    f"{server.url}/echo/u1", data="/help", headers={"X-Id": delivery}
                ) as response:
                    assert response.status == 200
            async with http.post(f"{server.url}/echo/u1", data=b"x" * 4096) as response:
                assert response.status == 413
            server.gateway.steps = FailingSteps()  # the store away
            async with http.post(
                f"{server.url}/echo/u1", data="/help", headers={"X-Id": "3"}
            ) as response:
                assert response.status == 503  # the platform retries; nothing was recorded
        status, page = await get(f"{server.url}/metrics")
    assert status == 200
    counted = {
        (found.labels["outcome"], found.labels["reason"]): int(found.value)
        for found in samples(page, "awardbot_requests_total")
        if found.labels["channel"] == "echo"
    }
    assert counted == {
        ("accepted", ""): 2,
        ("duplicate", ""): 1,
        ("refused", "too_large"): 1,
        ("unavailable", ""): 1,
    }


def test_serve_warns_when_plaintext_wechat_has_bound_officials(store: Store) -> None:
    from support.console_harness import FIXED_NOW, regions
    from support.serving import settings_for

    from bot.server import warnings
    from conversations.identity import Level, Role
    from storage import invites
    from storage.tables import users

    plaintext = settings_for(
        {
            "AWARDBOT_WECHAT_APP_ID": "wx1",
            "AWARDBOT_WECHAT_APP_SECRET": "s",
            "AWARDBOT_WECHAT_TOKEN": "t",
        }
    )
    assert warnings(plaintext, store) == []  # nobody bound yet: nothing to impersonate
    with store.transaction() as conn:
        issued = invites.create_invite(
            conn,
            role=Role.OFFICIAL,
            region=regions().get("220100"),
            level=Level.CITY,
            now=FIXED_NOW,
            ttl=timedelta(days=7),
        )
        user_id = conn.execute(
            sa.insert(users)
            .values(channel="wechat", external_id="o-official", created_at=FIXED_NOW)
            .returning(users.c.id)
        ).scalar_one()
        invites.bind(conn, user_id, issued.code, now=FIXED_NOW)
    [line] = warnings(plaintext, store)
    assert line.startswith("warning: wechat: 明文模式")
    assert "1 bound official" in line
    safe = settings_for(
        {
            "AWARDBOT_WECHAT_APP_ID": "wx1",
            "AWARDBOT_WECHAT_APP_SECRET": "s",
            "AWARDBOT_WECHAT_TOKEN": "t",
            "AWARDBOT_WECHAT_AES_KEY": "a" * 43,
        }
    )
    assert warnings(safe, store) == []


async def test_a_body_over_the_limit_is_refused_unread(store: Store) -> None:
    adapter = EchoAdapter()
    async with serving(store, adapters=[adapter], max_request_bytes=1024) as server:
        adapter.gateway = server.gateway
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/echo/u1", data="x" * 2048) as response:
                assert response.status == 413
            async with http.post(f"{server.url}/echo/u1", data="/help") as response:
                assert response.status == 200
    with store.conversation(ConversationKey("echo", "u1")) as tx:
        assert tx.state is not None  # only the small one ran a step


async def test_shutdown_finishes_the_update_in_flight_and_saves_it(store: Store) -> None:
    adapter = EchoAdapter(pause=0.5)
    async with serving(store, adapters=[adapter]) as server:
        adapter.gateway = server.gateway
        http = aiohttp.ClientSession()
        try:
            request = asyncio.ensure_future(http.post(f"{server.url}/echo/u1", data="/help"))
            await asyncio.wait_for(adapter.entered.wait(), 5)
            stopping = asyncio.ensure_future(server.stop())  # mid-request
            response = await request
            assert response.status == 200
            assert "/bind" in await response.text()  # the help text, answered before stopping
            await stopping
        finally:
            await http.close()
    assert adapter.stopped
    with store.conversation(ConversationKey("echo", "u1")) as tx:
        assert tx.state is not None


class SlowSender:
    """Blocks in send until told to go on; records what it sent."""

    channel = "echo"
    idempotent = False

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
        time.sleep(0.3)
        self.sent.append(idempotency_key)


async def test_notifications_are_dispatched_and_unsent_claims_given_back_at_shutdown(
    store: Store,
) -> None:
    sender = SlowSender()
    adapter = EchoAdapter(sender=sender)
    async with serving(store, adapters=[adapter], dispatch_every=0.05) as server:
        adapter.gateway = server.gateway
        with store.transaction() as conn:
            outbox.enqueue(
                conn,
                store.sealer,
                [outbox.OutboxMessage("n1", "echo", "u1", "已受理")],
                now=datetime(2020, 1, 1, tzinfo=UTC),
            )
        # Sent, then marked delivered in its own commit: wait for the mark, not the send.
        await until(lambda: getattr(outbox.find(store, "n1"), "delivered_at", None) is not None)
        assert sender.sent == ["n1"]
        found = outbox.find(store, "n1")
        assert found is not None
        assert found.status == outbox.OutboxStatus.DELIVERED
        # A claim left behind (as if the round was cut short) goes back at shutdown.
        with store.transaction() as conn:
            outbox.enqueue(
                conn,
                store.sealer,
                [outbox.OutboxMessage("n2", "echo", "u1", "请补充材料")],
                now=datetime(2999, 1, 1, tzinfo=UTC),  # not due: the dispatcher leaves it
            )
        claimed = outbox.claim(
            store,
            server.worker_id,
            now=datetime(2999, 1, 2, tzinfo=UTC),
            lease=timedelta(minutes=5),
            limit=1,
        )
        assert [m.idempotency_key for m in claimed] == ["n2"]
    left = outbox.find(store, "n2")
    assert left is not None
    assert (left.status, left.attempts) == (outbox.OutboxStatus.PENDING, 0)


async def test_a_failing_sender_is_retried_not_lost(store: Store) -> None:
    class Refusing:
        channel = "echo"
        idempotent = False

        def send(self, recipient_id: str, text: str, idempotency_key: str) -> None:
            raise DeliveryError("平台繁忙 (platform busy)", retryable=True)

    adapter = EchoAdapter(sender=Refusing())
    async with serving(store, adapters=[adapter], dispatch_every=0.05) as server:
        adapter.gateway = server.gateway
        with store.transaction() as conn:
            outbox.enqueue(
                conn,
                store.sealer,
                [outbox.OutboxMessage("r1", "echo", "u1", "提醒")],
                now=datetime(2020, 1, 1, tzinfo=UTC),
            )
        await until(lambda: bool((found := outbox.find(store, "r1")) and found.attempts))
    found = outbox.find(store, "r1")
    assert found is not None
    assert found.status == outbox.OutboxStatus.PENDING
    assert found.last_error == "平台繁忙 (platform busy)"


# ----- the process ---------------------------------------------------------------------------


def test_serve_with_no_channel_says_which_are_off_and_why_then_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    env = awardbot_env(tmp_path / "bot.db")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        url = re.search(r"listening on (http://\S+)", lines[0])
        assert url, lines
        assert lines[1:4] == [
            "telegram: off (AWARDBOT_TELEGRAM_TOKEN is not set)\n",
            "wechat: off (AWARDBOT_WECHAT_APP_ID is not set)\n",
            "wecom: off (AWARDBOT_WECOM_CORP_ID is not set)\n",
        ]
        assert "no chat channel configured" in lines[4]
        with urllib.request.urlopen(f"{url.group(1)}/healthz", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "awardbot serve: stopped" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AWARDBOT_TELEGRAM_TOKEN": "123:abc", "AWARDBOT_TELEGRAM_MODE": "webhook"},
            "AWARDBOT_TELEGRAM_WEBHOOK_SECRET: required in webhook mode",
        ),
        ({"AWARDBOT_TELEGRAM_TOKEN": "nonsense"}, "AWARDBOT_TELEGRAM_TOKEN: expected"),
        ({"AWARDBOT_WECHAT_APP_ID": "wx1"}, "AWARDBOT_WECHAT_APP_SECRET: required"),
        (
            {"AWARDBOT_WECOM_CORP_ID": "ww1", "AWARDBOT_WECOM_SECRET": "s"},
            "AWARDBOT_WECOM_AGENT_ID: required",
        ),
    ],
)
def test_bad_channel_settings_are_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env=awardbot_env(tmp_path / "bot.db", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=awardbot_env(tmp_path / "bot.db"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("Address already in use") or "cannot listen" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_channel_that_cannot_reach_its_platform_stops_serve_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = awardbot_env(
        tmp_path / "bot.db",
        AWARDBOT_TELEGRAM_TOKEN="123:abc",
        AWARDBOT_TELEGRAM_MODE="polling",
        AWARDBOT_TELEGRAM_API_BASE=f"http://127.0.0.1:{port}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("awardbot: telegram: cannot start:"), result.stderr
    assert result.stderr.count("\n") == 1
    assert "123:abc" not in result.stderr  # the token is a credential
