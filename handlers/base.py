"""What every chat adapter shares: the steps off the event loop, dedupe, metrics, text helpers.

Adapters are thin (DESIGN §5): they turn a platform update into `(conversation key, text or
upload, delivery id)`, hand it to `Gateway.handle`, and render the replies for their platform.
The gateway runs the synchronous runtime step (one database transaction) in a worker thread, so
the aiohttp event loop keeps answering other users while a step waits on its lock; it counts
what the `/metrics` page shows, and knows what is in flight so a shutdown can wait for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from conversations.engine import FileOut, Option, Reply
from conversations.filing import Upload
from conversations.keys import ConversationKey
from notifications.senders import Sender

log = logging.getLogger(__name__)
T = TypeVar("T")

# No `<name>_created` series beside every counter and histogram: nothing here reads them, and
# they would double what each worker's scrape carries.
disable_created_metrics()  # type: ignore[no-untyped-call]

MAX_FILE = 20 * 1024 * 1024  # the largest attachment any channel accepts (Telegram's download cap)


class Unavailable(Exception):
    """The step could not run because the store is unreachable or busy; nothing was recorded.

    Webhooks answer 503 so the platform retries the same update later (issue 8); the
    `serve` middleware does so for any route this escapes from.
    """


@dataclass(frozen=True, slots=True)
class Repeat:
    """`Steps.handle_once` for a delivery taken before: the answer it got, if one was kept."""

    replies: tuple[Reply, ...] = ()


class Steps(Protocol):
    """The runtime as adapters see it (`bot.runtime.Runtime`); both raise Unavailable."""

    def open(self, key: ConversationKey) -> list[Reply]: ...

    def handle_once(
        self,
        key: ConversationKey,
        delivery_id: str | None,
        text: str,
        upload: Upload | None = None,
        *,
        keep_answer: bool = False,
        answers: str | None = None,
        sequence: int | None = None,
        store_replies: bool = False,
    ) -> list[Reply] | Repeat: ...


def dump_replies(replies: list[Reply]) -> str:
    """Replies as JSON (kept answers, stored replies); `load_replies` reads them back."""
    return json.dumps([dataclasses.asdict(reply) for reply in replies], ensure_ascii=False)


def load_replies(text: str) -> list[Reply]:
    def reply(data: dict[str, Any]) -> Reply:
        options = tuple(Option(**option) for option in data.pop("options", ()))
        files = tuple(FileOut(**f) for f in data.pop("files", ()))
        return Reply(**data, options=options, files=files)

    return [reply(item) for item in json.loads(text)]


def reply_key(channel: str, delivery_id: str) -> str:
    """The outbox key of the replies a delivery's step stored (`store_replies`); each reply is
    its own row, `reply_part(delivery_id, n)` under it."""
    return f"reply:{channel}:{delivery_id}"


def reply_part(delivery_id: str, index: int) -> str:
    """The delivery id of the `index`-th reply a step stored (zero-padded: rows sort in order)."""
    return f"{delivery_id}:{index:03d}"


class PushSeen(StrEnum):
    """What a `PushLedger` knows of a verified push's nonce."""

    NEW = "new"
    RETRY = "retry"  # the identical signed request again, soon: the platform retrying
    REPLAY = "replay"  # refuse: the nonce under another signature, or too late


class PushLedger(Protocol):
    """Nonces of verified WeChat/WeCom pushes, shared by every worker (the store keeps them)."""

    def seen(self, channel: str, nonce: str, signature: str, *, now: dt.datetime) -> PushSeen: ...


# ----- request outcomes, for /metrics ------------------------------------------------------

_OUTCOME: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "awardbot_outcome", default=None
)


def track_outcome() -> tuple[dict[str, str], contextvars.Token[dict[str, str] | None]]:
    """Start noting the outcome of the request being served (the `serve` middleware)."""
    holder: dict[str, str] = {}
    return holder, _OUTCOME.set(holder)


