"""Run `awardbot` as a real process with pipes, reading its output as it comes."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from support.keys import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]


def awardbot_env(db_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWARDBOT_")}
    env.update(
        AWARDBOT_DATABASE_URL=f"sqlite:///{db_path}",
        AWARDBOT_SECRET_KEY=TEST_KEY,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_awardbot(
    args: list[str], *, cwd: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


class LiveConsole:
    """`awardbot console` in a child process; `expect` waits for text in its output."""

    def __init__(self, *, cwd: Path, env: dict[str, str], user: str = "kim") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "console", "--show-keys", "--user", user],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=cwd,
            env=env,
        )
        self.output = ""
        self.errors = ""
        self._chunks: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._chunks.put(line)
        self._chunks.put(None)

    def expect(self, text: str, timeout: float = 30) -> str:
        """Wait until `text` appears in output not yet consumed; return that output."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; output:\n{self.output}")
            try:
                chunk = self._chunks.get(timeout=remaining)
            except queue.Empty:
                continue
            if chunk is None:
                raise AssertionError(f"process ended before {text!r}; output:\n{self.output}")
            self.output += chunk
        seen, _, self.output = self.output.partition(text)
        return seen + text

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup, no flush, no goodbye
        self.proc.wait(timeout=10)
        self._close()

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        assert self.proc.stderr is not None
        self.errors = self.proc.stderr.read()
        self._reader.join(timeout=10)
        while True:
            try:
                chunk = self._chunks.get_nowait()
            except queue.Empty:
                break
            if chunk is not None:
                self.output += chunk
        self._close()
        return code

    def _close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()
