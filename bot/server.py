"""`awardbot serve`: every configured channel in one aiohttp process.

Routes: `GET /healthz` (database and scheduler state, 503 when either is down), `GET /metrics`
(Prometheus text), `GET /files/<token>` (the signed download links WeChat officials get for
attachments, `handlers.files`), and each channel's webhook routes (`/telegram`, `/wechat`,
`/wecom`). Request bodies are capped (AWARDBOT_MAX_REQUEST_BYTES, 256 KiB: webhooks are small;
aiohttp answers 413 before reading more, so a 1 MB body is refused unread).

An APScheduler `AsyncIOScheduler` runs the outbox dispatcher every few seconds (on a worker
thread: the store is synchronous), the reminder ticker every AWARDBOT_REMINDER_TICK_SECONDS (it
hands due reminders to the outbox; with several workers on one PostgreSQL only the one holding
the advisory lock does, notifications.ticker), prunes old delivery ids hourly, and at 03:30
deletes the personal data past retention (issue 11, storage.privacy; the ticker's leader only).

Graceful shutdown (SIGTERM or SIGINT), in this order, so nothing a user sent is lost:
1. the scheduler stops starting jobs;
2. the HTTP server stops accepting and lets the requests in flight finish;
3. the gateway drains: steps still running, WeChat's slow answers, the dispatch round in flight;
4. the channels stop (polling ends, SDK sessions close);
5. the dispatcher gives back what it claimed and did not send (pending again, for the next
   worker), then the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.channels import attachments_for, build_adapters, file_links
from bot.exports import document_worker
from bot.runtime import Runtime
from bot.settings import Settings
from handlers.base import (
    ChannelAdapter,
    Gateway,
    Metrics,
    Unavailable,
    track_outcome,
    untrack_outcome,
)
from handlers.files import file_routes
from notifications.outbox import Dispatcher
from notifications.senders import Sender
from notifications.ticker import Ticker
from storage import outbox
from storage.channels import prune_deliveries, prune_pushes
from storage.invites import bound_count
from storage.privacy import purge_due
from storage.store import Store

log = logging.getLogger(__name__)

DELIVERIES_KEPT = dt.timedelta(days=2)  # platforms stop retrying within a day
NONCES_KEPT = dt.timedelta(hours=2)  # longer than AWARDBOT_PUSH_MAX_AGE_SECONDS can be
# The text format every Prometheus reads (prometheus_client's "latest" is 1.0.0, for UTF-8 names).
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AdapterFactory(Protocol):
    """Builds the channels from settings (`bot.channels.build_adapters`; tests pass their own
    to tune what settings do not cover, such as Telegram's flood limits)."""

    def __call__(
        self,
        settings: Settings,
        gateway: Gateway,
        store: Store,
        *,
        clock: Callable[[], dt.datetime],
    ) -> list[ChannelAdapter]: ...


class ListenError(Exception):
    """The address cannot be listened on (port taken, address not this machine's)."""


class ChannelStartError(Exception):
    """A configured channel could not start (platform unreachable, token refused)."""


class Server:
    """The HTTP app, the channels, the gateway and the scheduler of one `serve` process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        runtime: Runtime,
        *,
        clock: Callable[[], dt.datetime],
        adapters: list[ChannelAdapter] | AdapterFactory | None = None,
        max_request_bytes: int | None = None,
        dispatch_every: float = 2.0,
        drain_seconds: float = 30.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.clock = clock
        self.metrics = Metrics(settings.worker_name)
        self.gateway = Gateway(runtime, self.metrics)
        factory = build_adapters if adapters is None else adapters
        self.adapters = (
            factory(settings, self.gateway, store, clock=clock)
            if callable(factory)
            else list(factory)
        )
        self.max_request_bytes = max_request_bytes or settings.max_request_bytes
        self.dispatch_every = dispatch_every
        self.drain_seconds = drain_seconds
        self.worker_id = f"serve-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        senders: dict[str, Sender] = {}
        for adapter in self.adapters:
            sender = adapter.sender()
            if sender is not None:
                senders[sender.channel] = sender
        self.dispatcher = (
            Dispatcher(
                store,
                senders,
                clock=lambda: clock().astimezone(dt.UTC),
                worker_id=self.worker_id,
            )
            if senders
            else None
        )
        self.ticker = (
            Ticker(store, runtime.planning, clock=clock) if runtime.planning is not None else None
        )
        # Documents (/documents, /quota): every worker renders; a job is claimed by one.
        self.documents = document_worker(runtime, self.worker_id)
        self.scheduler = AsyncIOScheduler(timezone=settings.timezone)
        self._channel_names = {adapter.channel for adapter in self.adapters}
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ----- the app --------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.max_request_bytes, middlewares=[self._errors_middleware]
        )
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        links = file_links(self.settings, self.store, clock=self.clock)
        attachments = attachments_for(self.settings, self.store)
        app.router.add_routes(file_routes(links, attachments, self.gateway))
        for adapter in self.adapters:
            app.router.add_routes(list(adapter.routes()))
        return app

    @web.middleware
    async def _errors_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Every request counted by channel and outcome; the store down is a 503 (the platform
        retries), anything else unexpected a 500 logged without the body."""
        channel = request.path.strip("/").split("/")[0] or "http"
        holder, token = track_outcome()
        status = 500
        started = time.perf_counter()
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Unavailable:
            self.metrics.inc("awardbot_errors_total", channel=channel, kind="store_unavailable")
            holder.setdefault("outcome", "unavailable")
            status = 503
            return web.Response(status=503, text="temporarily unavailable, retry")
        except Exception as exc:  # noqa: BLE001 - a 500, counted and logged without the body
            self.metrics.inc("awardbot_errors_total", channel=channel, kind="unhandled")
            log.error("%s %s failed: %s", request.method, request.path, type(exc).__name__)
            holder["outcome"], holder["reason"] = "error", type(exc).__name__
            return web.Response(status=500, text="internal error")
        finally:
            untrack_outcome(token)
            if channel in self._channel_names:
                self.metrics.observe_webhook(channel, time.perf_counter() - started)
                outcome, reason = _outcome_of(status, holder)
                self.metrics.inc(
                    "awardbot_requests_total", channel=channel, outcome=outcome, reason=reason
                )
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        database = "ok"
        try:
            await self.gateway.run(self._ping)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            database = f"error: {type(exc).__name__}"
        scheduler = "running" if self.scheduler.running else "stopped"
        channels = {adapter.channel: "on" for adapter in self.adapters}
        for line in self.settings.off:
            name, _, why = line.partition(": ")
            channels[name] = why
        healthy = database == "ok" and scheduler == "running" and not self.gateway.closing
        body = {
            "status": "ok" if healthy else "unavailable",
            "database": database,
            "scheduler": scheduler,
            "jobs": [job.id for job in self.scheduler.get_jobs()]
            if self.scheduler.running
            else [],
            "channels": channels,
            "in_flight": self.gateway.busy,
            # Whether this worker runs the reminder ticker (one leader per database).
            "reminders": "off"
            if self.ticker is None
            else ("leader" if self.ticker.leading else "standby"),
        }
        if self.settings.now is not None:  # the demo clock: say so wherever it runs
            body["clock"] = f"demo: started at {self.settings.now.isoformat()}"
        return web.json_response(body, status=200 if healthy else 503)

    def _ping(self) -> None:
        import sqlalchemy as sa

        with self.store.reading() as conn:
            conn.execute(sa.text("SELECT 1"))

    async def metrics_page(self, request: web.Request) -> web.Response:
        try:
            depth: float = await self.gateway.run(outbox.depth, self.store)
        except Exception:  # noqa: BLE001 - the page still answers; NaN says unknown
            depth = float("nan")
        gauges = {
            "awardbot_outbox_depth": ("Notifications waiting to be sent.", depth),
            "awardbot_in_flight": ("Steps and background tasks running.", self.gateway.busy),
        }
        # Off the event loop: the page takes milliseconds to write (prometheus_client, ~300 lines).
        page = (await asyncio.to_thread(self.metrics.render, gauges)).encode()
        return web.Response(body=page, headers={"Content-Type": METRICS_TYPE})

    # ----- life cycle -----------------------------------------------------------------------

    async def start(self, host: str, port: int) -> str:
        """Listen, start the channels and the scheduler; returns the base URL."""
        self._runner = web.AppRunner(self.app, shutdown_timeout=self.drain_seconds)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        started: list[ChannelAdapter] = []
        try:
            for adapter in self.adapters:
                try:
                    await adapter.start()
                except Exception as exc:
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    raise ChannelStartError(f"{adapter.channel}: cannot start: {reason}") from exc
                started.append(adapter)
        except BaseException:
            for adapter in reversed(started):
                await adapter.stop()
            await self._runner.cleanup()
            self._runner = None
            self.gateway.shutdown()
            raise
        if self.dispatcher is not None:
            self.scheduler.add_job(
                self._dispatch,
                "interval",
                seconds=self.dispatch_every,
                id="outbox",
                max_instances=1,
                coalesce=True,
                next_run_time=dt.datetime.now(self.settings.timezone),
            )
        if self.ticker is not None:
            self.scheduler.add_job(
                self._tick,
                "interval",
                seconds=self.settings.reminder_tick_seconds,
                id="reminders",
                max_instances=1,
                coalesce=True,
                next_run_time=dt.datetime.now(self.settings.timezone),
            )
        self.scheduler.add_job(
            self._render_documents,
            "interval",
            seconds=self.settings.document_tick_seconds,
            id="documents",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            self._prune, "interval", hours=1, id="prune-deliveries", max_instances=1
        )
        # Personal data past retention (issue 11), nightly, on the reminder ticker's leader.
        self.scheduler.add_job(
            self._purge, "cron", hour=3, minute=30, id="privacy-purge", max_instances=1
        )
        self.scheduler.start()
        return self.url

    async def _dispatch(self) -> None:
        if self.dispatcher is None or self.gateway.closing:
            return
        # Notices go out from the ticker's leader only (one sender paces them against the
        # platform's limits); every worker sends the replies of steps whose worker died.
        leading = self.ticker is None or self.ticker.leading or self.store.dialect == "sqlite"
        self.dispatcher.kinds = None if leading else (outbox.REPLY_KIND,)
        try:
            while True:
                report = await self.gateway.run(
                    self.dispatcher.run_once, step=("outbox", "dispatch")
                )
                if report.quarantined:
                    # Rows whose text cannot be opened (a retired key?): failed, not sent.
                    self.metrics.inc("awardbot_outbox_quarantined_total", report.quarantined)
                if not report.total or self.gateway.closing:
                    break
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            self.metrics.inc("awardbot_errors_total", channel="outbox", kind="dispatch")
            log.error("outbox round failed: %s", type(exc).__name__)

    async def _tick(self) -> None:
        if self.ticker is None or self.gateway.closing:
            return
        ticker = self.ticker
        try:
            report = await self.gateway.run(ticker.tick, step=("reminders", "tick"))
        except Exception as exc:  # noqa: BLE001 - the next tick tries again
            self.metrics.inc("awardbot_errors_total", channel="reminders", kind="tick")
            log.error("reminder tick failed: %s", type(exc).__name__)
            return
        if report.handed.sent:
            self.metrics.inc("awardbot_reminders_sent_total", report.handed.sent)
        if report.handed.skipped:
            self.metrics.inc("awardbot_reminders_skipped_total", report.handed.skipped)
        if report.handed.sent and self.dispatcher is not None and self.scheduler.running:
            # What was just handed over goes out now, not next round: the outbox job is run at
            # once (never a second dispatch loop beside it: one run_once at a time).
            self.scheduler.modify_job(
                "outbox", next_run_time=dt.datetime.now(self.settings.timezone)
            )

    async def _render_documents(self) -> None:
        if self.gateway.closing:
            return
        try:
            ran = await self.gateway.run(self.documents.run_due, step=("documents", "render"))
        except Exception as exc:  # noqa: BLE001 - the job stays claimed until its lease ends
            self.metrics.inc("awardbot_errors_total", channel="documents", kind="render")
            log.error("document round failed: %s", type(exc).__name__)
            return
        if ran:
            self.metrics.inc("awardbot_document_jobs_total", ran)
            if self.dispatcher is not None and self.scheduler.running:
                self.scheduler.modify_job(
                    "outbox", next_run_time=dt.datetime.now(self.settings.timezone)
                )

    async def _prune(self) -> None:
        now = self.clock().astimezone(dt.UTC)
        await self.gateway.run(lambda: prune_deliveries(self.store, before=now - DELIVERIES_KEPT))
        # A nonce older than any timestamp still accepted can never be replayed.
        await self.gateway.run(lambda: prune_pushes(self.store, before=now - NONCES_KEPT))

    async def _purge(self) -> None:
        """Delete what the retention no longer keeps (storage.privacy.purge_due). Only the
        worker that leads the ticker (storage.leader) does: its lock, not a second one."""
        if self.gateway.closing or (self.ticker is not None and not self.ticker.leading):
            return
        now = self.clock()
        try:
            reports = await self.gateway.run(
                lambda: purge_due(
                    self.store,
                    self.runtime.assistant.catalog,
                    days=self.settings.retention_days,
                    now=now,
                    today=now.date(),
                    files=self.runtime.files,
                )
            )
        except Exception as exc:  # noqa: BLE001 - tomorrow's round tries again
            self.metrics.inc("awardbot_errors_total", channel="privacy", kind="purge")
            log.error("privacy purge failed: %s", type(exc).__name__)
            return
        for report in reports:
            if report.deleted:
                log.info("privacy purge of %s: %s", report.campaign, dict(report.counts.items()))

    async def stop(self) -> None:
        """Graceful shutdown (see the module docstring); safe to call twice."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.gateway.closing = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if not await self.gateway.drain(self.drain_seconds):
            log.warning(
                "shutdown: %d steps still running after %ss", self.gateway.busy, self.drain_seconds
            )
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                log.error("stopping %s failed: %s", adapter.channel, type(exc).__name__)
        # A job the scheduler's shutdown cancelled may still run on a gateway thread (a tick
        # taking the leader's session, a document job): wait for those threads before the
        # leader's session and the claims are given back, or a late one leaks its connection.
        self.gateway.shutdown()
        if self.ticker is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, self.ticker.close)
        if self.dispatcher is not None:
            released = await asyncio.get_running_loop().run_in_executor(
                None, self.dispatcher.release
            )
            if released:
                log.info("shutdown: %d claimed notifications given back", released)
        self.gateway.shutdown()


_STATUS_OUTCOMES = {
    400: ("refused", "malformed"),
    401: ("refused", "signature"),
    403: ("refused", "signature"),
    404: ("refused", "not_found"),
    405: ("refused", "method"),
    413: ("refused", "too_large"),
    503: ("unavailable", ""),
}


def _outcome_of(status: int, noted: dict[str, str]) -> tuple[str, str]:
    """What a request came to: what the adapter noted, else what its status says."""
    if "outcome" in noted:
        if status >= 400 and noted["outcome"] in ("accepted", "duplicate"):
            return _STATUS_OUTCOMES.get(status, ("error", str(status)))
        return noted["outcome"], noted.get("reason", "")
    if status < 400:
        return "ignored", ""  # answered without a step: events, notes, URL checks
    return _STATUS_OUTCOMES.get(status, ("error", str(status)))


def describe(settings: Settings, server: Server) -> list[str]:
    """What `serve` prints at start: where it listens, which channels are on, and why not."""
    lines = [f"awardbot serve: listening on {server.url}  (GET /healthz, GET /metrics)"]
    for adapter in server.adapters:
        routes = ", ".join(
            sorted({f"{r.method} {r.path}" for r in adapter.routes()})  # type: ignore[attr-defined]
        )
        lines.append(f"{adapter.channel}: on" + (f" ({routes})" if routes else " (polling)"))
    lines.extend(settings.off)
    lines.extend(warnings(settings, server.store))
    if not server.adapters:
        lines.append(
            "no chat channel configured: only /healthz and /metrics are served;"
            " talk to the bot with `awardbot console`, or set a channel in .env"
        )
    return lines


PLAINTEXT_WECHAT = (
    "warning: wechat: 明文模式（未设 AWARDBOT_WECHAT_AES_KEY）下已有 {n} 位官员绑定："
    "推送仅凭查询串签名，任何见过一次查询串的人都能冒充他们；请改用安全模式"
    " (plaintext mode with {n} bound official(s): pushes are authenticated only by the"
    " query-string signature, which covers no part of the body; set AWARDBOT_WECHAT_AES_KEY"
    " and switch the account to safe mode)"
)


def warnings(settings: Settings, store: Store) -> list[str]:
    """What `serve` warns about at start: settings that work but are unsafe as used."""
    if settings.wechat is None or settings.wechat.aes_key:
        return []
    officials = bound_count(store, "wechat", "official")
    return [PLAINTEXT_WECHAT.format(n=officials)] if officials else []


async def serve(
    settings: Settings,
    store: Store,
    runtime: Runtime,
    *,
    host: str,
    port: int,
    clock: Callable[[], dt.datetime],
    announce: Callable[[str], None] = print,
) -> None:
    """Run until SIGTERM / SIGINT, then shut down gracefully."""
    server = Server(settings, store, runtime, clock=clock)
    await server.start(host, port)
    for line in describe(settings, server):
        announce(line)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        announce("awardbot serve: shutting down (finishing what is in flight)")
        await server.stop()
        announce("awardbot serve: stopped")