def untrack_outcome(token: contextvars.Token[dict[str, str] | None]) -> None:
    _OUTCOME.reset(token)


def note_outcome(outcome: str, reason: str = "") -> None:
    """What became of the request being served: accepted, duplicate, refused (with a reason),
    ignored, unavailable. The first note wins; tasks the request started share it."""
    holder = _OUTCOME.get()
    if holder is not None and "outcome" not in holder:
        holder["outcome"] = outcome
        holder["reason"] = reason


# Buckets for steps and webhook requests: a step is a few ms (one transaction), a slow one tens
# of ms; WeChat's passive answer is cut at 5 s, and anything past 10 s is a stuck lock.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# Every counter `/metrics` shows: name -> (help, labels besides `worker`).
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "awardbot_requests_total": (
        "Webhook requests, by channel, outcome (accepted, duplicate, ignored, refused,"
        " unavailable, error) and reason.",
        ("channel", "outcome", "reason"),
    ),
    "awardbot_updates_received_total": ("Platform updates received, by channel.", ("channel",)),
    "awardbot_updates_duplicate_total": ("Updates ignored as repeats, by channel.", ("channel",)),
    "awardbot_replies_sent_total": ("Messages sent to users, by channel.", ("channel",)),
    "awardbot_errors_total": ("Errors, by channel and kind.", ("channel", "kind")),
    "awardbot_outbox_quarantined_total": (
        "Notifications that could not be opened (sealed with a retired key), failed"
        " so the rest are delivered.",
        (),
    ),
    "awardbot_reminders_sent_total": ("Due reminders handed to the outbox.", ()),
    "awardbot_document_jobs_total": ("Document jobs (/documents, /quota) run.", ()),
    "awardbot_reminders_skipped_total": (
        "Due reminders not sent: deadline passed while down, turned off, empty digest.",
        (),
    ),
}


