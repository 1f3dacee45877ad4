"""Several `awardbot serve` workers on one database, as a deployment behind a load balancer runs
them: each a real child process with the Telegram channel in webhook mode against one fake Bot
API, its output read line by line with the moment each line came, and killable with SIGKILL.

    async with workers_of(fake, database=url, key=key, workdir=tmp_path) as start:
        a = await start("a", AWARDBOT_NOW="2022-11-02 08:29:40")
        a.first("ticker: this worker leads")      # monotonic time of that log line, or None
        await a.metric("awardbot_reminders_sent_total")
        a.kill()                                  # SIGKILL now; the moment it was sent

Every worker's output goes to `workdir/<name>.log` (kept for a failed test).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout
from fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "campaigns"
START_TIMEOUT = 60.0  # imports, migration, the channel's start
STOP_TIMEOUT = 40.0  # graceful stop: serve drains for up to 30 s
WEBHOOK_SECRET = "workers-test-secret"
_LISTENING = re.compile(r"listening on (http://\S+)")


def serve_env(
    fake: FakeTelegram, *, database: str, key: str, workdir: Path, **extra: str
) -> dict[str, str]:
    """The whole configuration of a worker: nothing from the caller's AWARDBOT_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWARDBOT_")}
    env.update(
        AWARDBOT_DATABASE_URL=database,
        AWARDBOT_SECRET_KEY=key,
        AWARDBOT_SECRET_KEY_FILE=str(workdir / "unused.key"),
        AWARDBOT_ATTACHMENTS_DIR=str(workdir / "attachments"),
        AWARDBOT_CAMPAIGNS_DIR=str(CAMPAIGNS),
        AWARDBOT_LOG_LEVEL="INFO",
        AWARDBOT_TELEGRAM_TOKEN=fake.token,
        AWARDBOT_TELEGRAM_MODE="webhook",
        AWARDBOT_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        AWARDBOT_TELEGRAM_API_BASE=fake.url,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Worker:
    """One `awardbot serve --port 0` child process."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.env = env
        self.workdir = workdir
        self.url = ""
        self.pid = 0
        self.spawned = 0.0  # monotonic
        self.listening_at = 0.0
        self.lines: list[tuple[float, str]] = []  # (monotonic, text), stdout and stderr
        self.killed_at: float | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._log: Any = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Spawn it and wait until it says it listens."""
        self._log = (self.workdir / f"{self.name}.log").open("w", encoding="utf-8")
        self.spawned = time.monotonic()
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", "0",
            cwd=self.workdir,  # no .env there: the environment is the whole configuration
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.pid = self._proc.pid
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self._proc.stdout, "out")),
            asyncio.create_task(self._read(self._proc.stderr, "err")),
        ]
        try:
            at = await self.wait_for("listening on", START_TIMEOUT)
        except AssertionError:
            await self.close()
            raise
        self.listening_at = at
        for _, text in self.lines:
            if found := _LISTENING.search(text):
                self.url = found.group(1)
                break

    async def _read(self, stream: asyncio.StreamReader, name: str) -> None:
        while line := await stream.readline():
            at = time.monotonic()
            text = line.decode("utf-8", "replace").rstrip("\n")
            self.lines.append((at, text))
            if self._log is not None:
                self._log.write(f"[{name} +{at - self.spawned:.3f}s] {text}\n")

    def first(self, text: str, *, after: float = 0.0) -> float | None:
        """When the first line containing `text` (after the moment `after`) came, or None."""
        return next((at for at, line in self.lines if text in line and at > after), None)

    def count(self, text: str) -> int:
        return sum(text in line for _, line in self.lines)

    async def wait_for(self, text: str, within: float, *, after: float = 0.0) -> float:
        """The moment a line containing `text` came; AssertionError after `within` seconds or
        when the process ends first."""
        deadline = time.monotonic() + within
        while (at := self.first(text, after=after)) is None:
            if not self.alive and all(r.done() for r in self._readers):
                raise AssertionError(f"worker {self.name} ended before {text!r}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"worker {self.name}: no {text!r} within {within:g} s:\n{self.tail()}"
                )
            await asyncio.sleep(0.05)
        return at

    def tail(self, n: int = 30) -> str:
        return "\n".join(line for _, line in self.lines[-n:]) or "(no output)"

    async def metric(self, name: str) -> int:
        """A counter's value on its /metrics page (0 when it has no sample yet)."""
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as http,
            http.get(f"{self.url}/metrics") as resp,
        ):
            assert resp.status == 200, f"worker {self.name}: /metrics answered {resp.status}"
            page = await resp.text()
        return sum(
            int(float(line.split()[-1]))
            for line in page.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def kill(self) -> float:
        """SIGKILL now: no cleanup, no flush, the way a crashed or OOM-killed worker ends."""
        assert self._proc is not None
        assert self._proc.returncode is None
        self.killed_at = time.monotonic()
        self._note(f"SIGKILL at +{self.killed_at - self.spawned:.3f}s")
        self._proc.send_signal(signal.SIGKILL)
        return self.killed_at

    async def stop(self) -> int | None:
        """SIGTERM, as an operator stops it: graceful shutdown (killed if it hangs)."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self._note("SIGTERM")
            self._proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self._proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.send_signal(signal.SIGKILL)
        await self.close()
        return self._proc.returncode

    async def close(self) -> None:
        """Kill it if it still runs, and reap it."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)
        await self._proc.wait()
        for reader in self._readers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader, 10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _note(self, text: str) -> None:
        if self._log is not None:
            self._log.write(f"[test] {text}\n")
            self._log.flush()


@asynccontextmanager
async def workers_of(
    fake: FakeTelegram, *, database: str, key: str, workdir: Path
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """`start(name, **env)` starts a worker (listening when it returns); every worker started
    is killed when the block ends, whatever happened."""
    started: list[Worker] = []

    async def start(name: str, **extra: str) -> Worker:
        env = serve_env(fake, database=database, key=key, workdir=workdir, **extra)
        worker = Worker(name, env, workdir)
        started.append(worker)
        await worker.start()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            await worker.close()


__all__ = ["Worker", "serve_env", "workers_of"]