def default_worker() -> str:
    """The `worker` label when AWARDBOT_WORKER_NAME is not set: host and process, readable."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Metrics:
    """What `/metrics` shows, in a prometheus_client registry of this worker's own.

    One registry per `serve` process, every sample labelled `worker` (AWARDBOT_WORKER_NAME,
    default hostname:pid): each worker is scraped at its own address and Prometheus sums them
    (README, "Metrics"). Safe to bump from any thread (the steps' threads do).
    """

    def __init__(self, worker: str | None = None) -> None:
        self.worker = worker or default_worker()
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._counters = {
            name: Counter(name, help_, ("worker", *labels), registry=self.registry)
            for name, (help_, labels) in COUNTERS.items()
        }
        # Counters without labels of their own show 0 from the start, as they always did.
        for name, (_, labels) in COUNTERS.items():
            if not labels:
                self._counters[name].labels(worker=self.worker)
        self.step_seconds = Histogram(
            "awardbot_step_seconds",
            "Time a step took on its worker thread, by channel and kind: a user's step"
            " (command, text, button, upload, open) or a scheduled job's (outbox dispatch,"
            " reminders tick, documents render).",
            ("worker", "channel", "kind"),
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.webhook_seconds = Histogram(
            "awardbot_webhook_seconds",
            "Time a webhook request took through serve, from its arrival to its answer, by"
            " channel.",
            ("worker", "channel"),
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )

    # The labelled children are kept by their labels as the callers give them: prometheus_client's
    # `labels(**...)` checks and sorts them on every call (a few µs); a dict lookup does not.

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        key = (name, *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._counters[name].labels(worker=self.worker, **labels)
            self._children[key] = child
        child.inc(amount)

    def observe_step(self, channel: str, kind: str, seconds: float) -> None:
        key = ("step", channel, kind)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.step_seconds.labels(self.worker, channel, kind)
        child.observe(seconds)

    def observe_webhook(self, channel: str, seconds: float) -> None:
        key = ("webhook", channel)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.webhook_seconds.labels(self.worker, channel)
        child.observe(seconds)

    def value(self, name: str, **labels: str) -> int:
        """A counter's value (0 before its first count), e.g. for tests and benchmarks."""
        if name not in self._counters:
            raise KeyError(name)
        found = self.registry.get_sample_value(name, {"worker": self.worker, **labels})
        return int(found or 0)

    def render(self, gauges: dict[str, tuple[str, float]] | None = None) -> str:
        """The exposition text; `gauges` maps a name to (help, value) read at scrape time."""
        text = generate_latest(self.registry).decode()
        if gauges:
            text += generate_latest(_Gauges(self.worker, gauges)).decode()
        return text


class _Gauges(Collector):
    """Gauges read at scrape time (the outbox's depth, the steps in flight)."""

    def __init__(self, worker: str, gauges: dict[str, tuple[str, float]]) -> None:
        self._worker = worker
        self._gauges = gauges

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, (help_, value) in sorted(self._gauges.items()):
            family = GaugeMetricFamily(name, help_, labels=("worker",))
            family.add_metric((self._worker,), value)
            yield family


def step_kind(text: str, upload: Upload | None, answers: str | None) -> str:
    """The `kind` label of a user's step: an upload, a pressed button, a /command, or text."""
    if upload is not None:
        return "upload"
    if answers is not None:
        return "button"
    return "command" if text.startswith("/") else "text"


class Gateway:
    """Runs steps for the adapters; one per process, shared by every channel."""

    def __init__(
        self, steps: Steps, metrics: Metrics | None = None, executor: Executor | None = None
    ) -> None:
        self.steps = steps
        self.metrics = metrics or Metrics()
        self._executor = executor or ThreadPoolExecutor(8, thread_name_prefix="awardbot-step")
        # (channel, delivery id) running here -> its result, for a retry that arrives meanwhile
        self._in_flight: dict[tuple[str, str], asyncio.Future[list[Reply] | Repeat]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.closing = False  # set at shutdown: adapters refuse new work (503, retried later)

    async def handle(
        self,
        channel: str,
        user_id: str,
        text: str,
        upload: Upload | None = None,
        *,
        delivery_id: str | None = None,
        replay: bool = False,
        answers: str | None = None,
        sequence: int | None = None,
        store_replies: bool = False,
    ) -> list[Reply] | Repeat | None:
        """One inbound message; raises Unavailable when the store is down (nothing recorded).

        `answers` is the question a pressed button belonged to (`Reply.asks`); `sequence` the
        platform's order of the update (Telegram update_id: one older than an update already
        applied is not applied over it); with `store_replies` the replies are stored with the
        step (the outbox, key `reply_key(channel, delivery_id)`) for the channel to deliver.

        A delivery seen before answers None — or, with `replay` (channels whose answer is the
        HTTP response: WeChat, WeCom), a `Repeat` carrying the answer the first one got, so a
        platform retry whose answer was lost still shows the user the question (and the
        caller knows not to repeat the first one's side effects).
        """
        self.metrics.inc("awardbot_updates_received_total", channel=channel)
        marker = (channel, delivery_id) if delivery_id is not None else None
        running = self._in_flight.get(marker) if marker is not None else None
        if running is not None:
            self.metrics.inc("awardbot_updates_duplicate_total", channel=channel)
            note_outcome("duplicate")
            if not replay:
                return None  # a platform retry while the first is still running here
            try:
                first = await asyncio.shield(running)
            except Exception:  # noqa: BLE001 - the first one's request reports its failure
                return Repeat()
            return Repeat(tuple(first)) if isinstance(first, list) else first
        key = ConversationKey(channel, user_id)
        future: asyncio.Future[list[Reply] | Repeat] | None = None
        if marker is not None:
            future = asyncio.get_running_loop().create_future()
            self._in_flight[marker] = future
        try:
            result = await self.run(
                functools.partial(
                    self.steps.handle_once,
                    key,
                    delivery_id,
                    text,
                    upload,
                    keep_answer=replay,
                    answers=answers,
                    sequence=sequence,
                    store_replies=store_replies,
                ),
                step=(channel, step_kind(text, upload, answers)),
            )
        except BaseException as exc:
            if future is not None:
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
                    future.exception()  # retrieved: nobody may be waiting for it
            raise
        finally:
            if marker is not None:
                self._in_flight.pop(marker, None)
        if future is not None:
            future.set_result(result)
        if isinstance(result, Repeat):
            self.metrics.inc("awardbot_updates_duplicate_total", channel=channel)
            note_outcome("duplicate")
            return result if replay else None
        note_outcome("accepted")
        return result

    async def run(
        self, fn: Callable[..., T], *args: Any, step: tuple[str, str] | None = None
    ) -> T:
        """`fn(*args)` on a worker thread (blocking SDK calls too), counted as in flight;
        with `step=(channel, kind)` its time on the thread is observed in
        `awardbot_step_seconds` (failed steps too)."""
        self._enter()
        try:
            call = fn if step is None else functools.partial(self._timed, step, fn)
            return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)
        finally:
            self._leave()

    def _timed(self, step: tuple[str, str], fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.metrics.observe_step(*step, time.perf_counter() - started)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, channel: str) -> asyncio.Task[Any]:
        """Work that outlives the request (WeChat's slow answers); awaited at shutdown."""

        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:  # noqa: BLE001 - logged; the request already answered
                self.metrics.inc("awardbot_errors_total", channel=channel, kind="background")
                log.error("%s background task failed: %s", channel, type(exc).__name__)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        self._enter()
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._leave()

    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()

    @property
    def busy(self) -> int:
        """Steps and background tasks in flight."""
        return self._busy

    async def drain(self, seconds: float) -> bool:
        """Wait until nothing is in flight; False if `seconds` were not enough."""
        self.closing = True
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


class ChannelAdapter(Protocol):
    """One chat platform inside `awardbot serve` (see `bot.server`)."""

    channel: str

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        """Webhook routes this channel serves (may be none, e.g. Telegram polling)."""
        ...

    async def start(self) -> None:
        """After the HTTP server is up: start polling, fetch identity, etc."""
        ...

    async def stop(self) -> None:
        """Stop taking updates (polling) and close the platform client."""
        ...

    def sender(self) -> Sender | None:
        """The outbox sender for this channel, if it can send notifications."""
        ...


# ----- text ---------------------------------------------------------------------------------


def render_text(reply: Reply, *, numbered: bool = True, show_keys: bool = False) -> str:
    """One reply as plain text; its choices as numbered lines `1. …` (WeChat, console)."""
    lines = []
    if show_keys and reply.verdict:
        lines.append(f"[verdict] {reply.verdict}")
    lines.append(f"[{reply.key}] {reply.text}" if show_keys and reply.key else reply.text)
    if reply.hint:
        lines.append(reply.hint)
    if numbered:
        for number, option in enumerate(reply.options, start=1):
            suffix = f" [{option.value}]" if show_keys else ""
            lines.append(f"{number}. {option.label}{suffix}")
    return "\n".join(lines)


def cdata_safe(text: str) -> str:
    """Text for a CDATA section: wechatpy wraps reply text in CDATA without escaping it, so a
    "]]>" a user made us quote back would end the section and break the reply's XML."""
    return text.replace("]]>", "]]]]><![CDATA[>")


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` (never read past)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    data = bytearray()
    while chunk := await request.content.read(limit + 1 - len(data)):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """`text` in pieces of at most `limit` (by `measure`), cut at blank lines, then lines,
    then anywhere; nothing is dropped and no piece is empty."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if measure(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for block in _units(text):
        candidate = current + block
        if measure(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        while measure(block) > limit:
            cut = _longest_prefix(block, limit, measure)
            pieces.append(block[:cut])
            block = block[cut:]
        current = block
    if current:
        pieces.append(current)
    return [p.strip("\n") or p for p in pieces if p.strip()]


def _units(text: str) -> list[str]:
    """Lines with their newline; paragraphs stay whole where they fit."""
    return text.splitlines(keepends=True)


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> int:
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low
